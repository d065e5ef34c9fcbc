//! The sandbox: one wasmtime [`Engine`] for the process, components compiled
//! once per digest, and [`Guest`] instances that each live in their own
//! `Store` with deny-all WASI, a memory cap and a deadline on every call.
//!
//! The linker is the complete list of what a guest may import: WASI p2
//! (inert: no files, sockets, environment or arguments are granted) plus the
//! `sandport:connector` imports, `http-client` and `logging`.

mod cache;
mod convert;
mod guest;
pub mod mappings;
mod offstack;
mod pattern;
mod sockets;
mod stack;
mod state;
mod stdio;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

pub use bindings::sandport::connector::types::HealthStatus as WitHealthStatus;
pub use convert::status_from_wit;
pub use guest::{Echo, Guest, GuestError, GuestInfo};
pub use sockets::NodeSockets;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "connector",
        // Only what waits on the network is async. The rest answers at
        // once, and a sync import is a plain call: no boxed future, no poll
        // on the fiber (a check drops its response through one).
        imports: {
            "sandport:connector/http-client.send": async | trappable,
            "sandport:connector/http-client.[method]prepared-request.send": async | trappable,
            "sandport:connector/network.resolve": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        with: {
            "sandport:connector/http-client.response": super::state::HeldResponse,
            "sandport:connector/http-client.prepared-request": super::state::PreparedRequest,
            "sandport:connector/http-client.pattern": super::pattern::HeldPattern,
        },
    });
}

use bindings::ConnectorPre;
use state::GuestState;

/// How often the epoch advances: the granularity of deadlines and of the
/// yields that keep a busy guest from hogging an executor thread.
const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// Says what the file is without quoting it: a component path may name
    /// a file whose bytes are nobody's business.
    #[error("{what} is not a WebAssembly component ({why})")]
    NotAComponent { what: String, why: &'static str },
    #[error(
        "{what} took longer than {} to compile; refusing it (a component this slow to compile is likely built to stall the host)",
        sandport_config::format_duration(*.limit)
    )]
    CompileTimeout { what: String, limit: Duration },
    #[error(
        "{what} cannot be compiled now: {slots} other components have been compiling for {}; try again later",
        sandport_config::format_duration(*.waited)
    )]
    CompileBusy {
        what: String,
        slots: usize,
        waited: Duration,
    },
    #[error("{what} is not a valid WebAssembly component: {message}")]
    Compile { what: String, message: String },
    #[error("{what} cannot be linked: {message}")]
    Link { what: String, message: String },
    #[error(
        "{what} imports what the sandbox does not offer: {}; a connector may import only `sandport:connector` and WASI's cli, clocks, filesystem, io, random and sockets interfaces",
        .imports.join(", ")
    )]
    ForbiddenImports { what: String, imports: Vec<String> },
    #[error(
        "{what} was built for sandport:connector@{found}; this Sandport runs sandport:connector@{expected}: rebuild it with the SDK of this release (Rust `sandport-sdk`, Python or JavaScript SDK) or against wit/connector.wit of this release"
    )]
    ContractVersion {
        what: String,
        /// The version the component imports or exports.
        found: String,
        /// [`CONTRACT_VERSION`].
        expected: String,
    },
}

/// What the first bytes of a file say about it: a component, or why not.
/// Checked before the bytes reach the compiler, whose errors may quote them.
pub fn check_component_header(bytes: &[u8]) -> Result<(), &'static str> {
    const MAGIC: &[u8] = b"\0asm";
    // Version 0x0d, layer 1: the component encoding.
    const COMPONENT: &[u8] = &[0x0d, 0x00, 0x01, 0x00];
    const CORE_MODULE: &[u8] = &[0x01, 0x00, 0x00, 0x00];
    match (bytes.get(..4), bytes.get(4..8)) {
        (Some(MAGIC), Some(COMPONENT)) => Ok(()),
        (Some(MAGIC), Some(CORE_MODULE)) => Err(
            "it is a core WebAssembly module; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`",
        ),
        (Some(MAGIC), _) => Err("unknown WebAssembly version or layer"),
        _ => Err("bad magic number"),
    }
}

/// How many components compile at once, and for how long each may.
#[derive(Debug, Clone, Copy)]
pub struct CompileLimits {
    pub slots: usize,
    pub timeout: Duration,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            // Compiling is CPU-bound: more at once than there are cores only
            // takes the cores from the running checks.
            slots: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            timeout: Duration::from_secs(120),
        }
    }
}

/// The version of package `sandport:connector` (wit/connector.wit) this
/// host implements.
pub const CONTRACT_VERSION: &str = "0.2.1";

/// The versions of `sandport:connector` whose components this host loads:
/// each later one only adds to the one before (the linker resolves an
/// import of 0.2.0 to this version's definition). A component built for any
/// other version is refused before it is linked.
const LOADS_CONTRACT_VERSIONS: [&str; 2] = ["0.2.0", CONTRACT_VERSION];

/// A compiled component, ready to be instantiated many times.
pub struct Prepared {
    pre: ConnectorPre<GuestState>,
    digest: String,
}

impl Prepared {
    /// Hex SHA-256 of the component's bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// One compilation, shared by everyone who asks for the same bytes while it
/// runs: registering 10,000 connectors of one component compiles it once.
type Slot = Arc<tokio::sync::OnceCell<Arc<Prepared>>>;

pub struct Sandbox {
    engine: Engine,
    linker: Linker<GuestState>,
    /// By SHA-256 of the component's bytes.
    compiled: Mutex<HashMap<String, Slot>>,
    /// Built-ins by name, so their bytes are hashed once per process.
    builtins: Mutex<HashMap<&'static str, Slot>>,
    cache: Option<cache::ArtifactCache>,
    cache_hits: std::sync::atomic::AtomicUsize,
    /// Components compiled because the cache did not hold them.
    compiles: std::sync::atomic::AtomicUsize,
    ticker_stop: Arc<AtomicBool>,
    limits: CompileLimits,
    /// A permit per compile under way, held by the compiling thread itself:
    /// a compile that outlives its caller's timeout still holds its slot.
    compile_slots: Arc<tokio::sync::Semaphore>,
    /// The node's budget of guest sockets, shared by every instance.
    sockets: Arc<NodeSockets>,
}

impl Sandbox {
    /// A sandbox; `cache_dir` keeps compiled components across restarts;
    /// `limits` bounds compiles; its guests hold at most `guest_sockets`
    /// sockets together.
    pub fn new(
        cache_dir: Option<std::path::PathBuf>,
        limits: CompileLimits,
        guest_sockets: usize,
    ) -> Result<Self, SandboxError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        // Sandport calls one export at a time per store; the concurrent
        // component-model machinery would only make each call slower.
        config.concurrency_support(false);
        // Thousands of instances must fit in the kernel's default limit of
        // 65,530 memory mappings per process: copy-on-write memory images
        // and guard regions cost several mappings per instance.
        config.memory_init_cow(false);
        config.guard_before_linear_memory(false);
        // Room to grow in place up to the default memory limit, so growth
        // is an mprotect rather than a copy; address space is cheap.
        config.memory_reservation(sandport_config::SandboxConfig::DEFAULT_MEMORY_LIMIT);
        config.memory_guard_size(0);
        config.memory_reservation_for_growth(16 << 20);
        // Stacks an idle instance can give back (see `stack`).
        #[cfg(unix)]
        config.with_host_stack(Arc::new(stack::Stacks));
        let engine = Engine::new(&config).map_err(|e| SandboxError::Engine(e.to_string()))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        bindings::Connector::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        // Socket creation and drop, counted (see `sockets`).
        sockets::add_to_linker(&mut linker).map_err(|e| SandboxError::Engine(e.to_string()))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("sandport-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| SandboxError::Engine(format!("cannot start the epoch thread: {e}")))?;

        let cache = cache_dir.map(|dir| cache::ArtifactCache::new(dir, &engine));
        Ok(Sandbox {
            engine,
            linker,
            compiled: Mutex::new(HashMap::new()),
            builtins: Mutex::new(HashMap::new()),
            cache,
            cache_hits: std::sync::atomic::AtomicUsize::new(0),
            compiles: std::sync::atomic::AtomicUsize::new(0),
            ticker_stop,
            compile_slots: Arc::new(tokio::sync::Semaphore::new(limits.slots.max(1))),
            limits,
            sockets: NodeSockets::new(guest_sockets),
        })
    }

    /// Compiles a built-in component once per process.
    pub async fn prepare_builtin(
        &self,
        name: &'static str,
        bytes: &'static [u8],
    ) -> Result<Arc<Prepared>, SandboxError> {
        let slot = lock(&self.builtins).entry(name).or_default().clone();
        let what = format!("built-in `{name}`");
        slot.get_or_try_init(|| self.prepare(&what, bytes))
            .await
            .cloned()
    }

    /// Compiles `bytes` (or returns the compilation of identical bytes, done
    /// before or under way). `what` names the component in errors.
    pub async fn prepare(&self, what: &str, bytes: &[u8]) -> Result<Arc<Prepared>, SandboxError> {
        check_component_header(bytes).map_err(|why| SandboxError::NotAComponent {
            what: what.to_string(),
            why,
        })?;
        let digest = hex(&Sha256::digest(bytes));
        let slot = lock(&self.compiled)
            .entry(digest.clone())
            .or_default()
            .clone();
        slot.get_or_try_init(|| self.compile(what, bytes, digest))
            .await
            .cloned()
    }

    async fn compile(
        &self,
        what: &str,
        bytes: &[u8],
        digest: String,
    ) -> Result<Arc<Prepared>, SandboxError> {
        let component = self.compile_or_load(what, bytes, &digest).await?;
        let component_type = component.component_type();
        let names = component_type
            .imports(&self.engine)
            .map(|(name, _)| name)
            .chain(component_type.exports(&self.engine).map(|(name, _)| name));
        if let Some(found) = other_contract_version(names) {
            return Err(SandboxError::ContractVersion {
                what: what.to_string(),
                found: found.to_string(),
                expected: CONTRACT_VERSION.to_string(),
            });
        }
        let forbidden: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name)
            .filter(|name| !import_allowed(name))
            .map(str::to_string)
            .collect();
        if !forbidden.is_empty() {
            return Err(SandboxError::ForbiddenImports {
                what: what.to_string(),
                imports: forbidden,
            });
        }
        let link_error = |e: wasmtime::Error| SandboxError::Link {
            what: what.to_string(),
            message: format!("{e:#}"),
        };
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(link_error)?;
        let pre = ConnectorPre::new(instance_pre).map_err(link_error)?;
        Ok(Arc::new(Prepared { pre, digest }))
    }

    async fn compile_or_load(
        &self,
        what: &str,
        bytes: &[u8],
        digest: &str,
    ) -> Result<Component, SandboxError> {
        let engine = self.engine.clone();
        if let Some(cache) = &self.cache
            && let Some(component) = cache.load(&engine, digest)
        {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(digest, "loaded a compiled component from the cache");
            return Ok(component);
        }
        let CompileLimits { slots, timeout } = self.limits;
        let started = tokio::time::Instant::now();
        let permit = tokio::time::timeout(timeout, self.compile_slots.clone().acquire_owned())
            .await
            .map_err(|_| SandboxError::CompileBusy {
                what: what.to_string(),
                slots,
                waited: timeout,
            })?
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        let owned = bytes.to_vec();
        // Compilation is CPU-bound and can take a while for big guests; it
        // cannot be interrupted, so the caller stops waiting at the limit and
        // the slot stays taken until the thread is done.
        let compiling = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Component::new(&engine, owned)
        });
        let component = tokio::time::timeout_at(started + timeout, compiling)
            .await
            .map_err(|_| SandboxError::CompileTimeout {
                what: what.to_string(),
                limit: timeout,
            })?
            .map_err(|e| SandboxError::Compile {
                what: what.to_string(),
                message: e.to_string(),
            })?
            .map_err(|e| SandboxError::Compile {
                what: what.to_string(),
                message: format!("{e:#}"),
            })?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        if let Some(cache) = &self.cache {
            cache.store(digest, &component);
        }
        Ok(component)
    }

    /// Components loaded from the on-disk cache instead of compiled.
    pub fn cache_hits(&self) -> usize {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// Components compiled because the on-disk cache did not hold them.
    pub fn compiles(&self) -> usize {
        self.compiles.load(Ordering::Relaxed)
    }

    /// How many distinct components have been compiled.
    pub fn compiled_count(&self) -> usize {
        lock(&self.compiled)
            .values()
            .filter(|slot| slot.initialized())
            .count()
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The node's guest sockets: its budget and what is held.
    pub(crate) fn sockets(&self) -> &Arc<NodeSockets> {
        &self.sockets
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps are only ever inserted into, so a poisoned lock still holds
    // consistent data.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The interfaces a component may import: the contract's own, and the WASI
/// packages the linker provides (inert under the deny-all context).
fn import_allowed(name: &str) -> bool {
    const PACKAGES: &[&str] = &[
        "sandport:connector/",
        "wasi:cli/",
        "wasi:clocks/",
        "wasi:filesystem/",
        "wasi:io/",
        "wasi:random/",
        "wasi:sockets/",
    ];
    PACKAGES.iter().any(|p| name.starts_with(p))
}

/// The first version of `sandport:connector` this host does not load
/// ([`LOADS_CONTRACT_VERSIONS`]) among a component's import and export
/// names (`sandport:connector/logging@0.1.0`). A name without a version is
/// left to the linker, which reports it as missing.
fn other_contract_version<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .filter_map(|name| name.strip_prefix("sandport:connector/"))
        .filter_map(|rest| rest.split_once('@').map(|(_, version)| version))
        .find(|version| !LOADS_CONTRACT_VERSIONS.contains(version))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
