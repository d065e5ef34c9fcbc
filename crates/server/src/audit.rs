//! The audit log: one line per admin call, under the fixed target
//! [`TARGET`], saying who (the token's name, `anonymous` when
//! authentication is off), what (the method and the connector), when, and
//! the outcome (`ok` or an error code). Refused admin calls are recorded
//! too. Route the target to a file of its own with the log filter, e.g.
//! `RUST_LOG=info,sandport::audit=info`.

use std::time::SystemTime;

/// The `tracing` target of every audit line.
pub const TARGET: &str = "sandport::audit";

/// Records one admin call.
pub fn record(who: &str, method: &str, connector: &str, outcome: &str) {
    tracing::info!(
        target: TARGET,
        who,
        method,
        connector,
        outcome,
        at = %humantime::format_rfc3339_millis(SystemTime::now()),
        "admin call"
    );
}

/// The outcome of a gRPC call as the audit line writes it.
pub fn grpc_outcome<T>(result: &Result<T, tonic::Status>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(status) => code_name(status.code()).to_string(),
    }
}

/// gRPC's names of its codes, in lower case.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}
