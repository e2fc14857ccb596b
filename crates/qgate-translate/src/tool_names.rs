//! Tool names over the service's 64-character limit are shortened deterministically
//! (`prefix_` + 8 hex digits of SHA-256 of the full name) and mapped back in responses.

use std::collections::HashMap;
use std::sync::Arc;

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
}
