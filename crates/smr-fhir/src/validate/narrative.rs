//! `Narrative.div`: the XHTML a client may render, checked as FHIR R4 requires before it is
//! stored (http://hl7.org/fhir/R4/narrative.html, invariants on `Narrative.div`):
//!
//! - txt-1: only "the basic html formatting elements and attributes described in chapters 7-11
//!   (except section 4 of chapter 9) and 15 of the HTML 4.0 standard, `<a>` elements (either
//!   name or href), images and internally contained style attributes". The XHTML "SHALL NOT
//!   contain a head, a body, external stylesheet references, scripts, forms, base/link/xlink,
//!   frames, iframes and objects", nor event attributes: narrative must carry no active content.
//! - txt-2: the narrative has some non-whitespace content.
//! - the root is a `div` in the XHTML namespace `http://www.w3.org/1999/xhtml`, and the whole is
//!   well-formed XML (only XML's five predefined entities: `&nbsp;` is HTML, not XML).
//!
//! The element and attribute lists are those the HL7 reference validator
//! (org.hl7.fhir.validation, `checkInnerNames`) applies for txt-1. On top of the lists, URLs
//! may not use a script-running scheme (`javascript:`, `vbscript:`, `data:` other than a raster
//! image on `img`), and a `style` may not carry script (`expression(`, `javascript:`, …): those
//! are the ways past an element allow-list into active content.
//!
//! XML is read with quick-xml, so entities, character references and attribute quoting are
//! decoded the way a browser's XML parser decodes them before any check looks at a value.

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

pub const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// HTML 4.0 chapters 7–11 and 15, `a`, `img` (txt-1), as the reference validator lists them.
const ELEMENTS: &[&str] = &[
    "p",
    "br",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "span",
    "b",
    "em",
    "i",
    "strong",
    "small",
    "big",
    "tt",
    "dfn",
    "q",
    "var",
    "abbr",
    "acronym",
    "cite",
    "blockquote",
    "hr",
    "address",
    "bdo",
    "kbd",
    "sub",
    "sup",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "pre",
    "table",
    "caption",
    "colgroup",
    "col",
    "thead",
    "tr",
    "tfoot",
    "tbody",
    "th",
    "td",
    "code",
    "samp",
    "img",
    "map",
    "area",
];

/// Elements txt-1 names as forbidden (and their relatives): reported as active content.
const ACTIVE: &[&str] = &[
    "script", "noscript", "form", "input", "button", "select", "textarea", "iframe", "frame",
    "frameset", "object", "embed", "applet", "param", "base", "link", "meta", "style", "head",
    "body", "html", "svg", "math",
];

/// Attributes allowed on every element.
const GLOBAL_ATTRIBUTES: &[&str] = &[
    "title",
    "style",
    "class",
    "id",
    "lang",
    "xml:lang",
    "xml:space",
    "dir",
    "accesskey",
    "tabindex",
    // tables
    "span",
    "width",
    "align",
    "valign",
    "char",
    "charoff",
    "abbr",
    "axis",
    "headers",
    "scope",
    "rowspan",
    "colspan",
];

/// Attributes allowed on one element only.
const ELEMENT_ATTRIBUTES: &[(&str, &[&str])] = &[
    (
        "a",
        &[
            "href", "name", "charset", "type", "hreflang", "rel", "rev", "shape", "coords",
        ],
    ),
    (
        "img",
        &[
            "src", "alt", "border", "longdesc", "height", "width", "usemap", "ismap",
        ],
    ),
    ("map", &["name"]),
    ("area", &["shape", "coords", "href", "nohref", "alt"]),
    (
        "table",
        &[
            "summary",
            "width",
            "border",
            "frame",
            "rules",
            "cellspacing",
            "cellpadding",
        ],
    ),
    ("blockquote", &["cite"]),
    ("q", &["cite"]),
];

/// Attributes whose value is a URL a browser follows or loads.
const URL_ATTRIBUTES: &[&str] = &["href", "src", "cite", "longdesc", "usemap"];

/// Why a narrative is refused: the message names the element or attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Malformed XML (`structure`) rather than a disallowed construct (`invalid`).
    pub malformed: bool,
    pub message: String,
}

impl Problem {
    fn malformed(message: impl Into<String>) -> Self {
        Problem {
            malformed: true,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Problem {
            malformed: false,
            message: message.into(),
        }
    }
}

/// Checks one `Narrative.div` value; the first problem found.
pub fn check(div: &str) -> Result<(), Problem> {
    let mut reader = Reader::from_str(div);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(false);

    let mut depth = 0usize;
    let mut root_seen = false;
    let mut root_closed = false;
    let mut content = false;
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            Problem::malformed(format!(
                "narrative is not well-formed XML: {e} (near byte {at})"
            ))
        })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root_closed {
                    return Err(Problem::malformed(
                        "narrative must be a single <div> element: content follows it",
                    ));
                }
                let name = element(e, depth == 0)?;
                content |= name == "img";
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                } else if depth == 0 {
                    root_closed = true;
                }
                root_seen = true;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    root_closed = true;
                }
            }
            Event::Text(t) => {
                if !t.trim().is_empty() {
                    if depth == 0 {
                        return Err(Problem::malformed(
                            "narrative must be a single <div> element: text outside it",
                        ));
                    }
                    content = true;
                }
            }
            Event::GeneralRef(r) => {
                if depth == 0 {
                    return Err(Problem::malformed(
                        "narrative must be a single <div> element: text outside it",
                    ));
                }
                reference(&r)?;
                content = true;
            }
            Event::CData(c) => {
                if depth == 0 {
                    return Err(Problem::malformed(
                        "narrative must be a single <div> element: CDATA outside it",
                    ));
                }
                content |= !c.trim().is_empty();
            }
            Event::Comment(_) => {}
            Event::Decl(_) => {
                return Err(Problem::malformed(
                    "narrative must be an XHTML fragment: an XML declaration is not allowed",
                ));
            }
            Event::PI(_) => {
                return Err(Problem::invalid(
                    "processing instructions are not allowed in narrative",
                ));
            }
            Event::DocType(_) => {
                return Err(Problem::invalid(
                    "a DOCTYPE is not allowed in narrative (it could declare entities)",
                ));
            }
            Event::Eof => break,
        }
    }
    if !root_seen {
        return Err(Problem::malformed(
            "narrative must be a <div> element in the XHTML namespace",
        ));
    }
    if depth != 0 {
        return Err(Problem::malformed(
            "narrative is not well-formed XML: an element is not closed",
        ));
    }
    if !content {
        return Err(Problem::invalid(
            "txt-2: the narrative must have some non-whitespace content",
        ));
    }
    Ok(())
}

/// Checks one element and its attributes; returns its name.
fn element<'e>(e: &'e BytesStart<'_>, root: bool) -> Result<&'e str, Problem> {
    let name = e.name().0;
    if name.contains(':') {
        return Err(Problem::invalid(format!(
            "element <{name}> is not allowed: narrative may only use XHTML elements, without a \
             namespace prefix"
        )));
    }
    if root && name != "div" {
        return Err(Problem::invalid(format!(
            "narrative must be a <div> element in the XHTML namespace, not <{name}>"
        )));
    }
    if ACTIVE.contains(&name) {
        return Err(Problem::invalid(format!(
            "element <{name}> is not allowed in narrative: FHIR R4 forbids scripts, forms, \
             frames, objects, base/link/meta and stylesheets (no active content, txt-1)"
        )));
    }
    if !ELEMENTS.contains(&name) {
        return Err(Problem::invalid(format!(
            "element <{name}> is not allowed in narrative: only the basic HTML 4.0 formatting \
             elements, <a> and <img> are (txt-1)"
        )));
    }
    let mut has_ns = false;
    for attr in e.attributes() {
        let attr = attr.map_err(|err| {
            Problem::malformed(format!(
                "narrative is not well-formed XML: bad attribute on <{name}>: {err}"
            ))
        })?;
        let key = attr.key.0;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| {
                Problem::malformed(format!(
                    "narrative is not well-formed XML: attribute '{key}' on <{name}>: {err} \
                 (XML knows only &amp; &lt; &gt; &quot; &apos; and character references)"
                ))
            })?;
        if key == "xmlns" {
            if value != XHTML_NS {
                return Err(Problem::invalid(format!(
                    "<{name}> declares namespace '{value}': narrative is XHTML only \
                     ({XHTML_NS})"
                )));
            }
            has_ns = true;
            continue;
        }
        if key.starts_with("xmlns:") {
            return Err(Problem::invalid(format!(
                "namespace declaration '{key}' on <{name}> is not allowed: narrative is XHTML \
                 only (no xlink)"
            )));
        }
        if key.len() > 2 && key[..2].eq_ignore_ascii_case("on") {
            return Err(Problem::invalid(format!(
                "event attribute '{key}' on <{name}> is not allowed in narrative (no active \
                 content, txt-1)"
            )));
        }
        let allowed = GLOBAL_ATTRIBUTES.contains(&key)
            || ELEMENT_ATTRIBUTES
                .iter()
                .any(|(el, attrs)| *el == name && attrs.contains(&key));
        if !allowed {
            return Err(Problem::invalid(format!(
                "attribute '{key}' is not allowed on <{name}> in narrative (txt-1)"
            )));
        }
        if URL_ATTRIBUTES.contains(&key) {
            url(name, key, &value)?;
        }
        if key == "style" {
            style(name, &value)?;
        }
    }
    if root && !has_ns {
        return Err(Problem::invalid(format!(
            "the narrative's root <div> must declare xmlns=\"{XHTML_NS}\""
        )));
    }
    Ok(name)
}

/// A text reference: one of XML's five entities or a character reference.
fn reference(r: &quick_xml::events::BytesRef<'_>) -> Result<(), Problem> {
    match r.resolve_char_ref() {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        Err(e) => {
            return Err(Problem::malformed(format!(
                "narrative is not well-formed XML: {e}"
            )));
        }
    }
    let name: &str = r;
    if matches!(name, "amp" | "lt" | "gt" | "quot" | "apos") {
        Ok(())
    } else {
        Err(Problem::malformed(format!(
            "narrative is not well-formed XML: entity '&{name};' is not defined (XML knows only \
             &amp; &lt; &gt; &quot; &apos;; write the character itself or a character reference \
             such as &#160;)"
        )))
    }
}

/// The scheme of a URL as a browser reads it: ASCII whitespace and control characters are
/// dropped (`java\tscript:` runs), letters compared case-insensitively.
fn scheme(value: &str) -> Option<String> {
    let squeezed: String = value
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .collect();
    let (scheme, _) = squeezed.split_once(':')?;
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

fn url(element: &str, attribute: &str, value: &str) -> Result<(), Problem> {
    let Some(scheme) = scheme(value) else {
        return Ok(()); // relative, or a fragment (`#id`)
    };
    let refused = match scheme.as_str() {
        "javascript" | "vbscript" | "livescript" | "mocha" => true,
        // A raster image inline is ordinary narrative; anything else as data (HTML, SVG with
        // script) is active content.
        "data" => {
            let media = value
                .trim()
                .get(5..)
                .unwrap_or_default()
                .to_ascii_lowercase();
            !(element == "img"
                && attribute == "src"
                && media.starts_with("image/")
                && !media.starts_with("image/svg"))
        }
        _ => false,
    };
    if refused {
        return Err(Problem::invalid(format!(
            "attribute '{attribute}' on <{element}> uses a '{scheme}:' URL, which is not allowed \
             in narrative (no active content)"
        )));
    }
    Ok(())
}

/// Style attributes are allowed (txt-1), script inside them is not.
fn style(element: &str, value: &str) -> Result<(), Problem> {
    let squeezed: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    for bad in [
        "expression(",
        "javascript:",
        "vbscript:",
        "-moz-binding",
        "behavior:",
        "@import",
    ] {
        if squeezed.contains(bad) {
            return Err(Problem::invalid(format!(
                "the style attribute on <{element}> contains '{bad}', which is not allowed in \
                 narrative (no active content)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn div(inner: &str) -> String {
        format!("<div xmlns=\"{XHTML_NS}\">{inner}</div>")
    }

    #[track_caller]
    fn refused(text: &str, needle: &str) {
        match check(text) {
            Ok(()) => panic!("accepted: {text}"),
            Err(p) => assert!(
                p.message.contains(needle),
                "{text}: '{}' does not mention '{needle}'",
                p.message
            ),
        }
    }

    #[test]
    fn ordinary_narrative_is_accepted() {
        let ok = div(
            "<p>Paracetamol <b>500&#160;mg</b> &amp; water &lt;1 L&gt;</p>\
             <table border=\"1\"><thead><tr><th scope=\"col\">Drug</th></tr></thead>\
             <tbody><tr><td colspan=\"2\" style=\"color: red\">x</td></tr></tbody></table>\
             <a href=\"https://example.org/leaflet?x=1&amp;y=2\">leaflet</a> <a name=\"n1\"/>\
             <img src=\"#photo\" alt=\"p\"/><img src=\"data:image/png;base64,iVBORw0KGgo=\"/>\
             <ul><li>one</li></ul><!-- generated --><![CDATA[ a < b ]]>",
        );
        assert_eq!(check(&ok), Ok(()));
        let lang = format!("<div xmlns=\"{XHTML_NS}\" xml:lang=\"en-GB\" lang=\"en-GB\">Hi</div>");
        assert_eq!(check(&lang), Ok(()));
        // An image alone is content.
        assert_eq!(check(&div("<img src=\"x.png\"/>")), Ok(()));
    }

    #[test]
    fn active_content_is_refused() {
        refused(&div("<script>alert(1)</script>"), "<script>");
        refused(&div("<p><SCRIPT>alert(1)</SCRIPT></p>"), "<SCRIPT>");
        refused(&div("<img src=\"x\" onerror=\"alert(1)\"/>"), "onerror");
        refused(&div("<p ONCLICK=\"x()\">a</p>"), "ONCLICK");
        refused(&div("<iframe src=\"https://x\"></iframe>"), "<iframe>");
        refused(&div("<form><input/></form>"), "<form>");
        refused(&div("<object data=\"x\"></object>"), "<object>");
        refused(&div("<embed src=\"x\"/>"), "<embed>");
        refused(&div("<base href=\"https://x/\"/>"), "<base>");
        refused(&div("<link rel=\"stylesheet\" href=\"x.css\"/>"), "<link>");
        refused(&div("<meta http-equiv=\"refresh\"/>"), "<meta>");
        refused(&div("<style>p{}</style>"), "<style>");
        refused(&div("<a href=\"javascript:alert(1)\">x</a>"), "javascript:");
        refused(
            &div("<a href=\" JaVa&#x09;ScRiPt:alert(1)\">x</a>"),
            "javascript:",
        );
        refused(
            &div("<a href=\"&#106;avascript:alert(1)\">x</a>"),
            "javascript:",
        );
        refused(&div("<a href=\"data:text/html,<b>x</b>\">x</a>"), "data:");
        refused(
            &div("<img src=\"data:image/svg+xml;base64,PHN2Zz4=\"/>"),
            "data:",
        );
        refused(
            &div("<p style=\"width: expression(alert(1))\">x</p>"),
            "expression(",
        );
        refused(
            &div("<p style=\"background:url(javascript:x)\">x</p>"),
            "javascript:",
        );
        refused(
            &div("<x:script xmlns:x=\"http://www.w3.org/1999/xhtml\">a</x:script>"),
            "<x:script>",
        );
        refused(
            &div("<a xmlns:xlink=\"http://www.w3.org/1999/xlink\" xlink:href=\"x\">a</a>"),
            "xmlns:xlink",
        );
        refused(&div("<p foo=\"bar\">x</p>"), "'foo'");
        refused(&div("<p href=\"x\">x</p>"), "'href'");
        refused(&div("<video src=\"x\"/>"), "<video>");
        refused(&div("<?php echo 1 ?>"), "processing instructions");
    }

    #[test]
    fn namespace_and_root() {
        refused("<div>no namespace</div>", "xmlns");
        refused(
            "<div xmlns=\"http://example.org\">x</div>",
            "http://example.org",
        );
        refused(&format!("<p xmlns=\"{XHTML_NS}\">x</p>"), "<p>");
        refused(
            &div("<p xmlns=\"http://www.w3.org/2000/svg\">x</p>"),
            "2000/svg",
        );
        refused(&format!("{}<p>x</p>", div("a")), "single <div>");
        refused(&format!("text {}", div("a")), "single <div>");
        refused("", "<div>");
        refused(&div("  "), "txt-2");
        refused(&format!("<div xmlns=\"{XHTML_NS}\"/>"), "txt-2");
    }

    #[test]
    fn malformed_xml() {
        for bad in [
            div("<p>unclosed"),
            div("<p>a</b>"),
            div("<p class=x>a</p>"),
            div("<td nowrap>a</td>"),
            div("<p class=\"a\" class=\"b\">a</p>"),
            div("a &nbsp; b"),
            div("a & b"),
            div("<p title=\"&nbsp;\">a</p>"),
            format!("<div xmlns=\"{XHTML_NS}\">a"),
            format!("<?xml version=\"1.0\"?>{}", div("a")),
        ] {
            match check(&bad) {
                Ok(()) => panic!("accepted: {bad}"),
                Err(p) => assert!(p.malformed, "{bad}: {}", p.message),
            }
        }
        refused(&div("a &nbsp; b"), "&nbsp;");
        refused(&format!("<!DOCTYPE x>{}", div("a")), "DOCTYPE");
    }
}
