//! One live connector instance and the deadline-guarded calls into it.
//!
//! Every call arms the store's deadline first. Epoch interruption traps a
//! guest that computes past it (and yields to the executor every tick until
//! then); the same deadline bounds time spent in host calls, because the
//! whole call future is dropped when it passes. After a trap or a timeout the
//! instance must not be entered again: callers drop it and instantiate anew.

use std::fmt;

use tokio::time::Instant;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::Connector;
use super::bindings::sandport::connector::types as wit;
use super::state::GuestState;
use super::{Prepared, Sandbox};
use crate::budget::Budget;
use crate::egress::Egress;
use crate::health::{FailureKind, one_line};
use sandport_config::{ConnectorConfig, ConnectorType};

/// A call that failed for a reason of the sandbox (not the guest's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestError {
    pub kind: FailureKind,
    pub message: String,
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GuestError {}

/// What the guest says about itself after `initialize`.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestInfo {
    pub name: String,
    pub description: String,
    pub connector_type: ConnectorType,
    pub endpoint: String,
}

/// What a guest says of its own identity and config (see [`Guest::echo`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Echo {
    pub id: String,
    pub config_id: String,
    pub config_host: String,
    pub config_port: u16,
    /// How many settings its config holds.
    pub settings: usize,
}

/// The trap raised when a call runs past its deadline.
#[derive(Debug)]
struct DeadlineReached;

impl fmt::Display for DeadlineReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline reached")
    }
}

impl std::error::Error for DeadlineReached {}

pub struct Guest {
    store: Store<GuestState>,
    bindings: Connector,
    memory_limit: u64,
    /// The store's fiber stack, once a call created it.
    stack: Option<super::stack::StackHandle>,
    /// False once a call trapped, timed out or was dropped midway.
    usable: bool,
}

impl Guest {
    /// Bytes of linear memory this instance holds (all its memories).
    pub fn memory_used(&self) -> u64 {
        u64::try_from(self.store.data().limits.memory_used()).unwrap_or(u64::MAX)
    }

    /// Creates an instance of `prepared` for `config` within `budget`.
    pub async fn instantiate(
        sandbox: &Sandbox,
        prepared: &Prepared,
        config: &ConnectorConfig,
        egress: Egress,
        budget: Budget,
    ) -> Result<Guest, GuestError> {
        let state = GuestState::new(config, egress, sandbox.sockets().clone());
        let mut store = Store::new(sandbox.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().budget.deadline {
                Err(wasmtime::Error::new(DeadlineReached))
            } else {
                // tokio's yield runs the I/O driver before this task again,
                // so busy guests cannot starve the network of the others.
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        arm(&mut store, budget);
        let memory_limit = config.sandbox.memory_limit;
        let offstack = store.data().offstack.clone();
        let instantiate = tokio::time::timeout_at(
            budget.deadline,
            offstack.drive(prepared.pre.instantiate_async(&mut store)),
        );
        let (result, stack) = super::stack::capture(instantiate).await;
        if let Ok(Err(error)) = &result
            && let Some(why) = host_failure(&store, error)
        {
            return Err(GuestError {
                kind: FailureKind::Instantiate,
                message: format!("cannot instantiate: {why}"),
            });
        }
        let bindings = classify(&store, result, budget, memory_limit).map_err(|mut e| {
            if e.kind == FailureKind::Trap {
                e.kind = FailureKind::Instantiate;
            }
            e.message = format!("cannot instantiate: {}", e.message);
            e
        })?;
        Ok(Guest {
            store,
            bindings,
            memory_limit,
            stack,
            usable: true,
        })
    }

    /// Gives the pages of the instance's fiber stack back to the kernel
    /// (4–16 KiB): for an instance that will sit idle a while (after its
    /// start, and after a scheduled check whose next is far away). The next
    /// call faults in a fresh page or four.
    pub fn release_stack(&mut self) {
        if let Some(stack) = &self.stack {
            stack.release();
        }
    }

    /// The resident pages of the instance's fiber stack, once it has one.
    #[cfg(all(test, unix))]
    pub(crate) fn stack_resident_pages(&self) -> Option<usize> {
        self.stack
            .as_ref()
            .map(super::stack::StackHandle::resident_pages)
    }

    /// HTTP requests the last call sent, and the response bytes read.
    pub fn last_call_egress(&self) -> (u32, u64) {
        let usage = self.store.data().usage;
        (usage.requests, usage.bytes)
    }

    /// Whether the last call had a request denied by the egress policy.
    pub fn was_denied(&self) -> bool {
        self.store.data().denied
    }

    /// Whether the instance may be entered again.
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    async fn guarded<R>(
        &mut self,
        budget: Budget,
        call: impl AsyncFnOnce(&Connector, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> Result<R, GuestError> {
        if !self.usable {
            return Err(GuestError {
                kind: FailureKind::Trap,
                message: "the instance failed earlier and cannot be entered again".into(),
            });
        }
        arm(&mut self.store, budget);
        // Cleared only if the call completes: a future dropped midway leaves
        // the instance unusable.
        self.usable = false;
        let offstack = self.store.data().offstack.clone();
        let call = tokio::time::timeout_at(
            budget.deadline,
            offstack.drive(call(&self.bindings, &mut self.store)),
        );
        // wasmtime creates the store's stack at its first call on a fiber,
        // which instantiation may not have needed.
        let result = if self.stack.is_none() {
            let (result, stack) = super::stack::capture(call).await;
            self.stack = stack;
            result
        } else {
            call.await
        };
        let result = classify(&self.store, result, budget, self.memory_limit);
        self.usable = result.is_ok();
        result
    }

    /// Calls `initialize`; the inner `Err` is the guest's own refusal.
    pub async fn initialize(
        &mut self,
        config: &ConnectorConfig,
        budget: Budget,
    ) -> Result<Result<(), String>, GuestError> {
        let record = super::convert::to_wit(config);
        self.guarded(budget, async move |b, s| {
            b.sandport_connector_connector_api()
                .call_initialize(s, &record)
                .await
        })
        .await
    }

    /// Reads name, description, type and endpoint.
    pub async fn info(&mut self, budget: Budget) -> Result<GuestInfo, GuestError> {
        self.guarded(budget, async |b, s| {
            let api = b.sandport_connector_connector_api();
            Ok(GuestInfo {
                name: one_line(api.call_name(&mut *s).await?),
                description: one_line(api.call_description(&mut *s).await?),
                connector_type: super::convert::from_wit_type(
                    api.call_connector_type(&mut *s).await?,
                ),
                endpoint: one_line(api.call_get_endpoint(&mut *s).await?),
            })
        })
        .await
    }

    /// Calls `id` and `get-config`, which the host itself never needs (it
    /// keeps the config): for the conformance kit, which calls every export.
    pub async fn echo(&mut self, budget: Budget) -> Result<Echo, GuestError> {
        self.guarded(budget, async |b, s| {
            let api = b.sandport_connector_connector_api();
            let id = api.call_id(&mut *s).await?;
            let config = api.call_get_config(&mut *s).await?;
            Ok(Echo {
                id,
                config_id: config.id,
                config_host: config.host,
                config_port: config.port,
                settings: config.settings.len(),
            })
        })
        .await
    }

    /// Runs one health check; the inner `Err` is the guest's own error.
    pub async fn health_check(
        &mut self,
        budget: Budget,
    ) -> Result<Result<wit::HealthReport, String>, GuestError> {
        self.guarded(budget, async |b, s| {
            b.sandport_connector_connector_api()
                .call_health_check(s)
                .await
        })
        .await
    }

    /// Calls `close`. The instance is dropped afterwards either way.
    pub async fn close(mut self, budget: Budget) -> Result<(), GuestError> {
        if !self.usable {
            return Ok(());
        }
        self.guarded(budget, async |b, s| {
            b.sandport_connector_connector_api().call_close(s).await
        })
        .await
    }
}

fn arm(store: &mut Store<GuestState>, budget: Budget) {
    let data = store.data_mut();
    data.budget = budget;
    data.denied = false;
    data.usage = Default::default();
    data.limits.memory_refused = false;
    store.set_epoch_deadline(1);
}

fn classify<R>(
    store: &Store<GuestState>,
    result: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    budget: Budget,
    memory_limit: u64,
) -> Result<R, GuestError> {
    let timed_out = || GuestError {
        kind: FailureKind::Deadline,
        message: budget.timed_out_message(),
    };
    match result {
        Err(_elapsed) => Err(timed_out()),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) if error.is::<DeadlineReached>() => Err(timed_out()),
        Ok(Err(_)) if store.data().limits.memory_refused => Err(GuestError {
            kind: FailureKind::OutOfMemory,
            message: format!(
                "the guest ran out of memory (limit {})",
                sandport_config::format_size(memory_limit)
            ),
        }),
        Ok(Err(error)) => Err(GuestError {
            kind: FailureKind::Trap,
            message: format!("the guest trapped: {}", trap_message(&error)),
        }),
    }
}

/// Says why, when `error` is the host's failure rather than the guest's: not
/// a trap of the guest's code, its deadline or its memory limit, but e.g.
/// the process out of memory mappings (`vm.max_map_count`) when a new
/// instance's memory is mapped.
fn host_failure(store: &Store<GuestState>, error: &wasmtime::Error) -> Option<String> {
    if error.is::<wasmtime::Trap>()
        || error.is::<DeadlineReached>()
        || store.data().limits.memory_refused
    {
        return None;
    }
    let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
    Some(format!(
        "the host could not set up the instance: {}",
        causes.join(": ")
    ))
}

/// The trap's own message without wasmtime's multi-line backtrace.
fn trap_message(error: &wasmtime::Error) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::egress::HttpClient;

    /// A `prometheus` entry for a port nothing answers on, with its egress.
    fn prometheus_entry() -> (ConnectorConfig, Egress) {
        let config = sandport_config::parse_entry(
            "{id: p, component: prometheus, host: 127.0.0.1, port: 9}",
            std::path::Path::new("."),
            sandport_builtins::catalog(),
        )
        .expect("a valid entry");
        let egress = Egress::new(&HttpClient::new().expect("a client"), &config).expect("egress");
        (config, egress)
    }

    #[test]
    fn a_failure_of_the_host_is_not_called_a_trap_of_the_guest() {
        let (config, egress) = prometheus_entry();
        let sandbox =
            Sandbox::new(None, crate::sandbox::CompileLimits::default(), 16).expect("a sandbox");
        let store = Store::new(
            sandbox.engine(),
            GuestState::new(&config, egress, sandbox.sockets().clone()),
        );
        let enomem = wasmtime::Error::msg("Cannot allocate memory (os error 12)")
            .context("cannot allocate 0x110000 with guard regions");
        assert_eq!(
            host_failure(&store, &enomem).as_deref(),
            Some(
                "the host could not set up the instance: cannot allocate 0x110000 with guard regions: Cannot allocate memory (os error 12)"
            )
        );
        let trap = wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached);
        assert_eq!(host_failure(&store, &trap), None);
        let late = wasmtime::Error::new(DeadlineReached);
        assert_eq!(host_failure(&store, &late), None);
    }

    #[tokio::test]
    async fn a_guest_gives_its_stack_back_and_runs_on_afterwards() {
        let sandbox =
            Sandbox::new(None, crate::sandbox::CompileLimits::default(), 16).expect("a sandbox");
        let builtin = sandport_builtins::find("prometheus").expect("a built-in");
        let prepared = sandbox
            .prepare_builtin(builtin.name, builtin.component)
            .await
            .expect("the built-in compiles");
        let (config, egress) = prometheus_entry();
        let budget = Budget::new(Duration::from_secs(30));
        let mut guest = Guest::instantiate(&sandbox, &prepared, &config, egress, budget)
            .await
            .expect("instantiates");
        guest
            .initialize(&config, budget)
            .await
            .expect("no trap")
            .expect("initialized");
        let before = guest
            .stack_resident_pages()
            .expect("the store's stack is known");
        assert!(before > 0, "the calls so far ran on the stack");

        guest.release_stack();
        assert_eq!(guest.stack_resident_pages(), Some(0));

        let info = guest.info(budget).await.expect("a call after the release");
        assert_eq!(info.endpoint, "http://127.0.0.1:9");
        assert!(guest.stack_resident_pages().is_some_and(|pages| pages > 0));
    }
}
