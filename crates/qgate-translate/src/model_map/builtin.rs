//! The built-in upstream model table and the rules that read Claude model names in every
//! spelling clients use: dated and undated (`claude-sonnet-4-5-20250929`), dashed and
//! dotted (`claude-sonnet-4-5`, `claude-sonnet-4.5`), the old family-last order
//! (`claude-3-7-sonnet-latest`), and provider prefixes (`anthropic/…`, Bedrock's
//! `us.anthropic.…-v1:0`).

/// A model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Haiku,
    Sonnet,
    Opus,
}

impl Family {
    fn parse(token: &str) -> Option<Family> {
        match token {
            "haiku" => Some(Family::Haiku),
            "sonnet" => Some(Family::Sonnet),
            "opus" => Some(Family::Opus),
            _ => None,
        }
    }
}

/// One model the upstream serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpstreamModel {
    /// The `modelId` sent upstream.
    pub id: &'static str,
    pub family: Family,
    pub major: u32,
    pub minor: u32,
    pub context_window: u64,
    pub display_name: &'static str,
    /// The Anthropic-style name listed by `GET /v1/models`.
    pub listed_as: &'static str,
    /// `created_at` in the listing. Dated Anthropic ids give the date; for the others it
    /// only orders the list (newer versions later), it is not a release date.
    pub created_at: &'static str,
}

const STANDARD_WINDOW: u64 = 200_000;
/// Sonnet and Opus from 4.6 on, and the 5 family, have a 1M-token window upstream.
const LARGE_WINDOW: u64 = 1_000_000;

/// Oldest first.
pub(crate) const UPSTREAM_MODELS: &[UpstreamModel] = &[
    model(
        "claude-sonnet-4",
        Family::Sonnet,
        4,
        0,
        STANDARD_WINDOW,
        "Claude Sonnet 4",
        "claude-sonnet-4-20250514",
        "2025-05-14T00:00:00Z",
    ),
    model(
        "claude-sonnet-4.5",
        Family::Sonnet,
        4,
        5,
        STANDARD_WINDOW,
        "Claude Sonnet 4.5",
        "claude-sonnet-4-5-20250929",
        "2025-09-29T00:00:00Z",
    ),
    model(
        "claude-haiku-4.5",
        Family::Haiku,
        4,
        5,
        STANDARD_WINDOW,
        "Claude Haiku 4.5",
        "claude-haiku-4-5-20251001",
        "2025-10-01T00:00:00Z",
    ),
    model(
        "claude-opus-4.5",
        Family::Opus,
        4,
        5,
        STANDARD_WINDOW,
        "Claude Opus 4.5",
        "claude-opus-4-5-20251101",
        "2025-11-01T00:00:00Z",
    ),
    model(
        "claude-sonnet-4.6",
        Family::Sonnet,
        4,
        6,
        LARGE_WINDOW,
        "Claude Sonnet 4.6",
        "claude-sonnet-4-6",
        "2026-01-06T00:00:00Z",
    ),
    model(
        "claude-opus-4.6",
        Family::Opus,
        4,
        6,
        LARGE_WINDOW,
        "Claude Opus 4.6",
        "claude-opus-4-6",
        "2026-01-06T00:00:00Z",
    ),
    model(
        "claude-opus-4.7",
        Family::Opus,
        4,
        7,
        LARGE_WINDOW,
        "Claude Opus 4.7",
        "claude-opus-4-7",
        "2026-01-07T00:00:00Z",
    ),
    model(
        "claude-opus-4.8",
        Family::Opus,
        4,
        8,
        LARGE_WINDOW,
        "Claude Opus 4.8",
        "claude-opus-4-8",
        "2026-01-08T00:00:00Z",
    ),
    model(
        "claude-sonnet-5",
        Family::Sonnet,
        5,
        0,
        LARGE_WINDOW,
        "Claude Sonnet 5",
        "claude-sonnet-5",
        "2026-01-09T00:00:00Z",
    ),
    model(
        "claude-opus-5",
        Family::Opus,
        5,
        0,
        LARGE_WINDOW,
        "Claude Opus 5",
        "claude-opus-5",
        "2026-01-09T00:00:00Z",
    ),
];

#[allow(clippy::too_many_arguments)] // a table row; named fields would triple the table
const fn model(
    id: &'static str,
    family: Family,
    major: u32,
    minor: u32,
    context_window: u64,
    display_name: &'static str,
    listed_as: &'static str,
    created_at: &'static str,
) -> UpstreamModel {
    UpstreamModel {
        id,
        family,
        major,
        minor,
        context_window,
        display_name,
        listed_as,
        created_at,
    }
}

/// The upstream model with exactly this id.
pub(crate) fn by_upstream_id(id: &str) -> Option<&'static UpstreamModel> {
    UPSTREAM_MODELS.iter().find(|m| m.id == id)
}

/// The upstream model for a Claude model name, by the built-in rules: the same family
/// and major version at the requested minor version or the closest newer one (`opus-4-1`
/// → `claude-opus-4.5`); the retired 3.x generation maps to the 4.5 model of its family.
pub(crate) fn resolve_claude_name(requested: &str) -> Option<&'static UpstreamModel> {
    let (family, major, minor) = parse_claude_name(requested)?;
    if major <= 3 {
        return UPSTREAM_MODELS
            .iter()
            .find(|m| m.family == family && m.major == 4 && m.minor == 5);
    }
    UPSTREAM_MODELS
        .iter()
        .filter(|m| m.family == family && m.major == major && m.minor >= minor)
        .min_by_key(|m| m.minor)
}

/// `(family, major, minor)` of a Claude model name, or `None` when it is not one.
fn parse_claude_name(requested: &str) -> Option<(Family, u32, u32)> {
    let lowered = super::lowered(requested);
    let name = strip_decorations(&lowered);
    let mut tokens = name.split('-');
    if tokens.next()? != "claude" {
        return None;
    }
    let mut family = None;
    // Major and minor; a third number makes it no Claude name.
    let mut numbers = [0u32; 2];
    let mut count = 0;
    for token in tokens {
        if let Some(f) = Family::parse(token) {
            if family.replace(f).is_some() {
                return None;
            }
            continue;
        }
        for part in token.split('.') {
            *numbers.get_mut(count)? = part.parse().ok()?;
            count += 1;
        }
    }
    let family = family?;
    match (count, numbers) {
        (1, [major, _]) => Some((family, major, 0)),
        (2, [major, minor]) => Some((family, major, minor)),
        _ => None,
    }
}

/// Removes what does not name the model: provider prefixes, a trailing date, `-latest`,
/// Bedrock's `-v1:0`, Claude Code's `[1m]` context marker.
fn strip_decorations(name: &str) -> &str {
    let mut name = name.rsplit('/').next().unwrap_or(name);
    if let Some(pos) = name.find("anthropic.") {
        name = &name[pos + "anthropic.".len()..];
    }
    if let Some(stripped) = name.strip_suffix("[1m]") {
        name = stripped;
    }
    loop {
        let before = name;
        if let Some(stripped) = name.strip_suffix("-latest") {
            name = stripped;
        }
        if let Some((head, tail)) = name.rsplit_once('-') {
            let is_date = tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_digit());
            let is_bedrock_version = tail.starts_with('v')
                && tail[1..]
                    .split(':')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if is_date || is_bedrock_version {
                name = head;
            }
        }
        if name == before {
            return name;
        }
    }
}
