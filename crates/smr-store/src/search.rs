//! FHIR search compiled to SQL over the index tables.
//!
//! Each criterion becomes `r.id IN (SELECT x.id FROM idx_<kind> x WHERE x.res_type = … AND
//! x.param = … AND <value tests OR-ed>)`: ids are unique within a type, and the form lets the
//! engine drive the query from the (selective) index rather than scan every resource.
//! Paging is by keyset: the `next` cursor carries the last row's sort values, so a page never
//! repeats or skips a resource because others were written meanwhile.

use serde_json::{Value, json};
use smr_fhir::index::SearchParamType;
use smr_fhir::query::{
    Criterion, DateTest, Include, NumberTest, Prefix, ReferenceTest, SearchRequest, SortKind,
    StringMode, SystemTest, Test, TokenTest, TotalMode,
};
use smr_fhir::search_params;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::access::{filter_visible, push_predicate};
use crate::model::{Access, SearchPage, StoredResource};
use crate::read::{RESOURCE_COLUMN_COUNT, RESOURCE_COLUMNS, read_many, resource_from_row};
use crate::sql::{Arg, Sql};
use crate::{Store, StoreError};

/// Upper bound for "starts with" as a range: every string with prefix p sorts in [p, p+MAX).
const MAX_CHAR: char = '\u{10FFFF}';

/// `_total=estimate` counts at most this many matches (a bounded cost); past it, no total.
const ESTIMATE_BOUND: usize = 10_000;

/// The number of matches, counting at most `bound + 1` when bounded.
async fn count(
    conn: &mut AnyConnection,
    req: &SearchRequest,
    access: &Access,
    bound: Option<usize>,
) -> Result<i64, StoreError> {
    let mut sql = match bound {
        None => Sql::new("SELECT COUNT(*) FROM resources r WHERE "),
        Some(_) => Sql::new("SELECT COUNT(*) FROM (SELECT 1 FROM resources r WHERE "),
    };
    push_filter(&mut sql, req, access)?;
    if let Some(bound) = bound {
        // A literal SMR computed, like the page's LIMIT.
        sql.push(&format!(" LIMIT {}) b", bound + 1));
    }
    let row = sql.into_query().fetch_one(&mut *conn).await?;
    Ok(row.get::<i64, _>(0))
}

impl Store {
    /// Runs a search; rows `access` does not allow are invisible to it (matches, total,
    /// paging and includes alike).
    pub async fn search(
        &self,
        req: &SearchRequest,
        access: &Access,
    ) -> Result<SearchPage, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let mut page = SearchPage::default();
        // `_summary=count` and `_count=0` ask for the count alone.
        let count_only = req.summary_count || req.count == 0;
        if count_only || req.total == TotalMode::Accurate {
            page.total = Some(count(&mut conn, req, access, None).await?);
        } else if req.total == TotalMode::Estimate {
            page.total = count(&mut conn, req, access, Some(ESTIMATE_BOUND))
                .await
                .map(|n| (n <= ESTIMATE_BOUND as i64).then_some(n))?;
        }
        if count_only {
            return Ok(page);
        }
        let (mut matches, sort_values) = run_page(&mut conn, req, req.count, access).await?;
        if matches.len() > req.count {
            matches.truncate(req.count);
            page.next_cursor = sort_values.get(req.count - 1).map(|v| v.to_string());
        } else if req.total == TotalMode::IfKnown && req.cursor.is_none() {
            // The first page holds every match: the total is known without counting.
            page.total = Some(matches.len() as i64);
        }
        let included = includes(&mut conn, req, &matches).await?;
        page.included = filter_visible(&mut conn, included, access).await?;
        page.matches = matches;
        Ok(page)
    }

    /// Search inside an open write transaction (conditional create), at most `limit` results.
    pub(crate) async fn search_in(
        &self,
        conn: &mut AnyConnection,
        req: &SearchRequest,
        limit: usize,
    ) -> Result<Vec<StoredResource>, StoreError> {
        // Conditional writes match on the whole store: a duplicate is a duplicate whoever
        // wrote the first copy.
        let (mut matches, _) = run_page(conn, req, limit, &Access::unrestricted()).await?;
        matches.truncate(limit);
        Ok(matches)
    }
}

/// Runs one page (`count + 1` rows, to know whether there is a next page) and returns the rows
/// with their sort keys, as JSON arrays ready to become cursors.
async fn run_page(
    conn: &mut AnyConnection,
    req: &SearchRequest,
    count: usize,
    access: &Access,
) -> Result<(Vec<StoredResource>, Vec<Value>), StoreError> {
    let sort = sort_columns(req);
    if let Some(driver) = page_driver(req) {
        return run_driven_page(conn, req, count, access, driver).await;
    }
    let mut sql = Sql::new("SELECT ");
    sql.push(RESOURCE_COLUMNS);
    for (n, _) in sort.iter().enumerate() {
        sql.push(&format!(", t.s{n}"));
    }
    sql.push(" FROM (SELECT r.patient_key, r.res_type, r.id, r.version");
    for (n, column) in sort.iter().enumerate() {
        sql.push(", ");
        column.push_expr(&mut sql);
        sql.push(&format!(" AS s{n}"));
    }
    sql.push(" FROM resources r WHERE ");
    push_filter(&mut sql, req, access)?;
    sql.push(
        ") t JOIN resource_versions v ON v.patient_key = t.patient_key AND v.res_type = t.res_type \
              AND v.id = t.id AND v.version = t.version",
    );
    if let Some(cursor) = &req.cursor {
        sql.push(" WHERE ");
        push_after_cursor(&mut sql, &sort, cursor)?;
    }
    sql.push(" ORDER BY ");
    for (n, column) in sort.iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.push(&format!(
            "t.s{n}{}",
            if column.descending { " DESC" } else { "" }
        ));
    }
    // A literal, not a bind: SQLite reads a bound LIMIT while preparing, and a statement whose
    // plan depends on a bind is re-prepared on every execution (measured: ~13% of a search).
    // `count` is a number SMR computed, never request text.
    sql.push(&format!(" LIMIT {}", count + 1));
    let rows = sql.into_query().fetch_all(&mut *conn).await?;
    let mut matches = Vec::with_capacity(rows.len());
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        matches.push(resource_from_row(row));
        keys.push(Value::Array(
            sort.iter()
                .enumerate()
                .map(|(n, c)| c.value(row, RESOURCE_COLUMN_COUNT + n))
                .collect(),
        ));
    }
    Ok((matches, keys))
}

/// The criterion a page can be read from in order: a single-valued reference test (the search
/// by patient, `subject=Patient/X`) when the page is in id order (the default). Its rows sit in
/// `idx_reference_target` (res_type, param, target_id, id, …) in id order, so the page query
/// walks that index, checks the other criteria row by row, and stops after page size + 1
/// matches: a page costs the same whether the patient has 50 entries or 100,000.
fn page_driver(req: &SearchRequest) -> Option<usize> {
    if req
        .sort
        .iter()
        .any(|k| k.kind != SortKind::Id || k.descending)
    {
        return None;
    }
    req.criteria
        .iter()
        .position(|c| matches!(&c.test, Test::Reference(values) if values.len() == 1))
}

/// The page of [`page_driver`]'s plan. `CROSS JOIN` tells SQLite to keep `idx_reference` as the
/// outer loop (the order the page needs); PostgreSQL plans the same under `LIMIT`.
async fn run_driven_page(
    conn: &mut AnyConnection,
    req: &SearchRequest,
    count: usize,
    access: &Access,
    driver: usize,
) -> Result<(Vec<StoredResource>, Vec<Value>), StoreError> {
    let Test::Reference(values) = &req.criteria[driver].test else {
        return Err(StoreError::Internal(
            "page driver is not a reference".into(),
        ));
    };
    let (param, target) = (req.criteria[driver].param.as_str(), &values[0]);
    let after = match &req.cursor {
        Some(cursor) => cursor_args(&sort_columns(req), cursor)?.into_iter().next(),
        None => None,
    };
    let mut limit = count + 1;
    loop {
        let mut sql = Sql::new("SELECT ");
        sql.push(RESOURCE_COLUMNS);
        sql.push(
            ", t.s0 FROM (SELECT r.patient_key, r.res_type, r.id, r.version, r.id AS s0 \
             FROM idx_reference d CROSS JOIN resources r WHERE d.res_type = ",
        );
        sql.text(req.resource_type.clone())
            .push(" AND d.param = ")
            .text(param)
            .push(" AND d.target_id = ")
            .text(target.target_id.clone());
        if let Some(ty) = &target.target_type {
            sql.push(" AND d.target_type = ").text(ty.clone());
        }
        if let Some(after) = &after {
            sql.push(" AND d.id > ").bind(after.clone());
        }
        sql.push(
            " AND r.patient_key = d.patient_key AND r.res_type = d.res_type AND r.id = d.id AND ",
        );
        push_filter_except(&mut sql, req, access, Some(driver))?;
        // Literal limits, as in `run_page`.
        sql.push(&format!(
            " ORDER BY d.id LIMIT {limit}) t JOIN resource_versions v ON v.patient_key = t.patient_key \
             AND v.res_type = t.res_type AND v.id = t.id AND v.version = t.version ORDER BY t.s0"
        ));
        let rows = sql.into_query().fetch_all(&mut *conn).await?;
        let fetched = rows.len();
        let mut matches: Vec<StoredResource> = Vec::with_capacity(fetched);
        for row in &rows {
            let resource = resource_from_row(row);
            // A resource that refers to the target twice under one parameter (two spellings
            // of the same reference) has two index rows: adjacent, as the page is in id order.
            if matches.last().is_none_or(|m| m.id != resource.id) {
                matches.push(resource);
            }
        }
        if fetched < limit || matches.len() > count {
            let keys = matches.iter().map(|m| json!([m.id])).collect();
            return Ok((matches, keys));
        }
        // Duplicates ate into the page: read further (rare; at most a few rounds).
        limit *= 2;
    }
}

/// One ORDER BY column: what it sorts on and which SQL type its values have.
struct SortColumn {
    kind: SortKind,
    param: String,
    descending: bool,
}

impl SortColumn {
    /// The per-resource sort value. Multi-valued parameters sort by their lowest value
    /// ascending and highest descending (R4 search, "_sort"). Missing values coalesce to a
    /// sentinel so keyset comparisons never meet NULL.
    fn push_expr(&self, sql: &mut Sql) {
        let agg = if self.descending { "MAX" } else { "MIN" };
        let (table, column, sentinel) = match self.kind {
            SortKind::Id => {
                sql.push("r.id");
                return;
            }
            SortKind::LastUpdated => {
                sql.push("r.last_updated");
                return;
            }
            SortKind::String => ("idx_string", "normalized", "''"),
            SortKind::Token => ("idx_token", "code", "''"),
            SortKind::Uri => ("idx_uri", "value", "''"),
            SortKind::Date => (
                "idx_date",
                if self.descending { "high" } else { "low" },
                "(-9223372036854775807 - 1)",
            ),
            SortKind::Number => ("idx_number", "value", "-1e308"),
        };
        sql.push(&format!(
            "COALESCE((SELECT {agg}(x.{column}) FROM {table} x WHERE x.patient_key = r.patient_key \
                           AND x.res_type = r.res_type AND x.id = r.id AND x.param = "
        ));
        sql.text(self.param.clone());
        sql.push(&format!("), {sentinel})"));
    }

    fn value(&self, row: &AnyRow, index: usize) -> Value {
        match self.kind {
            SortKind::Id | SortKind::String | SortKind::Token | SortKind::Uri => {
                json!(row.try_get::<String, _>(index).unwrap_or_default())
            }
            SortKind::LastUpdated | SortKind::Date => {
                json!(row.try_get::<i64, _>(index).unwrap_or_default())
            }
            SortKind::Number => json!(row.try_get::<f64, _>(index).unwrap_or_default()),
        }
    }

    fn arg(&self, value: &Value) -> Option<Arg> {
        match self.kind {
            SortKind::Id | SortKind::String | SortKind::Token | SortKind::Uri => {
                value.as_str().map(|s| Arg::Text(s.to_owned()))
            }
            SortKind::LastUpdated | SortKind::Date => value.as_i64().map(Arg::Int),
            SortKind::Number => value.as_f64().map(Arg::Real),
        }
    }
}

/// The requested sort, always ending in `_id` so the order is total (keyset paging needs it).
fn sort_columns(req: &SearchRequest) -> Vec<SortColumn> {
    let mut columns: Vec<SortColumn> = req
        .sort
        .iter()
        .map(|k| SortColumn {
            kind: k.kind,
            param: k.param.clone(),
            descending: k.descending,
        })
        .collect();
    if !columns.iter().any(|c| c.kind == SortKind::Id) {
        columns.push(SortColumn {
            kind: SortKind::Id,
            param: "_id".into(),
            descending: false,
        });
    }
    columns
}

/// The bind values of a cursor, one per sort column.
fn cursor_args(sort: &[SortColumn], cursor: &str) -> Result<Vec<Arg>, StoreError> {
    let bad = || StoreError::BadRequest(format!("invalid search cursor '{cursor}'"));
    let values: Vec<Value> = serde_json::from_str(cursor).map_err(|_| bad())?;
    if values.len() != sort.len() {
        return Err(bad());
    }
    sort.iter()
        .zip(&values)
        .map(|(c, v)| c.arg(v))
        .collect::<Option<_>>()
        .ok_or_else(bad)
}

/// `(s0, s1, …) > (c0, c1, …)` in the sort's own directions, spelt out as nested OR/AND.
fn push_after_cursor(sql: &mut Sql, sort: &[SortColumn], cursor: &str) -> Result<(), StoreError> {
    let args = cursor_args(sort, cursor)?;
    sql.push("(");
    for n in 0..sort.len() {
        if n > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        for (m, arg) in args.iter().enumerate().take(n) {
            sql.push(&format!("t.s{m} = "))
                .bind(arg.clone())
                .push(" AND ");
        }
        let op = if sort[n].descending { "<" } else { ">" };
        sql.push(&format!("t.s{n} {op} "))
            .bind(args[n].clone())
            .push(")");
    }
    sql.push(")");
    Ok(())
}

/// The WHERE clause over `resources r` for the request's type and criteria.
fn push_filter(sql: &mut Sql, req: &SearchRequest, access: &Access) -> Result<(), StoreError> {
    push_filter_except(sql, req, access, None)
}

/// [`push_filter`] for a page read from the index of criterion `driver`, which is left out.
/// The other criteria then test each row the walk meets (`EXISTS` on the row's own index
/// entries), rather than collecting every matching id of the whole table first.
fn push_filter_except(
    sql: &mut Sql,
    req: &SearchRequest,
    access: &Access,
    driver: Option<usize>,
) -> Result<(), StoreError> {
    sql.push("r.res_type = ")
        .text(req.resource_type.clone())
        .push(" AND r.deleted = 0");
    for (n, criterion) in req.criteria.iter().enumerate() {
        if Some(n) == driver {
            continue;
        }
        sql.push(" AND ");
        push_criterion(
            sql,
            "r",
            driver.is_some(),
            &req.resource_type,
            criterion,
            access,
        )?;
    }
    push_predicate(sql, access, "r", Some(&req.resource_type), true);
    Ok(())
}

/// One criterion on the `resources` rows aliased `alias` (of type `res_type`). `access` limits
/// the rows a chain looks through, so a chain never tells what a caller may not read.
fn push_criterion(
    sql: &mut Sql,
    alias: &str,
    row_by_row: bool,
    res_type: &str,
    criterion: &Criterion,
    access: &Access,
) -> Result<(), StoreError> {
    let param = criterion.param.as_str();
    let r = alias;
    match &criterion.test {
        Test::Chain { target_type, inner } => {
            // The reference leads to a resource of the target type that matches `inner` and
            // that the caller may read (access and consent, as for a search of that type).
            sql.push(&format!(
                "{r}.id IN (SELECT x.id FROM idx_reference x WHERE x.res_type = "
            ));
            sql.text(res_type)
                .push(" AND x.param = ")
                .text(param)
                .push(" AND x.target_type = ")
                .text(target_type.clone())
                .push(" AND x.target_id IN (SELECT c.id FROM resources c WHERE c.res_type = ")
                .text(target_type.clone())
                .push(" AND c.deleted = 0 AND ");
            push_criterion(sql, "c", false, target_type, inner, access)?;
            push_predicate(sql, access, "c", Some(target_type), true);
            sql.push("))");
        }
        Test::Has {
            source_type,
            reference_param,
            inner,
        } => {
            // Some resource of the source type that the caller may read, matching `inner`,
            // refers to this one: a hidden MedicationRequest never reveals its patient.
            sql.push(&format!(
                "{r}.id IN (SELECT x.target_id FROM idx_reference x WHERE x.res_type = "
            ));
            sql.text(source_type.clone())
                .push(" AND x.param = ")
                .text(reference_param.clone())
                .push(" AND x.target_type = ")
                .text(res_type)
                .push(" AND x.id IN (SELECT c.id FROM resources c WHERE c.res_type = ")
                .text(source_type.clone())
                .push(" AND c.deleted = 0 AND ");
            push_criterion(sql, "c", false, source_type, inner, access)?;
            push_predicate(sql, access, "c", Some(source_type), true);
            sql.push("))");
        }
        Test::Id(ids) => {
            sql.push(&format!("{r}.id IN ("));
            for (n, id) in ids.iter().enumerate() {
                if n > 0 {
                    sql.push(", ");
                }
                sql.text(id.clone());
            }
            sql.push(")");
        }
        Test::LastUpdated(tests) => {
            sql.push("(");
            for (n, t) in tests.iter().enumerate() {
                if n > 0 {
                    sql.push(" OR ");
                }
                // A lastUpdated instant is the one-microsecond range [t, t+1).
                push_date_test(
                    sql,
                    &format!("{r}.last_updated"),
                    &format!("({r}.last_updated + 1)"),
                    t,
                );
            }
            sql.push(")");
        }
        Test::Missing(missing) => {
            let table = table_for(res_type, param)?;
            sql.push(if *missing { "NOT EXISTS" } else { "EXISTS" });
            sql.push(&format!(" (SELECT 1 FROM {table} x WHERE x.patient_key = {r}.patient_key AND x.res_type = {r}.res_type AND x.id = {r}.id AND x.param = "));
            sql.text(param).push(")");
        }
        Test::Token { values, negate } => {
            push_index_filter(
                sql,
                (r, row_by_row),
                *negate,
                "idx_token",
                res_type,
                param,
                values,
                push_token_test,
            );
        }
        Test::TokenText(values) => {
            push_index_filter(
                sql,
                (r, row_by_row),
                false,
                "idx_token",
                res_type,
                param,
                values,
                |sql, v| push_starts_with(sql, "x.text", v),
            );
        }
        Test::String { values, mode } => {
            push_index_filter(
                sql,
                (r, row_by_row),
                false,
                "idx_string",
                res_type,
                param,
                values,
                |sql, v| match mode {
                    StringMode::StartsWith => push_starts_with(sql, "x.normalized", v),
                    StringMode::Exact => {
                        sql.push("x.exact = ").text(v.clone());
                    }
                    StringMode::Contains => {
                        sql.push("x.normalized LIKE ")
                            .text(format!("%{}%", escape_like(v)))
                            .push(" ESCAPE '\\'");
                    }
                },
            );
        }
        Test::Date(tests) => {
            push_index_filter(
                sql,
                (r, row_by_row),
                false,
                "idx_date",
                res_type,
                param,
                tests,
                |sql, t| push_date_test(sql, "x.low", "x.high", t),
            );
        }
        Test::Reference(values) => {
            push_index_filter(
                sql,
                (r, row_by_row),
                false,
                "idx_reference",
                res_type,
                param,
                values,
                push_reference_test,
            );
        }
        Test::Number(tests) => {
            push_index_filter(
                sql,
                (r, row_by_row),
                false,
                "idx_number",
                res_type,
                param,
                tests,
                |sql, t| push_number_test(sql, "x.value", t),
            );
        }
        Test::Quantity(tests) => {
            push_index_filter(
                sql,
                (r, row_by_row),
                false,
                "idx_quantity",
                res_type,
                param,
                tests,
                |sql, q| {
                    sql.push("(");
                    push_number_test(sql, "x.value", &q.number);
                    if let Some(system) = &q.system {
                        sql.push(" AND x.system = ").text(system.clone());
                    }
                    if let Some(code) = &q.code {
                        sql.push(" AND (x.code = ")
                            .text(code.clone())
                            .push(" OR x.unit = ")
                            .text(code.clone())
                            .push(")");
                    }
                    sql.push(")");
                },
            );
        }
        Test::Uri { values, below } => {
            push_index_filter(
                sql,
                (r, row_by_row),
                false,
                "idx_uri",
                res_type,
                param,
                values,
                |sql, v| {
                    if *below {
                        push_starts_with(sql, "x.value", v);
                    } else {
                        sql.push("x.value = ").text(v.clone());
                    }
                },
            );
        }
    }
    Ok(())
}

/// The index table a parameter lives in, from its definition.
fn table_for(res_type: &str, param: &str) -> Result<&'static str, StoreError> {
    let def = search_params::lookup(res_type, param)
        .ok_or_else(|| StoreError::BadRequest(format!("unknown search parameter '{param}'")))?;
    Ok(match def.kind {
        SearchParamType::Token => "idx_token",
        SearchParamType::String => "idx_string",
        SearchParamType::Date => "idx_date",
        SearchParamType::Reference => "idx_reference",
        SearchParamType::Number => "idx_number",
        SearchParamType::Quantity => "idx_quantity",
        SearchParamType::Uri => "idx_uri",
        SearchParamType::Composite | SearchParamType::Special => {
            return Err(StoreError::BadRequest(format!(
                "parameter '{param}' cannot be searched"
            )));
        }
    })
}

/// `r.id [NOT] IN (SELECT x.id FROM <table> x WHERE type, param AND (alternatives))`; with
/// `row_by_row`, `[NOT] EXISTS (SELECT 1 FROM <table> x WHERE x is the row's own entry AND param
/// AND (alternatives))` instead: a probe of the row's own index entries (the `_owner` index),
/// for a page that walks another index and must not collect the whole table's matches first.
#[allow(clippy::too_many_arguments)]
fn push_index_filter<T>(
    sql: &mut Sql,
    (alias, row_by_row): (&str, bool),
    negate: bool,
    table: &str,
    res_type: &str,
    param: &str,
    values: &[T],
    push: impl FnMut(&mut Sql, &T),
) {
    let not = if negate { "NOT " } else { "" };
    if row_by_row {
        sql.push(&format!(
            "{not}EXISTS (SELECT 1 FROM {table} x WHERE x.patient_key = {alias}.patient_key \
             AND x.res_type = {alias}.res_type AND x.id = {alias}.id AND x.param = "
        ));
        sql.text(param).push(" AND ");
    } else {
        sql.push(&format!("{alias}.id {not}IN "));
        open_subquery(sql, table, res_type, param);
    }
    push_any(sql, values, push);
    sql.push(")");
}

fn open_subquery(sql: &mut Sql, table: &str, res_type: &str, param: &str) {
    sql.push(&format!("(SELECT x.id FROM {table} x WHERE x.res_type = "));
    sql.text(res_type)
        .push(" AND x.param = ")
        .text(param)
        .push(" AND ");
}

/// `(a OR b OR …)` over the alternatives of one criterion.
fn push_any<T>(sql: &mut Sql, values: &[T], mut push: impl FnMut(&mut Sql, &T)) {
    sql.push("(");
    for (n, v) in values.iter().enumerate() {
        if n > 0 {
            sql.push(" OR ");
        }
        push(sql, v);
    }
    if values.is_empty() {
        sql.push("1 = 0");
    }
    sql.push(")");
}

fn push_token_test(sql: &mut Sql, t: &TokenTest) {
    sql.push("(");
    match &t.system {
        SystemTest::Any => {}
        SystemTest::None => {
            sql.push("x.system IS NULL AND ");
        }
        SystemTest::Is(system) => {
            sql.push("x.system = ").text(system.clone()).push(" AND ");
        }
    }
    match &t.code {
        Some(code) => sql.push("x.code = ").text(code.clone()),
        None => sql.push("1 = 1"),
    };
    sql.push(")");
}

fn push_starts_with(sql: &mut Sql, column: &str, prefix: &str) {
    let mut upper = prefix.to_owned();
    upper.push(MAX_CHAR);
    sql.push(&format!("({column} >= "))
        .text(prefix)
        .push(&format!(" AND {column} < "))
        .text(upper)
        .push(")");
}

fn escape_like(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn push_reference_test(sql: &mut Sql, t: &ReferenceTest) {
    sql.push("(x.target_id = ").text(t.target_id.clone());
    if let Some(ty) = &t.target_type {
        sql.push(" AND x.target_type = ").text(ty.clone());
    }
    sql.push(")");
}

/// Date prefixes exactly as R4 search defines them over ranges: the resource's `[low, high)`
/// against the search value's `[p.low, p.high)`.
fn push_date_test(sql: &mut Sql, low: &str, high: &str, t: &DateTest) {
    let contained = |sql: &mut Sql| {
        sql.push(&format!("({low} >= "))
            .int(t.low)
            .push(&format!(" AND {high} <= "))
            .int(t.high)
            .push(")");
    };
    match t.prefix {
        Prefix::Eq => contained(sql),
        Prefix::Ne => {
            sql.push("NOT ");
            contained(sql);
        }
        Prefix::Gt => {
            sql.push(&format!("{high} > ")).int(t.high);
        }
        Prefix::Lt => {
            sql.push(&format!("{low} < ")).int(t.low);
        }
        Prefix::Ge => {
            sql.push(&format!("({high} > ")).int(t.high).push(" OR ");
            contained(sql);
            sql.push(")");
        }
        Prefix::Le => {
            sql.push(&format!("({low} < ")).int(t.low).push(" OR ");
            contained(sql);
            sql.push(")");
        }
        Prefix::Sa => {
            sql.push(&format!("{low} >= ")).int(t.high);
        }
        Prefix::Eb => {
            sql.push(&format!("{high} <= ")).int(t.low);
        }
        Prefix::Ap => {
            // "Approximately": overlapping the value widened by 10% of its distance from the
            // value's own width, at least a day either side.
            let width = (t.high - t.low).max(86_400_000_000);
            let pad = width / 10 + 86_400_000_000;
            sql.push(&format!("({low} < "))
                .int(t.high.saturating_add(pad));
            sql.push(&format!(" AND {high} > "))
                .int(t.low.saturating_sub(pad))
                .push(")");
        }
    }
}

fn push_number_test(sql: &mut Sql, column: &str, t: &NumberTest) {
    match t.prefix {
        Prefix::Eq => {
            sql.push(&format!("({column} >= "))
                .real(t.low)
                .push(&format!(" AND {column} < "))
                .real(t.high)
                .push(")");
        }
        Prefix::Ne => {
            sql.push(&format!("({column} < "))
                .real(t.low)
                .push(&format!(" OR {column} >= "))
                .real(t.high)
                .push(")");
        }
        Prefix::Gt | Prefix::Sa => {
            sql.push(&format!("{column} > ")).real(t.value);
        }
        Prefix::Lt | Prefix::Eb => {
            sql.push(&format!("{column} < ")).real(t.value);
        }
        Prefix::Ge => {
            sql.push(&format!("{column} >= ")).real(t.value);
        }
        Prefix::Le => {
            sql.push(&format!("{column} <= ")).real(t.value);
        }
        Prefix::Ap => {
            let pad = (t.value.abs() * 0.1).max(t.high - t.low);
            sql.push(&format!("({column} >= ")).real(t.value - pad);
            sql.push(&format!(" AND {column} <= "))
                .real(t.value + pad)
                .push(")");
        }
    }
}

/// `_include` (what the matches refer to) and `_revinclude` (what refers to the matches).
async fn includes(
    conn: &mut AnyConnection,
    req: &SearchRequest,
    matches: &[StoredResource],
) -> Result<Vec<StoredResource>, StoreError> {
    if matches.is_empty() || (req.includes.is_empty() && req.revincludes.is_empty()) {
        return Ok(Vec::new());
    }
    let mut wanted: Vec<(String, String)> = Vec::new();
    for include in &req.includes {
        let mut sql = Sql::new(
            "SELECT DISTINCT x.target_type, x.target_id FROM idx_reference x WHERE x.res_type = ",
        );
        sql.text(include.source_type.clone())
            .push(" AND x.param = ")
            .text(include.param.clone());
        push_target_filter(&mut sql, include);
        sql.push(" AND x.id IN (");
        push_id_list(&mut sql, matches.iter().map(|m| m.id.as_str()));
        sql.push(")");
        for row in sql.into_query().fetch_all(&mut *conn).await? {
            if let (Some(ty), Some(id)) = (
                row.get::<Option<String>, _>(0),
                row.get::<Option<String>, _>(1),
            ) {
                wanted.push((ty, id));
            }
        }
    }
    for include in &req.revincludes {
        let mut sql =
            Sql::new("SELECT DISTINCT x.res_type, x.id FROM idx_reference x WHERE x.res_type = ");
        sql.text(include.source_type.clone())
            .push(" AND x.param = ")
            .text(include.param.clone());
        sql.push(" AND x.target_type = ")
            .text(req.resource_type.clone());
        sql.push(" AND x.target_id IN (");
        push_id_list(&mut sql, matches.iter().map(|m| m.id.as_str()));
        sql.push(")");
        for row in sql.into_query().fetch_all(&mut *conn).await? {
            wanted.push((row.get(0), row.get(1)));
        }
    }
    let matched: std::collections::HashSet<(&str, &str)> = matches
        .iter()
        .map(|m| (m.res_type.as_str(), m.id.as_str()))
        .collect();
    let mut seen = std::collections::HashSet::new();
    wanted.retain(|(ty, id)| {
        !matched.contains(&(ty.as_str(), id.as_str())) && seen.insert((ty.clone(), id.clone()))
    });
    read_many(conn, &wanted).await
}

fn push_target_filter(sql: &mut Sql, include: &Include) {
    if let Some(target) = &include.target_type {
        sql.push(" AND x.target_type = ").text(target.clone());
    }
}

fn push_id_list<'a>(sql: &mut Sql, ids: impl Iterator<Item = &'a str>) {
    for (n, id) in ids.enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.text(id);
    }
}
