//! Traces over OTLP: a receiver in the test (the OTLP/gRPC trace service,
//! decoding what it gets) stands in for an OpenTelemetry Collector.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::support::{Server, Target, temp_dir, write};

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
    service_names: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            if let Some(resource) = &resource_spans.resource {
                for attribute in &resource.attributes {
                    if attribute.key == "service.name"
                        && let Some(Value::StringValue(name)) =
                            attribute.value.as_ref().and_then(|v| v.value.clone())
                    {
                        self.service_names.lock().expect("names").push(name);
                    }
                }
            }
            for scope in resource_spans.scope_spans {
                self.spans.lock().expect("spans").extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.clone())
}

fn text(span: &Span, key: &str) -> Option<String> {
    match attribute(span, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

#[tokio::test]
async fn a_checks_trace_reaches_an_otlp_receiver_under_the_callers_trace() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let serving = receiver.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(serving))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });

    let target = Target::start(200);
    let dir = temp_dir("traces");
    let config = write(
        &dir,
        "connectors.yaml",
        &format!(
            "connectors:\n  - {{id: traced, component: http, host: 127.0.0.1, port: {}, auth: {{type: bearer, token: s3cret-token}}, health_check: {{interval: 1h}}}}\n",
            target.port
        ),
    );
    let endpoint_path = std::path::PathBuf::from(&endpoint);
    let schedule_delay = std::path::PathBuf::from("100");
    let server = Server::start_env(
        &config,
        &dir.join("data"),
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint_path.as_path()),
            ("OTEL_BSP_SCHEDULE_DELAY", schedule_delay.as_path()),
        ],
    );

    // The caller's trace, as W3C trace context.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let answer = reqwest::Client::new()
        .get(format!("{}/api/v1/connectors/traced/health", server.http))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .send()
        .await
        .expect("a live check");
    assert_eq!(answer.status(), 200);

    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans: Vec<Span> = receiver
            .spans
            .lock()
            .expect("spans")
            .iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect();
        if ["api call", "check", "guest call", "http request"]
            .iter()
            .all(|name| spans.iter().any(|s| s.name == *name))
        {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "the trace did not arrive whole: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no `{name}` span"))
    };
    let (api, check, guest, http) = (
        named("api call"),
        named("check"),
        named("guest call"),
        named("http request"),
    );
    assert_eq!(
        hex(&api.parent_span_id),
        caller_span,
        "under the caller's span"
    );
    assert_eq!(
        check.parent_span_id, api.span_id,
        "the check is the call's child"
    );
    assert_eq!(guest.parent_span_id, check.span_id);
    assert_eq!(
        http.parent_span_id, guest.span_id,
        "the host call is the guest call's child"
    );
    assert_eq!(text(check, "connector").as_deref(), Some("traced"));
    assert_eq!(text(check, "status").as_deref(), Some("healthy"));
    assert_eq!(
        text(http, "url.full"),
        Some(format!("http://127.0.0.1:{}/", target.port))
    );
    let status = match attribute(http, "http.response.status_code") {
        Some(Value::IntValue(n)) => n.to_string(),
        Some(Value::StringValue(s)) => s,
        other => panic!("no status code: {other:?}"),
    };
    assert_eq!(status, "200");
    assert!(
        receiver
            .service_names
            .lock()
            .expect("names")
            .iter()
            .all(|n| n == "sandport")
    );
    // Headers, and so credentials, are never recorded.
    let everything = format!("{:?}", receiver.spans.lock().expect("spans"));
    assert!(
        !everything.contains("s3cret-token"),
        "a secret reached a span"
    );
    assert!(!everything.to_lowercase().contains("authorization"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
