//! The REST API's error answer (`{"error": {"code", "message",
//! "problems"}}`, with the status code each `ServiceError` maps to), and
//! the audit line of an admin call, which names the answer's code.

use axum::Extension;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use sandport_config as config;
use sandport_core::service::ServiceError;
use sandport_core::uploads::UploadError;

use crate::audit;
use crate::auth::Caller;

/// An error answer.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    problems: Vec<config::Problem>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }
}

impl ApiError {
    pub(crate) fn with_problems(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        problems: Vec<config::Problem>,
    ) -> Self {
        ApiError {
            problems,
            ..ApiError::new(status, code, message)
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        match error {
            ServiceError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            ServiceError::AlreadyExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", message)
            }
            ServiceError::Invalid(problems) => ApiError {
                problems,
                ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_config", message)
            },
            ServiceError::Rejected(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", message)
            }
            ServiceError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            ServiceError::State(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                crate::internal::report(&message),
            ),
            ServiceError::ResourceExhausted(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "resource_exhausted",
                message,
            ),
            ServiceError::ShuttingDown => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message)
            }
            ServiceError::Unavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            ServiceError::Upload(error) => match error {
                UploadError::TooLarge { .. } => {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
                }
                UploadError::NotAComponent(_) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_a_component", message)
                }
                UploadError::Full { .. } => {
                    ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "store_full", message)
                }
                UploadError::NotFound(_) => {
                    ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
                }
                UploadError::InUse { .. } => ApiError::new(StatusCode::CONFLICT, "in_use", message),
                _ => ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    crate::internal::report(&message),
                ),
            },
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                rejection.body_text(),
            );
        }
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_json",
            rejection.body_text(),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            rejection.body_text(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problems = problems_json(&self.problems);
        let body =
            json!({"error": {"code": self.code, "message": self.message, "problems": problems}});
        (self.status, Json(body)).into_response()
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Writes the audit line of an admin call.
pub(crate) fn audited<T>(
    caller: Option<Extension<Caller>>,
    method: &str,
    id: &str,
    result: ApiResult<T>,
) -> ApiResult<T> {
    let who = caller.map_or_else(|| Caller::anonymous().name, |Extension(c)| c.name);
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    audit::record(&who, method, id, outcome);
    result
}

/// Config problems as the API answers them: `[{entry, key, message}]`.
pub(crate) fn problems_json(problems: &[config::Problem]) -> Value {
    problems
        .iter()
        .map(|p| json!({"entry": p.entry, "key": p.key, "message": p.message}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_error_has_its_status_and_code() {
        let cases = [
            (ServiceError::NotFound("a".into()), 404, "not_found"),
            (
                ServiceError::AlreadyExists("a".into()),
                409,
                "already_exists",
            ),
            (ServiceError::Invalid(Vec::new()), 422, "invalid_config"),
            (ServiceError::Conflict("changed".into()), 409, "conflict"),
            (ServiceError::ShuttingDown, 503, "shutting_down"),
            (
                ServiceError::Unavailable("etcd: connection refused".into()),
                503,
                "unavailable",
            ),
            (
                ServiceError::ResourceExhausted("full".into()),
                503,
                "resource_exhausted",
            ),
        ];
        for (error, status, code) in cases {
            let what = format!("{error:?}");
            let message = error.to_string();
            let answer = ApiError::from(error);
            assert_eq!(answer.status.as_u16(), status, "{what}");
            assert_eq!(answer.code, code, "{what}");
            assert_eq!(answer.message, message, "{what}");
        }
    }
}
