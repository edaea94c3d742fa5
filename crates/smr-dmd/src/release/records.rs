//! The dm+d XML files as a stream of flat records.
//!
//! Every NHSBSA dm+d file has the same shape: a root element, optional group elements, and
//! records whose children are leaf elements with text (`<VMP><VPID>…</VPID><NM>…</NM></VMP>`).
//! Reading them as "a record = an element whose children are all leaves" lets one streaming
//! reader serve all seven files without holding a document in memory (a full release is
//! hundreds of megabytes).

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

use super::ReleaseError;

/// One record: its element name, the element it sits in, and its leaf fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The enclosing element (e.g. `VMPS`, `FORM`; the root for files without groups).
    pub group: String,
    /// The record's element name (e.g. `VMP`, `INFO`).
    pub tag: String,
    pub fields: Vec<(String, String)>,
    /// Byte offset of the record's start tag in the file.
    pub position: u64,
}

impl Record {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A mandatory field, or an error naming the file, the element and the field.
    pub fn require(&self, file: &str, field: &str) -> Result<&str, ReleaseError> {
        self.get(field).ok_or_else(|| ReleaseError::MissingField {
            file: file.to_owned(),
            element: self.tag.clone(),
            field: field.to_owned(),
            position: self.position,
        })
    }

    pub fn invalid(&self, file: &str, message: impl Into<String>) -> ReleaseError {
        ReleaseError::Invalid {
            file: file.to_owned(),
            element: self.tag.clone(),
            position: self.position,
            message: message.into(),
        }
    }
}

struct Frame {
    name: String,
    position: u64,
    text: String,
    has_children: bool,
    fields: Vec<(String, String)>,
}

/// Streams the records of `file` (named in errors), checking that its root element is
/// `root`, and hands each to `on_record`.
pub(crate) fn for_each_record<R: BufRead>(
    file: &str,
    root: &str,
    input: R,
    mut on_record: impl FnMut(&Record) -> Result<(), ReleaseError>,
) -> Result<(), ReleaseError> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut seen_root = false;
    let xml_error = |position: u64, message: String| ReleaseError::Xml {
        file: file.to_owned(),
        position,
        message,
    };
    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(reader.buffer_position(), e.to_string()))?;
        match event {
            Event::Start(start) => {
                let name = start.name().as_ref().to_owned();
                open(file, root, &mut stack, &mut seen_root, name, position)?;
            }
            Event::Empty(start) => {
                let name = start.name().as_ref().to_owned();
                open(file, root, &mut stack, &mut seen_root, name, position)?;
                close(&mut stack, &mut on_record)?;
            }
            Event::End(_) => close(&mut stack, &mut on_record)?,
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => resolve_predefined_entity(&reference)
                        .ok_or_else(|| {
                            xml_error(position, format!("unknown entity &{};", &*reference))
                        })?
                        .to_owned(),
                    Err(e) => return Err(xml_error(position, e.to_string())),
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    if let Some(open) = stack.last() {
        return Err(xml_error(
            reader.buffer_position(),
            format!("the file ends inside <{}>", open.name),
        ));
    }
    if !seen_root {
        return Err(xml_error(
            0,
            format!("no <{root}> element: the file is empty"),
        ));
    }
    Ok(())
}

fn open(
    file: &str,
    root: &str,
    stack: &mut Vec<Frame>,
    seen_root: &mut bool,
    name: String,
    position: u64,
) -> Result<(), ReleaseError> {
    match stack.last_mut() {
        Some(parent) => parent.has_children = true,
        None => {
            if *seen_root || name != root {
                return Err(ReleaseError::WrongRoot {
                    file: file.to_owned(),
                    found: name,
                    expected: root.to_owned(),
                });
            }
            *seen_root = true;
        }
    }
    stack.push(Frame {
        name,
        position,
        text: String::new(),
        has_children: false,
        fields: Vec::new(),
    });
    Ok(())
}

fn close(
    stack: &mut Vec<Frame>,
    on_record: &mut impl FnMut(&Record) -> Result<(), ReleaseError>,
) -> Result<(), ReleaseError> {
    let Some(frame) = stack.pop() else {
        return Ok(());
    };
    let parent = stack.last_mut();
    if !frame.has_children {
        // A leaf: a field of the record around it.
        if let Some(parent) = parent {
            parent
                .fields
                .push((frame.name, frame.text.trim().to_owned()));
        }
        return Ok(());
    }
    if !frame.fields.is_empty() {
        let record = Record {
            group: parent.map(|p| p.name.clone()).unwrap_or_default(),
            tag: frame.name,
            fields: frame.fields,
            position: frame.position,
        };
        on_record(&record)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(xml: &str, root: &str) -> Result<Vec<Record>, ReleaseError> {
        let mut out = Vec::new();
        for_each_record("f_test.xml", root, xml.as_bytes(), |r| {
            out.push(r.clone());
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn records_are_elements_of_leaves_in_any_group() {
        let xml =
            "<ROOT><!-- c --><G><R><A>1</A><B>x &amp; y</B><C/></R></G><R><A>2</A></R></ROOT>";
        let got = records(xml, "ROOT").expect("parses");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].group, "G");
        assert_eq!(got[0].get("B"), Some("x & y"));
        assert_eq!(got[0].get("C"), None, "an empty field is absent");
        assert_eq!(got[1].group, "ROOT");
        assert_eq!(got[1].get("A"), Some("2"));
    }

    #[test]
    fn a_wrong_root_truncation_or_bad_xml_names_the_file() {
        let wrong = records("<OTHER><R><A>1</A></R></OTHER>", "ROOT").unwrap_err();
        assert!(wrong.to_string().contains("f_test.xml"), "{wrong}");
        assert!(wrong.to_string().contains("<OTHER>"), "{wrong}");
        let cut = records("<ROOT><R><A>1</A>", "ROOT").unwrap_err();
        assert!(cut.to_string().contains("ends inside <R>"), "{cut}");
        let bad = records("<ROOT><R><A>1</B></R></ROOT>", "ROOT").unwrap_err();
        assert!(matches!(bad, ReleaseError::Xml { .. }), "{bad}");
        let empty = records("", "ROOT").unwrap_err();
        assert!(empty.to_string().contains("empty"), "{empty}");
    }
}
