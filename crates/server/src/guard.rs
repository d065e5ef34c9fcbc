//! The gate every API call passes before its handler: which role the call
//! needs, whether the caller has it ([`crate::auth`]), and whether the node
//! has room for one more call ([`crate::limits`]). One [`Guard`], two
//! adapters: a tower layer for gRPC and an axum middleware for REST.
//!
//! | call | needs |
//! |---|---|
//! | `grpc.health.v1.Health/*`, `GET /healthz`, `GET /readyz`, the status page's files (`GET /`, `/status/*`; no data) | nothing (open, never shed) |
//! | server reflection | `read` (the schema is public, but a network peer without a token learns nothing of the node) |
//! | List, Get, HealthCheck, HealthCheckAll, WatchHealth, ListComponents, GetHistory; REST `GET`/`HEAD` (the status page too) | `read` |
//! | `sandport.cluster.v1.PeerService/Recorded` (a cluster's nodes reading each other's history) | `read` |
//! | Register, Update, Remove; every other method or REST verb, including ones added later | `admin` |
//! | with `--public-status`: the status page, its summary and live feed, badges | nothing (still shed) |

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use crate::audit;
use crate::auth::{Access, Caller, Denied, Tokens, authorize};
use crate::limits::{Limits, RETRY_AFTER_SECS, Shed};
use crate::tls::PeerInfo;

/// The service name of `proto/connectors.proto`.
const CONNECTORS_SERVICE: &str = "sandport.connectors.v1.ConnectorsService";

/// What the call needs, from its gRPC path (`/package.Service/Method`).
pub fn grpc_access(path: &str) -> Access {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    match service {
        "grpc.health.v1.Health" => Access::Open,
        "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection" => {
            Access::Read
        }
        "sandport.cluster.v1.PeerService" => match method {
            "Recorded" => Access::Read,
            _ => Access::Admin,
        },
        CONNECTORS_SERVICE => match method {
            "ListConnectors" | "GetConnector" | "HealthCheck" | "HealthCheckAll"
            | "WatchHealth" | "ListComponents" | "GetHistory" => Access::Read,
            // Register, Update, Remove, and whatever is added later until
            // someone decides it only reads.
            _ => Access::Admin,
        },
        _ => Access::Admin,
    }
}

/// What the call needs, from its REST method and path.
pub fn rest_access(method: &Method, path: &str) -> Access {
    let static_page = path == "/" || path.starts_with("/status/");
    if path == "/healthz" || path == "/readyz" || (static_page && method == Method::GET) {
        // The page's files hold no data; without them a browser could not
        // even say that the data needs a token.
        Access::Open
    } else if method == Method::GET || method == Method::HEAD {
        Access::Read
    } else {
        Access::Admin
    }
}

/// The status page and what it reads: `GET /`, its assets, the summary,
/// the live feed and badges. With `--public-status` these need no token.
pub fn is_status_page(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && (path == "/"
            || path.starts_with("/status/")
            || path == "/api/v1/status"
            || path == "/api/v1/status/events"
            || (path.starts_with("/api/v1/connectors/") && path.ends_with("/badge.svg")))
}

/// Why a call did not reach its handler.
#[derive(Debug)]
pub enum Refusal {
    Denied(Denied),
    Overloaded { limit: usize },
}

/// A call let through: its caller (none for open calls) and its place
/// among the calls in flight, held until the handler's answer.
pub struct Admission {
    pub caller: Option<Caller>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Authentication (when a tokens file is given) and load shedding.
pub struct Guard {
    tokens: Option<Arc<Tokens>>,
    shed: Shed,
    limits: Limits,
    public_status: bool,
}

impl Guard {
    pub fn new(tokens: Option<Arc<Tokens>>, limits: Limits) -> Guard {
        Guard {
            tokens,
            shed: Shed::new(limits.max_concurrent_requests),
            limits,
            public_status: false,
        }
    }

    /// Lets the status page be read without a token (still shed under
    /// load, like every read).
    pub fn with_public_status(mut self, public: bool) -> Guard {
        self.public_status = public;
        self
    }

    /// A call anyone may make that still takes its place among the calls
    /// in flight.
    fn admit_anonymous(&self) -> Result<Admission, Refusal> {
        let permit = self.shed.try_enter().ok_or(Refusal::Overloaded {
            limit: self.limits.max_concurrent_requests,
        })?;
        Ok(Admission {
            caller: Some(Caller::anonymous()),
            _permit: Some(permit),
        })
    }

    /// Decides one call. `what` names it in the audit line of a refused
    /// admin call.
    pub fn admit(
        &self,
        access: Access,
        authorization: Option<&HeaderValue>,
        client_cn: Option<&str>,
        what: &str,
    ) -> Result<Admission, Refusal> {
        if access == Access::Open {
            return Ok(Admission {
                caller: None,
                _permit: None,
            });
        }
        let caller = match &self.tokens {
            None => Ok(Caller::anonymous()),
            Some(tokens) => {
                tokens.authenticate(authorization.map(HeaderValue::as_bytes), client_cn)
            }
        }
        .and_then(|caller| authorize(caller, access));
        let caller = match caller {
            Ok(caller) => caller,
            Err(denied) => {
                if access == Access::Admin {
                    let (who, outcome) = match &denied {
                        Denied::PermissionDenied { name, .. } => (&**name, "permission_denied"),
                        _ => ("-", "unauthenticated"),
                    };
                    audit::record(who, what, "-", outcome);
                }
                return Err(Refusal::Denied(denied));
            }
        };
        let permit = self.shed.try_enter().ok_or(Refusal::Overloaded {
            limit: self.limits.max_concurrent_requests,
        })?;
        Ok(Admission {
            caller: Some(caller),
            _permit: Some(permit),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

fn overloaded_message(limit: usize) -> String {
    format!("the API is at its limit of {limit} calls in flight; retry in {RETRY_AFTER_SECS}s")
}

/// The gRPC status of a refusal.
pub fn grpc_status(refusal: Refusal) -> tonic::Status {
    match refusal {
        Refusal::Denied(d @ Denied::Unauthenticated(_)) => {
            tonic::Status::unauthenticated(d.to_string())
        }
        Refusal::Denied(d) => tonic::Status::permission_denied(d.to_string()),
        Refusal::Overloaded { limit } => {
            tonic::Status::resource_exhausted(overloaded_message(limit))
        }
    }
}

/// The longest `grpc-timeout` a handler is shown: the server's own limit,
/// so that HealthCheckAll answers with what finished before the server
/// would cut the call off.
fn cap_grpc_timeout(headers: &mut http::HeaderMap, limit: Duration) {
    let millis = limit.as_millis().min(99_999_999);
    let shorter = headers
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .is_some_and(|client| client <= limit);
    if !shorter && let Ok(value) = HeaderValue::from_str(&format!("{millis}m")) {
        headers.insert("grpc-timeout", value);
    }
}

fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The guard as a tower layer over tonic's routes.
#[derive(Clone)]
pub struct GrpcGuardLayer {
    guard: Arc<Guard>,
}

impl GrpcGuardLayer {
    pub fn new(guard: Arc<Guard>) -> Self {
        GrpcGuardLayer { guard }
    }
}

impl<S> tower::Layer<S> for GrpcGuardLayer {
    type Service = GrpcGuard<S>;

    fn layer(&self, inner: S) -> GrpcGuard<S> {
        GrpcGuard {
            inner,
            guard: self.guard.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcGuard<S> {
    inner: S,
    guard: Arc<Guard>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for GrpcGuard<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let access = grpc_access(path);
        let what = path.rsplit('/').next().unwrap_or(path).to_string();
        let client_cn = request
            .extensions()
            .get::<PeerInfo>()
            .and_then(|p| p.client_cn.clone());
        let admitted = self.guard.admit(
            access,
            request.headers().get(header::AUTHORIZATION),
            client_cn.as_deref(),
            &what,
        );
        match admitted {
            Err(refusal) => Box::pin(std::future::ready(Ok(grpc_status(refusal).into_http()))),
            Ok(admission) => {
                if let Some(caller) = &admission.caller {
                    request.extensions_mut().insert(caller.clone());
                }
                cap_grpc_timeout(request.headers_mut(), self.guard.limits.request_timeout);
                // The clone that was made ready must serve this call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    let answer = inner.call(request).await;
                    drop(admission);
                    answer
                })
            }
        }
    }
}

/// The REST answer to a refusal, in the API's error format.
fn rest_refusal(refusal: Refusal) -> Response {
    use crate::rest_error::ApiError;
    match refusal {
        Refusal::Denied(d @ Denied::Unauthenticated(_)) => {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", d.to_string())
                    .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Refusal::Denied(d) => {
            ApiError::new(StatusCode::FORBIDDEN, "permission_denied", d.to_string()).into_response()
        }
        Refusal::Overloaded { limit } => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "resource_exhausted",
                overloaded_message(limit),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            response
        }
    }
}

/// The guard as axum middleware, with the per-call timeout.
pub async fn rest_guard(
    State(guard): State<Arc<Guard>>,
    mut request: Request,
    next: Next,
) -> Response {
    let access = rest_access(request.method(), request.uri().path());
    let what = format!("{} {}", request.method(), request.uri().path());
    let client_cn = request
        .extensions()
        .get::<ConnectInfo<PeerInfo>>()
        .and_then(|c| c.0.client_cn.clone());
    let public = guard.public_status && is_status_page(request.method(), request.uri().path());
    let admitted = if public {
        guard.admit_anonymous()
    } else {
        guard.admit(
            access,
            request.headers().get(header::AUTHORIZATION),
            client_cn.as_deref(),
            &what,
        )
    };
    let admission = match admitted {
        Ok(admission) => admission,
        Err(refusal) => return rest_refusal(refusal),
    };
    if let Some(caller) = &admission.caller {
        request.extensions_mut().insert(caller.clone());
    }
    let timeout = guard.limits.request_timeout;
    let answer = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(answer) => answer,
        Err(_) => crate::rest_error::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the call took longer than the server's limit of {timeout:?}"),
        )
        .into_response(),
    };
    drop(admission);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::ConnectorsServiceServer;

    #[test]
    fn grpc_methods_need_read_admin_or_nothing() {
        assert_eq!(
            <ConnectorsServiceServer<crate::grpc::GrpcApi> as tonic::server::NamedService>::NAME,
            CONNECTORS_SERVICE
        );
        let cases = [
            ("/grpc.health.v1.Health/Check", Access::Open),
            ("/grpc.health.v1.Health/Watch", Access::Open),
            (
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                Access::Read,
            ),
            (
                "/sandport.connectors.v1.ConnectorsService/ListConnectors",
                Access::Read,
            ),
            (
                "/sandport.connectors.v1.ConnectorsService/WatchHealth",
                Access::Read,
            ),
            (
                "/sandport.connectors.v1.ConnectorsService/HealthCheckAll",
                Access::Read,
            ),
            (
                "/sandport.connectors.v1.ConnectorsService/RegisterConnector",
                Access::Admin,
            ),
            (
                "/sandport.connectors.v1.ConnectorsService/RemoveConnector",
                Access::Admin,
            ),
            (
                "/sandport.connectors.v1.ConnectorsService/UploadComponent",
                Access::Admin,
            ),
            (
                "/sandport.connectors.v1.ConnectorsService/DeleteComponent",
                Access::Admin,
            ),
            (
                "/sandport.connectors.v1.ConnectorsService/ListComponents",
                Access::Read,
            ),
            ("/sandport.cluster.v1.PeerService/Recorded", Access::Read),
            ("/sandport.cluster.v1.PeerService/Later", Access::Admin),
            ("/other.Service/Anything", Access::Admin),
        ];
        for (path, access) in cases {
            assert_eq!(grpc_access(path), access, "{path}");
        }
    }

    #[test]
    fn rest_reads_need_read_and_everything_else_admin() {
        assert_eq!(rest_access(&Method::GET, "/healthz"), Access::Open);
        assert_eq!(rest_access(&Method::GET, "/readyz"), Access::Open);
        assert_eq!(rest_access(&Method::GET, "/"), Access::Open);
        assert_eq!(rest_access(&Method::GET, "/status/app.js"), Access::Open);
        assert_eq!(rest_access(&Method::GET, "/api/v1/status"), Access::Read);
        assert_eq!(rest_access(&Method::POST, "/"), Access::Admin);
        assert_eq!(
            rest_access(&Method::GET, "/api/v1/connectors"),
            Access::Read
        );
        assert_eq!(
            rest_access(&Method::POST, "/api/v1/connectors"),
            Access::Admin
        );
        assert_eq!(
            rest_access(&Method::DELETE, "/api/v1/connectors/x"),
            Access::Admin
        );
        assert_eq!(
            rest_access(&Method::OPTIONS, "/api/v1/connectors"),
            Access::Admin
        );
    }

    #[test]
    fn only_the_status_page_and_what_it_reads_can_be_public() {
        for path in [
            "/",
            "/status/app.js",
            "/api/v1/status",
            "/api/v1/status/events",
            "/api/v1/connectors/web/badge.svg",
        ] {
            assert!(is_status_page(&Method::GET, path), "{path}");
            assert!(!is_status_page(&Method::POST, path), "POST {path}");
        }
        for path in [
            "/api/v1/connectors",
            "/api/v1/connectors/web",
            "/api/v1/connectors/web/history",
            "/api/v1/connectors/web/uptime",
            "/api/v1/config/status",
            "/metrics",
            "/api/v1/statusx",
        ] {
            assert!(!is_status_page(&Method::GET, path), "{path}");
        }
    }

    #[test]
    fn handlers_see_the_servers_limit_as_the_longest_deadline() {
        let mut headers = http::HeaderMap::new();
        cap_grpc_timeout(&mut headers, Duration::from_secs(30));
        assert_eq!(headers["grpc-timeout"], "30000m");
        headers.insert("grpc-timeout", HeaderValue::from_static("60S"));
        cap_grpc_timeout(&mut headers, Duration::from_secs(30));
        assert_eq!(headers["grpc-timeout"], "30000m");
        headers.insert("grpc-timeout", HeaderValue::from_static("500m"));
        cap_grpc_timeout(&mut headers, Duration::from_secs(30));
        assert_eq!(headers["grpc-timeout"], "500m");
    }
}
