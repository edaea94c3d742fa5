//! Parsing a FHIR search query (`?name=value&…`) into typed criteria.
//!
//! What is understood follows http://hl7.org/fhir/R4/search.html. Anything SMR does not
//! support is reported: under strict handling (SMR's default, because silently ignoring a
//! misspelt filter could show a prescriber the wrong patient's medicines) it is an error; under
//! `Prefer: handling=lenient` it is dropped with a warning issue.

use crate::datetime;
use crate::index::SearchParamType;
use crate::outcome::{Issue, IssueCode, Severity};
use crate::search_params;

/// Default and ceiling for `_count`.
pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 1000;

/// Bounds on one search, so that a short URL cannot make a query the database spends minutes
/// on (each criterion is a subquery, each value a term of it): filter parameters per request
/// (repeats count, as each is AND-ed), values of one parameter name (OR-ed and AND-ed
/// together), `_include` plus `_revinclude`, and `_sort` keys. Exceeding one is a 400 naming it.
pub const MAX_PARAMS: usize = 32;
pub const MAX_VALUES: usize = 100;
pub const MAX_INCLUDES: usize = 16;
pub const MAX_SORT_KEYS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    Strict,
    Lenient,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub resource_type: String,
    /// All must hold (AND); each criterion's values are alternatives (OR).
    pub criteria: Vec<Criterion>,
    pub sort: Vec<SortKey>,
    pub count: usize,
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
    pub summary_count: bool,
    pub total: TotalMode,
    /// Opaque keyset cursor from a previous page's `next` link.
    pub cursor: Option<String>,
}

impl SearchRequest {
    pub fn new(resource_type: impl Into<String>) -> Self {
        SearchRequest {
            resource_type: resource_type.into(),
            criteria: Vec::new(),
            sort: Vec::new(),
            count: DEFAULT_COUNT,
            includes: Vec::new(),
            revincludes: Vec::new(),
            summary_count: false,
            total: TotalMode::IfKnown,
            cursor: None,
        }
    }
}

/// `_total` (R4 search, "Other Result Parameters"). Counting every match costs as much as the
/// matches are many, so an exact count is opt-in: by default a page's total is given only when
/// the first page already holds every match (no count needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalMode {
    /// `_total=none`: no total.
    None,
    /// No `_total`: a total only when it costs nothing (the first page holds every match).
    IfKnown,
    /// `_total=estimate`: an exact count when it stays under a bound, else none.
    Estimate,
    /// `_total=accurate`: always an exact count.
    Accurate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// `_id`, `_lastUpdated`, or a string/token/date/number/uri parameter of the type.
    pub param: String,
    pub kind: SortKind,
    pub descending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKind {
    Id,
    LastUpdated,
    String,
    Token,
    Date,
    Number,
    Uri,
}

/// `_include=Source:param[:Target]` / `_revinclude=Source:param[:Target]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub source_type: String,
    pub param: String,
    pub target_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    pub param: String,
    pub test: Test,
}

/// The test one criterion applies. Vectors are OR-ed alternatives.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `_id`.
    Id(Vec<String>),
    /// `_lastUpdated`.
    LastUpdated(Vec<DateTest>),
    /// `param:missing=true|false`.
    Missing(bool),
    Token {
        values: Vec<TokenTest>,
        negate: bool,
    },
    TokenText(Vec<String>),
    String {
        values: Vec<String>,
        mode: StringMode,
    },
    Date(Vec<DateTest>),
    Reference(Vec<ReferenceTest>),
    Number(Vec<NumberTest>),
    Quantity(Vec<QuantityTest>),
    Uri {
        values: Vec<String>,
        below: bool,
    },
    /// A chained parameter (`patient.identifier=…`, `subject:Patient.name=…`): the criterion's
    /// reference parameter points at a `target_type` resource that matches `inner`.
    Chain {
        target_type: String,
        inner: Box<Criterion>,
    },
    /// Reverse chaining (`_has:MedicationRequest:subject:status=active`): a `source_type`
    /// resource matching `inner` refers to this one through `reference_param`.
    Has {
        source_type: String,
        reference_param: String,
        inner: Box<Criterion>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMode {
    /// Default: case- and accent-insensitive starts-with.
    StartsWith,
    Exact,
    Contains,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemTest {
    /// `code`: any system.
    Any,
    /// `|code`: no system.
    None,
    /// `system|code` or `system|`.
    Is(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTest {
    pub system: SystemTest,
    /// `None` for `system|` (any code in the system).
    pub code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

impl Prefix {
    /// Splits a two-letter prefix off a date/number/quantity value.
    pub fn split(value: &str) -> (Prefix, &str) {
        let prefix = match value.get(..2) {
            Some("eq") => Prefix::Eq,
            Some("ne") => Prefix::Ne,
            Some("gt") => Prefix::Gt,
            Some("lt") => Prefix::Lt,
            Some("ge") => Prefix::Ge,
            Some("le") => Prefix::Le,
            Some("sa") => Prefix::Sa,
            Some("eb") => Prefix::Eb,
            Some("ap") => Prefix::Ap,
            _ => return (Prefix::Eq, value),
        };
        (prefix, &value[2..])
    }
}

/// A date test against the search value's implicit range `[low, high)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTest {
    pub prefix: Prefix,
    pub low: i64,
    pub high: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceTest {
    /// Required type, from `Type/id`, an absolute URL, or the `:Type` modifier.
    pub target_type: Option<String>,
    pub target_id: String,
}

/// A number test: the value's implicit range `[low, high)` from its significant figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberTest {
    pub prefix: Prefix,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuantityTest {
    pub number: NumberTest,
    pub system: Option<String>,
    pub code: Option<String>,
}

/// Parameters that shape the result rather than filter it, understood by the server.
const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_cursor",
    "_format",
    "_pretty",
];

/// The outcome of parsing: the request, plus warnings for what lenient handling dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub request: SearchRequest,
    pub warnings: Vec<Issue>,
}

/// Parses decoded query pairs for a search on `resource_type`.
pub fn parse(
    resource_type: &str,
    pairs: &[(String, String)],
    handling: Handling,
) -> Result<Parsed, Vec<Issue>> {
    check_limits(pairs).map_err(|issue| vec![issue])?;
    let mut request = SearchRequest::new(resource_type);
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (key, value) in pairs {
        let outcome = parse_pair(resource_type, key, value, &mut request);
        if let Err(issue) = outcome {
            match (handling, issue.code) {
                // Unsupported parameters are dropped under lenient handling; malformed values of
                // supported parameters are always errors, since no reading of them is safe.
                (Handling::Lenient, IssueCode::NotSupported) => warnings.push(Issue {
                    severity: Severity::Warning,
                    ..issue
                }),
                _ => errors.push(issue),
            }
        }
    }
    if errors.is_empty() {
        Ok(Parsed { request, warnings })
    } else {
        Err(errors)
    }
}

/// Refuses a search over the bounds above before anything is parsed, with one issue naming
/// the bound (not one issue per offending value).
fn check_limits(pairs: &[(String, String)]) -> Result<(), Issue> {
    let too_costly =
        |key: &str, message: String| Issue::error(IssueCode::TooCostly, message).at(key.to_owned());
    let mut params = 0;
    let mut values: Vec<(&str, usize)> = Vec::new();
    let mut includes: Vec<(&str, &str)> = Vec::new();
    let mut sort_keys = 0;
    for (key, value) in pairs {
        match key.as_str() {
            "_include" | "_revinclude" => {
                if includes.contains(&(key.as_str(), value.as_str())) {
                    return Err(invalid(key, format!("{key}={value} is repeated")));
                }
                includes.push((key, value));
                if includes.len() > MAX_INCLUDES {
                    return Err(too_costly(
                        key,
                        format!(
                            "at most {MAX_INCLUDES} _include and _revinclude parameters are allowed"
                        ),
                    ));
                }
            }
            "_sort" => {
                sort_keys += value.split(',').filter(|s| !s.is_empty()).count();
                if sort_keys > MAX_SORT_KEYS {
                    return Err(too_costly(
                        key,
                        format!("at most {MAX_SORT_KEYS} _sort keys are allowed"),
                    ));
                }
            }
            k if RESULT_PARAMS.contains(&k) => {}
            _ => {
                params += 1;
                if params > MAX_PARAMS {
                    return Err(too_costly(
                        key,
                        format!("at most {MAX_PARAMS} search parameters are allowed in one search"),
                    ));
                }
                let name = key.split(':').next().unwrap_or(key);
                let n = split_or(value).count();
                let total = match values.iter_mut().find(|(k, _)| *k == name) {
                    Some((_, count)) => {
                        *count += n;
                        *count
                    }
                    None => {
                        values.push((name, n));
                        n
                    }
                };
                if total > MAX_VALUES {
                    return Err(too_costly(
                        key,
                        format!(
                            "at most {MAX_VALUES} values of '{name}' are allowed in one search"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn parse_pair(
    resource_type: &str,
    key: &str,
    value: &str,
    request: &mut SearchRequest,
) -> Result<(), Issue> {
    if RESULT_PARAMS.contains(&key) {
        return parse_result_param(resource_type, key, value, request);
    }
    let criterion = if let Some(rest) = key.strip_prefix("_has:") {
        parse_has(resource_type, key, rest, value)?
    } else if key.contains('.') {
        parse_chain(resource_type, key, value)?
    } else {
        parse_criterion(resource_type, key, value)?
    };
    request.criteria.push(criterion);
    Ok(())
}

/// One plain (unchained) criterion on `resource_type`.
fn parse_criterion(resource_type: &str, key: &str, value: &str) -> Result<Criterion, Issue> {
    let (name, modifier) = match key.split_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (key, None),
    };
    if name == "_has" {
        return Err(invalid(key, "expected _has:Type:reference:parameter"));
    }
    if modifier == Some("missing") {
        let missing = parse_bool(key, value)?;
        if name == "_id" || name == "_lastUpdated" {
            // Every stored resource has an id and a lastUpdated.
            return Err(not_supported(
                key,
                ":missing is not meaningful on this parameter",
            ));
        }
        lookup_param(resource_type, name)?;
        return Ok(Criterion {
            param: name.to_owned(),
            test: Test::Missing(missing),
        });
    }
    let test = match name {
        "_id" => {
            no_modifier(key, modifier)?;
            Test::Id(split_or(value).map(unescape).collect())
        }
        "_lastUpdated" => {
            no_modifier(key, modifier)?;
            Test::LastUpdated(
                split_or(value)
                    .map(|v| parse_date_test(key, v))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => {
            let kind = lookup_param(resource_type, name)?;
            parse_typed(key, kind, modifier, value)?
        }
    };
    Ok(Criterion {
        param: name.to_owned(),
        test,
    })
}

/// `param.inner=value` or `param:Type.inner=value`: one level of chaining (R4 search,
/// "Chained parameters").
fn parse_chain(resource_type: &str, key: &str, value: &str) -> Result<Criterion, Issue> {
    let (head, inner_key) = key.split_once('.').unwrap_or((key, ""));
    if inner_key.is_empty() || inner_key.contains('.') || inner_key.starts_with("_has") {
        return Err(not_supported(
            key,
            "chained parameters are supported one level deep (param.name or param:Type.name)",
        ));
    }
    let (param, type_modifier) = match head.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (head, None),
    };
    let def = search_params::lookup(resource_type, param).ok_or_else(|| {
        not_supported(
            key,
            format!("unknown search parameter '{param}' for {resource_type}"),
        )
    })?;
    if def.kind != SearchParamType::Reference {
        return Err(invalid(
            key,
            format!("'{param}' is not a reference parameter, so it cannot be chained"),
        ));
    }
    let target_type = chain_target(key, def, type_modifier, inner_key)?;
    let inner = parse_criterion(&target_type, inner_key, value).map_err(|issue| issue.at(key))?;
    Ok(Criterion {
        param: param.to_owned(),
        test: Test::Chain {
            target_type,
            inner: Box::new(inner),
        },
    })
}

/// The type a chain looks into: the `:Type` modifier, else the one type SMR serves among those
/// the parameter may refer to (`MedicationRequest.subject` refers to Group or Patient; SMR's
/// Groups are export cohorts, never subjects, so a chain on it means Patient). With more than one served
/// target (`requester`: Practitioner, Organization, Patient, …) the chain is ambiguous and
/// the client must name the type.
/// The served types a chain without `:Type` may look into. SMR serves Group only as a Bulk
/// Data export cohort, never as the subject of a record entry, so where Patient is a target
/// Group is not: `subject.identifier` keeps meaning the Patient.
pub fn chain_targets(def: &search_params::SearchParamDef) -> Vec<&str> {
    let mut served: Vec<&str> = def
        .targets
        .iter()
        .map(String::as_str)
        .filter(|t| crate::resource_types::is_served(t))
        .collect();
    if served.contains(&"Patient") {
        served.retain(|t| *t != "Group");
    }
    served
}

fn chain_target(
    key: &str,
    def: &search_params::SearchParamDef,
    type_modifier: Option<&str>,
    inner_key: &str,
) -> Result<String, Issue> {
    let param = def.code.as_str();
    if let Some(ty) = type_modifier {
        if !def.targets.is_empty() && !def.targets.iter().any(|t| t == ty) {
            return Err(invalid(
                key,
                format!(
                    "'{param}' cannot refer to {ty} (it refers to {})",
                    def.targets.join(", ")
                ),
            ));
        }
        if !crate::resource_types::is_served(ty) {
            return Err(not_supported(key, format!("SMR does not serve {ty}")));
        }
        return Ok(ty.to_owned());
    }
    let served = chain_targets(def);
    match served.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(not_supported(
            key,
            format!("'{param}' refers to no type SMR serves, so it cannot be chained"),
        )),
        many => Err(invalid(
            key,
            format!(
                "'{param}' may refer to {}: name the type, e.g. {param}:{}.{inner_key}",
                many.join(", "),
                many[0]
            ),
        )),
    }
}

/// `_has:Type:reference:inner=value`: resources that a `Type` resource matching `inner` refers
/// to through its `reference` parameter (R4 search, "Reverse Chaining"). One level.
fn parse_has(resource_type: &str, key: &str, rest: &str, value: &str) -> Result<Criterion, Issue> {
    let mut parts = rest.splitn(3, ':');
    let (Some(source), Some(reference), Some(inner_key)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(key, "expected _has:Type:reference:parameter"));
    };
    if inner_key.is_empty() || inner_key.starts_with("_has") || inner_key.contains('.') {
        return Err(not_supported(
            key,
            "_has is supported one level deep, without chains inside",
        ));
    }
    if !crate::resource_types::is_served(source) {
        return Err(not_supported(key, format!("SMR does not serve {source}")));
    }
    let def = search_params::lookup(source, reference).ok_or_else(|| {
        not_supported(
            key,
            format!("unknown search parameter '{reference}' for {source}"),
        )
    })?;
    if def.kind != SearchParamType::Reference {
        return Err(invalid(
            key,
            format!("{source}:{reference} is not a reference parameter"),
        ));
    }
    if !def.targets.is_empty() && !def.targets.iter().any(|t| t == resource_type) {
        return Err(invalid(
            key,
            format!("{source}:{reference} cannot refer to {resource_type}"),
        ));
    }
    let inner = parse_criterion(source, inner_key, value).map_err(|issue| issue.at(key))?;
    Ok(Criterion {
        param: "_has".to_owned(),
        test: Test::Has {
            source_type: source.to_owned(),
            reference_param: reference.to_owned(),
            inner: Box::new(inner),
        },
    })
}

fn parse_typed(
    key: &str,
    kind: SearchParamType,
    modifier: Option<&str>,
    value: &str,
) -> Result<Test, Issue> {
    let values = || split_or(value).map(unescape);
    Ok(match kind {
        SearchParamType::Token => match modifier {
            None => Test::Token {
                values: values().map(|v| parse_token(&v)).collect(),
                negate: false,
            },
            Some("not") => Test::Token {
                values: values().map(|v| parse_token(&v)).collect(),
                negate: true,
            },
            Some("text") => Test::TokenText(
                values()
                    .map(|v| folded(key, &v))
                    .collect::<Result<_, _>>()?,
            ),
            Some(m) => return Err(unsupported_modifier(key, m)),
        },
        SearchParamType::String => {
            let mode = match modifier {
                None => StringMode::StartsWith,
                Some("exact") => StringMode::Exact,
                Some("contains") => StringMode::Contains,
                Some(m) => return Err(unsupported_modifier(key, m)),
            };
            let values = values()
                .map(|v| {
                    if mode == StringMode::Exact {
                        Ok(v)
                    } else {
                        folded(key, &v)
                    }
                })
                .collect::<Result<_, _>>()?;
            Test::String { values, mode }
        }
        SearchParamType::Date => {
            no_modifier(key, modifier)?;
            Test::Date(
                split_or(value)
                    .map(|v| parse_date_test(key, v))
                    .collect::<Result<_, _>>()?,
            )
        }
        SearchParamType::Reference => {
            let type_modifier = match modifier {
                None => None,
                Some(m) if crate::resource_types::is_r4_resource_type(m) => Some(m),
                Some(m) => return Err(unsupported_modifier(key, m)),
            };
            Test::Reference(
                values()
                    .map(|v| parse_reference(key, &v, type_modifier))
                    .collect::<Result<_, _>>()?,
            )
        }
        SearchParamType::Number => {
            no_modifier(key, modifier)?;
            Test::Number(
                split_or(value)
                    .map(|v| parse_number_test(key, v))
                    .collect::<Result<_, _>>()?,
            )
        }
        SearchParamType::Quantity => {
            no_modifier(key, modifier)?;
            Test::Quantity(
                split_or(value)
                    .map(|v| parse_quantity(key, v))
                    .collect::<Result<_, _>>()?,
            )
        }
        SearchParamType::Uri => {
            let below = match modifier {
                None => false,
                Some("below") => true,
                Some(m) => return Err(unsupported_modifier(key, m)),
            };
            let values: Vec<String> = values().collect();
            if below && values.iter().any(String::is_empty) {
                // Every URI starts with the empty string: the filter would be dropped in effect.
                return Err(invalid(key, ":below needs a non-empty URI"));
            }
            Test::Uri { values, below }
        }
        SearchParamType::Composite | SearchParamType::Special => {
            return Err(not_supported(
                key,
                "composite and special parameters are not supported",
            ));
        }
    })
}

fn parse_result_param(
    resource_type: &str,
    key: &str,
    value: &str,
    request: &mut SearchRequest,
) -> Result<(), Issue> {
    match key {
        "_count" => {
            let n: usize = value.parse().map_err(|_| {
                invalid(
                    key,
                    format!("_count must be a non-negative integer, got '{value}'"),
                )
            })?;
            request.count = n.min(MAX_COUNT);
        }
        "_sort" => {
            for item in value.split(',').filter(|s| !s.is_empty()) {
                let (descending, name) = match item.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, item),
                };
                let kind = match name {
                    "_id" => SortKind::Id,
                    "_lastUpdated" => SortKind::LastUpdated,
                    _ => match lookup_param(resource_type, name)? {
                        SearchParamType::String => SortKind::String,
                        SearchParamType::Token => SortKind::Token,
                        SearchParamType::Date => SortKind::Date,
                        SearchParamType::Number => SortKind::Number,
                        SearchParamType::Uri => SortKind::Uri,
                        _ => return Err(not_supported(key, format!("cannot sort by '{name}'"))),
                    },
                };
                request.sort.push(SortKey {
                    param: name.to_owned(),
                    kind,
                    descending,
                });
            }
        }
        "_include" | "_revinclude" => {
            let include = parse_include(key, value)?;
            if key == "_include" {
                if include.source_type != resource_type {
                    return Err(invalid(
                        key,
                        format!("_include source must be {resource_type}"),
                    ));
                }
                request.includes.push(include);
            } else {
                request.revincludes.push(include);
            }
        }
        // The other modes cut down each returned resource: the server applies them
        // (`summary::requested`). An unknown mode is invalid under any handling.
        "_summary" => match crate::summary::SummaryMode::parse(value) {
            Some(crate::summary::SummaryMode::Count) => request.summary_count = true,
            Some(_) => {}
            None => return Err(crate::summary::bad_mode(value)),
        },
        "_total" => {
            request.total = match value {
                "none" => TotalMode::None,
                "estimate" => TotalMode::Estimate,
                "accurate" => TotalMode::Accurate,
                other => {
                    return Err(invalid(
                        key,
                        format!("_total must be none, estimate or accurate, got '{other}'"),
                    ));
                }
            }
        }
        "_cursor" => request.cursor = Some(value.to_owned()),
        // Only JSON is served; `_format` asking for it (or `_pretty`) changes nothing.
        "_format" | "_pretty" => {}
        _ => {}
    }
    Ok(())
}

fn parse_include(key: &str, value: &str) -> Result<Include, Issue> {
    let mut parts = value.split(':');
    let (Some(source), Some(param)) = (parts.next(), parts.next()) else {
        return Err(invalid(
            key,
            format!("expected Type:param[:Target], got '{value}'"),
        ));
    };
    if param == "*" {
        return Err(not_supported(key, "wildcard includes are not supported"));
    }
    let def = search_params::lookup(source, param)
        .ok_or_else(|| not_supported(key, format!("unknown search parameter {source}:{param}")))?;
    if def.compiled().is_none() {
        // Bundle:composition / Bundle:message: a stored Bundle's entries are not indexed.
        return Err(not_supported(
            key,
            format!("{source}:{param} is not supported"),
        ));
    }
    if def.kind != SearchParamType::Reference {
        return Err(invalid(
            key,
            format!("{source}:{param} is not a reference parameter"),
        ));
    }
    let target_type = parts.next().map(str::to_owned);
    Ok(Include {
        source_type: source.to_owned(),
        param: param.to_owned(),
        target_type,
    })
}

/// A string search value folded as the index folds it. A value with nothing left to compare
/// (`!!!`, an emoji, an undecodable byte, a zero-width space, or nothing at all) would be a
/// "starts with the empty string" test that every row passes: the filter would silently
/// vanish and show everything, so it is refused instead.
fn folded(key: &str, value: &str) -> Result<String, Issue> {
    let folded = crate::text::normalize(value);
    if folded.is_empty() {
        return Err(invalid(
            key,
            format!(
                "search value '{}' has no letters or digits to search for",
                value.escape_default()
            ),
        ));
    }
    Ok(folded)
}

fn lookup_param(resource_type: &str, name: &str) -> Result<SearchParamType, Issue> {
    let def = search_params::lookup(resource_type, name).ok_or_else(|| {
        not_supported(
            name,
            format!("unknown search parameter '{name}' for {resource_type}"),
        )
    })?;
    // Bundle.composition/message (`Bundle.entry[0].resource`): a stored Bundle's entries are
    // not indexed, so such a filter could only ever match nothing.
    if def.compiled().is_none() && !matches!(name, "_id" | "_lastUpdated") {
        return Err(not_supported(
            name,
            format!("search parameter '{name}' is not supported for {resource_type}"),
        ));
    }
    Ok(def.kind)
}

/// Splits on unescaped commas (`\,` is a literal comma).
fn split_or(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => {
                parts.push(&value[start..i]);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    parts.push(&value[start.min(value.len())..]);
    parts.into_iter()
}

/// Removes FHIR search escapes (`\,` `\|` `\$` `\\`).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_token(value: &str) -> TokenTest {
    match value.split_once('|') {
        None => TokenTest {
            system: SystemTest::Any,
            code: Some(value.to_owned()),
        },
        Some(("", code)) => TokenTest {
            system: SystemTest::None,
            code: Some(code.to_owned()),
        },
        Some((system, "")) => TokenTest {
            system: SystemTest::Is(system.to_owned()),
            code: None,
        },
        Some((system, code)) => TokenTest {
            system: SystemTest::Is(system.to_owned()),
            code: Some(code.to_owned()),
        },
    }
}

fn parse_date_test(key: &str, value: &str) -> Result<DateTest, Issue> {
    let (prefix, text) = Prefix::split(value);
    let (low, high) = datetime::parse_range(text).map_err(|e| invalid(key, e.to_string()))?;
    Ok(DateTest { prefix, low, high })
}

fn parse_reference(
    key: &str,
    value: &str,
    type_modifier: Option<&str>,
) -> Result<ReferenceTest, Issue> {
    let trimmed = value.split("/_history/").next().unwrap_or(value);
    let segments: Vec<&str> = trimmed.rsplitn(3, '/').collect();
    let (target_type, target_id) = match segments.as_slice() {
        [id] => (type_modifier.map(str::to_owned), (*id).to_owned()),
        [id, ty, ..] if crate::resource_types::is_r4_resource_type(ty) => {
            if type_modifier.is_some_and(|m| m != *ty) {
                return Err(invalid(
                    key,
                    format!(
                        "reference '{value}' contradicts the :{} modifier",
                        type_modifier.unwrap_or_default()
                    ),
                ));
            }
            (Some((*ty).to_owned()), (*id).to_owned())
        }
        _ => return Err(invalid(key, format!("cannot read reference '{value}'"))),
    };
    if target_id.is_empty() {
        return Err(invalid(key, format!("reference '{value}' has no id")));
    }
    Ok(ReferenceTest {
        target_type,
        target_id,
    })
}

fn parse_number_test(key: &str, value: &str) -> Result<NumberTest, Issue> {
    let (prefix, text) = Prefix::split(value);
    let number: f64 = text
        .parse()
        .map_err(|_| invalid(key, format!("'{text}' is not a number")))?;
    if !number.is_finite() {
        return Err(invalid(key, format!("'{text}' is not a finite number")));
    }
    // Implicit precision: `100` matches [99.5, 100.5); `1.50` matches [1.495, 1.505).
    let decimals = text
        .split_once('.')
        .map(|(_, frac)| frac.chars().take_while(char::is_ascii_digit).count())
        .unwrap_or(0);
    let half = 0.5 * 10f64.powi(-(decimals as i32));
    Ok(NumberTest {
        prefix,
        value: number,
        low: number - half,
        high: number + half,
    })
}

fn parse_quantity(key: &str, value: &str) -> Result<QuantityTest, Issue> {
    let mut parts = value.splitn(3, '|');
    let number = parse_number_test(key, parts.next().unwrap_or_default())?;
    let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    let system = non_empty(parts.next());
    let code = non_empty(parts.next());
    Ok(QuantityTest {
        number,
        system,
        code,
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, Issue> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(
            key,
            format!("expected true or false, got '{value}'"),
        )),
    }
}

fn no_modifier(key: &str, modifier: Option<&str>) -> Result<(), Issue> {
    match modifier {
        None => Ok(()),
        Some(m) => Err(unsupported_modifier(key, m)),
    }
}

fn unsupported_modifier(key: &str, modifier: &str) -> Issue {
    not_supported(key, format!("modifier ':{modifier}' is not supported here"))
}

fn not_supported(key: &str, message: impl Into<String>) -> Issue {
    Issue::error(IssueCode::NotSupported, message).at(key.to_owned())
}

fn invalid(key: &str, message: impl Into<String>) -> Issue {
    Issue::error(IssueCode::Invalid, message).at(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_unescaped_commas_only() {
        let parts: Vec<_> = split_or(r"a,b\,c,").collect();
        assert_eq!(parts, vec!["a", r"b\,c", ""]);
        assert_eq!(unescape(r"b\,c"), "b,c");
    }

    #[test]
    fn token_forms() {
        assert_eq!(parse_token("123").system, SystemTest::Any);
        assert_eq!(parse_token("|123").system, SystemTest::None);
        let t = parse_token("http://snomed.info/sct|");
        assert_eq!(t.system, SystemTest::Is("http://snomed.info/sct".into()));
        assert_eq!(t.code, None);
    }

    #[test]
    fn number_precision() {
        let n = parse_number_test("x", "gt1.50").expect("number");
        assert_eq!(n.prefix, Prefix::Gt);
        assert!((n.low - 1.495).abs() < 1e-9 && (n.high - 1.505).abs() < 1e-9);
    }

    #[test]
    fn reference_forms() {
        let r = parse_reference("subject", "Patient/1", None).expect("ref");
        assert_eq!(
            (r.target_type.as_deref(), r.target_id.as_str()),
            (Some("Patient"), "1")
        );
        let r = parse_reference("subject", "http://x.org/fhir/Patient/1/_history/2", None)
            .expect("ref");
        assert_eq!(
            (r.target_type.as_deref(), r.target_id.as_str()),
            (Some("Patient"), "1")
        );
        let r = parse_reference("subject", "1", Some("Group")).expect("ref");
        assert_eq!(r.target_type.as_deref(), Some("Group"));
        assert!(parse_reference("subject", "Patient/1", Some("Group")).is_err());
    }

    fn one(resource_type: &str, key: &str, value: &str) -> Result<Criterion, Vec<Issue>> {
        parse(
            resource_type,
            &[(key.to_owned(), value.to_owned())],
            Handling::Strict,
        )
        .map(|p| p.request.criteria[0].clone())
    }

    #[test]
    fn chains_name_their_target_type() {
        let target = |c: Criterion| match c.test {
            Test::Chain { target_type, inner } => (target_type, inner.param),
            other => panic!("not a chain: {other:?}"),
        };
        let nhs = "https://fhir.nhs.uk/Id/nhs-number|9990000018";
        for key in [
            "patient.identifier",
            "subject.identifier",
            "subject:Patient.identifier",
        ] {
            let c = one("MedicationRequest", key, nhs).expect(key);
            assert_eq!(c.param, key.split(['.', ':']).next().unwrap_or_default());
            assert_eq!(target(c), ("Patient".into(), "identifier".into()));
        }
        let c = one("MedicationRequest", "medication.code", "123").expect("medication");
        assert_eq!(target(c), ("Medication".into(), "code".into()));
        let ambiguous = one("MedicationRequest", "requester.name", "x").expect_err("ambiguous");
        assert_eq!(ambiguous[0].code, IssueCode::Invalid);
        assert!(
            ambiguous[0].diagnostics.contains("requester:"),
            "{ambiguous:?}"
        );
        assert!(one("MedicationRequest", "requester:Practitioner.name", "x").is_ok());
        assert!(one("MedicationRequest", "subject:Medication.code", "x").is_err());
        assert!(one("MedicationRequest", "status.code", "x").is_err());
        assert!(one("MedicationRequest", "patient.organization.name", "x").is_err());
        assert!(one("MedicationRequest", "patient.colour", "x").is_err());
    }

    #[test]
    fn reverse_chains() {
        let c = one("Patient", "_has:MedicationRequest:subject:status", "active").expect("has");
        match c.test {
            Test::Has {
                source_type,
                reference_param,
                inner,
            } => {
                assert_eq!(
                    (source_type.as_str(), reference_param.as_str()),
                    ("MedicationRequest", "subject")
                );
                assert_eq!(inner.param, "status");
            }
            other => panic!("not _has: {other:?}"),
        }
        assert!(
            one(
                "Patient",
                "_has:MedicationRequest:subject:status:not",
                "active"
            )
            .is_ok()
        );
        assert!(one("Patient", "_has:MedicationRequest:subject", "active").is_err());
        assert!(one("Patient", "_has:MedicationRequest:status:status", "x").is_err());
        assert!(one("Medication", "_has:MedicationRequest:subject:status", "x").is_err());
        assert!(one("Patient", "_has:Basic:subject:code", "x").is_err());
    }
}
