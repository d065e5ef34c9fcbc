//! The `sandport` command: `check`, `serve` and `validate` over a connectors
//! config (the embedded default when no `--config` is given).

mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use sandport::config::{self, Loaded};
use sandport::{HealthStatus, Runtime, RuntimeOptions};

#[derive(Parser)]
#[command(
    name = "sandport",
    version,
    about = "A WebAssembly-sandboxed connector runtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Connectors config file [default: the config built into the binary]
    #[arg(long, short, env = "SANDPORT_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Check each connector (or the named ones) once and print the results.
    ///
    /// Exits 0 when all are healthy, 1 when any is not, 2 when the config
    /// has problems.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Connector ids to check [default: all]
        ids: Vec<String>,
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Run the health scheduler until SIGINT or SIGTERM.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Check a config (including starting each connector once) and print
    /// every problem. Exits 0 when there is none, 2 otherwise.
    Validate {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

const EXIT_UNHEALTHY: u8 = 1;
const EXIT_BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_BAD_CONFIG)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check {
            config,
            ids,
            output,
        } => check(config.config.as_deref(), &ids, output).await,
        Command::Serve { config } => serve(config.config.as_deref()).await,
        Command::Validate { config } => validate(config.config.as_deref()).await,
    }
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Loaded> {
    Ok(match path {
        Some(path) => config::load_file(path, sandport::builtins())?,
        None => config::parse(
            config::DEFAULT_CONFIG,
            "the built-in config",
            Path::new("."),
            sandport::builtins(),
        )?,
    })
}

fn print_problems(problems: &[config::Problem]) {
    for problem in problems {
        eprintln!("config error: {problem}");
    }
}

async fn check(path: Option<&Path>, ids: &[String], output: Output) -> anyhow::Result<ExitCode> {
    let mut loaded = load_config(path)?;
    if !ids.is_empty() {
        let unknown: Vec<&str> = ids
            .iter()
            .filter(|id| !loaded.connectors.iter().any(|c| &c.id == *id))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            anyhow::bail!("no connector with id {} in the config", unknown.join(", "));
        }
        loaded.connectors.retain(|c| ids.contains(&c.id));
    }
    let runtime = Runtime::new(RuntimeOptions {
        schedule: false,
        ..RuntimeOptions::default()
    })
    .context("cannot start the runtime")?;
    let problems = runtime.load(loaded).await;
    print_problems(&problems);
    let results: Vec<_> = runtime
        .check_all(None)
        .await
        .into_iter()
        .filter_map(|(id, health)| runtime.get(&id).ok().map(|(info, _)| (info, health)))
        .collect();
    runtime.shutdown().await;
    match output {
        Output::Table => print!("{}", output::table(&results)),
        Output::Json => println!("{}", output::json(&results)),
    }
    let all_healthy = results
        .iter()
        .all(|(_, h)| h.status == HealthStatus::Healthy);
    Ok(if !problems.is_empty() {
        ExitCode::from(EXIT_BAD_CONFIG)
    } else if all_healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNHEALTHY)
    })
}

async fn serve(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = load_config(path)?;
    let runtime = Runtime::new(RuntimeOptions::default()).context("cannot start the runtime")?;
    let problems = runtime.load(loaded).await;
    print_problems(&problems);
    tracing::info!(
        connectors = runtime.list(None).len(),
        "sandport is running; stop it with Ctrl-C or SIGTERM"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    runtime.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn validate(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = load_config(path)?;
    let count = loaded.connectors.len() + loaded.problems.len();
    let runtime = Runtime::new(RuntimeOptions {
        schedule: false,
        ..RuntimeOptions::default()
    })
    .context("cannot start the runtime")?;
    let problems = runtime.load(loaded).await;
    runtime.shutdown().await;
    if problems.is_empty() {
        println!("config is valid: {count} connector(s)");
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &problems {
            println!("{problem}");
        }
        println!("{} problem(s) found", problems.len());
        Ok(ExitCode::from(EXIT_BAD_CONFIG))
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
