//! Account ids with path separators, `..`, NUL or control characters are refused
//! everywhere an id can enter — environment, TOML file, config reload, `POST /accounts`,
//! URL paths (percent-encoded too), a tampered state file — and no file is ever written
//! outside the token cache directory.

use crate::admin::{ADMIN, admin, admin_post};
use crate::hostile::{
    assert_anthropic_error, connect_and_send, raw_json_body, raw_status, read_until_closed,
};
use crate::support::*;
use qgate_gateway::config::{self, EnvSource, Overrides};
use serde_json::json;
use std::time::Duration;

/// Ids that could escape a directory, confuse a shell, a log line or a URL.
fn bad_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "../evil",
        "..",
        ".",
        "a/b",
        "/abs",
        "a\\b",
        "..\\x",
        "a\0b",
        "a\nb",
        "a\rb",
        "a\tb",
        "a\u{7f}b",
        "a\u{1b}[31m",
        "",
        " a",
        "a b",
        "-lead",
        ".hidden",
        "a..b",
        "ünï",
        "a%2Fb",
        "a:b",
        "a?b",
        "a#b",
        "a*b",
        "sim-1/../../x",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    ids.push("a".repeat(65));
    ids
}

/// TOML basic-string escaping (control characters as \uXXXX).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Every directory entry under `root`, relative, recursively.
fn tree(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_environment_and_the_config_file_refuse_them() {
    let dir = tempfile::tempdir().unwrap();
    for id in bad_ids() {
        // Environment values are trimmed, and an empty one is unset (default id).
        let in_env = !id.trim().is_empty() && id.trim() == id;
        let env = EnvSource::from_pairs(vec![
            ("AMAZONQ_ACCOUNT_COUNT".to_owned(), "1".to_owned()),
            ("AMAZONQ_ACCOUNT_1_ID".to_owned(), id.clone()),
            ("AMAZONQ_ACCOUNT_1_REFRESH_TOKEN".to_owned(), "r".to_owned()),
            ("AMAZONQ_ACCOUNT_1_CLIENT_ID".to_owned(), "c".to_owned()),
            ("AMAZONQ_ACCOUNT_1_CLIENT_SECRET".to_owned(), "s".to_owned()),
            (
                "TOKEN_CACHE_DIR".to_owned(),
                dir.path().join("cache").display().to_string(),
            ),
        ]);
        if in_env {
            let err = config::load(&env, &Overrides::default())
                .err()
                .unwrap_or_else(|| panic!("env id {id:?} was accepted"));
            let problems = err.to_string();
            assert!(
                problems.contains("AMAZONQ_ACCOUNT_1_ID")
                    && problems.contains("invalid account id"),
                "{id:?}: the problem names its source: {problems}"
            );
        }

        let file = dir.path().join("qgate.toml");
        std::fs::write(
            &file,
            format!(
                "[[accounts]]\nid = {}\nrefresh_token = \"r\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
                toml_string(&id)
            ),
        )
        .unwrap();
        let env = EnvSource::from_pairs(vec![(
            "TOKEN_CACHE_DIR".to_owned(),
            dir.path().join("cache").display().to_string(),
        )]);
        let overrides = Overrides {
            config_file: Some(file),
            ..Default::default()
        };
        assert!(
            config::load(&env, &overrides).is_err(),
            "TOML id {id:?} was accepted"
        );
    }
}

#[tokio::test]
async fn the_admin_api_refuses_them_in_bodies_paths_and_reloads() {
    let env = TestEnv::start(Opts::accounts(1).env("ADMIN_API_KEY", ADMIN)).await;
    let root_before = tree(env.dir.path());
    for id in bad_ids() {
        let body = json!({"id": id, "refresh_token": "sim-refresh-1",
            "client_id": "sim-client-1", "client_secret": "sim-secret-1"});
        let (status, v) = admin_post(&env, "/accounts", Some(body)).await;
        assert_eq!(status, 400, "POST /accounts {id:?}: {v}");
        assert_anthropic_error(&v, "invalid_request_error", &id);
    }
    // In paths, raw and percent-encoded, sent as raw HTTP: a URL library would resolve
    // `..`, `%2e%2e` and friends before they reach the gateway.
    let mut in_paths: Vec<String> = [
        "..",
        ".",
        "%2e%2e",
        "%2E%2E",
        "a%2Fb",
        "%2F",
        "..%2F..%2Fetc",
        "a%5Cb",
        "a%00b",
        "a%0Ab",
        "a%0D%0Ab",
        "a%09b",
        "a%20b",
        "%2e",
        ".hidden",
        "a..b",
        "%C3%BC",
        "a%3Ab",
        "%7F",
        "-lead",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    in_paths.push("a".repeat(65));
    let routes = [
        (reqwest::Method::GET, ""),
        (reqwest::Method::PATCH, ""),
        (reqwest::Method::DELETE, ""),
        (reqwest::Method::POST, "/enable"),
        (reqwest::Method::POST, "/disable"),
        (reqwest::Method::POST, "/reset"),
        (reqwest::Method::POST, "/refresh"),
        (reqwest::Method::POST, "/probe"),
    ];
    for id in &in_paths {
        for (method, suffix) in &routes {
            let path = format!("/accounts/{id}{suffix}");
            let body = if *method == reqwest::Method::PATCH {
                "{\"weight\": 3}"
            } else {
                ""
            };
            let request = format!(
                "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let mut stream = connect_and_send(&env, request.as_bytes()).await;
            let (response, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
            let status = raw_status(&response);
            let v = raw_json_body(&response);
            assert!(
                matches!(status, Some(400 | 404)),
                "{method} {path}: {status:?} {}",
                String::from_utf8_lossy(&response)
            );
            if status == Some(400) {
                assert_anthropic_error(&v, "invalid_request_error", &path);
            }
        }
    }
    let (status, accounts) =
        admin(&env, reqwest::Method::GET, "/accounts", Some(ADMIN), None).await;
    assert_eq!(status, 200);
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
    assert_eq!(
        tree(env.dir.path()),
        root_before,
        "files appeared in the state directory"
    );
    assert_no_escape(&env);
}

/// Ids that climb out of the cache directory to a name unique to this run.
fn escaping_ids(tag: &str) -> Vec<String> {
    vec![
        format!("../escape-{tag}"),
        format!("../../escape-{tag}"),
        format!("sim-1/../../escape-{tag}"),
    ]
}

/// Nothing named after [`escaping_ids`] exists next to or above the state directory.
fn assert_no_escape(env: &TestEnv) {
    let tag = env
        .dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut dir = env.dir.path().to_path_buf();
    while dir.pop() {
        for name in [format!("escape-{tag}"), format!("escape-{tag}.json")] {
            assert!(
                !dir.join(&name).exists(),
                "{} was written",
                dir.join(&name).display()
            );
        }
    }
}

fn tag(env: &TestEnv) -> String {
    env.dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[tokio::test]
async fn escaping_ids_write_nothing_outside_the_state_directory() {
    let env = TestEnv::start(Opts::accounts(1).env("ADMIN_API_KEY", ADMIN)).await;
    for id in escaping_ids(&tag(&env)) {
        let body = json!({"id": id, "refresh_token": "sim-refresh-1",
            "client_id": "sim-client-1", "client_secret": "sim-secret-1"});
        let (status, v) = admin_post(&env, "/accounts", Some(body)).await;
        assert_eq!(status, 400, "{id}: {v}");
        let encoded = id.replace('/', "%2F");
        for suffix in ["/refresh", "/probe", "/reset"] {
            let (status, v) = admin_post(&env, &format!("/accounts/{encoded}{suffix}"), None).await;
            assert_eq!(status, 400, "{encoded}{suffix}: {v}");
        }
    }
    assert_no_escape(&env);
}

#[tokio::test]
async fn a_reload_refuses_them() {
    let env = TestEnv::start(
        Opts::accounts(1)
            .env("ADMIN_API_KEY", ADMIN)
            .toml("[pool]\nstrategy = \"round_robin\"\n"),
    )
    .await;
    let file = env.dir.path().join("qgate-test.toml");
    let c = qgate_sim::credentials(2);
    let mut ids = bad_ids();
    ids.extend(escaping_ids(&tag(&env)));
    for id in ids {
        std::fs::write(
            &file,
            format!(
                "[[accounts]]\nid = {}\nrefresh_token = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n",
                toml_string(&id), c.refresh_token, c.client_id, c.client_secret
            ),
        )
        .unwrap();
        let (status, v) = admin_post(&env, "/admin/reload", None).await;
        assert_eq!(status, 400, "reload with id {id:?}: {v}");
    }
    let (_, accounts) = admin(&env, reqwest::Method::GET, "/accounts", Some(ADMIN), None).await;
    assert_eq!(accounts.as_array().map(Vec::len), Some(1), "{accounts}");
    assert_no_escape(&env);
}

#[tokio::test]
async fn a_tampered_state_file_cannot_bring_them_in() {
    let mut env = TestEnv::start(
        Opts::accounts(1)
            .sim(qgate_sim::SimConfig {
                accounts: 2,
                ..Default::default()
            })
            .env("ADMIN_API_KEY", ADMIN),
    )
    .await;
    let c = qgate_sim::credentials(2);
    let body = json!({"id": c.account, "refresh_token": c.refresh_token,
        "client_id": c.client_id, "client_secret": c.client_secret});
    assert_eq!(admin_post(&env, "/accounts", Some(body)).await.0, 201);
    env.stop_gateway().await;
    let state = env.dir.path().join("_qgate-state.json");
    let original = std::fs::read_to_string(&state).unwrap();
    assert!(original.contains("\"sim-2\""), "{original}");
    let escape = format!("../escape-{}", tag(&env));
    for id in [escape.as_str(), "a/b", "a\nb", ".."] {
        let tampered = original.replace("\"sim-2\"", &serde_json::to_string(id).unwrap());
        std::fs::write(&state, tampered).unwrap();
        let cfg = config::load(
            &EnvSource::from_pairs(vec![
                (
                    "TOKEN_CACHE_DIR".to_owned(),
                    env.dir.path().display().to_string(),
                ),
                ("AMAZONQ_API_ENDPOINT".to_owned(), env.sim.base_url()),
                (
                    "AMAZONQ_TOKEN_ENDPOINT".to_owned(),
                    format!("{}/token", env.sim.base_url()),
                ),
                ("ADMIN_API_KEY".to_owned(), ADMIN.to_owned()),
                ("AMAZONQ_ACCOUNT_COUNT".to_owned(), "1".to_owned()),
                ("AMAZONQ_ACCOUNT_1_ID".to_owned(), "sim-1".to_owned()),
                (
                    "AMAZONQ_ACCOUNT_1_REFRESH_TOKEN".to_owned(),
                    "sim-refresh-1".to_owned(),
                ),
                (
                    "AMAZONQ_ACCOUNT_1_CLIENT_ID".to_owned(),
                    "sim-client-1".to_owned(),
                ),
                (
                    "AMAZONQ_ACCOUNT_1_CLIENT_SECRET".to_owned(),
                    "sim-secret-1".to_owned(),
                ),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // Refusing to start is an answer; starting without the bad account is another.
        if let Ok(gw) = qgate_gateway::start(cfg, listener).await {
            let base = format!("http://{}", gw.addr());
            let listed: serde_json::Value = env
                .http
                .get(format!("{base}/accounts"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let ids: Vec<&str> = listed
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, ["sim-1"], "a tampered id {id:?} came in");
            let r = env
                .http
                .post(format!("{base}/v1/messages"))
                .json(&hello("still serving"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            gw.shutdown().await;
        }
        assert_no_escape(&env);
    }
}
