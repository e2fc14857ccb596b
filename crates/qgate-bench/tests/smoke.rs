//! Runs the harness end to end, briefly, and checks that it ran and wrote a well-formed
//! report with zero errors. It asserts no timings: on a shared 2-core machine they mean
//! nothing here; `docs/benchmarks.md` is where numbers live.
//!
//! qgate is a target when a qgate binary is built (`QGATE_BIN`, else `target/release/qgate`,
//! else `target/debug/qgate`); otherwise the harness runs the simulator itself and measures
//! direct and nginx only. nginx is a target where it is installed.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn qgate_binary() -> Option<PathBuf> {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let from_env = std::env::var_os("QGATE_BIN").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(["release", "debug"].map(|profile| target.join(profile).join("qgate")))
        .find(|path| path.is_file())
}

#[test]
fn quick_run_writes_a_complete_report_with_zero_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let qgate = qgate_binary();
    let targets = match &qgate {
        Some(_) => "direct,nginx,qgate",
        None => {
            eprintln!("no qgate binary built: measuring direct and nginx only");
            "direct,nginx"
        }
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_qgate-bench"));
    command.args([
        "run",
        "--quick",
        "--duration",
        "400ms",
        "--warmup",
        "200ms",
        "--rate",
        "50",
        "--concurrency",
        "2",
        "--streams",
        "20",
        "--targets",
        targets,
        "--out",
    ]);
    command.arg(&out);
    match &qgate {
        Some(path) => command.arg("--qgate").arg(path),
        // A path that does not exist: the harness falls back to its own simulator.
        None => command.arg("--qgate").arg(dir.path().join("no-qgate")),
    };
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "harness failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("### open"), "{stdout}");
    assert!(stdout.contains("**Errors: 0**"), "{stdout}");

    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["errors_total"], 0, "{report:#}");
    let phases = report["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["open", "closed", "frames20", "frames200"]);

    let open = &phases[0];
    let measured: Vec<&str> = open["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(measured[0], "direct");
    let nginx_installed = report["meta"]["nginx"].is_string();
    assert_eq!(measured.contains(&"nginx"), nginx_installed);
    assert_eq!(measured.contains(&"qgate"), qgate.is_some());
    for target in open["targets"].as_array().unwrap() {
        let name = target["target"].as_str().unwrap();
        assert!(
            target["ok"].as_u64().unwrap() > 0,
            "{name} completed nothing"
        );
        assert_eq!(target["error_total"], 0, "{name}: {target:#}");
        for field in ["latency", "ttft", "chunk_relay", "send_lag"] {
            assert!(target[field]["p99_us"].is_number(), "{name} has no {field}");
        }
        // Every scenario of the default mix was sent and answered.
        assert_eq!(
            target["per_scenario"].as_object().unwrap().len(),
            6,
            "{name}"
        );
        if name != "direct" {
            assert!(target["cpu"]["relay_us_per_request"].is_number(), "{name}");
        }
    }
    let added = open["added"].as_array().unwrap();
    assert_eq!(added.len(), measured.len() - 1);

    let streams = report["memory"]["streams"].as_array().unwrap();
    assert_eq!(
        streams.len(),
        measured.len() - 1,
        "one held-streams run per relay"
    );
    for entry in streams {
        let held = &entry[1];
        assert_eq!(held["ok"], 20, "{held:#}");
        assert_eq!(held["errors"], 0, "{held:#}");
        assert_eq!(
            held["peak_in_flight"], 20,
            "all streams were open at once: {held:#}"
        );
    }
    if qgate.is_some() {
        assert!(report["memory"]["qgate_idle_rss_kib"].as_u64().unwrap() > 0);
        let frame_cost = report["frame_cost"].as_array().unwrap();
        assert!(frame_cost.iter().any(|c| c["target"] == "qgate"));
    }
}
