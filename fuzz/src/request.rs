//! The request translator (`qgate_translate::request::translate`) under arbitrary
//! Anthropic requests.
//!
//! An input starting with `{` is a raw JSON body (the seed corpus holds real Claude Code
//! bodies, which libFuzzer then mutates byte by byte); anything else drives a structured
//! generator ([`generate`]) that only builds request shapes the API accepts, in every
//! combination: roles in any order, every block type, tool calls and results paired or
//! not, images good and bad, odd tool definitions, thinking settings, huge and empty
//! texts. The properties:
//!
//! * parsing and translating never panic;
//! * a generated request always parses (the tolerant request types accept every shape
//!   the API accepts);
//! * an error is only ever one of the documented client mistakes, and only when the
//!   request really makes it;
//! * every translation, serialized as the gateway sends it and re-targeted at another
//!   account as a failover does, passes the service's validator
//!   (`qgate_amazonq::validate`, the same rules the simulator enforces) — except
//!   "input is too long" for requests that really are that long.

mod generate;

use qgate_amazonq::validate::{Limits, ViolationKind, validate_json};
use qgate_anthropic::{ContentBlock, MessagesRequest, Role};
use qgate_translate::request::{RequestOptions, TranslateError, translate};

/// Below this many bytes of request JSON, nothing can legitimately exceed the service's
/// smallest length limit (600 000 characters of one user message) even after the
/// translator adds its directive and acknowledgement texts.
const SURELY_SHORT_ENOUGH: usize = 550_000;

/// The `translate_request` target.
pub fn check(data: &[u8]) {
    if data.first() == Some(&b'{') {
        // Any JSON the gateway's parser accepts is a request it will translate.
        if let Ok(req) = serde_json::from_slice::<MessagesRequest>(data) {
            translate_and_validate(&req, &String::from_utf8_lossy(data));
        }
        return;
    }
    let Ok(body) = generate::request(&mut arbitrary::Unstructured::new(data)) else {
        return;
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    if std::env::var_os("QGATE_FUZZ_DUMP").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&bytes));
    }
    let req: MessagesRequest = match serde_json::from_slice(&bytes) {
        Ok(req) => req,
        Err(e) => panic!("a request the API accepts was refused: {e}\n{body}"),
    };
    translate_and_validate(&req, &String::from_utf8_lossy(&bytes));
}

/// Translates as the gateway does (Q-CLI first), checks the body, then re-targets it at
/// a Kiro account as a failover does and checks again. `request_json` is what the client
/// sent, quoted when a property fails.
fn translate_and_validate(req: &MessagesRequest, request_json: &str) {
    let session = req.session_id();
    let opts = RequestOptions {
        model_id: "claude-sonnet-4.5",
        origin: "CLI",
        profile_arn: None,
        session_id: session.as_deref(),
    };
    let mut translated = match translate(req, &opts) {
        Ok(t) => t,
        Err(e) => {
            assert_error_is_justified(req, &e);
            return;
        }
    };
    assert_acceptable(&translated.body, request_json, &translated.repairs);
    translated.set_account(
        "AI_EDITOR",
        Some("arn:aws:codewhisperer:eu-central-1:1:profile/X"),
    );
    assert_acceptable(&translated.body, request_json, &translated.repairs);
}

fn assert_acceptable(
    body: &qgate_amazonq::GenerateAssistantResponseRequest,
    request_json: &str,
    repairs: &[qgate_translate::request::Repair],
) {
    let wire = match serde_json::to_vec(body) {
        Ok(wire) => wire,
        Err(e) => panic!("the translated body does not serialize: {e}"),
    };
    match validate_json(&wire, &Limits::default()) {
        Ok(_) => {}
        Err(v) if v.kind == ViolationKind::TooLong && request_json.len() > SURELY_SHORT_ENOUGH => {}
        Err(v) => panic!(
            "the service would reject the translation: {v}\nrepairs: {repairs:?}\n\
             request: {request_json}\ntranslation: {}",
            String::from_utf8_lossy(&wire)
        ),
    }
}

/// Each error names a mistake the request really makes.
fn assert_error_is_justified(req: &MessagesRequest, error: &TranslateError) {
    let blocks = || {
        req.messages
            .iter()
            .flat_map(|m| m.content.blocks().into_owned())
    };
    let has_image = || {
        blocks().any(|b| match b {
            ContentBlock::Image { .. } => true,
            ContentBlock::ToolResult {
                content: Some(qgate_anthropic::ToolResultContent::Blocks(inner)),
                ..
            } => inner
                .iter()
                .any(|b| matches!(b, ContentBlock::Image { .. })),
            _ => false,
        })
    };
    match error {
        TranslateError::NoMessages => assert!(req.messages.is_empty(), "{error}"),
        TranslateError::NoUserMessage => assert!(
            !req.messages.is_empty() && req.messages.iter().all(|m| m.role != Role::User),
            "{error}"
        ),
        TranslateError::TooManyImages { count } => {
            assert!(*count > qgate_translate::request::MAX_IMAGES, "{error}")
        }
        TranslateError::ImageUrlSource { .. }
        | TranslateError::UnsupportedImageSource { .. }
        | TranslateError::UnsupportedMediaType { .. }
        | TranslateError::InvalidBase64 { .. }
        | TranslateError::InvalidDataUrl { .. }
        | TranslateError::ImageTooLarge { .. } => assert!(has_image(), "{error}"),
    }
}
