use super::*;
use crate::middleware::KeyRing;

fn entry(rpm: Option<u32>, conc: Option<u32>) -> KeyEntry {
    let ring = KeyRing::new(&[ClientKey {
        name: "team".into(),
        key: SecretString::from("k".to_owned()),
        rpm_limit: rpm,
        max_concurrency: conc,
    }]);
    ring.entries()[0].clone()
}

#[test]
fn parses_the_line_format_and_reports_bad_lines_by_number() {
    let keys = parse_keys("# comment\n\nalice:ka\nbob:kb:60\ncarol:kc::4\n").unwrap();
    let shape: Vec<_> = keys
        .iter()
        .map(|k| (k.name.as_str(), k.rpm_limit, k.max_concurrency))
        .collect();
    assert_eq!(
        shape,
        [
            ("alice", None, None),
            ("bob", Some(60), None),
            ("carol", None, Some(4))
        ]
    );
    let err = parse_keys("ok:k\nbroken\nx:y:fast\n:nokey\n").unwrap_err();
    let lines: Vec<usize> = err.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 3, 4]);
    assert!(err.iter().all(|(_, m)| !m.contains("nokey")), "{err:?}");
}

#[test]
fn concurrency_is_released_when_the_guard_drops() {
    let book = KeyBook::new();
    let key = entry(None, Some(2));
    let a = book.admit(&key, 0).unwrap();
    let _b = book.admit(&key, 0).unwrap();
    assert_eq!(book.admit(&key, 0).unwrap_err(), Refusal::TooManyConcurrent);
    drop(a);
    assert!(book.admit(&key, 0).is_ok());
    let usage = &book.usage(&[key], 0)[0];
    assert_eq!(usage.refused_concurrency, 1);
    assert_eq!(usage.requests, 3);
}

#[test]
fn rpm_window_slides_and_refusals_hold_no_slot() {
    let book = KeyBook::new();
    let key = entry(Some(2), Some(5));
    drop(book.admit(&key, 1_000).unwrap());
    drop(book.admit(&key, 2_000).unwrap());
    match book.admit(&key, 30_000) {
        Err(Refusal::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_millis(31_000))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        book.usage(std::slice::from_ref(&key), 30_000)[0].in_flight,
        0
    );
    assert!(
        book.admit(&key, 61_000).is_ok(),
        "the first request left the window"
    );
    let usage = &book.usage(&[key], 61_000)[0];
    assert_eq!(usage.refused_rpm, 1);
    assert_eq!(usage.requests_last_minute, Some(2));
}

#[test]
fn tokens_add_up_per_key() {
    let book = KeyBook::new();
    book.add_tokens("team", 10, 3);
    book.add_tokens("team", 5, 1);
    let usage = &book.usage(&[entry(None, None)], 0)[0];
    assert_eq!((usage.input_tokens, usage.output_tokens), (15, 4));
}
