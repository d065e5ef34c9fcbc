//! What every part shares: percentiles, process memory from `/proc`, the
//! machine's description, and the rows of the summary table.
//!
//! A part prints its own figures as it goes and ends with [`Row`]s. When the
//! `all` command runs a part (as a child process of its own, so that memory
//! figures are not mixed up), the child prints each row as one line starting
//! with [`ROW_PREFIX`] and the parent collects them into the final table.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Marks a machine-readable row on a part's stdout.
pub const ROW_PREFIX: &str = "@row ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Meets the target.
    Met,
    /// Misses the target.
    Missed,
    /// No target; context for the other figures.
    Info,
}

impl Verdict {
    pub fn from_bool(met: bool) -> Self {
        if met { Verdict::Met } else { Verdict::Missed }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Met => "met",
            Verdict::Missed => "**missed**",
            Verdict::Info => "—",
        })
    }
}

/// One line of the summary table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// The numbered part (1–8).
    pub part: u8,
    pub figure: String,
    pub value: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Row {
    pub fn info(part: u8, figure: impl Into<String>, value: impl Into<String>) -> Self {
        Row {
            part,
            figure: figure.into(),
            value: value.into(),
            target: "—".into(),
            verdict: Verdict::Info,
        }
    }

    pub fn target(
        part: u8,
        figure: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) -> Self {
        Row {
            part,
            figure: figure.into(),
            value: value.into(),
            target: target.into(),
            verdict: Verdict::from_bool(met),
        }
    }
}

/// Prints the rows for a parent `all` (when `emit`) and as a table.
pub fn finish(rows: &[Row], emit: bool) {
    if emit {
        for row in rows {
            match serde_json::to_string(row) {
                Ok(json) => println!("{ROW_PREFIX}{json}"),
                Err(e) => eprintln!("cannot encode a row: {e}"),
            }
        }
    } else if !rows.is_empty() {
        println!();
        print!("{}", table(rows));
    }
}

/// The rows as a markdown table: part, figure, measured, target, verdict.
pub fn table(rows: &[Row]) -> String {
    let mut out =
        String::from("| # | figure | measured | target | verdict |\n|---|---|---|---|---|\n");
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            row.part, row.figure, row.value, row.target, row.verdict
        ));
    }
    out
}

/// Order statistics of a set of durations (sorted on construction).
pub struct Stats {
    sorted: Vec<Duration>,
}

impl Stats {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Stats { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The `p`-quantile (0 < p ≤ 1) by the nearest-rank method.
    pub fn quantile(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn median(&self) -> Duration {
        self.quantile(0.5)
    }

    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }

    pub fn min(&self) -> Duration {
        self.sorted.first().copied().unwrap_or_default()
    }
}

/// A duration with a unit that suits its size: `812 ns`, `41.3 µs`,
/// `2.41 ms`, `1.93 s`.
pub fn human(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Events per second.
pub fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// An integer with thousands separators.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`, ...).
pub fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Bytes the C allocator has handed out and not had back (glibc's
/// `mallinfo2`: small blocks in use plus large mmapped ones), or `None` off
/// glibc. Unlike RSS, it leaves out freed memory the allocator keeps.
pub fn malloc_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let info = unsafe { libc::mallinfo2() };
        Some((info.uordblks + info.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// This process's resident set now, in KiB.
pub fn rss_kib() -> u64 {
    status_kib(None, "VmRSS").unwrap_or(0)
}

/// This process's peak resident set (since start or the last
/// [`reset_peak_rss`]), in KiB.
pub fn peak_rss_kib() -> u64 {
    status_kib(None, "VmHWM").unwrap_or(0)
}

/// Resets `VmHWM` to the current RSS (Linux: `echo 5 > clear_refs`).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// How many memory mappings this process holds (the kernel allows
/// `vm.max_map_count`, 65,530 by default).
pub fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Resident memory by kind of mapping, largest first: `(kind, mappings,
/// RSS KiB)`. Anonymous mappings are grouped by permissions and size (the
/// runtime maps one guest's linear memory, stack, tables in mappings of
/// their own, each kind with the same size); named ones by name (`[heap]`;
/// files together).
pub fn rss_by_mapping() -> Vec<(String, usize, u64)> {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps") else {
        return Vec::new();
    };
    let mut groups: std::collections::BTreeMap<String, (usize, u64)> = Default::default();
    let mut kind = String::new();
    let mut perms = String::new();
    let mut size_kib = 0u64;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range perms offset dev inode [name].
            let parts: Vec<&str> = line.split_whitespace().collect();
            perms = parts.get(1).copied().unwrap_or_default().to_string();
            let name = parts.get(5).copied().unwrap_or_default();
            kind = if name.is_empty() {
                String::new()
            } else if name.starts_with('[') {
                name.to_string()
            } else {
                "files".to_string()
            };
            size_kib = 0;
        } else if first == "Size:" {
            size_kib = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        } else if first == "Rss:" {
            let rss: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let key = if kind.is_empty() {
                format!("anonymous {perms} of {} KiB", thousands(size_kib))
            } else {
                kind.clone()
            };
            let entry = groups.entry(key).or_default();
            entry.0 += 1;
            entry.1 += rss;
        }
    }
    let mut list: Vec<(String, usize, u64)> = groups
        .into_iter()
        .map(|(k, (n, rss))| (k, n, rss))
        .collect();
    list.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)));
    list
}

/// CPU time (user + system) a process has used so far.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux the project targets.
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time the calling thread has run (exact, from the kernel's clock).
pub fn thread_cpu() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        Duration::ZERO
    }
}

/// CPU time all threads of this process have run, in nanoseconds (the sum
/// of `/proc/self/task/*/schedstat`; exact, unlike the 10 ms ticks of
/// `/proc/self/stat`). Threads that ended are not counted, so take
/// differences over stretches in which the runtime's threads live on.
pub fn threads_cpu_ns() -> u64 {
    threads_cpu(None).values().map(|(_, ns)| ns).sum()
}

/// CPU time of each live thread of process `pid` (`None`: this one) so
/// far, in nanoseconds, by thread id, with the thread's name
/// (`/proc/PID/task/TID/{comm,schedstat}`).
pub fn threads_cpu(pid: Option<u32>) -> std::collections::BTreeMap<String, (String, u64)> {
    let mut threads = std::collections::BTreeMap::new();
    let dir = pid.map_or_else(
        || "/proc/self/task".to_string(),
        |pid| format!("/proc/{pid}/task"),
    );
    let Ok(tasks) = std::fs::read_dir(dir) else {
        return threads;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(ns) = ns {
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            threads.insert(
                task.file_name().to_string_lossy().into_owned(),
                (name.trim().to_string(), ns),
            );
        }
    }
    threads
}

/// Pins every thread of process `pid` (0: this process) to `cpu`; threads
/// they start later inherit it. False where that is not possible (not
/// Linux with glibc, no such CPU, or not permitted).
pub fn pin_process(pid: u32, cpu: usize) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let dir = if pid == 0 {
            "/proc/self/task".to_string()
        } else {
            format!("/proc/{pid}/task")
        };
        let Ok(tasks) = std::fs::read_dir(dir) else {
            return false;
        };
        let mut all = true;
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
            // sched_setaffinity only read and write that set.
            let pinned = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
            };
            all &= pinned;
        }
        all
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (pid, cpu);
        false
    }
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `/proc/loadavg`, trimmed.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// CPUs, CPU model and memory, from `/proc`.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or_else(
            || "unknown".into(),
            |kib| format!("{:.1} GiB", kib as f64 / 1048576.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), {memory} RAM, Linux {kernel}")
}

/// Prints the conditions of a run: machine, load, open-files limit.
pub fn print_conditions(part: &str) {
    println!("== {part}");
    println!("machine: {}", machine());
    println!("load average (/proc/loadavg): {}", loadavg());
}
