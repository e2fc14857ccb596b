//! Client model names → upstream `modelId`, context windows, and the `/v1/models` list.
//!
//! Resolution order: names configured in `[models]` (or `MODEL_MAP`) exactly as written
//! (case-insensitive), then the built-in Claude rules ([`builtin`]), then the configured
//! default model. Without a default, an unknown name is an [`UnknownModel`] (the gateway
//! answers 404 `not_found_error`): silently answering with another model hides client
//! misconfiguration.
//!
//! The map is built once at start-up (and on config reload) and is read-only afterwards.

mod builtin;
mod config;

pub use config::{ModelEntryConfig, ModelEntryDetails, ModelMapConfig};

use qgate_anthropic::models::ModelInfo;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Context window assumed for an upstream id that is neither built in nor configured
/// with a `context_window`.
pub const DEFAULT_CONTEXT_WINDOW: u64 = 200_000;

/// What a client model name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The `modelId` to send upstream.
    pub upstream_id: String,
    /// Tokens the upstream model accepts (used to turn context-usage percentages into
    /// token counts and to reject over-long prompts with the wording clients parse).
    pub context_window: u64,
}

/// The requested model is not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownModel {
    #[error(
        "model `{requested}` is not available here; known models include {known} \
         (dated, dotted and dashed Claude names such as claude-sonnet-4-5-20250929 also resolve)"
    )]
    NotFound { requested: String, known: String },
}

/// A configured client name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// As configured (the listing shows it in this spelling).
    name: String,
    upstream_id: String,
    context_window: u64,
    display_name: Option<String>,
}

/// The resolver. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMap {
    /// Keyed by the lower-cased client name.
    entries: BTreeMap<String, Entry>,
    builtin_rules: bool,
    /// The default's own name and what it resolves to.
    default: Option<(String, ResolvedModel)>,
    /// Names for `/v1/models`; `None` lists the built-in models and every entry.
    exposed: Option<Vec<String>>,
}

impl ModelMap {
    /// Built-in rules only, no default: unknown names are errors.
    pub fn builtin() -> Self {
        Self {
            entries: BTreeMap::new(),
            builtin_rules: true,
            default: None,
            exposed: None,
        }
    }

    /// The map described by the `[models]` section; every problem is reported at once.
    pub fn from_config(cfg: &ModelMapConfig) -> Result<Self, Vec<String>> {
        config::build(cfg)
    }

    /// Applies the environment overrides: `MODEL_MAP="client=upstream,client2=upstream2"`
    /// adds or replaces entries, `DEFAULT_MODEL` sets the default. Empty values are ignored.
    pub fn with_env(
        self,
        model_map: Option<&str>,
        default_model: Option<&str>,
    ) -> Result<Self, Vec<String>> {
        config::apply_env(self, model_map, default_model)
    }

    /// The upstream model for a client model name.
    pub fn resolve(&self, requested: &str) -> Result<ResolvedModel, UnknownModel> {
        if let Some(found) = self.resolve_without_default(requested) {
            return Ok(found);
        }
        match &self.default {
            Some((_, resolved)) => Ok(resolved.clone()),
            None => Err(UnknownModel::NotFound {
                requested: requested.to_owned(),
                known: self.known_summary(),
            }),
        }
    }

    fn resolve_without_default(&self, requested: &str) -> Option<ResolvedModel> {
        let key = lowered(requested);
        if let Some(entry) = self.entries.get(&*key) {
            return Some(ResolvedModel {
                upstream_id: entry.upstream_id.clone(),
                context_window: entry.context_window,
            });
        }
        if !self.builtin_rules {
            return None;
        }
        let model = builtin::by_upstream_id(&key).or_else(|| builtin::resolve_claude_name(&key))?;
        Some(ResolvedModel {
            upstream_id: model.id.to_owned(),
            context_window: model.context_window,
        })
    }

    /// The configured default model's name, if any.
    pub fn default_model(&self) -> Option<&str> {
        self.default.as_ref().map(|(name, _)| name.as_str())
    }

    /// Models for `GET /v1/models`, newest built-in models first, then configured names.
    pub fn list(&self) -> Vec<ModelInfo> {
        match &self.exposed {
            Some(names) => names.iter().map(|name| self.info_for(name)).collect(),
            None => self.default_listing(),
        }
    }

    fn default_listing(&self) -> Vec<ModelInfo> {
        let mut listing = Vec::new();
        if self.builtin_rules {
            for model in builtin::UPSTREAM_MODELS.iter().rev() {
                listing.push(info(model.listed_as, model.display_name, model.created_at));
            }
        }
        for entry in self.entries.values() {
            // An entry may rename a built-in name; list each name once.
            if !listing
                .iter()
                .any(|m| m.id.eq_ignore_ascii_case(&entry.name))
            {
                listing.push(self.info_for(&entry.name));
            }
        }
        listing
    }

    fn info_for(&self, name: &str) -> ModelInfo {
        let key = name.trim().to_ascii_lowercase();
        if let Some(entry) = self.entries.get(&key) {
            let upstream = builtin::by_upstream_id(&entry.upstream_id);
            let display = entry
                .display_name
                .clone()
                .or_else(|| upstream.map(|m| m.display_name.to_owned()))
                .unwrap_or_else(|| entry.name.clone());
            let created = upstream.map_or(CONFIGURED_CREATED_AT, |m| m.created_at);
            return info(&entry.name, &display, created);
        }
        let upstream = builtin::by_upstream_id(&key).or_else(|| builtin::resolve_claude_name(&key));
        match upstream {
            Some(model) => info(name, model.display_name, model.created_at),
            None => info(name, name, CONFIGURED_CREATED_AT),
        }
    }

    /// A short list of names for error messages.
    fn known_summary(&self) -> String {
        const SHOWN: usize = 8;
        let names: Vec<String> = self.list().into_iter().map(|m| m.id).collect();
        let mut summary = names
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > SHOWN {
            summary.push_str(&format!(" and {} more", names.len() - SHOWN));
        }
        if summary.is_empty() {
            summary.push_str("none");
        }
        summary
    }
}

impl Default for ModelMap {
    fn default() -> Self {
        Self::builtin()
    }
}

/// `created_at` for configured names whose upstream model is not built in.
const CONFIGURED_CREATED_AT: &str = "2025-01-01T00:00:00Z";

/// A model name as it is looked up: trimmed and in lower case, borrowed when it already is
/// (as clients send it), so resolving a request's model allocates only its result.
fn lowered(name: &str) -> Cow<'_, str> {
    let name = name.trim();
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

fn info(id: &str, display_name: &str, created_at: &str) -> ModelInfo {
    ModelInfo {
        kind: "model".to_owned(),
        id: id.to_owned(),
        display_name: display_name.to_owned(),
        created_at: created_at.to_owned(),
    }
}

#[cfg(test)]
mod tests;
