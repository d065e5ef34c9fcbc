//! `sandport history ID`: a connector's recorded checks, as a table or JSON.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use sandport::client::{Found, HistoryRange};
use sandport_core::health::format_latency;
use sandport_history::{Rollup, StoredPoint};
use serde_json::{Value, json};

use crate::Output;

#[derive(Args)]
pub struct HistoryArgs {
    /// The connector
    id: String,
    /// From when: a time (2026-12-06T10:00:00Z) or a span before now (24h)
    /// [default: an hour before --until, or 24 steps with --step]
    #[arg(long)]
    since: Option<String>,
    /// Until when, written like --since [default: now]
    #[arg(long)]
    until: Option<String>,
    /// Rollups of this length (whole hours: 1h, 6h, 1d) instead of every check
    #[arg(long)]
    step: Option<String>,
    /// Checks shown at most (without --step) [default: 1000, at most 10000]
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    output: Output,
}

pub async fn run(cli: &crate::Cli, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let time = |text: &Option<String>, what: &str| -> anyhow::Result<Option<SystemTime>> {
        text.as_deref()
            .map(|t| {
                sandport_server::status_api::query::parse_time(t, now)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("--{what}"))
            })
            .transpose()
    };
    let step = args
        .step
        .as_deref()
        .map(|s| humantime::parse_duration(s).with_context(|| format!("--step `{s}`")))
        .transpose()?;
    let range = HistoryRange {
        since: time(&args.since, "since")?,
        until: time(&args.until, "until")?,
        step,
        limit: args.limit,
    };
    let (backend, _) = crate::connect(cli, false).await?;
    let found = backend.service().history(&args.id, range).await;
    crate::close(backend).await;
    let found = found?;
    match args.output {
        Output::Table => print!("{}", table(&found)),
        Output::Json => println!("{}", json(&found)),
    }
    Ok(ExitCode::SUCCESS)
}

fn at(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn latency(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), format_latency)
}

fn uptime(r: &Rollup) -> String {
    let total = r.counts.total();
    if total == 0 {
        return "-".into();
    }
    format!("{:.2}%", r.counts.passing() as f64 * 100.0 / total as f64)
}

fn table(found: &Found) -> String {
    match found {
        Found::Points(points) => {
            let header = ["AT", "STATUS", "REPORTED", "LATENCY", "MESSAGE"].map(String::from);
            let rows: Vec<[String; 5]> = points
                .iter()
                .map(|p| {
                    [
                        at(p.at),
                        p.failure.as_ref().map_or_else(
                            || p.status.to_string(),
                            |f| format!("{} ({f})", p.status),
                        ),
                        p.reported.to_string(),
                        latency(Some(p.latency)),
                        p.message.clone(),
                    ]
                })
                .collect();
            crate::output::render(&header, &rows)
        }
        Found::Rollups(rollups) => {
            let header = ["START", "CHECKS", "UPTIME", "P50", "P95", "MAX"].map(String::from);
            let rows: Vec<[String; 6]> = rollups
                .iter()
                .map(|r| {
                    [
                        at(r.start),
                        r.counts.total().to_string(),
                        uptime(r),
                        latency(r.p50),
                        latency(r.p95),
                        latency(r.max),
                    ]
                })
                .collect();
            crate::output::render(&header, &rows)
        }
    }
}

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64() * 1000.0))
}

fn json(found: &Found) -> String {
    let items: Vec<Value> = match found {
        Found::Points(points) => points
            .iter()
            .map(|p| {
                let StoredPoint {
                    at: when,
                    status,
                    reported,
                    latency,
                    failure,
                    message,
                } = p;
                json!({
                    "at": at(*when),
                    "status": status.as_str(),
                    "reported": reported.as_str(),
                    "latency_ms": ms(Some(*latency)),
                    "failure": failure,
                    "message": message,
                })
            })
            .collect(),
        Found::Rollups(rollups) => rollups
            .iter()
            .map(|r| {
                json!({
                    "start": at(r.start),
                    "checks": r.counts.total(),
                    "passing": r.counts.passing(),
                    "p50_ms": ms(r.p50),
                    "p95_ms": ms(r.p95),
                    "max_ms": ms(r.max),
                })
            })
            .collect(),
    };
    Value::Array(items).to_string()
}
