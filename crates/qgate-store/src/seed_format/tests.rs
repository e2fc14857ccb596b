//! The seed's cache record: naive local times both ways, leniency that saves refresh tokens.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use jiff::tz::{TimeZone, offset};
use secrecy::ExposeSecret;

use super::*;

fn plus_two() -> TimeZone {
    TimeZone::fixed(offset(2))
}

fn decode_str(json: &str) -> Result<Option<CachedToken>, StoreError> {
    decode(Path::new("t.json"), json.as_bytes(), &plus_two())
}

#[test]
fn reads_naive_local_time_with_microseconds() {
    let token = decode_str(
        r#"{"access_token": "aoa-1", "refresh_token": "aor-1", "expires_at": "2025-01-12T10:30:00.123456"}"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(token.access_token.unwrap().expose_secret(), "aoa-1");
    assert_eq!(token.refresh_token.expose_secret(), "aor-1");
    // 10:30 at UTC+2 is 08:30 UTC.
    let expected: Timestamp = "2025-01-12T08:30:00.123456Z".parse().unwrap();
    assert_eq!(token.expires_at, Some(expected));
}

#[test]
fn reads_naive_local_time_without_fraction() {
    let token = decode_str(
        r#"{"access_token": "a", "refresh_token": "r", "expires_at": "2025-01-12T10:30:00"}"#,
    )
    .unwrap()
    .unwrap();
    let expected: Timestamp = "2025-01-12T08:30:00Z".parse().unwrap();
    assert_eq!(token.expires_at, Some(expected));
}

#[test]
fn reads_instants_with_an_offset_from_other_writers() {
    let at = parse_expires_at("2025-01-12T10:30:00Z", &plus_two()).unwrap();
    assert_eq!(at, "2025-01-12T10:30:00Z".parse::<Timestamp>().unwrap());
}

#[test]
fn unreadable_expiry_keeps_the_refresh_token_but_not_the_access_token() {
    let token = decode_str(
        r#"{"access_token": "a", "refresh_token": "rotated", "expires_at": "next tuesday"}"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(token.refresh_token.expose_secret(), "rotated");
    assert!(token.access_token.is_none());
    assert!(token.expires_at.is_none());
}

#[test]
fn nulls_and_missing_fields_are_tolerated() {
    let token = decode_str(r#"{"refresh_token": "r", "access_token": null, "expires_at": null}"#)
        .unwrap()
        .unwrap();
    assert!(token.access_token.is_none() && token.expires_at.is_none());
    let token = decode_str(r#"{"refresh_token": "r", "extra": 1}"#)
        .unwrap()
        .unwrap();
    assert_eq!(token.refresh_token.expose_secret(), "r");
}

#[test]
fn empty_refresh_token_is_no_cache() {
    assert!(
        decode_str(r#"{"access_token": "a", "refresh_token": " ", "expires_at": null}"#)
            .unwrap()
            .is_none()
    );
}

#[test]
fn malformed_json_reports_position_but_not_content() {
    let err = decode_str(r#"{"refresh_token": 12345678}"#).unwrap_err();
    assert!(
        matches!(err, StoreError::Malformed { line: 1, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("12345678"), "{err}");
    assert!(!format!("{err:?}").contains("12345678"));

    let err = decode_str(r#"{"refresh_token": "secret-value""#).unwrap_err();
    assert!(!err.to_string().contains("secret-value"), "{err}");
}

#[test]
fn writes_the_seed_layout() {
    let at: Timestamp = "2025-01-12T08:30:00.123456Z".parse().unwrap();
    let token = CachedToken {
        access_token: Some("aoa-1".into()),
        refresh_token: "aor-1".into(),
        expires_at: Some(at),
    };
    let bytes = encode(Path::new("t.json"), &token, &plus_two()).unwrap();
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        "{\n  \"access_token\": \"aoa-1\",\n  \"refresh_token\": \"aor-1\",\n  \"expires_at\": \"2025-01-12T10:30:00.123456\"\n}"
    );
}

#[test]
fn whole_seconds_are_written_without_fraction_like_python() {
    let at: Timestamp = "2025-01-12T08:30:00Z".parse().unwrap();
    assert_eq!(format_naive_local(at, &plus_two()), "2025-01-12T10:30:00");
    let at: Timestamp = "2025-01-12T08:30:00.000007Z".parse().unwrap();
    assert_eq!(
        format_naive_local(at, &plus_two()),
        "2025-01-12T10:30:00.000007"
    );
}

#[test]
fn round_trip_keeps_microsecond_precision() {
    let at: Timestamp = "2031-06-30T23:59:59.999999Z".parse().unwrap();
    let token = CachedToken {
        access_token: None,
        refresh_token: "r".into(),
        expires_at: Some(at),
    };
    let bytes = encode(Path::new("t.json"), &token, &plus_two()).unwrap();
    let back = decode(Path::new("t.json"), &bytes, &plus_two())
        .unwrap()
        .unwrap();
    assert_eq!(back.expires_at, Some(at));
    assert!(back.access_token.is_none());
}
