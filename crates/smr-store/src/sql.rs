//! A minimal SQL builder: text plus numbered (`$n`) bind values. Both engines accept `$n`
//! placeholders (SQLite as named parameters numbered in order of first use, which this builder
//! guarantees by numbering as it appends).

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    /// A text column that may be NULL.
    OptText(Option<String>),
    Int(i64),
    Real(f64),
}

#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let n = self.args.len();
        self.text.push('$');
        self.text.push_str(&n.to_string());
        self
    }

    pub fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.bind(Arg::Text(value.into()))
    }

    pub fn opt_text(&mut self, value: Option<String>) -> &mut Self {
        self.bind(Arg::OptText(value))
    }

    pub fn int(&mut self, value: i64) -> &mut Self {
        self.bind(Arg::Int(value))
    }

    pub fn real(&mut self, value: f64) -> &mut Self {
        self.bind(Arg::Real(value))
    }

    /// The query, ready to run. The text is built only from SMR's own fragments; every value
    /// that came from a request is a bind argument, never spliced into the text.
    pub fn into_query(self) -> Query<'static, Any, AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.text));
        for arg in self.args {
            q = match arg {
                Arg::Text(s) => q.bind(s),
                Arg::OptText(s) => q.bind(s),
                Arg::Int(i) => q.bind(i),
                Arg::Real(f) => q.bind(f),
            };
        }
        q
    }
}
