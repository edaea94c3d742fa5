//! `GET /app/icb`: the ICB dashboards (analysts and administrators). One `smr-app` call reads
//! the store once and answers every report the page shows — the four measures at the chosen
//! level, and for one unit (`code`, else at ICB level the analyst's own organisation) the
//! equity splits and the value estimate — through the same disclosure control and audit as
//! the `/analytics/*` API. `GET /app/icb/measure.csv` downloads one measure's table.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use smr_app::analytics::{AnalyticsReport, Dimension, Measure};
use smr_web::icb::{self, IcbDashboard};

use super::page::{app_error, rendered, viewer};
use crate::app::AppState;
use crate::auth::Ctx;

#[derive(Debug, Deserialize)]
pub struct DashboardParams {
    month: Option<String>,
    level: Option<String>,
    code: Option<String>,
    /// The equity dimension of the safety page (`imd` by default).
    dimension: Option<String>,
}

impl DashboardParams {
    /// `month` (this month by default) and `level` (`icb` by default).
    fn month_and_level(&self) -> (String, String) {
        let month = self
            .month
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(this_month);
        let level = self
            .level
            .clone()
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "icb".into());
        (month, level)
    }

    /// The unit split for equity: the one asked for, else at ICB level the analyst's own
    /// organisation (for an ICB analyst, their ICB).
    fn focus(&self, level: &str, ctx: &smr_app::RequestContext) -> Option<String> {
        self.code.clone().filter(|c| !c.is_empty()).or_else(|| {
            (level == "icb")
                .then(|| ctx.principal.organisation.clone())
                .flatten()
        })
    }
}

/// This month, `YYYY-MM`.
fn this_month() -> String {
    let today = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}", today.year(), today.month() as u8)
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub async fn dashboard(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Query(params): Query<DashboardParams>,
) -> Response {
    let viewer = viewer(&ctx);
    let (month, level) = params.month_and_level();

    // The unit the equity and value panels describe.
    let focus = params.focus(&level, &ctx);
    let splits = [
        (Dimension::Imd, "PGx adoption by deprivation (IMD quintile)"),
        (Dimension::Ethnicity, "PGx adoption by ethnic group"),
        (Dimension::AgeBand, "PGx adoption by age band"),
        (Dimension::Sex, "PGx adoption by sex"),
    ];
    // One call, so the store is read once for every panel.
    let mut asked = vec![AnalyticsReport::Measures { measure: None }];
    if let Some(code) = &focus {
        asked.extend(splits.iter().map(|(dimension, _)| AnalyticsReport::Equity {
            code: code.clone(),
            measure: Measure::PgxAdoption,
            dimension: *dimension,
        }));
        asked.push(AnalyticsReport::Value {
            code: code.clone(),
            overrides: Vec::new(),
        });
    }
    let mut pairs = vec![("month", month.as_str()), ("level", level.as_str())];
    if let Some(code) = &focus {
        pairs.push(("code", code));
    }
    let query = query_string(&pairs);
    let answers = match state
        .app
        .analytics_reports(&ctx, &asked, &level, &month, &query)
        .await
    {
        Ok(answers) => answers,
        Err(e) => return app_error(&viewer, e),
    };
    let mut answers = answers.into_iter();
    let measures = match answers.next() {
        Some(Ok(answer)) => answer.json,
        Some(Err(e)) => return app_error(&viewer, e),
        None => Value::Null,
    };
    let (levels, level_label) = icb::levels(&level);
    let panels = measures["measures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|report| {
            let slug = report["measure"].as_str().unwrap_or_default();
            let href = format!(
                "/app/icb/measure.csv?{}",
                query_string(&[("month", &month), ("level", &level), ("measure", slug)])
            );
            icb::measure_panel(report, &level_label, href)
        })
        .collect();
    let rest: Vec<_> = answers.collect();
    // A focus unit that is not a unit at this level (or had nobody this month) has no
    // panels: they are left out, not an error.
    let equity: Vec<_> = rest
        .iter()
        .zip(splits.iter())
        .filter_map(|(answer, (_, title))| {
            answer
                .as_ref()
                .ok()
                .map(|a| icb::equity_panel(&a.json, title))
        })
        .collect();
    let value = rest
        .get(splits.len())
        .and_then(|a| a.as_ref().ok())
        .map(|a| icb::value_panel(&a.json));
    let focus = focus.filter(|_| !equity.is_empty() || value.is_some());
    let dashboard = IcbDashboard {
        month,
        levels,
        level_label,
        measures: panels,
        focus,
        equity,
        value,
        opted_out: icb::cell(&measures["optedOut"]),
    };
    rendered(StatusCode::OK, smr_web::pages::icb(&viewer, &dashboard))
}

#[derive(Debug, Deserialize)]
pub struct CsvParams {
    month: String,
    level: Option<String>,
    measure: String,
}

/// One measure's published table as a CSV download.
pub async fn measure_csv(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Query(params): Query<CsvParams>,
) -> Response {
    let viewer = viewer(&ctx);
    let level = params.level.unwrap_or_else(|| "icb".into());
    let Some(measure) = Measure::parse(&params.measure) else {
        return app_error(
            &viewer,
            smr_app::AppError::BadRequest(format!("unknown measure '{}'", params.measure)),
        );
    };
    let query = query_string(&[
        ("month", &params.month),
        ("level", &level),
        ("measure", &params.measure),
        ("format", "csv"),
    ]);
    let answer = match state
        .app
        .analytics(
            &ctx,
            AnalyticsReport::Measures {
                measure: Some(measure),
            },
            &level,
            &params.month,
            &query,
        )
        .await
    {
        Ok(answer) => answer,
        Err(e) => return app_error(&viewer, e),
    };
    let Some(csv) = answer.csv else {
        return app_error(
            &viewer,
            smr_app::AppError::BadRequest(format!(
                "no unit at level {level} has patients to count in {}",
                params.month
            )),
        );
    };
    let filename = format!("smr-{}-{}-{}.csv", params.measure, level, params.month).replace(
        |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'),
        "_",
    );
    let mut response = (StatusCode::OK, csv).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}

/// `GET /app/icb/safety`: PINCER indicators (`App::pincer_aggregates`) and reconciliation
/// timeliness against NICE QS120 (`App::analytics`), both disclosure-controlled and audited.
pub async fn safety(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Query(params): Query<DashboardParams>,
) -> Response {
    let viewer = viewer(&ctx);
    let (month, level) = params.month_and_level();
    let dimension_slug = params
        .dimension
        .clone()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "imd".into());
    let Some(dimension) = Dimension::parse(&dimension_slug) else {
        return app_error(
            &viewer,
            smr_app::AppError::BadRequest(format!("unknown dimension '{dimension_slug}'")),
        );
    };
    let focus = params.focus(&level, &ctx);
    let mut asked = vec![AnalyticsReport::ReconciliationTimeliness];
    if let Some(code) = &focus {
        asked.push(AnalyticsReport::SafetyEquity {
            code: code.clone(),
            dimension,
        });
    }
    let mut pairs = vec![
        ("month", month.as_str()),
        ("level", level.as_str()),
        ("dimension", dimension_slug.as_str()),
    ];
    if let Some(code) = &focus {
        pairs.push(("code", code));
    }
    let query = query_string(&pairs);
    // One read of the store for the timeliness and the equity split.
    let answers = match state
        .app
        .analytics_reports(&ctx, &asked, &level, &month, &query)
        .await
    {
        Ok(answers) => answers,
        Err(e) => return app_error(&viewer, e),
    };
    let mut answers = answers.into_iter();
    let timeliness = match answers.next() {
        Some(Ok(answer)) => icb::timeliness_panels(&answer.json),
        Some(Err(e)) => return app_error(&viewer, e),
        None => Vec::new(),
    };
    // A focus that is not a unit at this level has no split: the section is left out.
    let equity = answers
        .next()
        .and_then(Result::ok)
        .map(|answer| icb::equity_matrix(&answer.json));
    let pincer = match state.app.pincer_aggregates(&ctx, &level, &month).await {
        Ok(json) => json,
        Err(e) => return app_error(&viewer, e),
    };
    let (levels, level_label) = icb::levels(&level);
    let safety = icb::IcbSafety {
        month,
        levels,
        level_label,
        pincer: icb::pincer_panels(&pincer),
        timeliness,
        pincer_definitions: pincer["definitions"].as_str().map_or_else(
            || "PINCER".to_owned(),
            |d| format!("PINCER definitions, version {d}"),
        ),
        equity,
        dimensions: icb::dimensions(&dimension_slug),
    };
    rendered(StatusCode::OK, smr_web::pages::icb_safety(&viewer, &safety))
}
