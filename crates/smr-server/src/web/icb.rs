//! `GET /app/icb`: the ICB dashboards (analysts and administrators). One `smr-app` call reads
//! the store once and answers every report the page shows — the four measures at the chosen
//! level, and for one unit (`code`, else the first ICB when the level is `icb`) the equity
//! splits and the value estimate — through the same disclosure control and audit as the
//! `/analytics/*` API. `GET /app/icb/measure.csv` downloads one measure's table.

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
    let month = params
        .month
        .filter(|m| !m.is_empty())
        .unwrap_or_else(this_month);
    let level = params
        .level
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "icb".into());
    let query = query_string(&[("month", &month), ("level", &level)]);

    // First the measures: the focus unit (for equity and value) may come from them.
    let measures = match state
        .app
        .analytics(
            &ctx,
            AnalyticsReport::Measures { measure: None },
            &level,
            &month,
            &query,
        )
        .await
    {
        Ok(answer) => answer.json,
        Err(e) => return app_error(&viewer, e),
    };
    let (levels, level_label) = icb::levels(&level);
    let reports: Vec<&Value> = measures["measures"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let panels = reports
        .iter()
        .map(|report| {
            let slug = report["measure"].as_str().unwrap_or_default();
            let href = format!(
                "/app/icb/measure.csv?{}",
                query_string(&[("month", &month), ("level", &level), ("measure", slug)])
            );
            icb::measure_panel(report, &level_label, href)
        })
        .collect();
    let focus = params.code.filter(|c| !c.is_empty()).or_else(|| {
        (level == "icb")
            .then(|| reports.first())
            .flatten()
            .and_then(|r| r["table"]["row_labels"][0].as_str())
            .map(str::to_owned)
    });
    let mut equity = Vec::new();
    let mut value = None;
    if let Some(code) = &focus {
        let splits = [
            (Dimension::Imd, "PGx adoption by deprivation (IMD quintile)"),
            (Dimension::Ethnicity, "PGx adoption by ethnic group"),
            (Dimension::AgeBand, "PGx adoption by age band"),
            (Dimension::Sex, "PGx adoption by sex"),
        ];
        let mut asked: Vec<AnalyticsReport> = splits
            .iter()
            .map(|(dimension, _)| AnalyticsReport::Equity {
                code: code.clone(),
                measure: Measure::PgxAdoption,
                dimension: *dimension,
            })
            .collect();
        asked.push(AnalyticsReport::Value {
            code: code.clone(),
            overrides: Vec::new(),
        });
        let focus_query = query_string(&[("month", &month), ("level", &level), ("code", code)]);
        match state
            .app
            .analytics_reports(&ctx, &asked, &level, &month, &focus_query)
            .await
        {
            Ok(answers) => {
                for (answer, (_, title)) in answers.iter().zip(splits.iter()) {
                    // A unit with nobody in the month has no split: the panel is left out.
                    if let Ok(answer) = answer {
                        equity.push(icb::equity_panel(&answer.json, title));
                    }
                }
                value = answers
                    .last()
                    .and_then(|a| a.as_ref().ok())
                    .map(|a| icb::value_panel(&a.json));
            }
            Err(e) => return app_error(&viewer, e),
        }
    }
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
