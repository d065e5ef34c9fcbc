//! The soak (`sandport_tests::soak`) as a command: 100 hostile and 100
//! healthy connectors under the scheduler. Exits 1 if any good check was
//! late or failed, or if the process's memory still grew over the last
//! third of the run by more than 5%.
//!
//! ```text
//! cargo run --release -p sandport-tests --bin soak -- [SECONDS] [LATE_MS]
//! ```
//!
//! `SOAK_MODES=alloc,loop` runs only those hostile modes (the 100 hostile
//! connectors are spread over them), to find which one a change affects;
//! `SOAK_PRINT_EVERY=10` prints RSS every 10 s instead of every 30 s.

use std::process::ExitCode;
use std::time::Duration;

use sandport_tests::soak::{self, Options};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    // As the service runs (see `limit_arenas`).
    sandport_core::allocator::limit_arenas();
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let late_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let print_every: u64 = std::env::var("SOAK_PRINT_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(30);
    let modes = match std::env::var("SOAK_MODES") {
        Ok(list) => match Options::modes_from(&list) {
            Ok(modes) => modes,
            Err(e) => {
                eprintln!("soak: SOAK_MODES: {e}");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => Options::all_modes(),
    };
    let options = Options {
        length: Duration::from_secs(seconds),
        late: Duration::from_millis(late_ms),
        modes,
        print_every: Duration::from_secs(print_every),
    };
    match soak::run(&options).await {
        Ok(outcome) if outcome.passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::FAILURE
        }
    }
}
