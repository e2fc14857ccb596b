//! The `tools` array, parsed once per distinct list.
//!
//! Claude Code declares the same tools (24 of them, 61 of its 76 KB first-turn body) on
//! every request of a session, and parsing them was the largest single cost of such a
//! request (docs/benchmarks.md). The array is therefore read as raw JSON first; a large
//! one is looked up in a small per-thread cache of recently parsed lists and shares the
//! parsed list ([`Arc`]) on a hit. A hit needs the raw text to be *byte for byte* the
//! same — no hash stands in for the comparison — so one client's list can never be
//! served for another's, and the result is exactly what parsing would give.

use super::Tool;
use crate::recent::Recent;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use std::cell::RefCell;
use std::ops::Deref;
use std::sync::Arc;

/// Arrays shorter than this are parsed every time: comparing them saves nothing.
const MIN_CACHED_BYTES: usize = 4 * 1024;
/// Lists kept per thread; the least recently used goes first.
const MAX_ENTRIES: usize = 8;
/// Raw bytes kept per thread (parsed lists take about twice that again).
const MAX_CACHED_BYTES: usize = 1024 * 1024;

/// A parsed `tools` array; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    list: Arc<[Tool]>,
    /// Bytes of the JSON array when it went through the per-thread cache (later
    /// requests with the same array get this very list, [`Tools::same_list`]); 0 if not.
    shared_bytes: usize,
}

impl Tools {
    /// Whether two lists are the same parsed list (a cache hit), not merely equal.
    pub fn same_list(&self, other: &Tools) -> bool {
        Arc::ptr_eq(&self.list, &other.list)
    }

    /// Whether the list came through the per-thread cache: requests repeating the same
    /// array share it, so work derived from it can be remembered by [`Tools::same_list`].
    pub fn is_shared(&self) -> bool {
        self.shared_bytes > 0
    }

    /// Size of the JSON array of a shared list (0 for others), to bound what is
    /// remembered about it.
    pub fn shared_bytes(&self) -> usize {
        self.shared_bytes
    }
}

impl PartialEq for Tools {
    fn eq(&self, other: &Tools) -> bool {
        self.list == other.list
    }
}

impl Deref for Tools {
    type Target = [Tool];

    fn deref(&self) -> &[Tool] {
        &self.list
    }
}

impl Serialize for Tools {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.list.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Tools {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let len = raw.get().len();
        // Only an array the cache can keep is shared: a larger one is parsed every time.
        let shared = (MIN_CACHED_BYTES..=MAX_CACHED_BYTES).contains(&len);
        let shared_bytes = if shared { len } else { 0 };
        let parsed = if shared {
            CACHE.with(|cache| get_or_parse(&mut cache.borrow_mut(), raw))
        } else {
            parse(raw.get())
        };
        parsed
            .map(|list| Tools { list, shared_bytes })
            .map_err(|e| de::Error::custom(message(&e)))
    }
}

fn parse(text: &str) -> Result<Arc<[Tool]>, serde_json::Error> {
    serde_json::from_str::<Vec<Tool>>(text).map(Arc::from)
}

/// The error's message without its position inside the array (the body's parser adds
/// the position in the body), under the field's name.
fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    format!(
        "tools: {}",
        text.strip_suffix(&position).unwrap_or(text.as_str())
    )
}

thread_local! {
    static CACHE: RefCell<Recent<Box<str>, Arc<[Tool]>>> =
        const { RefCell::new(Recent::new(MAX_ENTRIES, MAX_CACHED_BYTES)) };
}

/// The parsed list for `raw`; a miss keeps `raw` itself as the entry's key. The caller
/// only brings arrays of at most `MAX_CACHED_BYTES`.
fn get_or_parse(
    cache: &mut Recent<Box<str>, Arc<[Tool]>>,
    raw: Box<RawValue>,
) -> Result<Arc<[Tool]>, serde_json::Error> {
    let text = raw.get();
    if let Some(tools) = cache.get(|kept| **kept == *text) {
        return Ok(tools.clone());
    }
    let tools = parse(text)?;
    let bytes = text.len();
    cache.insert(raw.into(), tools.clone(), bytes);
    Ok(tools)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is the test failing

    use super::*;
    use crate::MessagesRequest;

    /// A tool list above the caching threshold, distinct per `tag`.
    fn large_tools(tag: &str) -> String {
        let tools: Vec<String> = (0..12)
            .map(|i| {
                format!(
                    r#"{{"name":"{tag}_{i}","description":"{}","input_schema":{{"type":"object","properties":{{"p":{{"type":"string"}}}}}}}}"#,
                    "d".repeat(400)
                )
            })
            .collect();
        format!("[{}]", tools.join(","))
    }

    fn request(tools: &str) -> String {
        format!(
            r#"{{"model":"m","max_tokens":1,"messages":[{{"role":"user","content":"hi"}}],"tools":{tools}}}"#
        )
    }

    fn parse_request(body: &str) -> MessagesRequest {
        serde_json::from_str(body).expect("request parses")
    }

    #[test]
    fn the_same_large_list_is_parsed_once_and_shared() {
        let tools = large_tools("same");
        assert!(tools.len() >= MIN_CACHED_BYTES);
        let a = parse_request(&request(&tools));
        let b = parse_request(&request(&tools));
        let (a, b) = (a.tools.expect("tools"), b.tools.expect("tools"));
        assert!(a.same_list(&b));
        assert!(a.is_shared() && b.is_shared());
        assert_eq!(a.len(), 12);
        assert_eq!(a[3].name, "same_3");
    }

    #[test]
    fn a_list_differing_in_one_byte_is_parsed_anew() {
        let tools = large_tools("diff");
        let changed = tools.replacen("diff_5", "diff_6", 1);
        assert_eq!(tools.len(), changed.len());
        let a = parse_request(&request(&tools)).tools.expect("tools");
        let b = parse_request(&request(&changed)).tools.expect("tools");
        assert!(!a.same_list(&b));
        assert_eq!(a[5].name, "diff_5");
        assert_eq!(b[5].name, "diff_6");
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_the_recently_used() {
        let first = large_tools("first");
        let kept = parse_request(&request(&first)).tools.expect("tools");
        for i in 0..MAX_ENTRIES * 2 {
            // Using `first` again keeps it among the recently used.
            let again = parse_request(&request(&first)).tools.expect("tools");
            assert!(again.same_list(&kept), "evicted after {i} other lists");
            parse_request(&request(&large_tools(&format!("other{i}"))));
        }
        CACHE.with(|cache| {
            let cache = cache.borrow();
            assert!(cache.len() <= MAX_ENTRIES);
            assert!(cache.bytes() <= MAX_CACHED_BYTES);
        });
    }

    #[test]
    fn small_lists_and_values_parse_as_before() {
        let small = r#"[{"name":"a","input_schema":{"type":"object"}}]"#;
        let a = parse_request(&request(small)).tools.expect("tools");
        let b = parse_request(&request(small)).tools.expect("tools");
        assert_eq!(a.len(), 1);
        assert!(!a.is_shared() && !a.same_list(&b));
        assert_eq!(a, b);
        let value: serde_json::Value = serde_json::from_str(&request(&large_tools("v"))).unwrap();
        let from_value: MessagesRequest = serde_json::from_value(value).expect("parses");
        assert_eq!(from_value.tools().len(), 12);
        let null = parse_request(&request("null"));
        assert!(null.tools.is_none());
    }

    #[test]
    fn a_bad_tool_is_reported_under_tools_with_its_position_in_the_body() {
        let mut tools = large_tools("bad");
        tools = tools.replacen(r#""name":"bad_2""#, r#""name":2"#, 1);
        let err = serde_json::from_str::<MessagesRequest>(&request(&tools))
            .expect_err("a number is not a name")
            .to_string();
        assert!(err.starts_with("tools: invalid type: integer `2`"), "{err}");
        assert_eq!(err.matches(" at line ").count(), 1, "{err}");
    }

    #[test]
    fn an_array_too_large_to_keep_is_parsed_every_time_and_not_shared() {
        let tools: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    r#"{{"name":"big_{i}","description":"{}"}}"#,
                    "x".repeat(4000)
                )
            })
            .collect();
        let tools = format!("[{}]", tools.join(","));
        assert!(tools.len() > MAX_CACHED_BYTES);
        let a = parse_request(&request(&tools)).tools.expect("tools");
        let b = parse_request(&request(&tools)).tools.expect("tools");
        assert_eq!(a.len(), 300);
        assert!(!a.is_shared() && !a.same_list(&b));
        assert_eq!(a.shared_bytes(), 0);
        CACHE.with(|cache| assert!(cache.borrow().is_empty()));
    }

    #[test]
    fn round_trips_through_serialize() {
        let tools = large_tools("rt");
        let req = parse_request(&request(&tools));
        let again: MessagesRequest =
            serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert_eq!(again.tools(), req.tools());
    }
}
