//! `GET Subscription/{id}/$secret`: the key a subscription's rest-hook notifications are
//! signed with (`X-SMR-Signature: sha256=` + hex HMAC-SHA256(key, body)), as a Parameters
//! resource, for a caller who may change the subscription (see `smr-app`'s `subscriptions`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::app::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::http::fhir_json_response;

pub async fn secret(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let secret = state.app.subscription_secret(&ctx, &id).await?;
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "secret", "valueString": secret},
            {"name": "algorithm", "valueString": "HMAC-SHA256"},
            {"name": "header", "valueString": "X-SMR-Signature"}
        ]
    });
    Ok(fhir_json_response(StatusCode::OK, parameters.to_string()))
}
