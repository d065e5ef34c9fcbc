//! `sandport serve`: binds the listeners, starts the service, tells systemd
//! when it is ready and when it stops, reloads the config file on SIGHUP
//! and when the file changes, and stops on SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sandport_core::service::Service;
use sandport_server::cluster::ClusterNode;

use crate::{Cli, api, service_options};

/// The flags of `serve`.
#[derive(Args)]
pub struct ServeFlags {
    /// gRPC listen address [default: 127.0.0.1:50051, or 127.0.0.1:$GRPC_PORT]
    #[arg(long, value_name = "ADDR")]
    grpc_addr: Option<String>,
    /// REST listen address
    #[arg(
        long,
        value_name = "ADDR",
        env = "SANDPORT_HTTP_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    http_addr: String,
    /// Also serve `GET /metrics` on this address, over plain HTTP without
    /// a token (a non-loopback address needs --insecure) [default: only on
    /// the REST address]
    #[arg(long, value_name = "ADDR", env = "SANDPORT_METRICS_ADDR")]
    metrics_addr: Option<String>,
    /// Enabled connectors this node accepts (fewer if the kernel's
    /// vm.max_map_count leaves room for fewer: about 15,800 at its
    /// default of 65,530)
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    max_connectors: usize,
    /// Sum of the connectors' memory limits (plus 64 KiB each the host holds
    /// per connector) this node accepts, e.g. 16GiB [default: no limit]
    #[arg(long, value_name = "SIZE")]
    memory_budget: Option<bytesize::ByteSize>,
    /// Do not reload the config file when it changes (SIGHUP still does)
    #[arg(long)]
    no_watch: bool,
    /// Serve the status page (`GET /`), its data and badges without a
    /// token, even when a tokens file is given: every connector's name,
    /// status, message and uptime become readable by anyone who can reach
    /// the REST port
    #[arg(long, env = "SANDPORT_PUBLIC_STATUS")]
    public_status: bool,
    #[command(flatten)]
    api: api::ApiFlags,
    #[command(flatten)]
    cluster: crate::cluster::ClusterFlags,
}

/// How long the file must be quiet before a change is reloaded: editors
/// and `kubectl` write a file in several steps.
const SETTLE: Duration = Duration::from_millis(300);

pub async fn serve(cli: &Cli, flags: &ServeFlags) -> anyhow::Result<ExitCode> {
    sandport_core::limits::raise_fd_limit();
    let grpc_addr = match &flags.grpc_addr {
        Some(addr) => addr.clone(),
        None => match std::env::var("GRPC_PORT") {
            Ok(port) => format!("127.0.0.1:{}", port.trim()),
            Err(_) => "127.0.0.1:50051".to_string(),
        },
    };
    let grpc = tokio::net::TcpListener::bind(&grpc_addr)
        .await
        .with_context(|| format!("cannot listen for gRPC on {grpc_addr}"))?;
    let http_addr = &flags.http_addr;
    let http = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {http_addr}"))?;
    let metrics = match &flags.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for metrics on {addr}"))?,
        ),
        None => None,
    };
    let mut api_options = flags.api.options(grpc.local_addr()?, http.local_addr()?)?;
    if let Some(listener) = &metrics {
        flags.api.check_metrics_exposure(listener.local_addr()?)?;
    }
    let metrics_at = match &metrics {
        Some(listener) => listener.local_addr()?.to_string(),
        None => "the REST address".to_string(),
    };
    api_options.metrics = metrics;
    api_options.public_status = flags.public_status;
    let tls = api_options.tls.is_some();
    let tokens = api_options.tokens.is_some();
    let mut options = service_options(cli, true);
    options.record = true;
    options.runtime.max_instances = flags.max_connectors;
    options.runtime.memory_budget = flags.memory_budget.map(|b| b.as_u64());
    let mut cluster = match flags.cluster.options(grpc.local_addr()?)? {
        Some((cluster, address)) => {
            let config_dir = options
                .config
                .as_deref()
                .and_then(Path::parent)
                .unwrap_or(Path::new("."))
                .to_path_buf();
            let node = ClusterNode::join(&cluster, &address, config_dir)
                .await
                .context("cannot join the cluster")?;
            // The registry is etcd's; this node checks only what it owns,
            // once the members are known.
            options.changes = Some(node.changes());
            options.forwarder = forwarder(&node, flags)?;
            options.runtime.ownership = sandport_core::Ownership::none();
            Some(node)
        }
        None => None,
    };
    let (service, problems) = Service::start(options).await?;
    // Logged, so that they come in the log's format.
    for problem in &problems {
        tracing::error!(entry = %problem.entry, key = %problem.key, "config error: {}", problem.message);
    }
    let service = Arc::new(service);
    if let Some(node) = &mut cluster {
        node.run(service.clone()).await;
        api_options.collectors.push(Box::new(node.collector()));
    }
    tracing::info!(
        grpc = %grpc.local_addr().map(|a| a.to_string()).unwrap_or(grpc_addr),
        http = %http.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| http_addr.clone()),
        metrics = %metrics_at,
        connectors = service.runtime().list(None).len(),
        max_connectors = service.runtime().max_instances(),
        tls,
        tokens,
        state = %service.state_path().map(|p| p.display().to_string()).unwrap_or_default(),
        "sandport is listening; stop it with Ctrl-C or SIGTERM"
    );
    // In cluster mode too: each node watches its copy of the file, and the
    // reloads of every node converge on the cluster's registry.
    let watch = !flags.no_watch;
    let reloads = tokio::spawn(reload_on_request(service.clone(), watch));
    // The listeners are bound and the connectors loaded: calls are answered
    // from here on. Without systemd (no NOTIFY_SOCKET) this does nothing.
    notify(sd_notify::NotifyState::Ready);
    let stopping = async {
        shutdown_signal().await;
        notify(sd_notify::NotifyState::Stopping);
    };
    sandport_server::serve(service, grpc, http, api_options, stopping).await?;
    reloads.abort();
    if let Some(node) = cluster {
        node.leave().await;
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// What sends a live check to the connector's owner; `None` (every check
/// on the node asked, as without a cluster) when the peers' APIs cannot be
/// called as they are protected.
fn forwarder(
    node: &ClusterNode,
    flags: &ServeFlags,
) -> anyhow::Result<Option<Arc<dyn sandport_core::service::Forwarder>>> {
    let credentials = flags.cluster.peer_credentials()?;
    let access = sandport_server::cluster::peer_access(&flags.api.protection(), &credentials)
        .and_then(|access| node.forwarder(&access));
    match access {
        Ok(forwarder) => Ok(Some(forwarder)),
        Err(why) => {
            tracing::warn!(
                "live checks of connectors other nodes own run on the node asked: {why}"
            );
            Ok(None)
        }
    }
}

fn notify(state: sd_notify::NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// Reloads the config file on SIGHUP and, when `watch`, when it changes.
async fn reload_on_request(service: Arc<Service>, watch: bool) {
    let (wake, mut woken) = tokio::sync::mpsc::channel::<&'static str>(1);
    #[cfg(unix)]
    {
        let wake = wake.clone();
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut hangup) => {
                tokio::spawn(async move {
                    while hangup.recv().await.is_some() {
                        let _ = wake.try_send("SIGHUP");
                    }
                });
            }
            Err(e) => tracing::error!("cannot listen for SIGHUP: {e}"),
        }
    }
    // Kept alive for as long as reloads are wanted.
    let _watcher = match (watch, service.config_path()) {
        (true, Some(path)) => match watch_file(path, wake.clone()) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    "cannot watch the config file ({e}); reload it with SIGHUP"
                );
                None
            }
        },
        _ => None,
    };
    drop(wake);
    while let Some(why) = woken.recv().await {
        // Let a burst of writes end, and count it as one change.
        tokio::time::sleep(SETTLE).await;
        while woken.try_recv().is_ok() {}
        tracing::info!("reloading the config file ({why})");
        if let Err(e) = service.reload_config().await {
            tracing::warn!("the config file was not reloaded: {e}");
        }
    }
}

/// Watches the directory that holds `path`, so that a file replaced by a
/// rename (as editors do) or a Kubernetes ConfigMap's swapped symbolic
/// link is seen as well as one written in place.
fn watch_file(
    path: &Path,
    wake: tokio::sync::mpsc::Sender<&'static str>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path.file_name().map(ToOwned::to_owned);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let ours = event.paths.iter().any(|p| {
            let file = p.file_name();
            file == name.as_deref() || file.is_some_and(|f| f == "..data")
        });
        if ours {
            let _ = wake.try_send("the file changed");
        }
    })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
