//! Where the service's logs and traces go.
//!
//! Logs: text for people, or one JSON object a line for a log collector
//! (guest lines carry the connector's id as the `connector` field either
//! way), filtered by `RUST_LOG`.
//!
//! Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, the spans of API calls,
//! checks, guest calls and host calls are exported over OTLP/gRPC, with the
//! standard `OTEL_*` variables honoured (service name and resource,
//! sampler, batch sizes, headers, timeout). Those spans are at debug level,
//! asked for by the exporter alone, so they cost nothing without it.

use clap::ValueEnum;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flushes the trace exporter when dropped (at exit).
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: the last traces may not have been exported: {e}");
        }
    }
}

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// The OTLP pipeline, if configured. Needs a tokio runtime entered: the
/// gRPC client is made on it.
fn tracer_provider() -> Result<Option<SdkTracerProvider>, String> {
    if !otlp_configured() {
        return Ok(None);
    }
    if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
        && protocol != "grpc"
    {
        return Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL is `{protocol}`; this build exports traces over `grpc` only (a collector's port 4317)"
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| format!("cannot set up the OTLP exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("sandport");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Ok(Some(provider))
}

/// Installs the global subscriber: logs to stderr (`RUST_LOG` if set, else
/// `default_level`), and traces when OTLP is configured.
pub fn init(format: LogFormat, default_level: &str) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_filter(filter)
            .boxed(),
    };
    let (provider, problem) = match tracer_provider() {
        Ok(provider) => (provider, None),
        Err(problem) => (None, Some(problem)),
    };
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("sandport"))
            // Spans of this project's crates only, at any level; no events.
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() && meta.target().starts_with("sandport")
            }))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .init();
    if let Some(problem) = problem {
        tracing::warn!("traces are not exported: {problem}");
    } else if provider.is_some() {
        tracing::info!("exporting traces over OTLP");
    }
    Telemetry { traces: provider }
}
