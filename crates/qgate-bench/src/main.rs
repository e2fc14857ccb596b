//! `qgate-bench`: drives the Amazon Q simulator directly, behind nginx (a plain relay) and
//! behind qgate, in one run with one request mix, and reports throughput, latency, time to
//! first token, added latency over direct, per-chunk relay latency, CPU per request, memory
//! and errors (JSON to a file, markdown to stdout).
//!
//! Map: [`mix`] (what is sent), [`client`] (how, and what a reply tells), [`load`] (open
//! loop, closed loop, held streams), [`targets`] (the child processes), [`proc_stats`]
//! (CPU and RSS from `/proc`), [`run`] (the phases in order), [`report`] (JSON, markdown).

mod client;
mod load;
mod mix;
mod proc_stats;
mod report;
mod run;
mod targets;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "qgate-bench",
    about = "Load harness: simulator direct vs nginx vs qgate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the benchmark and print the report.
    Run(Box<RunArgs>),
    /// The simulator alone, as `qgate sim` runs it: the stand-in the harness starts when no
    /// qgate binary is built and the qgate target is not asked for.
    #[command(hide = true)]
    Sim {
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[arg(long, default_value_t = 3)]
        accounts: usize,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// A short run (well under a minute): small durations and 200 held streams.
    #[arg(long)]
    quick: bool,
    /// Measured time per phase and target (`20s`, `500ms`, or seconds).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Warm-up per target before measuring.
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Open-loop rate, requests per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Closed-loop concurrency (also the warm-up's).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Streams held open at once for the memory measurement (0 skips it).
    #[arg(long)]
    streams: Option<usize>,
    /// How long the simulator holds each of those streams before answering (default:
    /// 2 s + 0.5 ms per stream).
    #[arg(long, value_parser = parse_duration)]
    hold: Option<Duration>,
    /// How long qgate is left idle after the load phases before its RSS is read again
    /// (freed memory is given back after a quiet spell; default 25 s, 0 with --quick).
    #[arg(long, value_parser = parse_duration)]
    settle: Option<Duration>,
    /// Targets, comma-separated: direct, nginx, qgate.
    #[arg(long, default_value = "direct,nginx,qgate")]
    targets: String,
    /// Request mix: `scenario=weight,...` (see `mix.rs` for the scenarios).
    #[arg(long, default_value = mix::DEFAULT_MIX)]
    mix: String,
    /// Which phases to run, comma-separated: open, closed, frames, streams.
    #[arg(long, default_value = "open,closed,frames,streams")]
    phases: String,
    /// Each phase is split into this many rounds, interleaving the targets, so slow drift
    /// of a shared machine hits every target alike.
    #[arg(long)]
    rounds: Option<u32>,
    /// Simulated accounts behind qgate (1 to 1 000: the pool size issue 6 asks about).
    #[arg(long, default_value_t = 3)]
    accounts: usize,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/qgate-bench/report.json")]
    out: PathBuf,
    /// The qgate binary (default: `qgate` beside this binary, else `target/release/qgate`).
    #[arg(long)]
    qgate: Option<PathBuf>,
    /// The Claude Code request fixture (`{"body": ...}`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/claude-code/first-turn.json"))]
    fixture: PathBuf,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Sim { port, accounts } => runtime.block_on(serve_sim(port, accounts)),
        Command::Run(args) => {
            let settings = settings(*args)?;
            let report = runtime.block_on(run::run(&settings))?;
            print!("{}", report::markdown::render(&report));
            if let Some(dir) = settings.out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&settings.out, serde_json::to_vec_pretty(&report)?)
                .with_context(|| format!("writing {}", settings.out.display()))?;
            println!("\nJSON report: {}", settings.out.display());
            if report.errors_total > 0 {
                bail!("{} request(s) failed", report.errors_total);
            }
            Ok(())
        }
    }
}

fn settings(args: RunArgs) -> Result<run::Settings> {
    let quick = args.quick;
    let pick = |value: Option<Duration>, quick_default: u64, full_default: u64| {
        value.unwrap_or(Duration::from_millis(if quick {
            quick_default
        } else {
            full_default
        }))
    };
    let mut targets = run::Targets::default();
    for name in args
        .targets
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match name {
            "direct" => targets.direct = true,
            "nginx" => targets.nginx = true,
            "qgate" => targets.qgate = true,
            other => bail!("unknown target `{other}` (direct, nginx, qgate)"),
        }
    }
    let mut phases = run::Phases::default();
    for name in args
        .phases
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match name {
            "open" => phases.open = true,
            "closed" => phases.closed = true,
            "frames" => phases.frames = true,
            "streams" => phases.streams = true,
            other => bail!("unknown phase `{other}` (open, closed, frames, streams)"),
        }
    }
    let qgate = match args.qgate {
        Some(path) => path,
        None => default_qgate(),
    };
    let sim_program = if qgate.is_file() {
        qgate.clone()
    } else if targets.qgate {
        bail!(
            "no qgate binary at {} — build it first with `cargo build --release -p qgate` \
             (or pass --qgate PATH)",
            qgate.display()
        );
    } else {
        println!(
            "notice: no qgate binary at {}; the simulator runs as `qgate-bench sim` (the same \
             library in its own process)",
            qgate.display()
        );
        std::env::current_exe().context("locating qgate-bench itself")?
    };
    Ok(run::Settings {
        duration: pick(args.duration, 3_000, 20_000),
        warmup: pick(args.warmup, 1_000, 3_000),
        rate: args.rate.unwrap_or(if quick { 200.0 } else { 500.0 }),
        concurrency: args.concurrency.unwrap_or(16),
        streams: args.streams.unwrap_or(if quick { 200 } else { 10_000 }),
        hold: args.hold,
        settle: pick(args.settle, 0, 25_000),
        rounds: args.rounds.unwrap_or(if quick { 1 } else { 3 }).max(1),
        targets,
        phases,
        mix: mix::parse_mix(&args.mix)?,
        accounts: args.accounts.clamp(1, 1000),
        out: args.out,
        qgate,
        sim_program,
        fixture: args.fixture,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    })
}

/// Serves the simulator until SIGTERM or Ctrl-C, announcing its address like `qgate sim`.
async fn serve_sim(port: u16, accounts: usize) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let config = qgate_sim::SimConfig {
        accounts,
        ..Default::default()
    };
    let sim = qgate_sim::start(config, listener).await?;
    println!(
        "Amazon Q simulator on {} with {accounts} account(s)",
        sim.base_url()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}

fn default_qgate() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("qgate")));
    match beside {
        Some(path) if path.is_file() => path,
        _ => PathBuf::from("target/release/qgate"),
    }
}

/// `20s`, `500ms`, `2m`, or plain seconds (`1.5`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (20s, 500ms, 2m)"))?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("`{text}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }
}
