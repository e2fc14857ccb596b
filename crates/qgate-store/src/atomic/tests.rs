//! Crash-safety and permission tests for `write_atomic` / `ensure_private_dir`.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn replaces_content_with_mode_0600_even_over_a_looser_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("acct.json");
    fs::write(&target, b"old").unwrap();
    fs::set_permissions(&target, Permissions::from_mode(0o644)).unwrap();

    write_atomic(&target, b"new content").unwrap();

    assert_eq!(fs::read(&target).unwrap(), b"new content");
    assert_eq!(mode_of(&target), 0o600);
    assert_eq!(entries(dir.path()), ["acct.json"], "no temp file left");
}

#[test]
fn creates_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("fresh.json");
    write_atomic(&target, b"{}").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"{}");
    assert_eq!(mode_of(&target), 0o600);
}

#[test]
fn failed_content_write_keeps_the_old_file_and_removes_the_temp() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("acct.json");
    fs::write(&target, b"old complete content").unwrap();

    let result = write_atomic_with(&target, |file| {
        file.write_all(b"half of the new")?;
        Err(io::Error::other("disk full (simulated)"))
    });

    assert!(result.is_err());
    assert_eq!(fs::read(&target).unwrap(), b"old complete content");
    assert_eq!(entries(dir.path()), ["acct.json"]);
}

#[test]
fn temp_file_creation_failure_keeps_the_old_file() {
    // A 250-byte name exists, but its temp sibling's name exceeds the 255-byte limit, so
    // creating the temp file fails even for root (unlike a read-only directory).
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a".repeat(250));
    fs::write(&target, b"old").unwrap();

    assert!(write_atomic(&target, b"new").is_err());
    assert_eq!(fs::read(&target).unwrap(), b"old");
    assert_eq!(entries(dir.path()).len(), 1);
}

#[test]
fn read_only_directory_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("acct.json");
    fs::write(&target, b"old").unwrap();
    fs::set_permissions(dir.path(), Permissions::from_mode(0o500)).unwrap();

    // Privileged users (root in containers) ignore directory modes; the other failure tests
    // cover them, this one covers the ordinary deployment.
    let privileged = fs::write(dir.path().join("probe"), b"").is_ok();
    let result = write_atomic(&target, b"new");
    fs::set_permissions(dir.path(), Permissions::from_mode(0o700)).unwrap();
    if privileged {
        return;
    }

    assert_eq!(
        result.map_err(|err| err.kind()),
        Err(io::ErrorKind::PermissionDenied)
    );
    assert_eq!(fs::read(&target).unwrap(), b"old");
}

#[test]
fn target_without_file_name_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_atomic(&dir.path().join(".."), b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn private_dir_is_created_with_0700_including_parents() {
    let base = tempfile::tempdir().unwrap();
    let nested = base.path().join("a/b/cache");
    ensure_private_dir(&nested).unwrap();
    assert!(nested.is_dir());
    assert_eq!(mode_of(&nested), 0o700);
    // Idempotent.
    ensure_private_dir(&nested).unwrap();
    assert_eq!(mode_of(&nested), 0o700);
}

#[test]
fn existing_loose_dir_we_own_is_tightened() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("cache");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();

    ensure_private_dir(&dir).unwrap();

    assert_eq!(mode_of(&dir), 0o700);
}

#[test]
fn a_file_in_the_way_is_an_error() {
    let base = tempfile::tempdir().unwrap();
    let not_a_dir = base.path().join("cache");
    fs::write(&not_a_dir, b"").unwrap();
    let err = ensure_private_dir(&not_a_dir).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
}
