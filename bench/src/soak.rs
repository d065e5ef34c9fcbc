//! Part 8, soak: the test suite's soak (`sandport_tests::soak`) for ten
//! minutes: 100 hostile guests (every hostile mode) beside 100 healthy
//! `prometheus` connectors under the scheduler, in this process. Good
//! checks must all be on time, and memory must level off: the lowest RSS
//! of the run's last third may exceed the lowest of the third before it
//! by at most 5%.

use std::time::Duration;

use sandport_tests::soak::{self, MAX_LATE_GROWTH, Options};

use crate::report::{Row, thousands};

pub async fn run(seconds: u64, modes: Option<&str>) -> anyhow::Result<Vec<Row>> {
    let modes = match modes {
        Some(list) => Options::modes_from(list).map_err(anyhow::Error::msg)?,
        None => Options::all_modes(),
    };
    println!(
        "method: 100 hostile connectors ({}) beside 100 healthy `prometheus` ones, scheduled (2 s / 1 s intervals, 1 s timeouts), for {seconds} s; VmRSS of this process every 200 ms",
        modes.join(", ")
    );
    let outcome = soak::run(&Options {
        length: Duration::from_secs(seconds),
        late: Duration::from_secs(1),
        modes,
        print_every: Duration::from_secs(30),
    })
    .await?;
    let mut rows = vec![Row::target(
        8,
        format!(
            "soak {seconds} s: good checks late (> 1 s) or failed, of {}",
            thousands(outcome.good_checks)
        ),
        format!("**{}**", outcome.bad),
        "0",
        outcome.bad == 0 && outcome.good_checks > 0,
    )];
    match &outcome.growth {
        Some(growth) => rows.push(Row::target(
            8,
            "soak: lowest RSS, middle third → last third (what stays between hostile guests' spikes)",
            format!(
                "{} → {} MiB: **{:+.1}%**",
                growth.from / 1024,
                growth.to / 1024,
                growth.percent
            ),
            format!("≤ {MAX_LATE_GROWTH}%"),
            growth.percent <= MAX_LATE_GROWTH,
        )),
        None => println!("too short a run to judge growth"),
    }
    rows.push(Row::info(
        8,
        "soak: RSS loaded / after the runtime shut down",
        format!(
            "{} / {} MiB",
            outcome.rss_loaded / 1024,
            outcome.rss_end / 1024
        ),
    ));
    Ok(rows)
}
