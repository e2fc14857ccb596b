//! Measures the simulator's CPU cost per chat request: the simulator runs alone on one
//! thread (a current-thread runtime), a client on other threads sends keep-alive
//! requests, and the simulator thread's CPU time (from `/proc/thread-self/stat`, Linux
//! only) is divided by the requests served.
//!
//! `cargo run --release -p qgate-sim --example cpu_per_request -- [requests] [concurrency] [words] [large]`
//!
//! `large` = 1 sends a Claude-Code-sized body (~80 KB: a long prompt and 24 tools).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use qgate_amazonq::Dialect;
use qgate_sim::SimConfig;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("Linux /proc");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let requests = args.first().copied().unwrap_or(20_000);
    let concurrency = args.get(1).copied().unwrap_or(16);
    let words = args.get(2).copied().unwrap_or(20);
    let large = args.get(3).copied().unwrap_or(0) == 1;
    let _ = rustls::crypto::ring::default_provider().install_default();

    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (cpu_tx, cpu_rx) = std::sync::mpsc::channel::<oneshot::Sender<Duration>>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let sim = qgate_sim::start(SimConfig::default(), listener)
                .await
                .unwrap();
            addr_tx.send(sim.base_url()).unwrap();
            // Answer CPU-time probes from this thread while serving.
            loop {
                match cpu_rx.try_recv() {
                    Ok(reply) => {
                        let _ = reply.send(thread_cpu());
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                }
            }
            drop(sim);
        });
    });
    let base = addr_rx.recv().unwrap();
    let probe = || {
        let (tx, rx) = oneshot::channel();
        cpu_tx.send(tx).unwrap();
        rx.blocking_recv().unwrap()
    };

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let token = client_runtime.block_on(async {
        let creds = qgate_sim::credentials(1);
        let body: serde_json::Value = client
            .post(format!("{base}/token"))
            .json(
                &json!({"grantType": "refresh_token", "refreshToken": creds.refresh_token,
                          "clientId": creds.client_id, "clientSecret": creds.client_secret}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["accessToken"].as_str().unwrap().to_owned()
    });
    let prompt = format!(
        "Summarise the design of a small HTTP gateway that pools accounts, retries on throttling, \
         and streams server-sent events back to the client. [[sim words={words}]]"
    );
    let mut request = json!({"conversationState": {
        "conversationId": "bench", "chatTriggerType": "MANUAL",
        "currentMessage": {"userInputMessage": {"content": prompt, "modelId": "claude-sonnet-4.5", "origin": "CLI"}}
    }});
    if large {
        let current = &mut request["conversationState"]["currentMessage"]["userInputMessage"];
        let padding =
            "You are an interactive CLI tool that helps users with software engineering tasks. "
                .repeat(400);
        current["content"] = json!(format!("{padding}{prompt}"));
        let tools: Vec<_> = (0..24)
            .map(|i| json!({"toolSpecification": {"name": format!("Tool{i}"),
                "description": "Performs one of the operations a coding agent needs. ".repeat(30),
                "inputSchema": {"json": {"type": "object", "properties": {
                    "path": {"type": "string", "description": "The absolute path to operate on"},
                    "limit": {"type": "number"}, "flags": {"type": "array", "items": {"type": "string"}}},
                    "required": ["path"], "additionalProperties": false}}}}))
            .collect();
        current["userInputMessageContext"] = json!({"tools": tools});
    }
    let body = Arc::new(serde_json::to_vec(&request).unwrap());
    println!("request body: {} bytes", body.len());

    let run = |count: usize| {
        client_runtime.block_on(async {
            let mut tasks = Vec::new();
            for worker in 0..concurrency {
                let (client, base, token, body) =
                    (client.clone(), base.clone(), token.clone(), body.clone());
                let share = count / concurrency + usize::from(worker < count % concurrency);
                tasks.push(tokio::spawn(async move {
                    for _ in 0..share {
                        let response = client
                            .post(format!("{base}{}", Dialect::Kiro.path()))
                            .header("content-type", Dialect::Kiro.content_type())
                            .bearer_auth(&token)
                            .body(body.as_ref().clone())
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), 200);
                        response.bytes().await.unwrap();
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        })
    };

    run(requests / 10); // warm up connections and allocator
    let cpu_before = probe();
    let started = Instant::now();
    run(requests);
    let wall = started.elapsed();
    let cpu = probe() - cpu_before;
    println!(
        "{requests} requests, {concurrency} concurrent, {words} words: simulator CPU {:.1} µs/request, \
         {:.0} requests/s (client and simulator share 2 cores)",
        cpu.as_secs_f64() * 1e6 / requests as f64,
        requests as f64 / wall.as_secs_f64()
    );
}
