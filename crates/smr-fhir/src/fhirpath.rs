//! The FHIRPath subset used by R4 search-parameter expressions, evaluated on the JSON form.
//!
//! Supported (http://hl7.org/fhirpath/N1/): path navigation with arrays flattened; choice
//! elements (`Observation.value` finds `valueQuantity`, typed `Quantity`); `|` union; `and`;
//! `=` / `!=` on primitives and literals; `is` / `as` operators; the functions `where(…)`,
//! `resolve()` (only as far as the reference text tells the target type), `ofType(T)`, `as(T)`,
//! `is(T)`, `exists()`, `empty()`, `not()`, `first()`; string and boolean literals; `$this`.
//!
//! Expressions are parsed once ([`parse`]) and evaluated many times ([`Expr::evaluate`]);
//! evaluation borrows from the resource and never clones JSON.
//!
//! Types: a node's FHIR type is known when it came through a choice element (from the JSON
//! suffix), from `resolve()` (the reference's type), or for the root (its `resourceType`).
//! Elsewhere it is `None` and callers read the JSON shape; there is no structure-definition
//! model here on purpose, to keep extraction cheap.

use serde_json::Value;

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse FHIRPath '{expression}' at byte {position}: {reason}")]
pub struct ParseError {
    pub expression: String,
    pub position: usize,
    pub reason: String,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr(Node);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// The current focus (`$this`; also the implicit start of every path).
    This,
    Str(String),
    Bool(bool),
    /// `base.name`. `choice` is set when `name` is a known R4 choice element, so the JSON
    /// `name<Type>` keys are tried when `name` itself is absent.
    Member {
        base: Box<Node>,
        name: String,
        choice: bool,
    },
    Call {
        base: Box<Node>,
        func: Func,
    },
    Union(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Equals {
        left: Box<Node>,
        right: Box<Node>,
        negate: bool,
    },
    Is(Box<Node>, String),
    As(Box<Node>, String),
}

#[derive(Debug, Clone, PartialEq)]
enum Func {
    Where(Box<Node>),
    Resolve,
    OfType(String),
    Exists,
    Empty,
    Not,
    First,
}

/// One item of an evaluation result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'a> {
    /// An element of the resource.
    Node(Element<'a>),
    /// A computed boolean (`exists()`, `and`, `=`...).
    Bool(bool),
    /// A string literal from the expression.
    Str(&'a str),
}

/// An element of the resource: the JSON value, its FHIR type when known, and the JSON key it
/// was reached by (array elements keep their array's key; the root's name is empty).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Element<'a> {
    pub value: &'a Value,
    pub fhir_type: Option<&'a str>,
    pub name: &'a str,
}

/// Parses `source` into an [`Expr`].
pub fn parse(source: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(source)?;
    let mut p = Parser {
        source,
        tokens,
        pos: 0,
    };
    let node = p.expr()?;
    if p.pos < p.tokens.len() {
        return Err(p.error("unexpected token after the expression"));
    }
    Ok(Expr(node))
}

impl Expr {
    /// Evaluates against `resource` (the root and initial focus). Unions keep duplicates; the
    /// caller deduplicates what it derives from the items.
    pub fn evaluate<'a>(&'a self, resource: &'a Value) -> Vec<Item<'a>> {
        let root = Element {
            value: resource,
            fhir_type: resource.get("resourceType").and_then(Value::as_str),
            name: "",
        };
        let ctx = Ctx { root: resource };
        eval(&self.0, &[Item::Node(root)], &ctx)
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens and parser

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Dot,
    LParen,
    RParen,
    Comma,
    Pipe,
    Eq,
    NotEq,
    This,
}

fn tokenize(source: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let fail = |pos: usize, reason: &str| ParseError {
        expression: source.to_owned(),
        position: pos,
        reason: reason.to_owned(),
    };
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        let tok = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'.' => Tok::Dot,
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b',' => Tok::Comma,
            b'|' => Tok::Pipe,
            b'=' => Tok::Eq,
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 1;
                Tok::NotEq
            }
            b'\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(fail(start, "unterminated string")),
                        Some(b'\'') => break,
                        Some(b'\\') => {
                            let escaped = source[i + 1..]
                                .chars()
                                .next()
                                .ok_or_else(|| fail(i, "dangling escape"))?;
                            text.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                            i += 1 + escaped.len_utf8();
                        }
                        Some(_) => {
                            // Copy one whole UTF-8 character.
                            let ch = source[i..]
                                .chars()
                                .next()
                                .ok_or_else(|| fail(i, "bad text"))?;
                            text.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                Tok::Str(text)
            }
            b'$' if source[i..].starts_with("$this") => {
                i += 4;
                Tok::This
            }
            b'`' => {
                let end = source[i + 1..]
                    .find('`')
                    .ok_or_else(|| fail(i, "unterminated identifier"))?;
                let name = source[i + 1..i + 1 + end].to_owned();
                i += end + 1;
                Tok::Ident(name)
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let mut j = i;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                let name = source[i..j].to_owned();
                i = j - 1;
                Tok::Ident(name)
            }
            _ => return Err(fail(i, "unsupported character")),
        };
        i += 1;
        out.push((start, tok));
    }
    Ok(out)
}

struct Parser<'s> {
    source: &'s str,
    tokens: Vec<(usize, Tok)>,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &str) -> ParseError {
        ParseError {
            expression: self.source.to_owned(),
            position: self.tokens.get(self.pos).map_or(self.source.len(), |t| t.0),
            reason: reason.to_owned(),
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.1)
    }

    fn peek_ident(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w == word)
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), ParseError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Ident(name)) => {
                let name = name.clone();
                self.pos += 1;
                Ok(name)
            }
            _ => Err(self.error("expected an identifier")),
        }
    }

    // Precedence, loosest first (FHIRPath §6): and < equality < union < is/as < invocation.
    fn expr(&mut self) -> Result<Node, ParseError> {
        let mut left = self.equality()?;
        while self.peek_ident("and") {
            self.pos += 1;
            let right = self.equality()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn equality(&mut self) -> Result<Node, ParseError> {
        let mut left = self.union()?;
        loop {
            let negate = match self.peek() {
                Some(Tok::Eq) => false,
                Some(Tok::NotEq) => true,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.union()?;
            left = Node::Equals {
                left: Box::new(left),
                right: Box::new(right),
                negate,
            };
        }
    }

    fn union(&mut self) -> Result<Node, ParseError> {
        let mut left = self.type_expr()?;
        while self.eat(&Tok::Pipe) {
            let right = self.type_expr()?;
            left = Node::Union(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn type_expr(&mut self) -> Result<Node, ParseError> {
        let mut left = self.postfix()?;
        loop {
            if self.peek_ident("is") {
                self.pos += 1;
                left = Node::Is(Box::new(left), self.type_name()?);
            } else if self.peek_ident("as") {
                self.pos += 1;
                left = Node::As(Box::new(left), self.type_name()?);
            } else {
                return Ok(left);
            }
        }
    }

    /// `Patient`, `FHIR.Patient`, `System.String`: the namespace is dropped.
    fn type_name(&mut self) -> Result<String, ParseError> {
        let mut name = self.ident()?;
        while self.eat(&Tok::Dot) {
            name = self.ident()?;
        }
        Ok(name)
    }

    fn postfix(&mut self) -> Result<Node, ParseError> {
        let mut node = match self.peek() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.expr()?;
                self.expect(&Tok::RParen, "expected ')'")?;
                inner
            }
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Node::Str(s)
            }
            Some(Tok::This) => {
                self.pos += 1;
                Node::This
            }
            Some(Tok::Ident(w)) if w == "true" || w == "false" => {
                let b = w == "true";
                self.pos += 1;
                Node::Bool(b)
            }
            _ => self.invocation(Node::This)?,
        };
        while self.eat(&Tok::Dot) {
            node = self.invocation(node)?;
        }
        Ok(node)
    }

    fn invocation(&mut self, base: Node) -> Result<Node, ParseError> {
        let name = self.ident()?;
        if !self.eat(&Tok::LParen) {
            let choice = is_choice_element(&name);
            return Ok(Node::Member {
                base: Box::new(base),
                name,
                choice,
            });
        }
        let func = match name.as_str() {
            "where" => {
                let cond = self.expr()?;
                Func::Where(Box::new(cond))
            }
            "ofType" => Func::OfType(self.type_name()?),
            "as" => {
                let t = self.type_name()?;
                self.expect(&Tok::RParen, "expected ')'")?;
                return Ok(Node::As(Box::new(base), t));
            }
            "is" => {
                let t = self.type_name()?;
                self.expect(&Tok::RParen, "expected ')'")?;
                return Ok(Node::Is(Box::new(base), t));
            }
            "resolve" => Func::Resolve,
            "exists" => Func::Exists,
            "empty" => Func::Empty,
            "not" => Func::Not,
            "first" => Func::First,
            _ => return Err(self.error(&format!("unsupported function '{name}'"))),
        };
        self.expect(&Tok::RParen, "expected ')' after the function arguments")?;
        Ok(Node::Call {
            base: Box::new(base),
            func,
        })
    }
}

/// R4 choice elements (`name[x]`) reachable from the served types' search expressions, plus
/// common ones. A plain name such as Consent `data` is not here, so its sibling `dataPeriod`
/// is never mistaken for it. Sorted for binary search.
const CHOICE_ELEMENTS: &[&str] = &[
    "abatement",
    "allowed",
    "asNeeded",
    "born",
    "deceased",
    "defaultValue",
    "dose",
    "effective",
    "item",
    "medication",
    "multipleBirth",
    "occurred",
    "occurrence",
    "onset",
    "performed",
    "product",
    "rate",
    "reported",
    "timing",
    "used",
    "value",
];

fn is_choice_element(name: &str) -> bool {
    CHOICE_ELEMENTS.binary_search(&name).is_ok()
}

/// The FHIR type named by a choice-element suffix (`Quantity`, `DateTime` → `dateTime`).
/// Sorted by suffix for binary search.
const CHOICE_SUFFIX_TYPES: &[(&str, &str)] = &[
    ("Address", "Address"),
    ("Age", "Age"),
    ("Annotation", "Annotation"),
    ("Attachment", "Attachment"),
    ("Base64Binary", "base64Binary"),
    ("Boolean", "boolean"),
    ("Canonical", "canonical"),
    ("Code", "code"),
    ("CodeableConcept", "CodeableConcept"),
    ("Coding", "Coding"),
    ("ContactPoint", "ContactPoint"),
    ("Count", "Count"),
    ("Date", "date"),
    ("DateTime", "dateTime"),
    ("Decimal", "decimal"),
    ("Distance", "Distance"),
    ("Dosage", "Dosage"),
    ("Duration", "Duration"),
    ("HumanName", "HumanName"),
    ("Id", "id"),
    ("Identifier", "Identifier"),
    ("Instant", "instant"),
    ("Integer", "integer"),
    ("Markdown", "markdown"),
    ("Meta", "Meta"),
    ("Money", "Money"),
    ("Oid", "oid"),
    ("Period", "Period"),
    ("PositiveInt", "positiveInt"),
    ("Quantity", "Quantity"),
    ("Range", "Range"),
    ("Ratio", "Ratio"),
    ("Reference", "Reference"),
    ("SampledData", "SampledData"),
    ("Signature", "Signature"),
    ("String", "string"),
    ("Time", "time"),
    ("Timing", "Timing"),
    ("UnsignedInt", "unsignedInt"),
    ("Uri", "uri"),
    ("Url", "url"),
    ("Uuid", "uuid"),
];

fn choice_suffix_type(suffix: &str) -> Option<&'static str> {
    CHOICE_SUFFIX_TYPES
        .binary_search_by(|(s, _)| s.cmp(&suffix))
        .ok()
        .map(|i| CHOICE_SUFFIX_TYPES[i].1)
}

/// `ofType`/`is` semantics: the type itself or one of its R4 specialisations.
fn type_matches(actual: &str, wanted: &str) -> bool {
    actual == wanted
        || match wanted {
            "Quantity" => matches!(
                actual,
                "Age" | "Count" | "Distance" | "Duration" | "MoneyQuantity" | "SimpleQuantity"
            ),
            "string" => matches!(actual, "code" | "id" | "markdown"),
            "uri" => matches!(actual, "url" | "canonical" | "oid" | "uuid"),
            "integer" => matches!(actual, "positiveInt" | "unsignedInt"),
            "Resource" | "DomainResource" => actual.starts_with(|c: char| c.is_ascii_uppercase()),
            _ => false,
        }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

struct Ctx<'a> {
    root: &'a Value,
}

/// The value of an item that has no JSON of its own (a string literal resolved as a reference).
static NULL: Value = Value::Null;

fn eval<'a>(node: &'a Node, focus: &[Item<'a>], ctx: &Ctx<'a>) -> Vec<Item<'a>> {
    match node {
        Node::This => focus.to_vec(),
        Node::Str(s) => vec![Item::Str(s)],
        Node::Bool(b) => vec![Item::Bool(*b)],
        Node::Member { base, name, choice } => {
            let input = eval(base, focus, ctx);
            let mut out = Vec::new();
            for item in &input {
                if let Item::Node(el) = item {
                    member(el, name, *choice, &mut out);
                }
            }
            out
        }
        Node::Call { base, func } => {
            let input = eval(base, focus, ctx);
            call(func, input, ctx)
        }
        Node::Union(l, r) => {
            let mut out = eval(l, focus, ctx);
            out.extend(eval(r, focus, ctx));
            out
        }
        Node::And(l, r) => {
            let l = truth(&eval(l, focus, ctx));
            // Three-valued logic: false wins over empty.
            if l == Some(false) {
                return vec![Item::Bool(false)];
            }
            let r = truth(&eval(r, focus, ctx));
            match (l, r) {
                (_, Some(false)) => vec![Item::Bool(false)],
                (Some(true), Some(true)) => vec![Item::Bool(true)],
                _ => Vec::new(),
            }
        }
        Node::Equals {
            left,
            right,
            negate,
        } => {
            let l = eval(left, focus, ctx);
            let r = eval(right, focus, ctx);
            match equals(&l, &r) {
                Some(eq) => vec![Item::Bool(eq != *negate)],
                None => Vec::new(),
            }
        }
        Node::Is(base, t) => {
            let input = eval(base, focus, ctx);
            match input.as_slice() {
                [one] => vec![Item::Bool(
                    item_type(one).is_some_and(|a| type_matches(a, t)),
                )],
                _ => Vec::new(),
            }
        }
        Node::As(base, t) => {
            let input = eval(base, focus, ctx);
            input
                .into_iter()
                .filter(|i| item_type(i).is_some_and(|a| type_matches(a, t)))
                .collect()
        }
    }
}

fn call<'a>(func: &'a Func, input: Vec<Item<'a>>, ctx: &Ctx<'a>) -> Vec<Item<'a>> {
    match func {
        Func::Where(cond) => input
            .into_iter()
            .filter(|item| truth(&eval(cond, std::slice::from_ref(item), ctx)) == Some(true))
            .collect(),
        Func::OfType(t) => input
            .into_iter()
            .filter(|i| item_type(i).is_some_and(|a| type_matches(a, t)))
            .collect(),
        Func::Resolve => input
            .into_iter()
            .filter_map(|item| match item {
                Item::Node(el) => resolve(el, ctx).map(Item::Node),
                Item::Str(s) => reference_type(s).map(|t| {
                    Item::Node(Element {
                        value: &NULL,
                        fhir_type: Some(t),
                        name: "",
                    })
                }),
                Item::Bool(_) => None,
            })
            .collect(),
        Func::Exists => vec![Item::Bool(!input.is_empty())],
        Func::Empty => vec![Item::Bool(input.is_empty())],
        Func::Not => match truth(&input) {
            Some(b) => vec![Item::Bool(!b)],
            None => Vec::new(),
        },
        Func::First => input.into_iter().take(1).collect(),
    }
}

/// Children of `el` named `name`, arrays flattened. For a choice element, when `name` is
/// absent the `name<Type>` keys are used and typed by their suffix.
fn member<'a>(el: &Element<'a>, name: &'a str, choice: bool, out: &mut Vec<Item<'a>>) {
    // The first step of a path names the resource type (`Patient.name`); it selects the
    // resource itself. `Resource`/`DomainResource` match any resource.
    if name.starts_with(|c: char| c.is_ascii_uppercase())
        && el.value.get("resourceType").is_some()
        && el
            .fhir_type
            .is_some_and(|t| t == name || name == "Resource" || name == "DomainResource")
    {
        out.push(Item::Node(*el));
        return;
    }
    let Value::Object(map) = el.value else { return };
    if let Some((key, v)) = map.get_key_value(name) {
        push_flat(v, None, key, out);
        return;
    }
    if !choice {
        return;
    }
    for (key, v) in map {
        if let Some(suffix) = key.strip_prefix(name)
            && suffix.starts_with(|c: char| c.is_ascii_uppercase())
            && let Some(t) = choice_suffix_type(suffix)
        {
            push_flat(v, Some(t), key, out);
        }
    }
}

fn push_flat<'a>(v: &'a Value, fhir_type: Option<&'a str>, name: &'a str, out: &mut Vec<Item<'a>>) {
    match v {
        Value::Array(items) => {
            // JSON nulls in arrays stand for absent primitive values (their `_x` sibling
            // carries an extension); they are not values.
            out.extend(items.iter().filter(|i| !i.is_null()).map(|value| {
                Item::Node(Element {
                    value,
                    fhir_type,
                    name,
                })
            }));
        }
        Value::Null => {}
        value => out.push(Item::Node(Element {
            value,
            fhir_type,
            name,
        })),
    }
}

/// `resolve()` without a server: a node typed by the reference's target type, keeping the
/// Reference JSON as its value. Targets whose type cannot be told (a `urn:uuid:` without
/// `Reference.type`, a search URL) resolve to nothing, as an unresolvable reference does.
fn resolve<'a>(el: Element<'a>, ctx: &Ctx<'a>) -> Option<Element<'a>> {
    let (text, declared) = match el.value {
        Value::String(s) => (Some(s.as_str()), None),
        Value::Object(map) => (
            map.get("reference").and_then(Value::as_str),
            map.get("type")
                .and_then(Value::as_str)
                .filter(|t| crate::resource_types::is_r4_resource_type(t)),
        ),
        _ => (None, None),
    };
    let from_text = text.and_then(|t| {
        if let Some(id) = t.strip_prefix('#') {
            contained_type(ctx.root, id)
        } else {
            reference_type(t)
        }
    });
    let t = from_text.or(declared)?;
    Some(Element {
        value: el.value,
        fhir_type: Some(t),
        name: el.name,
    })
}

fn contained_type<'a>(root: &'a Value, id: &str) -> Option<&'a str> {
    root.get("contained")?
        .as_array()?
        .iter()
        .find(|r| r.get("id").and_then(Value::as_str) == Some(id))?
        .get("resourceType")?
        .as_str()
}

/// The resource type of a literal reference: `Patient/1`, `Patient/1/_history/2`,
/// `https://server/fhir/Patient/1(/_history/2)`. Used by `resolve()` and by extraction.
pub fn reference_type(reference: &str) -> Option<&str> {
    parse_reference(reference).map(|(t, _)| t)
}

/// Splits a literal reference into `(type, id)`, with any `_history/n` dropped. `None` for
/// `urn:uuid:`/`urn:oid:`, `#contained`, conditional (`Patient?identifier=…`) and anything whose
/// second-last segment is not an R4 resource type.
pub fn parse_reference(reference: &str) -> Option<(&str, &str)> {
    if reference.starts_with('#') || reference.starts_with("urn:") || reference.contains('?') {
        return None;
    }
    let mut path = reference;
    if let Some(pos) = path.find("/_history/") {
        path = &path[..pos];
    }
    let mut parts = path.rsplit('/');
    let id = parts.next()?;
    let t = parts.next()?;
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    (id_ok && crate::resource_types::is_r4_resource_type(t)).then_some((t, id))
}

/// The FHIR type of an item: known types first, then what the JSON shape says for the cases
/// `ofType`/`is` meet on primitives.
fn item_type<'a>(item: &Item<'a>) -> Option<&'a str> {
    match item {
        Item::Bool(_) => Some("boolean"),
        Item::Str(_) => Some("string"),
        Item::Node(el) => el.fhir_type.or(match el.value {
            Value::Bool(_) => Some("boolean"),
            Value::Object(map) if map.contains_key("resourceType") => {
                map.get("resourceType").and_then(Value::as_str)
            }
            _ => None,
        }),
    }
}

/// Singleton truth value (FHIRPath singleton evaluation of collections).
fn truth(items: &[Item<'_>]) -> Option<bool> {
    match items {
        [] => None,
        [Item::Bool(b)] => Some(*b),
        [
            Item::Node(Element {
                value: Value::Bool(b),
                ..
            }),
        ] => Some(*b),
        // A single non-boolean item counts as true.
        [_] => Some(true),
        _ => None,
    }
}

/// `=` on singletons; `None` (empty result) when either side is empty or not a singleton.
fn equals(l: &[Item<'_>], r: &[Item<'_>]) -> Option<bool> {
    let ([a], [b]) = (l, r) else { return None };
    Some(match (primitive(a)?, primitive(b)?) {
        (Prim::Str(x), Prim::Str(y)) => x == y,
        (Prim::Bool(x), Prim::Bool(y)) => x == y,
        (Prim::Num(x), Prim::Num(y)) => x == y,
        _ => false,
    })
}

enum Prim<'a> {
    Str(&'a str),
    Bool(bool),
    Num(f64),
    Other,
}

fn primitive<'a>(item: &Item<'a>) -> Option<Prim<'a>> {
    Some(match item {
        Item::Bool(b) => Prim::Bool(*b),
        Item::Str(s) => Prim::Str(s),
        Item::Node(el) => match el.value {
            Value::String(s) => Prim::Str(s),
            Value::Bool(b) => Prim::Bool(*b),
            Value::Number(n) => Prim::Num(n.as_f64()?),
            _ => Prim::Other,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values<'a>(items: &[Item<'a>]) -> Vec<Value> {
        items
            .iter()
            .map(|i| match i {
                Item::Node(e) => e.value.clone(),
                Item::Bool(b) => json!(b),
                Item::Str(s) => json!(s),
            })
            .collect()
    }

    fn run(expr: &str, resource: &Value) -> Vec<Value> {
        let e = parse(expr).unwrap();
        values(&e.evaluate(resource))
    }

    #[test]
    fn navigates_and_flattens() {
        let p = json!({"resourceType": "Patient", "name": [{"given": ["A", "B"]}, {"given": ["C"], "family": "D"}]});
        assert_eq!(
            run("Patient.name.given", &p),
            vec![json!("A"), json!("B"), json!("C")]
        );
        assert_eq!(run("Patient.name.family", &p), vec![json!("D")]);
        assert!(
            run("Observation.name", &p).is_empty(),
            "wrong root type selects nothing"
        );
        assert_eq!(run("Resource.name.family", &p), vec![json!("D")]);
    }

    #[test]
    fn choice_types_and_of_type() {
        let o = json!({"resourceType": "Observation", "valueQuantity": {"value": 1}, "effectiveDateTime": "2020"});
        let e = parse("Observation.value").unwrap();
        let items = e.evaluate(&o);
        assert!(matches!(
            items.as_slice(),
            [Item::Node(Element {
                fhir_type: Some("Quantity"),
                name: "valueQuantity",
                ..
            })]
        ));
        assert_eq!(run("(Observation.value.ofType(Quantity))", &o).len(), 1);
        assert!(run("(Observation.value.ofType(CodeableConcept))", &o).is_empty());
        assert_eq!(run("Observation.value.as(Quantity)", &o).len(), 1);
        assert_eq!(
            run("(Observation.effective as dateTime)", &o),
            vec![json!("2020")]
        );
        assert!(run("Observation.effective.ofType(Period)", &o).is_empty());
        // A non-choice name never picks up a longer sibling.
        let c = json!({"resourceType": "Consent", "provision": {"dataPeriod": {"start": "2020"}}});
        assert!(run("Consent.provision.data", &c).is_empty());
    }

    #[test]
    fn where_resolve_is() {
        let m = json!({"resourceType": "MedicationRequest", "subject": {"reference": "Patient/1"}});
        assert_eq!(
            run("MedicationRequest.subject.where(resolve() is Patient)", &m).len(),
            1
        );
        let g = json!({"resourceType": "MedicationRequest", "subject": {"reference": "Group/1"}});
        assert!(run("MedicationRequest.subject.where(resolve() is Patient)", &g).is_empty());
        let abs = json!({"resourceType": "Condition", "subject": {"reference": "https://x.org/fhir/Patient/9/_history/2"}});
        assert_eq!(
            run("Condition.subject.where(resolve() is Patient)", &abs).len(),
            1
        );
        let typed = json!({"resourceType": "Condition", "subject": {"reference": "urn:uuid:0b7e", "type": "Patient"}});
        assert_eq!(
            run("Condition.subject.where(resolve() is Patient)", &typed).len(),
            1
        );
        let untyped =
            json!({"resourceType": "Condition", "subject": {"reference": "urn:uuid:0b7e"}});
        assert!(run("Condition.subject.where(resolve() is Patient)", &untyped).is_empty());
        let contained = json!({"resourceType": "Condition", "contained": [{"resourceType": "Patient", "id": "p"}], "subject": {"reference": "#p"}});
        assert_eq!(
            run("Condition.subject.where(resolve() is Patient)", &contained).len(),
            1
        );
    }

    #[test]
    fn where_equality_and_boolean_logic() {
        let p = json!({"resourceType": "Patient", "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}]});
        assert_eq!(
            run("Patient.telecom.where(system='email')", &p),
            vec![json!({"system": "email", "value": "a@b"})]
        );
        let deceased = "Patient.deceased.exists() and Patient.deceased != false";
        assert_eq!(run(deceased, &p), vec![json!(false)]);
        assert_eq!(
            run(
                deceased,
                &json!({"resourceType": "Patient", "deceasedBoolean": true})
            ),
            vec![json!(true)]
        );
        assert_eq!(
            run(
                deceased,
                &json!({"resourceType": "Patient", "deceasedBoolean": false})
            ),
            vec![json!(false)]
        );
        assert_eq!(
            run(
                deceased,
                &json!({"resourceType": "Patient", "deceasedDateTime": "2020"})
            ),
            vec![json!(true)]
        );
        assert_eq!(run("Patient.telecom.exists()", &p), vec![json!(true)]);
        assert_eq!(run("Patient.telecom.first().value", &p), vec![json!("1")]);
        assert_eq!(
            run("Patient.telecom.where(system='fax').empty()", &p),
            vec![json!(true)]
        );
    }

    #[test]
    fn union_and_parenthesised_terms() {
        let o = json!({"resourceType": "Observation", "valueCodeableConcept": {"text": "x"}, "code": {"text": "c"}});
        assert_eq!(
            run(
                "(Observation.value.ofType(string)) | (Observation.value.ofType(CodeableConcept)).text",
                &o
            ),
            vec![json!("x")]
        );
        assert_eq!(
            run("Observation.code.text | Observation.value.text", &o),
            vec![json!("c"), json!("x")]
        );
    }

    #[test]
    fn parse_errors_are_reported() {
        for bad in [
            "Patient.name.",
            "Patient.(",
            "Patient.name.foo()",
            "Patient.name = 'x",
            "Patient #",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.expression, bad);
        }
    }

    #[test]
    fn references_parse() {
        assert_eq!(parse_reference("Patient/1"), Some(("Patient", "1")));
        assert_eq!(
            parse_reference("http://a/b/Patient/1/_history/3"),
            Some(("Patient", "1"))
        );
        assert_eq!(parse_reference("Foo/1"), None);
        assert_eq!(parse_reference("urn:uuid:1234"), None);
        assert_eq!(parse_reference("#x"), None);
        assert_eq!(parse_reference("Patient?identifier=a|b"), None);
        assert_eq!(parse_reference("Patient/"), None);
    }

    #[test]
    fn sorted_tables() {
        assert!(CHOICE_ELEMENTS.windows(2).all(|w| w[0] < w[1]));
        assert!(CHOICE_SUFFIX_TYPES.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
