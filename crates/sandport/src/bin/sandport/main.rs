//! The `sandport` command. `serve` runs the Connectors Service; the other
//! commands talk to it through `ConnectorService`: to the service named by
//! `CONNECTORS_SERVICE_ADDR` when set, else to an in-process one started on
//! the config (and data directory) given.

mod api;
mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use sandport::client::{self, Backend, ClientError};
use sandport_config::{self as config, ConnectorType};
use sandport_core::service::{Service, ServiceOptions};
use sandport_core::{HealthStatus, RuntimeOptions};

#[derive(Parser)]
#[command(
    name = "sandport",
    version,
    about = "A WebAssembly-sandboxed connector runtime"
)]
struct Cli {
    /// Connectors config file [default: the config built into the binary]
    #[arg(
        long,
        short,
        global = true,
        env = "SANDPORT_CONFIG",
        value_name = "PATH"
    )]
    config: Option<PathBuf>,
    /// Where changes made through the API are kept [default: data/ beside the config]
    #[arg(long, global = true, env = "SANDPORT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where the component files API callers may name (by a relative path) live [default: components/ beside the config]
    #[arg(
        long,
        global = true,
        env = "SANDPORT_COMPONENTS_DIR",
        value_name = "DIR"
    )]
    components_dir: Option<PathBuf>,
    /// The largest component file or upload accepted
    #[arg(long, global = true, value_name = "SIZE", default_value = "64MiB")]
    max_component_size: bytesize::ByteSize,
    /// Token sent to a remote service (CONNECTORS_SERVICE_ADDR)
    #[arg(
        long,
        global = true,
        env = "SANDPORT_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// CA (PEM) of a remote service's certificate, for https:// addresses [default: the system's roots]
    #[arg(long, global = true, env = "SANDPORT_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check each connector (or the named ones) once and print the results.
    ///
    /// Exits 0 when all are healthy, 1 when any is not, 2 when the config
    /// has problems or an id is unknown.
    Check {
        /// Connector ids to check [default: all]
        ids: Vec<String>,
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Run the Connectors Service (gRPC and REST) until SIGINT or SIGTERM.
    Serve {
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
        /// Enabled connectors this node accepts (fewer if the kernel's
        /// vm.max_map_count leaves room for fewer: about 15,800 at its
        /// default of 65,530)
        #[arg(long, value_name = "N", default_value_t = 20_000)]
        max_connectors: usize,
        /// Sum of the connectors' memory limits this node accepts, e.g. 16GiB [default: no limit]
        #[arg(long, value_name = "SIZE")]
        memory_budget: Option<bytesize::ByteSize>,
        #[command(flatten)]
        api: api::ApiFlags,
    },
    /// Make API tokens.
    Token {
        #[command(subcommand)]
        command: api::TokenCommand,
    },
    /// Check a config (including starting each connector once) and print
    /// every problem. Exits 0 when there is none, 2 otherwise.
    Validate,
    /// List connectors with their cached status.
    List {
        /// Only connectors of this type
        #[arg(long = "type", short = 't', value_name = "TYPE")]
        connector_type: Option<String>,
        #[arg(long)]
        enabled_only: bool,
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Show one connector's info and config (secrets redacted).
    Get { id: String },
    /// Register a connector from a file holding one entry (YAML or JSON).
    Register {
        #[arg(long, short, value_name = "PATH")]
        file: PathBuf,
    },
    /// Replace a connector with the entry in a file (YAML or JSON).
    Update {
        #[arg(long, short, value_name = "PATH")]
        file: PathBuf,
    },
    /// Close and remove a connector.
    Remove { id: String },
    /// Upload, list or delete the components the service holds; an entry
    /// names an uploaded one as `sha256:<digest>`.
    #[command(subcommand)]
    Component(ComponentCommand),
    /// Check that a component behaves like a connector (the conformance kit).
    ///
    /// Starts test servers on loopback (up, slow, failing, down, redirecting
    /// to a denied host, hanging), runs the component against each, watches
    /// its memory over repeated checks, prints a pass/fail table; exits 1 on
    /// a failure.
    TestConnector {
        /// The component to test
        component: PathBuf,
        /// An entry (YAML) with the settings the connector needs
        #[arg(long = "entry", value_name = "PATH")]
        entry: Option<PathBuf>,
    },
    /// Create a connector project from a template.
    New {
        /// The project's language
        #[arg(long, short, value_name = "LANG", value_parser = parse_lang)]
        lang: sandport::project::Lang,
        /// Directory to create; its name is the project's name
        dir: PathBuf,
    },
    /// Build a connector project (Rust, Python or JavaScript, recognised by
    /// its files) into DIR/build/NAME.wasm; prints that path last.
    Build {
        /// The project [default: the current directory]
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Cargo target directory for Rust projects
        #[arg(long, value_name = "DIR")]
        target_dir: Option<PathBuf>,
    },
    /// Print every status change until interrupted.
    Watch {
        /// Only these connectors [default: all]
        ids: Vec<String>,
        #[arg(long = "type", short = 't', value_name = "TYPE")]
        connector_type: Option<String>,
    },
}

#[derive(Subcommand)]
enum ComponentCommand {
    /// Upload a component file; prints the name entries use for it.
    Upload { file: PathBuf },
    /// List the uploaded components and the connectors naming each.
    List,
    /// Delete an uploaded component no connector names.
    Delete {
        /// `sha256:<digest>`
        component: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

const EXIT_UNHEALTHY: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    sandport_core::allocator::limit_arenas();
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve { .. } | Command::Watch { .. } => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    };
    // Dropping the runtime would wait for every blocking task, such as a
    // compile that cannot be interrupted; the drain is over by now.
    runtime.shutdown_timeout(EXIT_GRACE);
    code
}

/// How long the process waits at exit for blocking work still running.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The config path: `--config`, `SANDPORT_CONFIG`, or `CONFIG_PATH` (the
/// original service's variable).
fn config_path(cli: &Cli) -> Option<PathBuf> {
    cli.config
        .clone()
        .or_else(|| std::env::var_os("CONFIG_PATH").map(PathBuf::from))
}

fn service_options(cli: &Cli, schedule: bool) -> ServiceOptions {
    ServiceOptions {
        config: config_path(cli),
        data_dir: cli.data_dir.clone(),
        ephemeral: false,
        uploads_cap: None,
        runtime: RuntimeOptions {
            schedule,
            components_dir: cli.components_dir.clone(),
            max_component_size: cli.max_component_size.as_u64(),
            ..RuntimeOptions::default()
        },
    }
}

fn parse_lang(text: &str) -> Result<sandport::project::Lang, String> {
    text.parse()
}

fn parse_type(text: Option<&str>) -> anyhow::Result<Option<ConnectorType>> {
    text.map(|t| {
        ConnectorType::parse(t).with_context(|| {
            let names: Vec<&str> = ConnectorType::ALL.iter().map(|t| t.as_str()).collect();
            format!("type `{t}` is not one of: {}", names.join(", "))
        })
    })
    .transpose()
}

fn print_problems(problems: &[config::Problem]) {
    for problem in problems {
        eprintln!("config error: {problem}");
    }
}

/// The service the command talks to, and the config problems of a local one.
async fn connect(cli: &Cli, schedule: bool) -> anyhow::Result<(Backend, Vec<config::Problem>)> {
    let remote = client::RemoteOptions {
        token: cli.token.clone(),
        ca_cert: cli.ca_cert.clone(),
    };
    let (backend, problems) = client::from_env(service_options(cli, schedule), &remote).await?;
    print_problems(&problems);
    Ok((backend, problems))
}

async fn close(backend: Backend) {
    if let Backend::Local(local) = backend {
        local.shutdown().await;
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve {
            grpc_addr,
            http_addr,
            max_connectors,
            memory_budget,
            api,
        } => {
            let limits = (*max_connectors, memory_budget.map(|b| b.as_u64()));
            serve(&cli, grpc_addr.clone(), http_addr, limits, api).await
        }
        Command::Token { command } => {
            api::token(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate => validate(&cli).await,
        Command::TestConnector { component, entry } => {
            // `--config` names the entry here, as scripts of the kit expect.
            let entry = entry.as_deref().or(cli.config.as_deref());
            let report = sandport::conformance::run(
                component,
                entry,
                sandport_core::registry::default_cache_dir(),
            )
            .await?;
            print!("{report}");
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_UNHEALTHY)
            })
        }
        Command::Check { ids, output } => check(&cli, ids, *output).await,
        Command::New { lang, dir } => {
            let created = sandport::project::new(*lang, dir)?;
            let shown = dir.display();
            println!("created {shown}: a {lang} connector project");
            println!(
                "next: sandport build {shown} && sandport test-connector {shown}/build/{}.wasm",
                created.name
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { dir, target_dir } => {
            let options = sandport::project::BuildOptions {
                target_dir: target_dir.clone(),
                ..Default::default()
            };
            let dir = dir.clone();
            let built =
                tokio::task::spawn_blocking(move || sandport::project::build(&dir, &options))
                    .await??;
            println!("{}", built.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::List {
            connector_type,
            enabled_only,
            output,
        } => {
            let filter = parse_type(connector_type.as_deref())?;
            let (backend, _) = connect(&cli, false).await?;
            let list = backend.service().list(filter, *enabled_only).await;
            close(backend).await;
            let list = list?;
            match output {
                Output::Table => print!("{}", output::list_table(&list)),
                Output::Json => println!("{}", output::list_json(&list)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Get { id } => {
            let (backend, _) = connect(&cli, false).await?;
            let found = backend.service().get(id).await;
            close(backend).await;
            let (info, config) = found?;
            print!("{}", output::describe(&info, &config));
            Ok(ExitCode::SUCCESS)
        }
        Command::Register { file } | Command::Update { file } => {
            let entry = read_entry(file)?;
            let (backend, _) = connect(&cli, false).await?;
            let service = backend.service();
            let result = match client::upload_file_component(service, entry).await {
                Ok(entry) if matches!(cli.command, Command::Register { .. }) => {
                    service.register(entry).await
                }
                Ok(entry) => service.update(entry).await,
                Err(e) => Err(e),
            };
            close(backend).await;
            let info = result?;
            println!(
                "{} {}: {}",
                if matches!(cli.command, Command::Register { .. }) {
                    "registered"
                } else {
                    "updated"
                },
                info.id,
                info.endpoint
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Component(command) => component(&cli, command).await,
        Command::Remove { id } => {
            let (backend, _) = connect(&cli, false).await?;
            let result = backend.service().remove(id).await;
            close(backend).await;
            result?;
            println!("removed {id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch {
            ids,
            connector_type,
        } => {
            let filter = parse_type(connector_type.as_deref())?;
            let (backend, _) = connect(&cli, true).await?;
            let mut events = backend.service().watch(ids.clone(), filter).await?;
            let stopped = loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(Ok(e)) => println!("{}", output::event_line(&e)),
                        Some(Err(e)) => break Err(e),
                        None => break Ok(()),
                    },
                    () = shutdown_signal() => break Ok(()),
                }
            };
            drop(events);
            close(backend).await;
            stopped?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_entry(path: &Path) -> anyhow::Result<config::ConnectorConfig> {
    let text = config::read_bounded_text(path, config::MAX_FILE_SIZE)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    config::parse_entry(&text, base, sandport_builtins::catalog()).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}: {}", path.display(), lines.join("; "))
    })
}

async fn check(cli: &Cli, ids: &[String], output: Output) -> anyhow::Result<ExitCode> {
    let (backend, problems) = connect(cli, false).await?;
    let service = backend.service();
    let outcome: Result<Vec<_>, ClientError> = async {
        let infos = service.list(None, false).await?;
        let results = if ids.is_empty() {
            service.health_check_all(None).await?.results
        } else {
            let mut results = Vec::new();
            for id in ids {
                results.push((id.clone(), service.health_check(id).await?));
            }
            results
        };
        Ok(results
            .into_iter()
            .filter_map(|(id, health)| {
                let info = infos.iter().find(|i| i.id == id)?.clone();
                Some((info, health))
            })
            .collect())
    }
    .await;
    close(backend).await;
    let results = outcome?;
    match output {
        Output::Table => print!("{}", output::table(&results)),
        Output::Json => println!("{}", output::json(&results)),
    }
    let all_healthy = results
        .iter()
        .all(|(_, h)| h.status == HealthStatus::Healthy);
    Ok(if !problems.is_empty() {
        ExitCode::from(EXIT_USAGE)
    } else if all_healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNHEALTHY)
    })
}

async fn serve(
    cli: &Cli,
    grpc_addr: Option<String>,
    http_addr: &str,
    (max_instances, memory_budget): (usize, Option<u64>),
    api: &api::ApiFlags,
) -> anyhow::Result<ExitCode> {
    sandport_core::limits::raise_fd_limit();
    let grpc_addr = match grpc_addr {
        Some(addr) => addr,
        None => match std::env::var("GRPC_PORT") {
            Ok(port) => format!("127.0.0.1:{}", port.trim()),
            Err(_) => "127.0.0.1:50051".to_string(),
        },
    };
    let grpc = tokio::net::TcpListener::bind(&grpc_addr)
        .await
        .with_context(|| format!("cannot listen for gRPC on {grpc_addr}"))?;
    let http = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {http_addr}"))?;
    let api_options = api.options(grpc.local_addr()?, http.local_addr()?)?;
    let tls = api_options.tls.is_some();
    let tokens = api_options.tokens.is_some();
    let mut options = service_options(cli, true);
    options.runtime.max_instances = max_instances;
    options.runtime.memory_budget = memory_budget;
    let (service, problems) = Service::start(options).await?;
    print_problems(&problems);
    tracing::info!(
        grpc = %grpc.local_addr().map(|a| a.to_string()).unwrap_or(grpc_addr),
        http = %http.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| http_addr.to_string()),
        connectors = service.runtime().list(None).len(),
        max_connectors = service.runtime().max_instances(),
        tls,
        tokens,
        state = %service.state_path().map(|p| p.display().to_string()).unwrap_or_default(),
        "sandport is listening; stop it with Ctrl-C or SIGTERM"
    );
    sandport_server::serve(
        Arc::new(service),
        grpc,
        http,
        api_options,
        shutdown_signal(),
    )
    .await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn component(cli: &Cli, command: &ComponentCommand) -> anyhow::Result<ExitCode> {
    let (backend, _) = connect(cli, false).await?;
    let service = backend.service();
    let result = match command {
        ComponentCommand::Upload { file } => {
            let path = file.clone();
            let limit = cli.max_component_size.as_u64();
            let bytes = tokio::task::spawn_blocking(move || config::read_bounded(&path, limit))
                .await?
                .with_context(|| format!("cannot read {}", file.display()))?;
            service.upload_component(bytes).await.map(|stored| {
                println!("{}{}", config::DIGEST_PREFIX, stored.digest);
            })
        }
        ComponentCommand::List => service.list_components().await.map(|components| {
            for (stored, used_by) in components {
                println!(
                    "{}{}  {}  {}",
                    config::DIGEST_PREFIX,
                    stored.digest,
                    bytesize::ByteSize::b(stored.size),
                    if used_by.is_empty() {
                        "unused".to_string()
                    } else {
                        used_by.join(", ")
                    }
                );
            }
        }),
        ComponentCommand::Delete { component } => service
            .delete_component(component)
            .await
            .map(|()| println!("deleted {component}")),
    };
    close(backend).await;
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn validate(cli: &Cli) -> anyhow::Result<ExitCode> {
    let options = ServiceOptions {
        ephemeral: true,
        ..service_options(cli, false)
    };
    let (service, problems) = Service::start(options).await?;
    let count = service.runtime().list(None).len() + problems.len();
    service.shutdown().await;
    if problems.is_empty() {
        println!("config is valid: {count} connector(s)");
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &problems {
            println!("{problem}");
        }
        println!("{} problem(s) found", problems.len());
        Ok(ExitCode::from(EXIT_USAGE))
    }
}

async fn shutdown_signal() {
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
