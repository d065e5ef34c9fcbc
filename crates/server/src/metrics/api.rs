//! Counting and timing every API call, refused ones included: one tower
//! layer for both APIs, outside the guard. Labels stay bounded: the gRPC
//! method only when it is one this service has, the REST route template
//! (never the path as sent) and the verb from a fixed list.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of `sandport_api_request_duration_seconds`.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// Which API a call came through.
#[derive(Clone, Copy, Debug)]
pub enum Api {
    Grpc,
    Rest,
}

impl Api {
    fn as_str(self) -> &'static str {
        match self {
            Api::Grpc => "grpc",
            Api::Rest => "rest",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    api: &'static str,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    api: &'static str,
    method: String,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// API calls by method and code, and their latency.
pub struct ApiMetrics {
    requests: Family<CallLabels, Counter>,
    duration: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(histogram),
        }
    }
}

impl ApiMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "sandport_api_requests",
            "API calls answered, by API, method and code (refused calls included)",
            self.requests.clone(),
        );
        registry.register(
            "sandport_api_request_duration_seconds",
            "Time from a call's arrival to the start of its answer",
            self.duration.clone(),
        );
    }

    fn record(&self, api: Api, method: String, code: String, started: Instant) {
        let api = api.as_str();
        self.duration
            .get_or_create(&MethodLabels {
                api,
                method: method.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.requests
            .get_or_create(&CallLabels { api, method, code })
            .inc();
    }
}

/// The methods that are labels, by service; any other call is `other`,
/// so that a caller cannot mint label values.
const GRPC_METHODS: [(&str, &[&str]); 3] = [
    (
        "sandport.connectors.v1.ConnectorsService",
        &[
            "ListConnectors",
            "GetConnector",
            "RegisterConnector",
            "UpdateConnector",
            "RemoveConnector",
            "HealthCheck",
            "HealthCheckAll",
            "WatchHealth",
            "UploadComponent",
            "ListComponents",
            "DeleteComponent",
            "GetHistory",
            "TestAlertRoute",
        ],
    ),
    ("grpc.health.v1.Health", &["Check", "Watch"]),
    (
        "grpc.reflection.v1.ServerReflection",
        &["ServerReflectionInfo"],
    ),
];

fn grpc_method(path: &str) -> String {
    let known = path
        .trim_start_matches('/')
        .split_once('/')
        .and_then(|(service, method)| {
            GRPC_METHODS
                .iter()
                .find(|(name, _)| *name == service)
                .and_then(|(_, methods)| methods.iter().find(|m| **m == method))
        });
    known.map_or("other", |m| m).to_string()
}

fn grpc_code(headers: &http::HeaderMap) -> String {
    // A unary answer's status comes in the trailers, which are not read
    // here; a refusal or error before any message comes in the headers.
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    match tonic::Code::from(code) {
        tonic::Code::Ok => "OK".to_string(),
        other => format!("{other:?}"),
    }
}

fn rest_verb(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The span of one call, a child of the caller's trace when its headers
/// carry W3C trace context (`traceparent`). At debug level: only the trace
/// exporter asks for it.
fn call_span(api: Api, method: &str, path: &str, headers: &http::HeaderMap) -> tracing::Span {
    let span = tracing::debug_span!(
        "api call",
        api = api.as_str(),
        method,
        // REST paths name a connector at most; gRPC paths a method.
        url.path = path,
    );
    if !span.is_disabled() {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&Headers(headers))
        });
        let _ = span.set_parent(parent);
    }
    span
}

struct Headers<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The route template a REST call matched, handed outward on its answer.
#[derive(Clone, Debug)]
pub struct RouteTag(String);

/// A route layer: tags each answer with the route that made it.
pub async fn tag_route(path: MatchedPath, request: Request, next: Next) -> Response {
    let route = path.as_str().to_string();
    let mut response = next.run(request).await;
    response.extensions_mut().insert(RouteTag(route));
    response
}

/// Counts and times each call of the service it wraps.
#[derive(Clone)]
pub struct ApiMetricsLayer {
    metrics: Arc<ApiMetrics>,
    api: Api,
}

impl ApiMetricsLayer {
    pub fn new(metrics: Arc<ApiMetrics>, api: Api) -> Self {
        ApiMetricsLayer { metrics, api }
    }
}

impl<S> tower::Layer<S> for ApiMetricsLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    layer: ApiMetricsLayer,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Counted<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let ApiMetricsLayer { metrics, api } = self.layer.clone();
        let method = match api {
            Api::Grpc => grpc_method(request.uri().path()),
            Api::Rest => rest_verb(request.method()).to_string(),
        };
        let span = call_span(api, &method, request.uri().path(), request.headers());
        let answer = span.in_scope(|| self.inner.call(request));
        let answer = tracing::Instrument::instrument(answer, span);
        Box::pin(async move {
            let result = answer.await;
            if let Ok(response) = &result {
                let (method, code) = match api {
                    Api::Grpc => (method, grpc_code(response.headers())),
                    Api::Rest => {
                        let route = response
                            .extensions()
                            .get::<RouteTag>()
                            .map_or("unmatched", |tag| tag.0.as_str());
                        (
                            format!("{method} {route}"),
                            response.status().as_u16().to_string(),
                        )
                    }
                };
                metrics.record(api, method, code, started);
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_services_own_methods_become_labels() {
        assert_eq!(
            grpc_method("/sandport.connectors.v1.ConnectorsService/ListConnectors"),
            "ListConnectors"
        );
        assert_eq!(grpc_method("/grpc.health.v1.Health/Check"), "Check");
        for hostile in [
            "/evil.Service/Method",
            "/sandport.connectors.v1.ConnectorsService/",
            "/sandport.connectors.v1.ConnectorsService/Made1",
            "/sandport.connectors.v1.ConnectorsService/a\"b",
            "/",
            "",
        ] {
            assert_eq!(grpc_method(hostile), "other", "{hostile}");
        }
    }

    #[test]
    fn every_method_of_the_proto_is_a_label() {
        let proto = include_str!("../../../../proto/connectors.proto");
        let methods: Vec<&str> = proto
            .lines()
            .filter_map(|line| line.trim().strip_prefix("rpc "))
            .filter_map(|rest| rest.split('(').next())
            .collect();
        assert!(methods.len() > 5, "{methods:?}");
        for method in methods {
            assert_eq!(
                grpc_method(&format!(
                    "/sandport.connectors.v1.ConnectorsService/{method}"
                )),
                method,
                "add {method} to GRPC_METHODS"
            );
        }
    }

    #[test]
    fn a_status_in_the_headers_is_the_code_else_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(grpc_code(&headers), "OK");
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(grpc_code(&headers), "NotFound");
        headers.insert("grpc-status", http::HeaderValue::from_static("junk"));
        assert_eq!(grpc_code(&headers), "OK");
    }

    #[test]
    fn unknown_verbs_share_one_label() {
        let odd = http::Method::from_bytes(b"BREW").expect("a method");
        assert_eq!(rest_verb(&odd), "OTHER");
        assert_eq!(rest_verb(&http::Method::DELETE), "DELETE");
    }
}
