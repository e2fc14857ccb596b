//! CPU time and resident memory of processes, from `/proc/<pid>/stat` and
//! `/proc/<pid>/status` (Linux only). A target may be several processes (nginx: master
//! and workers); its figures are their sum.

use anyhow::{Context, Result};
use serde::Serialize;
use std::fs;
use std::time::Duration;

/// One reading of a group of processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// utime + stime, summed.
    pub cpu: Duration,
    /// VmRSS, summed, in KiB.
    pub rss_kib: u64,
}

/// Reads `pids` and sums them.
pub fn read(pids: &[u32]) -> Result<Usage> {
    let mut usage = Usage::default();
    for pid in pids {
        usage.cpu += cpu_time(*pid)?;
        usage.rss_kib += rss_kib(*pid)?;
    }
    Ok(usage)
}

/// This process.
pub fn own() -> Result<Usage> {
    read(&[std::process::id()])
}

/// utime + stime of one process (all its threads).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = stat_fields(&stat)
        .and_then(|fields| {
            // Fields after `comm`, 0-based: state is 0, utime is 11, stime is 12.
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .with_context(|| format!("parsing /proc/{pid}/stat"))?;
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Ok(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / per_second,
    ))
}

/// The parent pid of `pid`, if it is readable.
pub fn parent(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&stat)?.get(1)?.parse().ok()
}

/// The space-separated fields after `(comm)`, which may itself contain spaces.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    Some(after_comm.split_whitespace().collect())
}

/// VmRSS of one process in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// `pid` and every process whose parent it is (nginx's workers).
pub fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let child = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(child) = child
                && parent(child) == Some(pid)
            {
                pids.push(child);
            }
        }
    }
    pids
}

/// Raises this process's open-file limit (soft and, if allowed, hard) to at least
/// `wanted`; children spawned afterwards inherit it. Returns the soft limit now in force.
pub fn raise_nofile(wanted: u64) -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::MAX);
    if soft >= wanted {
        return soft;
    }
    let hard = current.maximum.unwrap_or(u64::MAX);
    let raised = rustix::process::Rlimit {
        current: Some(wanted),
        maximum: Some(hard.max(wanted)),
    };
    if setrlimit(Resource::Nofile, raised).is_ok() {
        return wanted;
    }
    // Not allowed to raise the hard limit: go as high as it allows.
    let capped = rustix::process::Rlimit {
        current: Some(hard.min(wanted)),
        maximum: current.maximum,
    };
    match setrlimit(Resource::Nofile, capped) {
        Ok(()) => hard.min(wanted),
        Err(_) => soft,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let before = own().unwrap();
        // Burn CPU until the tick-granular clock moves (bounded, in case it never does).
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while own().unwrap().cpu == before.cpu && started.elapsed() < Duration::from_secs(10) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
        }
        let after = own().unwrap();
        assert!(after.cpu > before.cpu, "{before:?} {after:?}");
        assert!(after.rss_kib > 0);
        assert!(parent(std::process::id()).is_some());
    }

    #[test]
    fn parses_a_comm_with_spaces() {
        let fields = stat_fields("42 (a b) S 1 2 3").unwrap();
        assert_eq!(fields, ["S", "1", "2", "3"]);
    }
}
