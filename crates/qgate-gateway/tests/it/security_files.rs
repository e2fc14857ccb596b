//! Files holding credentials are 0600 in a 0700 directory, however the directory and the
//! files were found: created fresh (nested), inherited world-readable from an older
//! install, rewritten by refreshes, rotations and admin changes.

use crate::admin::{ADMIN, admin_post};
use crate::support::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The directory is 0700 and every file in it (temp files included) 0600.
fn assert_private(dir: &Path, what: &str) {
    assert_eq!(
        mode(dir),
        0o700,
        "{what}: {} is {:o}",
        dir.display(),
        mode(dir)
    );
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(
            mode(&path),
            0o600,
            "{what}: {} is {:o}",
            path.display(),
            mode(&path)
        );
        files += 1;
    }
    assert!(
        files > 0,
        "{what}: nothing was written to {}",
        dir.display()
    );
}

/// Expires tokens and sends one request per account, so every account refreshes and
/// saves its cache.
async fn refresh_everyone(env: &TestEnv, accounts: usize) {
    env.sim.expire_access_tokens();
    for i in 0..accounts {
        let (status, v) = env.message(&hello(&format!("refresh {i}"))).await;
        assert_eq!(status, 200, "{v}");
    }
}

#[tokio::test]
async fn a_fresh_nested_cache_directory_is_private() {
    let outer = tempfile::tempdir().unwrap();
    let cache = outer.path().join("a").join("b").join("cache");
    let env = TestEnv::start(
        Opts::accounts(2)
            .sim(qgate_sim::SimConfig {
                accounts: 3,
                rotate_refresh_tokens: true,
                ..Default::default()
            })
            .env("TOKEN_CACHE_DIR", cache.display().to_string())
            .env("ADMIN_API_KEY", ADMIN)
            .env("LOAD_BALANCE_STRATEGY", "round_robin"),
    )
    .await;
    refresh_everyone(&env, 2).await;
    let c = qgate_sim::credentials(3);
    let body = json!({"id": c.account, "refresh_token": c.refresh_token,
        "client_id": c.client_id, "client_secret": c.client_secret});
    assert_eq!(admin_post(&env, "/accounts", Some(body)).await.0, 201);
    refresh_everyone(&env, 3).await;
    assert_private(&cache, "fresh directory");
    for name in [
        "sim-1.json",
        "sim-2.json",
        "sim-3.json",
        "_qgate-state.json",
    ] {
        assert!(cache.join(name).exists(), "{name} was written");
    }
    let mut env = env;
    env.stop_gateway().await;
    assert_private(&cache, "after a graceful stop");
}

#[tokio::test]
async fn an_inherited_world_readable_directory_and_files_are_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A cache file from an older install, readable by everyone.
    let old = cache.join("sim-1.json");
    std::fs::write(
        &old,
        r#"{"access_token": null, "refresh_token": "sim-refresh-1", "expires_at": null}"#,
    )
    .unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env =
        TestEnv::start(Opts::accounts(1).env("TOKEN_CACHE_DIR", cache.display().to_string())).await;
    assert_eq!(mode(&cache), 0o700, "the directory is tightened at start");
    refresh_everyone(&env, 1).await;
    assert_private(&cache, "inherited directory");
}
