//! `FileTokenStore` through the `TokenStore` trait object, against real files.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use jiff::{Timestamp, ToSpan};
use secrecy::ExposeSecret;

use super::*;

fn store_in(base: &Path) -> (Arc<dyn TokenStore>, PathBuf) {
    let dir = base.join("cache");
    (Arc::new(FileTokenStore::new(&dir).unwrap()), dir)
}

fn token(access: &str, refresh: &str, expires_at: Timestamp) -> CachedToken {
    CachedToken {
        access_token: Some(access.into()),
        refresh_token: refresh.into(),
        expires_at: Some(expires_at),
    }
}

fn local(text: &str) -> Timestamp {
    text.parse::<jiff::civil::DateTime>()
        .unwrap()
        .to_zoned(TimeZone::system())
        .unwrap()
        .timestamp()
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn round_trip_with_private_modes() {
    let base = tempfile::tempdir().unwrap();
    let (store, dir) = store_in(base.path());
    let expires = Timestamp::now().checked_add(1.hour()).unwrap();
    let expires = expires.round(jiff::Unit::Microsecond).unwrap();

    store
        .save("primary", &token("aoa-1", "aor-1", expires))
        .await
        .unwrap();
    let back = store.load("primary").await.unwrap().unwrap();

    assert_eq!(back.access_token.unwrap().expose_secret(), "aoa-1");
    assert_eq!(back.refresh_token.expose_secret(), "aor-1");
    assert_eq!(back.expires_at, Some(expires));
    assert_eq!(mode_of(&dir), 0o700);
    assert_eq!(mode_of(&dir.join("primary.json")), 0o600);

    let on_disk: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("primary.json")).unwrap()).unwrap();
    let mut keys: Vec<&str> = on_disk
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expires_at", "refresh_token"]);
}

#[tokio::test]
async fn missing_account_is_none() {
    let base = tempfile::tempdir().unwrap();
    let (store, _) = store_in(base.path());
    assert!(store.load("nobody").await.unwrap().is_none());
}

#[tokio::test]
async fn reads_files_written_by_the_original_gateway() {
    let base = tempfile::tempdir().unwrap();
    let (store, dir) = store_in(base.path());
    fs::write(
        dir.join("with_fraction.json"),
        "{\n  \"access_token\": \"aoa-x\",\n  \"refresh_token\": \"aor-x\",\n  \"expires_at\": \"2025-01-12T10:30:00.123456\"\n}",
    )
    .unwrap();
    fs::write(
        dir.join("whole_seconds.json"),
        r#"{"access_token": "aoa-y", "refresh_token": "aor-y", "expires_at": "2025-01-12T10:30:00"}"#,
    )
    .unwrap();

    let with_fraction = store.load("with_fraction").await.unwrap().unwrap();
    assert_eq!(
        with_fraction.expires_at,
        Some(local("2025-01-12T10:30:00.123456"))
    );
    let whole = store.load("whole_seconds").await.unwrap().unwrap();
    assert_eq!(whole.expires_at, Some(local("2025-01-12T10:30:00")));
}

#[tokio::test]
async fn expired_cache_still_yields_its_rotated_refresh_token() {
    let base = tempfile::tempdir().unwrap();
    let (store, dir) = store_in(base.path());
    fs::write(
        dir.join("old.json"),
        r#"{"access_token": "aoa-stale", "refresh_token": "aor-rotated", "expires_at": "2020-03-01T08:00:00.5"}"#,
    )
    .unwrap();

    let cached = store.load("old").await.unwrap().unwrap();

    assert_eq!(cached.refresh_token.expose_secret(), "aor-rotated");
    assert!(cached.expires_at.unwrap() < Timestamp::now());
}

#[tokio::test]
async fn legacy_single_account_file_is_read_for_default_only() {
    let base = tempfile::tempdir().unwrap();
    let (store, dir) = store_in(base.path());
    let legacy = base.path().join("cache.json");
    fs::write(
        &legacy,
        r#"{"access_token": "aoa-l", "refresh_token": "aor-legacy", "expires_at": "2030-01-01T00:00:00"}"#,
    )
    .unwrap();

    let from_legacy = store.load("default").await.unwrap().unwrap();
    assert_eq!(from_legacy.refresh_token.expose_secret(), "aor-legacy");
    assert!(store.load("primary").await.unwrap().is_none());

    // Both present: the later expiry is the fresher state.
    let older = local("2029-01-01T00:00:00");
    store
        .save("default", &token("aoa-d", "aor-dir", older))
        .await
        .unwrap();
    let chosen = store.load("default").await.unwrap().unwrap();
    assert_eq!(chosen.refresh_token.expose_secret(), "aor-legacy");

    let newer = local("2031-01-01T00:00:00");
    store
        .save("default", &token("aoa-d", "aor-dir", newer))
        .await
        .unwrap();
    let chosen = store.load("default").await.unwrap().unwrap();
    assert_eq!(chosen.refresh_token.expose_secret(), "aor-dir");

    store.remove("default").await.unwrap();
    assert!(!legacy.exists() && !dir.join("default.json").exists());
    assert!(store.load("default").await.unwrap().is_none());
}

#[tokio::test]
async fn legacy_file_can_be_disabled() {
    let base = tempfile::tempdir().unwrap();
    let store = FileTokenStore::new(base.path().join("cache"))
        .unwrap()
        .with_legacy_file(None);
    fs::write(
        base.path().join("cache.json"),
        r#"{"access_token": "a", "refresh_token": "r", "expires_at": "2030-01-01T00:00:00"}"#,
    )
    .unwrap();
    assert!(store.load("default").await.unwrap().is_none());
}

#[tokio::test]
async fn remove_is_idempotent() {
    let base = tempfile::tempdir().unwrap();
    let (store, dir) = store_in(base.path());
    store
        .save("gone", &token("a", "r", Timestamp::now()))
        .await
        .unwrap();
    store.remove("gone").await.unwrap();
    assert!(!dir.join("gone.json").exists());
    store.remove("gone").await.unwrap();
}

#[tokio::test]
async fn ids_that_escape_the_directory_are_rejected_everywhere() {
    let base = tempfile::tempdir().unwrap();
    let (store, dir) = store_in(base.path());
    let sample = token("a", "r", Timestamp::now());
    for id in ["../escape", "a/b", "..", "", ".hidden"] {
        assert!(matches!(
            store.load(id).await,
            Err(StoreError::InvalidAccountId { .. })
        ));
        assert!(matches!(
            store.save(id, &sample).await,
            Err(StoreError::InvalidAccountId { .. })
        ));
        assert!(matches!(
            store.remove(id).await,
            Err(StoreError::InvalidAccountId { .. })
        ));
    }
    assert!(!base.path().join("escape.json").exists());
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn corrupt_file_is_an_error_without_its_content() {
    let base = tempfile::tempdir().unwrap();
    let (store, dir) = store_in(base.path());
    fs::write(
        dir.join("torn.json"),
        r#"{"refresh_token": "aor-secret-tor"#,
    )
    .unwrap();
    let err = store.load("torn").await.unwrap_err();
    assert!(matches!(err, StoreError::Malformed { .. }));
    assert!(!err.to_string().contains("aor-secret"));
}

#[test]
fn new_creates_a_private_dir_and_rejects_a_file_in_the_way() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("fresh-cache");
    FileTokenStore::new(&dir).unwrap();
    assert_eq!(mode_of(&dir), 0o700);

    let blocked = base.path().join("blocked");
    fs::write(&blocked, b"").unwrap();
    assert!(matches!(
        FileTokenStore::new(&blocked),
        Err(StoreError::Io { op: "create", .. })
    ));
}

#[test]
fn default_dir_is_under_home() {
    assert!(FileTokenStore::default_dir().ends_with(".amazonq_token_cache"));
}
