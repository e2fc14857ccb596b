use super::*;

fn cfg() -> BreakerConfig {
    BreakerConfig {
        enabled: true,
        error_threshold: 3,
        recovery_timeout_ms: 1_000,
        max_recovery_timeout_ms: 5_000,
    }
}

/// A breaker opened at t=100 (until 1_100).
fn opened() -> Breaker {
    let mut b = Breaker::default();
    for _ in 0..3 {
        b.record_failure(100, &cfg(), None);
    }
    assert_eq!(b.phase_at(100), BreakerPhase::Open);
    b
}

fn take_probe(b: &mut Breaker, now: u64) -> ProbeId {
    match b.admit(now) {
        Admission::Probe(p) => p,
        other => panic!("expected a probe at {now}, got {other:?}"),
    }
}

#[test]
fn opens_only_after_threshold_consecutive_failures() {
    let mut b = Breaker::default();
    assert_eq!(b.record_failure(0, &cfg(), None), None);
    assert_eq!(b.record_failure(0, &cfg(), None), None);
    // a success in between resets the run
    assert_eq!(b.record_success(None), None);
    assert_eq!(b.consecutive_failures(), 0);
    assert_eq!(b.record_failure(10, &cfg(), None), None);
    assert_eq!(b.record_failure(10, &cfg(), None), None);
    assert_eq!(b.phase_at(10), BreakerPhase::Closed);
    assert_eq!(
        b.record_failure(10, &cfg(), None),
        Some(BreakerChange::Opened { until_ms: 1_010 })
    );
    assert_eq!(b.phase_at(10), BreakerPhase::Open);
    assert_eq!(b.opened_total(), 1);
    assert_eq!(b.admit(500), Admission::Reject);
}

#[test]
fn disabled_breaker_counts_but_never_opens() {
    let off = BreakerConfig {
        enabled: false,
        ..cfg()
    };
    let mut b = Breaker::default();
    for _ in 0..10 {
        assert_eq!(b.record_failure(0, &off, None), None);
    }
    assert_eq!(b.consecutive_failures(), 10);
    assert_eq!(b.admit(0), Admission::Pass);
}

#[test]
fn reads_do_not_mutate() {
    let b = opened();
    let before = b.clone();
    // elapsed: reads as half-open-eligible, but nothing changes until a probe is taken
    assert_eq!(b.phase_at(2_000), BreakerPhase::HalfOpen);
    assert_eq!(b.gate(), 1_100);
    assert_eq!(b.open_until_ms(), Some(1_100));
    assert!(!b.probe_in_flight());
    assert_eq!(b, before);
}

#[test]
fn half_open_admits_exactly_one_probe() {
    let mut b = opened();
    assert_eq!(b.admit(1_099), Admission::Reject);
    let _probe = take_probe(&mut b, 1_100);
    assert!(b.probe_in_flight());
    assert_eq!(b.gate(), u64::MAX);
    // a second concurrent request does not get it
    assert_eq!(b.admit(1_100), Admission::Reject);
    assert_eq!(b.admit(9_999), Admission::Reject);
}

#[test]
fn probe_success_closes_and_resets_timeout() {
    let mut b = opened();
    let p = take_probe(&mut b, 1_100);
    assert_eq!(
        b.record_failure(1_200, &cfg(), Some(p)),
        Some(BreakerChange::Reopened { until_ms: 3_200 })
    );
    assert_eq!(b.timeout_ms(&cfg()), 2_000);
    let p = take_probe(&mut b, 3_200);
    assert_eq!(b.record_success(Some(p)), Some(BreakerChange::Closed));
    assert_eq!(b.phase_at(3_200), BreakerPhase::Closed);
    assert_eq!(b.timeout_ms(&cfg()), 1_000);
    assert_eq!(b.consecutive_failures(), 0);
    assert_eq!(b.admit(3_200), Admission::Pass);
}

#[test]
fn probe_failure_doubles_timeout_up_to_the_cap() {
    let mut b = opened();
    let mut now = 1_100;
    let mut periods = Vec::new();
    for _ in 0..5 {
        let p = take_probe(&mut b, now);
        match b.record_failure(now, &cfg(), Some(p)) {
            Some(BreakerChange::Reopened { until_ms }) => {
                periods.push(until_ms - now);
                now = until_ms;
            }
            other => panic!("expected reopen, got {other:?}"),
        }
    }
    assert_eq!(periods, [2_000, 4_000, 5_000, 5_000, 5_000]);
    assert_eq!(b.opened_total(), 6);
}

#[test]
fn inconclusive_probe_is_given_back() {
    let mut b = opened();
    let p = take_probe(&mut b, 1_500);
    b.release_probe(p);
    assert!(!b.probe_in_flight());
    assert_eq!(b.phase_at(1_500), BreakerPhase::HalfOpen);
    let q = take_probe(&mut b, 1_500);
    assert_ne!(p, q);
    // the old probe can no longer settle anything
    assert_eq!(b.record_success(Some(p)), None);
    assert!(b.probe_in_flight());
    assert_eq!(b.record_success(Some(q)), Some(BreakerChange::Closed));
}

#[test]
fn late_results_from_before_the_opening_do_not_move_it() {
    let mut b = opened();
    assert_eq!(b.record_failure(900, &cfg(), None), None);
    assert_eq!(b.open_until_ms(), Some(1_100), "not extended");
    assert_eq!(b.record_success(None), None);
    assert_eq!(b.phase_at(1_000), BreakerPhase::Open, "not closed");
    let p = take_probe(&mut b, 1_100);
    assert_eq!(b.record_failure(1_100, &cfg(), None), None);
    assert!(b.probe_in_flight(), "only the probe settles half-open");
    assert!(b.record_success(Some(p)).is_some());
}

#[test]
fn reset_closes_from_every_phase() {
    let mut b = opened();
    assert!(b.reset());
    assert_eq!(b.phase_at(0), BreakerPhase::Closed);
    assert!(!b.reset(), "already closed");

    let mut b = opened();
    let p = take_probe(&mut b, 1_100);
    let _ = b.record_failure(1_100, &cfg(), Some(p));
    assert_eq!(b.timeout_ms(&cfg()), 2_000);
    let p = take_probe(&mut b, 3_100);
    assert!(b.reset());
    assert_eq!(b.timeout_ms(&cfg()), 1_000);
    assert_eq!(b.consecutive_failures(), 0);
    // the probe handed out before the reset is stale now
    assert_eq!(b.record_failure(3_200, &cfg(), Some(p)), None);
    assert_eq!(b.phase_at(3_200), BreakerPhase::Closed);
}

#[test]
fn record_round_trips_and_drops_local_probes() {
    let mut b = opened();
    let p = take_probe(&mut b, 1_100);
    let record = b.record();
    assert_eq!(record.open_until_ms, Some(1_100));
    let mut other = Breaker::default();
    other.adopt(&record);
    assert_eq!(other.phase_at(1_100), BreakerPhase::HalfOpen);
    b.adopt(&record);
    assert!(!b.probe_in_flight());
    assert_eq!(b.record_success(Some(p)), None);
}

#[test]
fn doubling_never_overflows() {
    assert_eq!(doubled(1_000, 0, u64::MAX), 1_000);
    assert_eq!(doubled(1_000, 3, u64::MAX), 8_000);
    assert_eq!(doubled(1_000, 64, 7_000), 7_000);
    assert_eq!(doubled(u64::MAX / 2, 2, u64::MAX), u64::MAX);
}
