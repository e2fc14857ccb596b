//! The `[models]` section of the gateway's TOML file and the `MODEL_MAP` / `DEFAULT_MODEL`
//! environment overrides, turned into a [`ModelMap`] with every problem reported at once.
//!
//! ```toml
//! [models]
//! default = "claude-sonnet-4.5"          # unknown names use this (absent: 404)
//! exposed = ["claude-sonnet-4-5", "fast"] # GET /v1/models (absent: built-ins + entries)
//! builtin = true                          # resolve Claude names by the built-in rules
//!
//! [models.entries]
//! fast = "claude-haiku-4.5"
//! big = { upstream = "claude-opus-4.8", context_window = 1000000, display_name = "Big" }
//! ```

use super::{DEFAULT_CONTEXT_WINDOW, Entry, ModelMap, builtin};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The raw `[models]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMapConfig {
    /// The model used for names nothing else matches; absent → unknown names are errors.
    #[serde(default)]
    pub default: Option<String>,
    /// Client name → upstream id (a string) or a table with details.
    #[serde(default)]
    pub entries: BTreeMap<String, ModelEntryConfig>,
    /// Client names listed by `GET /v1/models`; absent → built-in models and entries.
    #[serde(default)]
    pub exposed: Option<Vec<String>>,
    /// Whether Claude names resolve by the built-in rules.
    #[serde(default = "enabled")]
    pub builtin: bool,
}

fn enabled() -> bool {
    true
}

impl Default for ModelMapConfig {
    fn default() -> Self {
        Self {
            default: None,
            entries: BTreeMap::new(),
            exposed: None,
            builtin: true,
        }
    }
}

/// One configured client name: `name = "upstream-id"` or `name = { upstream = .. }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ModelEntryConfig {
    Upstream(String),
    Detailed(ModelEntryDetails),
}

/// The table form of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntryDetails {
    pub upstream: String,
    #[serde(default)]
    pub context_window: Option<u64>,
    #[serde(default)]
    pub display_name: Option<String>,
}

// Written by hand rather than `#[serde(untagged)]`, whose only error is "data did not
// match any variant": a typo inside the table should name the unknown field.
impl<'de> Deserialize<'de> for ModelEntryConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = ModelEntryConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an upstream model id or a table with `upstream`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ModelEntryConfig::Upstream(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ModelEntryDetails::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ModelEntryConfig::Detailed)
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

impl ModelEntryConfig {
    fn details(&self) -> (&str, Option<u64>, Option<&str>) {
        match self {
            ModelEntryConfig::Upstream(id) => (id, None, None),
            ModelEntryConfig::Detailed(d) => {
                (&d.upstream, d.context_window, d.display_name.as_deref())
            }
        }
    }
}

pub(super) fn build(cfg: &ModelMapConfig) -> Result<ModelMap, Vec<String>> {
    let mut problems = Vec::new();
    let mut map = ModelMap {
        entries: BTreeMap::new(),
        builtin_rules: cfg.builtin,
        default: None,
        exposed: None,
    };
    for (name, entry) in &cfg.entries {
        let (upstream, window, display) = entry.details();
        match make_entry(name, upstream, window, display) {
            Ok(entry) => insert_entry(&mut map, entry, &mut problems, "models.entries"),
            Err(problem) => problems.push(format!("models.entries.{name}: {problem}")),
        }
    }
    if let Some(default) = cfg.default.as_deref() {
        set_default(&mut map, default, "models.default", &mut problems);
    }
    if let Some(exposed) = &cfg.exposed {
        for name in exposed {
            if map.resolve_without_default(name).is_none() {
                problems.push(format!(
                    "models.exposed: `{name}` does not resolve to any model (add it to models.entries)"
                ));
            }
        }
        map.exposed = Some(exposed.clone());
    }
    if problems.is_empty() {
        Ok(map)
    } else {
        Err(problems)
    }
}

pub(super) fn apply_env(
    mut map: ModelMap,
    model_map: Option<&str>,
    default_model: Option<&str>,
) -> Result<ModelMap, Vec<String>> {
    let mut problems = Vec::new();
    for pair in model_map.unwrap_or_default().split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let Some((name, upstream)) = pair.split_once('=') else {
            problems.push(format!("MODEL_MAP: `{pair}` is not `client=upstream`"));
            continue;
        };
        match make_entry(name.trim(), upstream.trim(), None, None) {
            Ok(entry) => {
                // The environment overrides the file, so replacing is intended here.
                map.entries.insert(entry.name.to_ascii_lowercase(), entry);
            }
            Err(problem) => problems.push(format!("MODEL_MAP: `{pair}`: {problem}")),
        }
    }
    if let Some(default) = default_model.map(str::trim).filter(|d| !d.is_empty()) {
        set_default(&mut map, default, "DEFAULT_MODEL", &mut problems);
    }
    if problems.is_empty() {
        Ok(map)
    } else {
        Err(problems)
    }
}

fn make_entry(
    name: &str,
    upstream: &str,
    window: Option<u64>,
    display: Option<&str>,
) -> Result<Entry, String> {
    if name.trim().is_empty() {
        return Err("the client name is empty".to_owned());
    }
    let upstream = upstream.trim();
    if upstream.is_empty() {
        return Err("the upstream model id is empty".to_owned());
    }
    if upstream.chars().any(char::is_whitespace) {
        return Err(format!(
            "the upstream model id `{upstream}` contains whitespace"
        ));
    }
    if window == Some(0) {
        return Err("context_window must be greater than 0".to_owned());
    }
    let known_window = builtin::by_upstream_id(upstream).map(|m| m.context_window);
    Ok(Entry {
        name: name.trim().to_owned(),
        upstream_id: upstream.to_owned(),
        context_window: window.or(known_window).unwrap_or(DEFAULT_CONTEXT_WINDOW),
        display_name: display.map(str::to_owned),
    })
}

fn insert_entry(map: &mut ModelMap, entry: Entry, problems: &mut Vec<String>, section: &str) {
    let key = entry.name.to_ascii_lowercase();
    if let Some(existing) = map.entries.get(&key) {
        problems.push(format!(
            "{section}: `{}` and `{}` differ only in case",
            existing.name, entry.name
        ));
        return;
    }
    map.entries.insert(key, entry);
}

fn set_default(map: &mut ModelMap, default: &str, source: &str, problems: &mut Vec<String>) {
    match map.resolve_without_default(default) {
        Some(resolved) => map.default = Some((default.to_owned(), resolved)),
        None => problems.push(format!(
            "{source}: `{default}` does not resolve to any model (use an upstream id such as \
             claude-sonnet-4.5 or a configured entry)"
        )),
    }
}
