//! The declared tools of a list every request repeats, converted once per thread.
//!
//! Claude Code declares the same 24 tools on every request. The parser shares one parsed
//! list between requests whose `tools` arrays are byte for byte the same
//! ([`Tools::is_shared`]); for such a list the conversion (names, descriptions, schema
//! normalisation), its repairs and its token estimate are remembered here by the list's
//! identity ([`Tools::same_list`]), not recomputed. An entry holds the list itself, so
//! the identity cannot be reused by another list while it is remembered.

use super::{Declared, declared};
use crate::request::Repair;
use crate::tokens::{KnownTools, tool_specs_milli};
use crate::tool_names::ToolNameMapBuilder;
use qgate_anthropic::Tools;
use qgate_anthropic::recent::Recent;
use std::cell::RefCell;

/// Lists remembered per thread, and the size of their JSON arrays together (a converted
/// list takes about that much again); the least recently used goes first.
const MAX_ENTRIES: usize = 8;
const MAX_LIST_BYTES: usize = 1024 * 1024;

/// The declared tools converted, the name map they start, their token estimate.
#[derive(Debug, Clone)]
pub(in crate::request) struct Declaration {
    pub names: ToolNameMapBuilder,
    pub declared: Declared,
    pub known: KnownTools,
}

/// Converts the declared tools, starting the request's name map; the repairs made are
/// appended to `repairs`.
pub(in crate::request) fn declare(tools: Option<&Tools>, repairs: &mut Vec<Repair>) -> Declaration {
    let Some(tools) = tools.filter(|t| t.is_shared() && t.shared_bytes() <= MAX_LIST_BYTES) else {
        return fresh(tools.map_or(&[][..], |t| t), repairs);
    };
    REMEMBERED.with(|cell| remembered(&mut cell.borrow_mut(), tools, repairs))
}

fn fresh(tools: &[qgate_anthropic::Tool], repairs: &mut Vec<Repair>) -> Declaration {
    let mut names = ToolNameMapBuilder::new();
    let declared = declared(tools, &mut names, repairs);
    let known = KnownTools {
        count: declared.specs.len(),
        milli: tool_specs_milli(&declared.specs),
    };
    Declaration {
        names,
        declared,
        known,
    }
}

/// A remembered list's declaration and the repairs its conversion made.
type Remembered = Recent<Tools, (Declaration, Vec<Repair>)>;

thread_local! {
    static REMEMBERED: RefCell<Remembered> =
        const { RefCell::new(Recent::new(MAX_ENTRIES, MAX_LIST_BYTES)) };
}

fn remembered(cache: &mut Remembered, tools: &Tools, repairs: &mut Vec<Repair>) -> Declaration {
    if let Some((declaration, own)) = cache.get(|kept| kept.same_list(tools)) {
        repairs.extend(own.iter().cloned());
        return declaration.clone();
    }
    let mut own = Vec::new();
    let mut declaration = fresh(tools, &mut own);
    // Sent with every request that repeats the list: its JSON is written once too.
    declaration.declared.specs = std::mem::take(&mut declaration.declared.specs).with_json();
    cache.insert(
        tools.clone(),
        (declaration.clone(), own.clone()),
        tools.shared_bytes(),
    );
    repairs.extend(own);
    declaration
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is the test failing

    use super::*;
    use crate::request::{RequestOptions, translate};
    use crate::tokens::estimate_request;
    use qgate_amazonq::{GenerateAssistantResponseRequest, Tool};
    use qgate_anthropic::MessagesRequest;

    fn fixture_body() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/claude-code/first-turn.json"
        );
        let capture: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        serde_json::to_vec(&capture["body"]).unwrap()
    }

    const OPTIONS: RequestOptions<'static> = RequestOptions {
        model_id: "claude-sonnet-4.5",
        origin: "CLI",
        profile_arn: None,
        session_id: Some("0149c1dd-471e-41b2-a989-8a28586cdc81"),
    };

    fn current_tools(body: &GenerateAssistantResponseRequest) -> &[Tool] {
        let user = &body.conversation_state.current_message.user_input_message;
        &user
            .user_input_message_context
            .as_ref()
            .expect("context")
            .tools
    }

    #[test]
    fn a_repeated_tool_list_translates_exactly_as_the_first_time() {
        let body = fixture_body();
        let first: MessagesRequest = serde_json::from_slice(&body).unwrap();
        let second: MessagesRequest = serde_json::from_slice(&body).unwrap();
        let (a, b) = (
            first.tools.as_ref().unwrap(),
            second.tools.as_ref().unwrap(),
        );
        assert!(
            a.is_shared() && a.same_list(b),
            "the parser shares the list"
        );

        let one = translate(&first, &OPTIONS).unwrap();
        let two = translate(&second, &OPTIONS).unwrap();
        REMEMBERED.with(|r| assert_eq!(r.borrow().len(), 1, "remembered once"));
        assert_eq!(current_tools(&one.body), current_tools(&two.body));
        assert_eq!(current_tools(&two.body).len(), 24);
        assert_eq!(one.tool_names, two.tool_names);
        assert_eq!(one.repairs, two.repairs);
        assert_eq!(
            one.body.conversation_state.history,
            two.body.conversation_state.history
        );
        // The remembered estimate is the one worked out over the whole body.
        assert_eq!(two.input_tokens, estimate_request(&two.body));
        assert_eq!(one.input_tokens, two.input_tokens);
    }

    #[test]
    fn a_different_list_is_not_served_from_another_lists_entry() {
        let body = fixture_body();
        let first: MessagesRequest = serde_json::from_slice(&body).unwrap();
        translate(&first, &OPTIONS).unwrap();
        // The same tools with one description changed: equal in size, not the same list.
        let text = String::from_utf8(body).unwrap();
        let changed = text.replacen(
            "Executes a bash command and returns",
            "Executes a Bash command and returns",
            1,
        );
        assert_ne!(text, changed);
        let second: MessagesRequest = serde_json::from_str(&changed).unwrap();
        let two = translate(&second, &OPTIONS).unwrap();
        let described = current_tools(&two.body).iter().any(|t| {
            t.tool_specification
                .description
                .contains("Executes a Bash command and returns")
        });
        assert!(described);
        assert_eq!(two.input_tokens, estimate_request(&two.body));
        REMEMBERED.with(|r| assert_eq!(r.borrow().len(), 2));
    }

    #[test]
    fn the_remembered_lists_are_bounded() {
        let body = String::from_utf8(fixture_body()).unwrap();
        for i in 0..MAX_ENTRIES + 3 {
            let changed = body.replacen(
                "Executes a bash command and returns",
                &format!("Executes bash command {i:03} returns"),
                1,
            );
            let req: MessagesRequest = serde_json::from_str(&changed).unwrap();
            translate(&req, &OPTIONS).unwrap();
        }
        REMEMBERED.with(|r| {
            let r = r.borrow();
            assert_eq!(r.len(), MAX_ENTRIES.min(MAX_LIST_BYTES / body.len()));
            assert!(r.bytes() <= MAX_LIST_BYTES);
        });
    }
}
