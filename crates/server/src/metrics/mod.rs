//! `GET /metrics`: the runtime's counts (its collector), the API's own
//! (calls by method and code, their latency), the build and the process,
//! in the Prometheus text format or, when the scraper asks for it,
//! OpenMetrics.
//!
//! - `api`: the tower layer that counts and times every API call.
//! - `process`: the standard `process_*` metrics, read from `/proc`.

mod api;
mod process;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::{prometheus_text, text as openmetrics_text};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use api::{Api, ApiMetrics, ApiMetricsLayer, RouteTag, tag_route};

/// Everything `/metrics` answers with.
pub struct Metrics {
    registry: Registry,
    api: Arc<ApiMetrics>,
}

impl Metrics {
    /// The registry for one node: `runtime` is the core's collector;
    /// `collectors` adds what else the service counts (config reloads).
    pub fn new(
        runtime: impl prometheus_client::collector::Collector,
        collectors: Vec<Box<dyn prometheus_client::collector::Collector>>,
    ) -> Self {
        let mut registry = Registry::default();
        let api = Arc::new(ApiMetrics::default());
        api.register(&mut registry);
        registry.register(
            "sandport_build",
            "The running build (always 1)",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(runtime));
        for collector in collectors {
            registry.register_collector(collector);
        }
        registry.register_collector(Box::new(process::ProcessCollector::new()));
        Metrics { registry, api }
    }

    /// The API call counters, for the layers in front of both APIs.
    pub fn api(&self) -> Arc<ApiMetrics> {
        self.api.clone()
    }

    /// The exposition, in OpenMetrics when `openmetrics`.
    pub fn render(&self, openmetrics: bool) -> Result<(&'static str, String), std::fmt::Error> {
        let mut text = String::new();
        if openmetrics {
            openmetrics_text::encode(&mut text, &self.registry)?;
            Ok((OPENMETRICS, text))
        } else {
            prometheus_text::encode(&mut text, &self.registry)?;
            Ok((prometheus_text::CONTENT_TYPE, text))
        }
    }
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether the scraper prefers OpenMetrics (Prometheus asks for it first).
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let kind = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            kind.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
}

async fn scrape(State(metrics): State<Arc<Metrics>>, headers: HeaderMap) -> Response {
    let openmetrics = wants_openmetrics(&headers);
    // Ten thousand connectors make a few megabytes of text: written off the
    // API thread, so other calls do not wait behind a scrape.
    let rendered = tokio::task::spawn_blocking(move || metrics.render(openmetrics)).await;
    match rendered {
        Ok(Ok((content_type, text))) => {
            ([(header::CONTENT_TYPE, content_type)], text).into_response()
        }
        Ok(Err(e)) => internal(&format!("writing the metrics failed: {e}")),
        Err(e) => internal(&format!("the metrics task failed: {e}")),
    }
}

fn internal(error: &str) -> Response {
    let message = crate::internal::report(&error);
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n")).into_response()
}

/// `GET /metrics`, to merge into a router.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().expect("a header value"));
        headers
    }

    #[test]
    fn openmetrics_only_when_the_scraper_asks_for_it() {
        assert!(!wants_openmetrics(&HeaderMap::new()));
        assert!(!wants_openmetrics(&accept("text/plain")));
        assert!(wants_openmetrics(&accept(
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(&accept(
            "application/openmetrics-text; q=0, text/plain"
        )));
    }
}
