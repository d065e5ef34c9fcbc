//! The standard process metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, ...), as every Prometheus client
//! library names them, read from `/proc/self` at each scrape. Elsewhere
//! than Linux there are none.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// What `/proc/self/stat` and friends say of this process.
#[derive(Debug, Default, PartialEq)]
struct Reading {
    cpu_seconds: f64,
    threads: u64,
    virtual_bytes: u64,
    resident_bytes: u64,
    start_time_seconds: f64,
    open_fds: u64,
    max_fds: Option<u64>,
}

#[derive(Debug)]
pub(super) struct ProcessCollector {
    ticks_per_second: f64,
    page_size: u64,
    boot_time_seconds: Option<f64>,
}

#[allow(
    clippy::disallowed_methods,
    reason = "fixed files of /proc that the kernel writes, a few hundred bytes each"
)]
impl ProcessCollector {
    pub(super) fn new() -> Self {
        ProcessCollector {
            ticks_per_second: rustix::param::clock_ticks_per_second() as f64,
            page_size: rustix::param::page_size() as u64,
            boot_time_seconds: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|stat| boot_time(&stat)),
        }
    }

    fn read(&self) -> Option<Reading> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let mut reading = parse_stat(&stat, self.ticks_per_second, self.page_size)?;
        reading.start_time_seconds += self.boot_time_seconds?;
        reading.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        reading.max_fds = sandport_core::limits::current_fd_limit();
        Some(reading)
    }
}

/// `btime` of `/proc/stat`: when the machine booted, in Unix seconds.
fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// The fields of `/proc/self/stat` (proc(5)); the start time is still
/// relative to boot.
fn parse_stat(stat: &str, ticks_per_second: f64, page_size: u64) -> Option<Reading> {
    // The command name is in parentheses and may hold spaces and ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first here; field n is at index n - 3.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let (utime, stime) = (field(14)?, field(15)?);
    Some(Reading {
        cpu_seconds: (utime + stime) as f64 / ticks_per_second,
        threads: field(20)?,
        start_time_seconds: field(22)? as f64 / ticks_per_second,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)?.saturating_mul(page_size),
        ..Reading::default()
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(reading) = self.read() else {
            return Ok(());
        };
        let Reading {
            cpu_seconds,
            threads,
            virtual_bytes,
            resident_bytes,
            start_time_seconds,
            open_fds,
            max_fds,
        } = reading;
        encoder
            .encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&cpu_seconds, None)?;
        let gauges: [(&str, &str, f64); 5] = [
            (
                "process_threads",
                "Number of OS threads in the process.",
                threads as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                virtual_bytes as f64,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                resident_bytes as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                open_fds as f64,
            ),
        ];
        for (name, help, value) in gauges {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        if let Some(max) = max_fds {
            encoder
                .encode_descriptor(
                    "process_max_fds",
                    "Maximum number of open file descriptors.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&(max as f64))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_an_awkward_name_parses() {
        // Fields 3..24 of proc(5), for a command named "a) (b".
        let stat = "4242 (a) (b) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 7 0 1000 104857600 2560 18446744073709551615";
        let reading = parse_stat(stat, 100.0, 4096).expect("parses");
        assert_eq!(reading.cpu_seconds, 4.0);
        assert_eq!(reading.threads, 7);
        assert_eq!(reading.start_time_seconds, 10.0);
        assert_eq!(reading.virtual_bytes, 104_857_600);
        assert_eq!(reading.resident_bytes, 2560 * 4096);
        assert_eq!(parse_stat("no parenthesis", 100.0, 4096), None);
        assert_eq!(parse_stat("1 (x) S 1 2", 100.0, 4096), None);
    }

    #[test]
    fn this_process_reads_as_alive() {
        let reading = ProcessCollector::new().read().expect("/proc/self is there");
        assert!(reading.resident_bytes > 0);
        assert!(reading.open_fds > 0);
        assert!(reading.threads >= 1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        assert!(reading.start_time_seconds <= now + 1.0);
        assert!(reading.start_time_seconds > now - 86_400.0 * 365.0);
    }
}
