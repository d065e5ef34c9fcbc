//! The `sandbox` section: memory, egress and per-call limits.

use serde_norway::{Mapping, Value};

use super::fields::{Fields, describe};
use crate::{SandboxConfig, units};
use sandport_policy::HostRule;

pub const KEYS: &[&str] = &[
    "memory_limit",
    "allowed_hosts",
    "max_response_size",
    "max_requests_per_call",
    "max_bytes_per_call",
    "max_sockets",
];

pub fn parse(map: &Mapping, problems: &mut Vec<(String, String)>) -> SandboxConfig {
    let mut f = Fields::new(map, "sandbox.", KEYS, problems);
    let memory_limit = f
        .with("memory_limit", units::size)
        .unwrap_or(SandboxConfig::DEFAULT_MEMORY_LIMIT);
    if memory_limit < (1 << 20) {
        f.problem("memory_limit", "must be at least 1MiB");
    }
    let allowed_hosts = f
        .with("allowed_hosts", |v| match v {
            Value::Sequence(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => HostRule::parse(s).map_err(|e| e.to_string()),
                    other => Err(format!(
                        "expected a host rule string, found {}",
                        describe(other)
                    )),
                })
                .collect(),
            other => Err(format!(
                "expected a list of hosts, found {}",
                describe(other)
            )),
        })
        .unwrap_or_default();
    let max_response_size = f
        .with("max_response_size", units::size)
        .unwrap_or(SandboxConfig::DEFAULT_MAX_RESPONSE_SIZE);
    let max_bytes_per_call = f
        .with("max_bytes_per_call", units::size)
        .unwrap_or(SandboxConfig::DEFAULT_MAX_BYTES_PER_CALL);
    let max_requests_per_call = f
        .with("max_requests_per_call", |v| match v {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{n} is not a count from 1 up")),
            other => Err(format!("expected a count, found {}", describe(other))),
        })
        .unwrap_or(SandboxConfig::DEFAULT_MAX_REQUESTS_PER_CALL);
    let max_sockets = f
        .with("max_sockets", |v| match v {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n <= SandboxConfig::MAX_MAX_SOCKETS)
                .ok_or_else(|| {
                    format!(
                        "{n} is not a count from 0 to {} (each socket holds a file descriptor of the process)",
                        SandboxConfig::MAX_MAX_SOCKETS
                    )
                }),
            other => Err(format!("expected a count, found {}", describe(other))),
        })
        .unwrap_or(SandboxConfig::DEFAULT_MAX_SOCKETS);
    if max_response_size > max_bytes_per_call {
        f.problem(
            "max_response_size",
            "must not be larger than max_bytes_per_call",
        );
    }
    SandboxConfig {
        memory_limit,
        allowed_hosts,
        max_response_size,
        max_requests_per_call,
        max_bytes_per_call,
        max_sockets,
    }
}
