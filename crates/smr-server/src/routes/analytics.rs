//! `/analytics/*`: the regional analytics (issue 12; docs/analytics.md), analysts and
//! administrators only, every figure disclosure-controlled, every question audited:
//!
//! - `GET /analytics/measures?month=YYYY-MM[&level=icb|sub-icb|practice][&measure=…]`
//! - `GET /analytics/equity?month=&level=&code=&measure=&dimension=imd|ethnicity|age-band|sex`
//! - `GET /analytics/result-to-change?month=[&level=]`
//! - `GET /analytics/override-reasons?month=&level=&code=`
//! - `GET /analytics/reconciliation-timeliness?month=[&level=]` (NICE QS120 statements 4 and 5)
//! - `GET /analytics/safety-equity?month=&level=&code=&dimension=` (every PINCER indicator and
//!   both QS120 statements for one unit, split for equity)
//! - `GET /analytics/value?month=&level=&code=[&parameter=name:low,central,high]…`
//!
//! JSON by default; `format=csv` gives the report's table as CSV (`[REDACTED]` for withheld
//! cells) where the report is one table. `level` defaults to `icb`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use smr_app::analytics::{AnalyticsReport, Dimension, Measure};

use crate::app::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;

use super::{one_param as one, query_params as params};

fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, ApiError> {
    one(params, name)?.ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

fn measure(params: &[(String, String)]) -> Result<Option<Measure>, ApiError> {
    one(params, "measure")?
        .map(|m| {
            Measure::parse(m).ok_or_else(|| {
                let known: Vec<&str> = Measure::ALL.iter().map(|m| m.slug()).collect();
                ApiError::bad_request(format!(
                    "unknown measure '{m}' (one of: {})",
                    known.join(", ")
                ))
            })
        })
        .transpose()
}

/// `name:low,central,high` (or `name:value` for all three).
fn parameter(text: &str) -> Result<(String, [f64; 3]), ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "parameter '{text}' must be name:low,central,high or name:value"
        ))
    };
    let (name, values) = text.split_once(':').ok_or_else(bad)?;
    let numbers: Vec<f64> = values
        .split(',')
        .map(|v| v.trim().parse::<f64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    match numbers.as_slice() {
        [v] => Ok((name.to_owned(), [*v, *v, *v])),
        [low, central, high] => Ok((name.to_owned(), [*low, *central, *high])),
        _ => Err(bad()),
    }
}

fn report(kind: &str, params: &[(String, String)]) -> Result<AnalyticsReport, ApiError> {
    Ok(match kind {
        "measures" => AnalyticsReport::Measures {
            measure: measure(params)?,
        },
        "equity" => {
            let dimension = required(params, "dimension")?;
            AnalyticsReport::Equity {
                code: required(params, "code")?.to_owned(),
                measure: measure(params)?
                    .ok_or_else(|| ApiError::bad_request("measure is required"))?,
                dimension: Dimension::parse(dimension).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unknown dimension '{dimension}' (one of: imd, ethnicity, age-band, sex)"
                    ))
                })?,
            }
        }
        "result-to-change" => AnalyticsReport::ResultToChange,
        "reconciliation-timeliness" => AnalyticsReport::ReconciliationTimeliness,
        "safety-equity" => {
            let dimension = required(params, "dimension")?;
            AnalyticsReport::SafetyEquity {
                code: required(params, "code")?.to_owned(),
                dimension: Dimension::parse(dimension).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unknown dimension '{dimension}' (one of: imd, ethnicity, age-band, sex)"
                    ))
                })?,
            }
        }
        "override-reasons" => AnalyticsReport::OverrideReasons {
            code: required(params, "code")?.to_owned(),
        },
        "value" => AnalyticsReport::Value {
            code: required(params, "code")?.to_owned(),
            overrides: params
                .iter()
                .filter(|(k, _)| k == "parameter")
                .map(|(_, v)| parameter(v))
                .collect::<Result<_, _>>()?,
        },
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                smr_fhir::IssueCode::NotFound,
                format!(
                    "no analytics report '{other}' (measures, equity, result-to-change, override-reasons, value)"
                ),
            ));
        }
    })
}

pub async fn report_handler(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(kind): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = params(raw.as_deref());
    let report = report(&kind, &params)?;
    let month = required(&params, "month")?;
    let level = one(&params, "level")?.unwrap_or("icb");
    let csv = match one(&params, "format")? {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be json or csv, not '{other}'"
            )));
        }
    };
    let answer = state
        .app
        .analytics(&ctx, report, level, month, raw.as_deref().unwrap_or(""))
        .await?;
    let (body, content_type) = if csv {
        let table = answer.csv.ok_or_else(|| {
            ApiError::bad_request(
                "this report is not one table: CSV needs a single measure= (or another report)",
            )
        })?;
        (table, "text/csv; charset=utf-8")
    } else {
        (answer.json.to_string(), "application/json")
    };
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
