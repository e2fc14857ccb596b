//! One benchmark run, in order: raise the open-file limit; start the simulator, nginx and
//! qgate as child processes; build the request bodies; warm every target up; measure the
//! phases (open loop, closed loop, frame cost) with the targets interleaved in rounds;
//! hold K streams on each relay; read memory; stop everything.

mod measure;

use crate::client::{Endpoint, Protocol};
use crate::load::{Workload, closed_loop, streams};
use crate::mix::{self, Prepared, Scenario};
use crate::proc_stats;
use crate::report::{FrameCost, Memory, Meta, PhaseReport, Report};
use crate::targets::{self, Relay, nginx};
use anyhow::{Context, Result};
use measure::Target;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which targets to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Targets {
    pub direct: bool,
    pub nginx: bool,
    pub qgate: bool,
}

/// Which phases to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    pub open: bool,
    pub closed: bool,
    pub frames: bool,
    pub streams: bool,
}

/// Everything the command line decided.
#[derive(Debug, Clone)]
pub struct Settings {
    pub duration: Duration,
    pub warmup: Duration,
    pub rate: f64,
    pub concurrency: usize,
    pub streams: usize,
    pub hold: Option<Duration>,
    pub settle: Duration,
    pub rounds: u32,
    pub targets: Targets,
    pub phases: Phases,
    pub mix: Vec<Scenario>,
    pub accounts: usize,
    pub out: PathBuf,
    pub qgate: PathBuf,
    /// `qgate` (as `qgate sim`), or this harness when no qgate binary is built.
    pub sim_program: PathBuf,
    pub fixture: PathBuf,
    pub command: String,
}

/// Open files of a relay besides its streams (listeners, runtime, logs, state files).
const DESCRIPTORS_BESIDE_STREAMS: u64 = 100;

/// A request may take this long beyond its scripted pauses.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(settings: &Settings) -> Result<Report> {
    // qgate holds a client and an upstream socket per stream; the harness and the
    // simulator one each; nginx two. Children inherit the limit.
    let wanted = (settings.streams as u64 * 2 + DESCRIPTORS_BESIDE_STREAMS).max(65_536);
    let nofile_limit = proc_stats::raise_nofile(wanted);
    let dir = tempfile::Builder::new().prefix("qgate-bench-").tempdir()?;
    // A relay needs two descriptors per stream; past the limit it would fail requests,
    // which measures the limit, not the relay.
    let most_streams = (nofile_limit.saturating_sub(DESCRIPTORS_BESIDE_STREAMS) / 2) as usize;
    let held_count = settings.streams.min(most_streams);
    let mut notes = vec![
        "All processes (harness, simulator, nginx, qgate) share this machine's cores; \
         compare targets within this run, not across runs."
            .to_owned(),
        "direct and nginx get the simulator's protocol (Kiro dialect), qgate the Anthropic \
         API; the simulator answers all with the same text (same prompts, same words), so \
         the targets carry the same content, not byte-identical bodies."
            .to_owned(),
    ];
    if held_count < settings.streams {
        let note = format!(
            "Held streams capped at {held_count} (asked for {}): the open-file limit is \
             {nofile_limit} and cannot be raised here (no CAP_SYS_RESOURCE); a relay needs \
             two descriptors per stream plus ~{DESCRIPTORS_BESIDE_STREAMS}.",
            settings.streams
        );
        println!("notice: {note}");
        notes.push(note);
    }
    let sim = targets::spawn_sim(&settings.sim_program, settings.accounts, dir.path()).await?;
    let token = targets::sim_access_token(sim.addr).await?;
    let profile_arn = qgate_sim::credentials(1).profile_arn;
    let prepared = mix::prepare(&settings.mix, &settings.fixture, &profile_arn)?;
    let order = mix::weighted_order(&prepared);
    let nginx_bin = settings.targets.nginx.then(nginx::find).flatten();
    if settings.targets.nginx && nginx_bin.is_none() {
        println!("notice: nginx is not installed; skipping the nginx target");
        notes.push("nginx was not installed: no nginx target.".to_owned());
    }

    let amazonq = Endpoint {
        addr: sim.addr,
        protocol: Protocol::AmazonQ,
        bearer: Some(token),
    };
    let mut relays: Vec<(&'static str, Relay)> = Vec::new();
    if let Some(bin) = &nginx_bin {
        let connections = (held_count as u64 * 2 + 1024).max(4096);
        let relay = nginx::spawn(bin, sim.addr, connections, dir.path()).await?;
        relays.push(("nginx", relay));
    }
    if settings.targets.qgate {
        let relay =
            targets::spawn_qgate(&settings.qgate, sim.addr, settings.accounts, dir.path()).await?;
        relays.push(("qgate", relay));
    }
    let mut list: Vec<Target<'_>> = Vec::new();
    if settings.targets.direct {
        list.push(Target::new(
            "direct",
            amazonq.clone(),
            None,
            &prepared,
            &order,
        ));
    }
    for (name, relay) in &relays {
        let protocol = if *name == "qgate" {
            Protocol::Anthropic
        } else {
            Protocol::AmazonQ
        };
        let endpoint = Endpoint {
            addr: relay.addr,
            protocol,
            bearer: amazonq.bearer.clone(),
        };
        list.push(Target::new(name, endpoint, Some(relay), &prepared, &order));
    }

    let sim_pid = sim.process.pid();
    let mut warmup_errors = 0;
    for target in &list {
        let run =
            closed_loop::run(target.work.clone(), settings.concurrency, settings.warmup).await;
        warmup_errors += run.recorder.error_count();
    }
    let mut memory = Memory::default();
    let relay_rss = |name: &str| {
        list.iter()
            .find(|t| t.name == name)
            .and_then(|t| proc_stats::read(&t.pids()).ok())
            .map(|u| u.rss_kib)
    };
    memory.qgate_idle_rss_kib = relay_rss("qgate");
    memory.nginx_idle_rss_kib = relay_rss("nginx");

    let mut phases = Vec::new();
    if settings.phases.open {
        phases.push(measure::open_phase(settings, &list, sim_pid).await?);
    }
    if settings.phases.closed {
        phases.push(measure::closed_phase(settings, &list, sim_pid, "closed", false).await?);
    }
    let mut frame_cost = Vec::new();
    if settings.phases.frames {
        let (cost, reports) = frames_phase(settings, &list, sim_pid).await?;
        frame_cost = cost;
        phases.extend(reports);
    }
    memory.qgate_after_load_rss_kib = relay_rss("qgate");
    if !settings.settle.is_zero() && memory.qgate_after_load_rss_kib.is_some() {
        tokio::time::sleep(settings.settle).await;
        memory.qgate_settled_rss_kib = relay_rss("qgate");
        memory.settle_secs = settings.settle.as_secs_f64();
    }
    if settings.phases.streams && held_count > 0 {
        for target in list.iter().filter(|t| t.relay.is_some()) {
            let held = held_streams(settings, held_count, target, sim.addr).await?;
            memory.streams.push((target.name.to_owned(), held));
        }
        // The idle target must hold after the heaviest phase too, not only before it.
        if !settings.settle.is_zero() {
            tokio::time::sleep(settings.settle).await;
            memory.qgate_after_streams_rss_kib = relay_rss("qgate");
        }
        notes.push(format!(
            "Open-file limit for the streams phase: {nofile_limit}. qgate needs about two \
             descriptors per open stream (client and upstream socket) plus a few dozen: 10 000 \
             streams need a limit above ~20 100 (65 536 is a comfortable setting)."
        ));
    }

    for (_, relay) in relays {
        relay.process.stop().await;
    }
    sim.process.stop().await;

    let mut report = Report {
        meta: meta(settings, nginx_bin, nofile_limit, notes),
        warmup_errors,
        phases,
        frame_cost,
        memory,
        errors_total: 0,
    };
    report.count_errors();
    Ok(report)
}

/// CPU per request for 20 and 200 upstream frames per reply, on each relay.
async fn frames_phase(
    settings: &Settings,
    list: &[Target<'_>],
    sim_pid: u32,
) -> Result<(Vec<FrameCost>, Vec<PhaseReport>)> {
    let profile_arn = qgate_sim::credentials(1).profile_arn;
    let mut reports = Vec::new();
    for name in ["frames20", "frames200"] {
        let prepared = mix::prepare(&mix::parse_mix(name)?, &settings.fixture, &profile_arn)?;
        let relays: Vec<Target<'_>> = list
            .iter()
            .filter(|t| t.relay.is_some())
            .map(|t| t.with_mix(&prepared))
            .collect();
        reports.push(measure::closed_phase(settings, &relays, sim_pid, name, true).await?);
    }
    let relay_cpu = |report: &PhaseReport, target: &str| {
        report
            .targets
            .iter()
            .find(|t| t.target == target)
            .and_then(|t| t.cpu.relay_us_per_request)
    };
    let cost = list
        .iter()
        .filter_map(|t| {
            let twenty = relay_cpu(&reports[0], t.name)?;
            let two_hundred = relay_cpu(&reports[1], t.name)?;
            Some(FrameCost {
                target: t.name.to_owned(),
                cpu_us_per_request_20_frames: twenty,
                cpu_us_per_request_200_frames: two_hundred,
                cpu_us_per_extra_frame: (two_hundred - twenty) / 180.0,
            })
        })
        .collect();
    Ok((cost, reports))
}

/// K streams held open on one relay.
async fn held_streams(
    settings: &Settings,
    count: usize,
    target: &Target<'_>,
    sim: std::net::SocketAddr,
) -> Result<streams::StreamsMemory> {
    // Long enough to open every connection and read the relay's memory.
    let hold = settings
        .hold
        .unwrap_or(Duration::from_millis(2_000 + count as u64 / 2));
    let mut scenario = mix::builtin("short_stream").context("the short_stream scenario")?;
    scenario.name = "held".to_owned();
    scenario.directive = format!(
        "[[sim words=20 chunk=1 first_ms={} stamp=1]]",
        hold.as_millis()
    );
    let profile_arn = qgate_sim::credentials(1).profile_arn;
    let prepared: Vec<Prepared> = mix::prepare(&[scenario], &settings.fixture, &profile_arn)?;
    let work = Arc::new(Workload::new(
        target.work.endpoint.clone(),
        &prepared,
        vec![0],
        hold + REQUEST_TIMEOUT,
    ));
    let (memory, _) = streams::run(work, count, &target.pids(), sim, hold).await?;
    Ok(memory)
}

fn meta(
    settings: &Settings,
    nginx: Option<PathBuf>,
    nofile_limit: u64,
    notes: Vec<String>,
) -> Meta {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
    Meta {
        date: jiff::Timestamp::now().to_string(),
        command: settings.command.clone(),
        nproc: std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model,
        kernel,
        qgate_binary: settings.qgate.display().to_string(),
        simulator: format!("{} sim", settings.sim_program.display()),
        nginx: nginx.map(|p| p.display().to_string()),
        accounts: settings.accounts,
        mix: settings
            .mix
            .iter()
            .map(|s| format!("{}×{} {}", s.weight, s.name, s.directive))
            .collect(),
        nofile_limit,
        notes,
    }
}
