//! Config reload through `POST /admin/reload`: a good file takes effect without dropping an
//! in-flight stream; a bad one is refused with every problem listed and changes nothing.

use crate::admin::{ADMIN, admin_get, admin_post};
use crate::support::*;
use qgate_sim::SimConfig;

struct ConfigFile {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl ConfigFile {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qgate.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile { _dir: dir, path }
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }
}

async fn start(file: &ConfigFile) -> TestEnv {
    TestEnv::start(
        Opts::accounts(2)
            .sim(SimConfig {
                accounts: 3,
                ..Default::default()
            })
            .env("ADMIN_API_KEY", ADMIN)
            .env("QGATE_CONFIG", file.path.display().to_string()),
    )
    .await
}

#[tokio::test]
async fn a_good_file_takes_effect_without_dropping_an_in_flight_stream() {
    let file = ConfigFile::new("[pool]\nstrategy = \"round_robin\"\n");
    let env = std::sync::Arc::new(start(&file).await);
    assert_eq!(
        admin_get(&env, "/accounts/stats").await["strategy"],
        "round_robin"
    );
    let streaming = {
        let env = env.clone();
        tokio::spawn(async move {
            env.stream(&hello("long one [[sim words=40 delay_ms=10]]"))
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let c = qgate_sim::credentials(3);
    file.write(&format!(
        "[pool]\nstrategy = \"least_used\"\n\n[[accounts]]\nid = \"{}\"\nrefresh_token = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n",
        c.account, c.refresh_token, c.client_id, c.client_secret
    ));
    let (s, v) = admin_post(&env, "/admin/reload", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["added"], serde_json::json!(["sim-3"]));
    assert_eq!(v["accounts"], 3);
    let (status, events) = streaming.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        events.last().unwrap().0,
        "message_stop",
        "the stream survived the reload"
    );
    assert_eq!(streamed_text(&events).split_whitespace().count(), 40);
    assert_eq!(
        admin_get(&env, "/accounts/stats").await["strategy"],
        "least_used"
    );
    for _ in 0..3 {
        assert_eq!(env.message(&hello("after reload")).await.0, 200);
    }
    assert!(count(&env.sim_stats().await, "sim-3", "chat_ok") >= 1);
}

#[tokio::test]
async fn a_bad_file_is_refused_with_every_problem_and_the_running_config_stays() {
    let file = ConfigFile::new("[pool]\nstrategy = \"round_robin\"\n");
    let env = start(&file).await;
    file.write(
        "[pool]\nstrategy = \"fastest_please\"\ncircuit_breaker_recovery_timeout = \"soon\"\n\n\
         [[accounts]]\nid = \"bad/id\"\ndialect = \"gopher\"\n",
    );
    let (s, v) = admin_post(&env, "/admin/reload", None).await;
    assert_eq!(s, 400, "{v}");
    let problems = v["error"]["problems"].as_array().unwrap();
    let sources: Vec<&str> = problems
        .iter()
        .map(|p| p["source"].as_str().unwrap())
        .collect();
    assert!(problems.len() >= 4, "every problem is listed: {sources:?}");
    assert!(
        sources.iter().any(|s| s.contains("LOAD_BALANCE_STRATEGY")),
        "{sources:?}"
    );
    assert!(
        sources
            .iter()
            .any(|s| s.contains("circuit_breaker_recovery_timeout"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unchanged")
    );
    assert_eq!(
        admin_get(&env, "/accounts/stats").await["strategy"],
        "round_robin"
    );
    assert_eq!(env.message(&hello("still serving")).await.0, 200);

    file.write("this is not toml = = =");
    let (s, v) = admin_post(&env, "/admin/reload", None).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        admin_get(&env, "/accounts/stats").await["total_accounts"],
        2
    );
    let metrics = env
        .http
        .get(env.url("/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("qgate_config_reloads_total{outcome=\"rejected\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn settings_that_need_a_restart_are_named_and_the_rest_applies() {
    let file = ConfigFile::new("[server]\nworkers = 1\n\n[pool]\nstrategy = \"round_robin\"\n");
    let env = start(&file).await;
    file.write(
        "[server]\nworkers = 3\nping_interval = \"3s\"\n\n[pool]\nstrategy = \"least_used\"\n",
    );
    let (s, v) = admin_post(&env, "/admin/reload", None).await;
    assert_eq!(s, 200, "{v}");
    let needs: Vec<&str> = v["restart_required"]
        .as_array()
        .unwrap_or_else(|| panic!("no restart_required in {v}"))
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    assert!(needs.contains(&"worker threads (WORKERS)"), "{v}");
    assert!(needs.contains(&"server limits"), "{v}");
    assert_eq!(needs.len(), 2, "{v}");
    // What can change at run time did.
    assert_eq!(
        admin_get(&env, "/accounts/stats").await["strategy"],
        "least_used"
    );
}
