//! The `sandport` command. `serve` runs the Connectors Service; the other
//! commands talk to it through `ConnectorService`: to the service named by
//! `CONNECTORS_SERVICE_ADDR` when set, else to an in-process one started on
//! the config (and data directory) given.

mod api;
mod cluster;
mod history;
mod output;
mod serve;
mod telemetry;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// How log lines are written: `text` for people, `json` (one object a
    /// line) for a log collector
    #[arg(
        long,
        global = true,
        value_enum,
        env = "SANDPORT_LOG_FORMAT",
        default_value_t = telemetry::LogFormat::Text
    )]
    log_format: telemetry::LogFormat,
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
    /// Run the Connectors Service (gRPC and REST) until SIGINT or SIGTERM;
    /// SIGHUP reloads the config file.
    Serve {
        #[command(flatten)]
        flags: Box<serve::ServeFlags>,
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
    /// Show a connector's recorded checks (or hourly/daily rollups) from
    /// the service's history.
    History(Box<history::HistoryArgs>),
    /// Alerts: send a test message to each provider of a route (`alerts:`
    /// in the config).
    #[command(subcommand)]
    Alerts(AlertsCommand),
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

#[derive(Subcommand)]
enum AlertsCommand {
    /// Send a message marked as a test to each provider of ROUTE now;
    /// exits 1 when a provider did not accept it.
    Test { route: String },
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
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // The trace exporter's client is made on the runtime.
    let telemetry = {
        let _entered = runtime.enter();
        telemetry::init(cli.log_format, default_level)
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    };
    drop(telemetry);
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
        record: false,
        uploads_cap: None,
        changes: None,
        forwarder: None,
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
        Command::Serve { flags } => serve::serve(&cli, flags).await,
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
        Command::History(args) => history::run(&cli, args).await,
        Command::Alerts(AlertsCommand::Test { route }) => {
            let (backend, _) = connect(&cli, false).await?;
            let answers = backend.service().test_alert_route(route).await;
            close(backend).await;
            let mut all_accepted = true;
            for (provider, answer) in answers? {
                match answer {
                    Ok(status) if (200..300).contains(&status) => {
                        println!("{provider}: accepted ({status})");
                    }
                    Ok(status) => {
                        all_accepted = false;
                        println!("{provider}: refused ({status})");
                    }
                    Err(error) => {
                        all_accepted = false;
                        println!("{provider}: not sent: {error}");
                    }
                }
            }
            Ok(if all_accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_UNHEALTHY)
            })
        }
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
                    () = serve::shutdown_signal() => break Ok(()),
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
        // By id: with 10,000 connectors a search per result took 0.2 s.
        let infos: std::collections::HashMap<String, _> = infos
            .into_iter()
            .map(|info| (info.id.clone(), info))
            .collect();
        Ok(results
            .into_iter()
            .filter_map(|(id, health)| Some((infos.get(&id)?.clone(), health)))
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
