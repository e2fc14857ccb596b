//! End-to-end tests of the simulator over HTTP on a loopback port, with the gateway's own
//! event-stream decoder reading the replies. Helpers here make the tests read like specs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chat;
mod faults;
mod oidc;
mod script;
mod stats;
mod usage;
mod validation;

use qgate_amazonq::codec::DecodeFailure;
use qgate_amazonq::{Dialect, Event, EventStreamDecoder, StreamError};
use qgate_sim::{SimConfig, SimHandle};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A running simulator and a client for it.
#[derive(Debug)]
pub struct TestSim {
    pub handle: SimHandle,
    pub client: reqwest::Client,
}

pub async fn start(config: SimConfig) -> TestSim {
    // Only the first install wins; later ones report the existing provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = qgate_sim::start(config, listener).await.unwrap();
    TestSim {
        handle,
        client: reqwest::Client::new(),
    }
}

pub async fn start_default() -> TestSim {
    start(SimConfig::default()).await
}

/// Everything a chat reply carried.
#[derive(Debug, Default)]
pub struct Transcript {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// The error body, for non-200 answers.
    pub error_body: Option<Value>,
    pub events: Vec<Event>,
    /// The in-band exception or error frame the stream ended with.
    pub stream_error: Option<StreamError>,
    /// The bytes were not a valid event stream.
    pub decode_error: Option<String>,
    /// The connection broke inside the body.
    pub transport_error: bool,
}

impl Transcript {
    /// All text of `assistantResponseEvent`s, concatenated.
    pub fn text(&self) -> String {
        self.text_pieces().concat()
    }

    pub fn text_pieces(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::AssistantResponse { content } => Some(content.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn event_types(&self) -> Vec<&'static str> {
        self.events.iter().map(Event::event_type).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestSim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Refreshes account `index` through OIDC and returns its access token.
    pub async fn token(&self, index: usize) -> String {
        let creds = qgate_sim::credentials(index);
        let (status, body) = self
            .post_json(
                "/token",
                &json!({"grantType": "refresh_token", "refreshToken": creds.refresh_token,
                        "clientId": creds.client_id, "clientSecret": creds.client_secret}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["accessToken"].as_str().unwrap().to_owned()
    }

    /// Sends a chat request in `dialect` with the right headers.
    pub async fn send_chat(
        &self,
        dialect: Dialect,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(dialect.path()))
            .header("content-type", dialect.content_type())
            .bearer_auth(token)
            .body(serde_json::to_vec(body).unwrap());
        if dialect == Dialect::QCli {
            request = request.header("x-amz-target", Dialect::X_AMZ_TARGET);
        }
        request.send().await.unwrap()
    }

    pub async fn chat(&self, dialect: Dialect, token: &str, body: &Value) -> Transcript {
        read_transcript(self.send_chat(dialect, token, body).await).await
    }

    pub async fn stats(&self) -> qgate_sim::SimStats {
        let response = self
            .client
            .get(self.url("/_sim/stats"))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }
}

/// Reads a chat response to its end, decoding frames as they arrive.
pub async fn read_transcript(mut response: reqwest::Response) -> Transcript {
    let mut transcript = Transcript {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        ..Transcript::default()
    };
    if transcript.status != 200 {
        transcript.error_body = Some(response.json().await.unwrap_or(Value::Null));
        return transcript;
    }
    let mut decoder = EventStreamDecoder::new();
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => decoder.push(&bytes),
            Ok(None) => break,
            Err(_) => {
                transcript.transport_error = true;
                break;
            }
        }
        if drain(&mut decoder, &mut transcript) {
            return transcript;
        }
    }
    if !drain(&mut decoder, &mut transcript)
        && !transcript.transport_error
        && let Err(e) = decoder.finish()
    {
        transcript.decode_error = Some(e.to_string());
    }
    transcript
}

/// Moves decoded events into the transcript; `true` once the stream failed.
fn drain(decoder: &mut EventStreamDecoder, transcript: &mut Transcript) -> bool {
    loop {
        match decoder.next_event() {
            Ok(Some(event)) => transcript.events.push(event),
            Ok(None) => return false,
            Err(DecodeFailure::Stream(e)) => {
                transcript.stream_error = Some(e);
                return true;
            }
            Err(DecodeFailure::Decode(e)) => {
                transcript.decode_error = Some(e.to_string());
                return true;
            }
        }
    }
}

/// A valid first-turn request.
pub fn request(content: &str) -> Value {
    json!({
        "conversationState": {
            "conversationId": "11111111-2222-4333-8444-555555555555",
            "chatTriggerType": "MANUAL",
            "currentMessage": {"userInputMessage": {
                "content": content,
                "modelId": "claude-sonnet-4.5",
                "origin": "CLI",
            }}
        }
    })
}

/// A valid request declaring the tools `names`.
pub fn request_with_tools(content: &str, names: &[&str]) -> Value {
    let mut body = request(content);
    let tools: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({"toolSpecification": {"name": n, "description": format!("The {n} tool."),
            "inputSchema": {"json": {"type": "object", "properties": {}}}}})
        })
        .collect();
    body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"] =
        json!({"tools": tools});
    body
}

/// A valid request whose current message answers tool use `id` with `result`.
pub fn tool_result_request(id: &str, result: &str) -> Value {
    let mut body = request_with_tools("", &["Bash"]);
    body["conversationState"]["history"] = json!([
        {"userInputMessage": {"content": "run ls", "origin": "CLI"}},
        {"assistantResponseMessage": {"content": "Running.",
            "toolUses": [{"toolUseId": id, "name": "Bash", "input": {"command": "ls"}}]}},
    ]);
    body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"] =
        json!([{"toolUseId": id, "content": [{"text": result}], "status": "success"}]);
    body
}
