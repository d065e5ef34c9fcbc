//! `GET /api/v1/config/status` (what the last reload of the config file
//! did) and `POST /api/v1/config/reload` (reload it now, as SIGHUP does).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use sandport_core::service::{ReloadReport, Service};

use crate::auth::Caller;
use crate::rest_error::{ApiError, audited, problems_json};

fn report_json(report: &ReloadReport) -> Value {
    let ReloadReport {
        at,
        applied,
        added,
        removed,
        replaced,
        unchanged,
        skipped,
        problems,
    } = report;
    json!({
        "at": humantime::format_rfc3339_millis(*at).to_string(),
        "applied": applied,
        "added": added,
        "removed": removed,
        "replaced": replaced,
        "unchanged": unchanged,
        "skipped": skipped,
        "problems": problems_json(problems),
    })
}

pub(crate) async fn status(State(service): State<Arc<Service>>) -> Json<Value> {
    Json(json!({
        "reloadable": service.config_path().is_some(),
        "last_reload": service.last_reload().as_ref().map(report_json),
    }))
}

/// Reloads now: `200` with the report when the file was applied (entries
/// that could not be started are in its `problems`), `422` with the file's
/// problems when it was not, and nothing changed.
pub(crate) async fn reload(
    State(service): State<Arc<Service>>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<Value>, ApiError> {
    let result = match service.reload_config().await {
        Ok(report) if report.applied => Ok(Json(report_json(&report))),
        Ok(report) => Err(ApiError::with_problems(
            StatusCode::UNPROCESSABLE_ENTITY,
            "config_problems",
            "the config file has problems, so nothing was changed",
            report.problems,
        )),
        Err(e) => Err(ApiError::from(e)),
    };
    audited(caller, "POST /api/v1/config/reload", "", result)
}
