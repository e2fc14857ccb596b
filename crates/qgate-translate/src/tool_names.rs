//! Tool names over the service's 64-character limit (or with characters outside
//! `[A-Za-z0-9_-]`) are shortened deterministically (`prefix_` + 8 hex digits of SHA-256
//! of the full name) and mapped back in responses.
//!
//! The request side shortens every name through one [`ToolNameMapBuilder`], so a declared
//! tool and the `tool_use` blocks in history that call it always agree on the upstream name;
//! the response side only needs [`ToolNameMap::original`].

use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Longest tool name the service accepts.
pub const MAX_TOOL_NAME_LEN: usize = 64;

/// Hex digits of the hash appended to a shortened name.
const HASH_HEX_LEN: usize = 8;

/// Upstream (possibly shortened) tool name → the client's original name.
/// Only names that were actually shortened are stored; others map to themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNameMap {
    shortened: Arc<HashMap<String, String>>,
}

impl ToolNameMap {
    pub fn new(shortened: HashMap<String, String>) -> Self {
        Self {
            shortened: Arc::new(shortened),
        }
    }

    /// The client's name for a tool name seen upstream.
    pub fn original<'a>(&'a self, upstream: &'a str) -> &'a str {
        self.shortened
            .get(upstream)
            .map(String::as_str)
            .unwrap_or(upstream)
    }

    pub fn is_empty(&self) -> bool {
        self.shortened.is_empty()
    }

    /// Number of shortened names.
    pub fn len(&self) -> usize {
        self.shortened.len()
    }
}

/// Whether the service accepts `name` as it is.
pub fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The upstream name for a client tool name: the name itself when valid, otherwise
/// `prefix_` + the first 8 hex digits of SHA-256 of the full name (≤ 64 characters).
pub fn shorten(name: &str) -> Cow<'_, str> {
    if is_valid_tool_name(name) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(shortened_with_hash(name, HASH_HEX_LEN))
    }
}

fn shortened_with_hash(name: &str, hex_len: usize) -> String {
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    let hash = &digest[..hex_len.min(digest.len())];
    let room = MAX_TOOL_NAME_LEN - 1 - hash.len();
    let mut prefix: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(room)
        .collect();
    if prefix.is_empty() {
        prefix.push_str("tool");
    }
    format!("{prefix}_{hash}")
}

/// Assigns upstream names for one request and records the reverse map.
///
/// Guarantees that two different client names never share an upstream name (a shortened
/// name that collides with another tool gets a longer hash), and that the same client
/// name always gets the same upstream name within the request.
#[derive(Debug, Clone, Default)]
pub struct ToolNameMapBuilder {
    by_client: HashMap<String, String>,
    by_upstream: HashMap<String, String>,
}

impl ToolNameMapBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `client` already has an upstream name in this request.
    pub fn is_known(&self, client: &str) -> bool {
        self.by_client.contains_key(client)
    }

    /// The upstream name for `client`, shortening it when needed.
    pub fn upstream_name(&mut self, client: &str) -> String {
        if let Some(known) = self.by_client.get(client) {
            return known.clone();
        }
        let mut candidate = shorten(client).into_owned();
        let mut hex_len = HASH_HEX_LEN;
        // A valid name can only collide with an earlier shortened one; a shortened name
        // can collide with anything. Lengthening the hash resolves both in practice.
        while self
            .by_upstream
            .get(&candidate)
            .is_some_and(|owner| owner != client)
            && hex_len < 64
        {
            hex_len += 8;
            candidate = shortened_with_hash(client, hex_len);
        }
        self.by_client.insert(client.to_owned(), candidate.clone());
        self.by_upstream
            .insert(candidate.clone(), client.to_owned());
        candidate
    }

    /// The reverse map of every name that was changed.
    pub fn build(self) -> ToolNameMap {
        let shortened = self
            .by_upstream
            .into_iter()
            .filter(|(upstream, client)| upstream != client)
            .collect();
        ToolNameMap::new(shortened)
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_pass_through() {
        assert_eq!(shorten("Bash"), "Bash");
        assert_eq!(shorten("mcp__server-1__tool_x"), "mcp__server-1__tool_x");
        let sixty_four = "a".repeat(64);
        assert_eq!(shorten(&sixty_four), sixty_four.as_str());
    }

    #[test]
    fn long_names_are_shortened_deterministically_within_the_limit() {
        let long = format!("mcp__{}__do_something", "very_long_server_name".repeat(4));
        let a = shorten(&long).into_owned();
        let b = shorten(&long).into_owned();
        assert_eq!(a, b);
        assert!(a.len() <= MAX_TOOL_NAME_LEN, "{a}");
        assert!(is_valid_tool_name(&a));
        let digest = hex::encode(Sha256::digest(long.as_bytes()));
        assert!(a.ends_with(&format!("_{}", &digest[..8])), "{a}");
        assert!(a.starts_with("mcp__very_long_server_name"));
    }

    #[test]
    fn invalid_characters_are_replaced() {
        let short = shorten("my.tool name");
        assert!(is_valid_tool_name(&short), "{short}");
        assert!(short.starts_with("my_tool_name_"));
        assert!(is_valid_tool_name(&shorten("")));
        assert!(is_valid_tool_name(&shorten("工具")));
    }

    #[test]
    fn builder_maps_back_only_changed_names() {
        let long = "x".repeat(100);
        let mut builder = ToolNameMapBuilder::new();
        assert_eq!(builder.upstream_name("Read"), "Read");
        let upstream = builder.upstream_name(&long);
        assert_eq!(builder.upstream_name(&long), upstream);
        let map = builder.build();
        assert_eq!(map.len(), 1);
        assert_eq!(map.original(&upstream), long);
        assert_eq!(map.original("Read"), "Read");
    }

    #[test]
    fn builder_resolves_collisions_with_existing_names() {
        let long = "y".repeat(80);
        let natural = shorten(&long).into_owned();
        let mut builder = ToolNameMapBuilder::new();
        // A client tool that happens to be named like the shortened form claims it first.
        assert_eq!(builder.upstream_name(&natural), natural);
        let upstream = builder.upstream_name(&long);
        assert_ne!(upstream, natural);
        assert!(is_valid_tool_name(&upstream));
        let map = builder.build();
        assert_eq!(map.original(&upstream), long);
        assert_eq!(map.original(&natural), natural);
    }
}
