//! The chaos soak (issue 8): two gateways sharing one Redis and one simulator (rotating
//! refresh tokens), concurrent streaming and non-streaming traffic of every shape, while a
//! seeded driver injects every simulator fault kind, kills and restarts `redis-server`,
//! adds and removes accounts through the admin API and expires every access token.
//!
//! Every reply is checked as it arrives (`chaos/check.rs`); after each round the faults
//! are cleared and the round is judged once the cooldowns have run (`chaos/verdict.rs`):
//! gauges at zero, account sets converged, every account's state explained by the
//! injection log. No panic may happen on the soak's runtime (`chaos/panics.rs`), and the
//! number of live tasks after the last round may not exceed the first round's by more
//! than a small bound (a leak of anything per request or per stream would).
//!
//! Short by default (two rounds, 24 s of traffic). `QGATE_CHAOS_SEED` picks another plan,
//! `QGATE_CHAOS_SECS` runs longer (see `docs/reliability-chaos.md`).

mod check;
mod driver;
mod panics;
mod plan;
mod restore;
mod traffic;
mod verdict;

use crate::support::{Opts, TestCluster};
use driver::Chaos;
use plan::{CONFIGURED, Settings};
use std::time::Duration;
use tokio::time::Instant;
use traffic::Tally;

/// How long a round may take to settle after its traffic (cooldowns are 1–2 s; the bound
/// only keeps a broken build from hanging).
const SETTLE_LIMIT: Duration = Duration::from_secs(20);
/// Live tasks the last round may end with beyond the first: idle pooled connections
/// (a task on the simulator's end) vary with the peak concurrency a round happened to
/// reach.
const TASK_SLACK: usize = 4 * plan::WORKERS;

#[test]
fn chaos_soak_every_reply_is_whole_or_a_correct_error_and_every_state_is_explained() {
    let settings = Settings::from_env();
    if let Ok(filter) = std::env::var("QGATE_CHAOS_LOG") {
        // Opt-in gateway logs on stderr, for reading a failure (e.g. `qgate_auth=info`).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let panics = panics::watch();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(format!("{}worker", panics::THREAD_PREFIX))
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime.block_on(soak(settings));
    let panicked = panics.seen();
    report.print(settings, &panicked);
    let mut failures = report.failures.clone();
    let violations = &report.tally.violations;
    failures.extend(violations.iter().take(30).cloned());
    if violations.len() > 30 {
        failures.push(format!("… and {} more violations", violations.len() - 30));
    }
    failures.extend(panicked.iter().map(|p| format!("panic: {p}")));
    assert!(
        failures.is_empty(),
        "chaos soak (seed {:#x}, {} s) failed:\n  {}",
        settings.seed,
        settings.secs,
        failures.join("\n  ")
    );
}

/// What the soak saw, for the summary and the verdict.
#[derive(Debug, Default)]
struct Report {
    tally: Tally,
    chaos_log: Vec<String>,
    counts: std::collections::BTreeMap<String, u64>,
    final_states: Vec<String>,
    /// (live tasks, RSS KiB) after each round settled.
    after_round: Vec<(usize, u64)>,
    failures: Vec<String>,
}

async fn soak(settings: Settings) -> Report {
    let added = plan::max_added(&settings);
    let opts = Opts::accounts(CONFIGURED)
        .sim(qgate_sim::SimConfig {
            accounts: CONFIGURED + added,
            rotate_refresh_tokens: true,
            ..Default::default()
        })
        .env("ADMIN_API_KEY", "admin-key-for-tests")
        .env("CIRCUIT_BREAKER_ERROR_THRESHOLD", "3")
        .env("CIRCUIT_BREAKER_RECOVERY_TIMEOUT", "2s")
        .env("HEALTH_CHECK_INTERVAL", "1s")
        .env("UPSTREAM_FIRST_EVENT_TIMEOUT", "1s")
        .env("UPSTREAM_IDLE_TIMEOUT", "2s")
        // Shorter than a slow first byte: heads go out early and failover runs under pings.
        .env("PING_INTERVAL", "400ms");
    let mut c = TestCluster::start(2, opts).await;
    let claude_code = plan::claude_code_body();
    let mut chaos = Chaos::new(Instant::now());
    let mut report = Report::default();
    let mut baseline = verdict::Baseline::take(&verdict::observe(&c).await);
    let mut carried = std::collections::BTreeMap::new();
    for round in 0..settings.rounds() {
        let schedule = plan::schedule(&settings, round);
        let mut rng = settings.rng(round, 2);
        let round_start = Instant::now();
        let deadline = round_start + settings.round_length();
        let gateways = [c.nodes[0].base.clone(), c.nodes[1].base.clone()];
        chaos.note(
            round,
            format!("round starts: {} actions planned", schedule.len()),
        );
        let ((), tally) = tokio::join!(
            chaos.run_round(&mut c, round, round_start, &schedule, &mut rng),
            traffic::run(settings, round, gateways, deadline, claude_code.clone()),
        );
        chaos.note(
            round,
            format!("traffic stopped after {} requests", tally.total()),
        );
        report.tally.merge(tally);
        let cleared = c
            .http
            .delete(format!("{}/_sim/faults", c.sim.base_url()))
            .send()
            .await
            .map(|r| r.status().as_u16());
        chaos.note(
            round,
            format!("faults cleared for the verdict → {cleared:?}"),
        );

        let settle_deadline = Instant::now() + SETTLE_LIMIT;
        let (obs, problems) = loop {
            let obs = verdict::observe(&c).await;
            let problems = verdict::problems(&obs, &chaos, &baseline, &carried);
            if problems.is_empty() || Instant::now() >= settle_deadline {
                break (obs, problems);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        chaos.note(round, format!("settled: {} problems", problems.len()));
        report
            .failures
            .extend(problems.into_iter().map(|p| format!("round {round}: {p}")));
        report.final_states = verdict::states(&obs);
        // The test runtime holds the gateways' background work; their connections,
        // handlers and upstream connections live on their worker threads.
        let worker_tasks: usize = c
            .nodes
            .iter()
            .filter_map(|n| n.gw.as_ref())
            .map(|g| g.worker_tasks())
            .sum();
        report.after_round.push((
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
                + worker_tasks,
            rss_kib(),
        ));

        let (obs, still) = restore::lift_lasting_states(
            &c,
            &mut chaos,
            round,
            &obs,
            SETTLE_LIMIT,
            &mut report.failures,
        )
        .await;
        carried = still;
        baseline = verdict::Baseline::take(&obs);
    }
    let (first, last) = (
        report.after_round[0].0,
        report.after_round[report.after_round.len() - 1].0,
    );
    if last > first + TASK_SLACK {
        report.failures.push(format!(
            "live tasks grew from {first} after round 0 to {last} after the last round"
        ));
    }
    report.chaos_log = chaos.log;
    report.counts = chaos.counts;
    report
}

/// Resident memory of the whole test process. Informational: other tests may share the
/// process (`cargo test`), so it is printed, not asserted.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4)
}

impl Report {
    fn print(&self, settings: Settings, panicked: &[String]) {
        println!(
            "==== chaos soak: seed {:#x}, {} s of traffic in {} rounds ====",
            settings.seed,
            settings.secs,
            settings.rounds()
        );
        println!("requests: {} total", self.tally.total());
        for (outcome, n) in &self.tally.outcomes {
            println!("  {n:6}  {outcome}");
        }
        println!("  {:6}  violations", self.tally.violations.len());
        println!("requests by kind (sent / complete):");
        for (ask, (sent, done)) in &self.tally.by_ask {
            println!("  {ask:12} {sent:6} / {done}");
        }
        println!("chaos actions:");
        for (what, n) in &self.counts {
            println!("  {n:4}  {what}");
        }
        println!(
            "after each round (live tasks, process RSS KiB): {:?}",
            self.after_round
        );
        println!("final account states:");
        for line in &self.final_states {
            println!("  {line}");
        }
        println!("panics on the soak's threads: {}", panicked.len());
        println!("chaos log:");
        for line in &self.chaos_log {
            println!("  {line}");
        }
    }
}
