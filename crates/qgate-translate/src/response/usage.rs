//! What the upstream tells about token usage and cost, and the usage reported to the
//! client from it.
//!
//! Sources, best first: a `metadataEvent` token count (the service's own numbers), then
//! `contextUsageEvent` (how full the window is, so input ≈ percentage × window), then the
//! local estimates (the prompt estimate from the caller, output counted as emitted).

use qgate_amazonq::Event;
use qgate_anthropic::Usage;

/// Token counts the upstream reported itself in a `metadataEvent`.
#[derive(Debug, Clone, Copy, Default)]
struct ReportedUsage {
    uncached_input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_write_input_tokens: Option<u64>,
}

impl ReportedUsage {
    fn has_input(&self) -> bool {
        self.uncached_input_tokens.is_some()
            || self.cache_read_input_tokens.is_some()
            || self.cache_write_input_tokens.is_some()
    }

    fn total_input(&self) -> u64 {
        [
            self.uncached_input_tokens,
            self.cache_read_input_tokens,
            self.cache_write_input_tokens,
        ]
        .into_iter()
        .flatten()
        // Upstream numbers are not trusted to be sane: saturate, never overflow.
        .fold(0u64, u64::saturating_add)
    }
}

/// Usage information collected from the upstream events of one response.
#[derive(Debug, Default)]
pub(super) struct UpstreamUsage {
    context_input_tokens: Option<u64>,
    reported: Option<ReportedUsage>,
    credits: f64,
}

impl UpstreamUsage {
    /// Records a usage-bearing event; other events carry no usage and change nothing.
    pub(super) fn record(&mut self, event: &Event, context_window: u64) {
        match *event {
            Event::Metering { usage, .. } => {
                if usage.is_finite() && usage > 0.0 {
                    self.credits += usage;
                }
            }
            Event::ContextUsage { percentage } => {
                // Zero (sent before anything was measured) or garbage says nothing.
                if percentage.is_finite() && percentage > 0.0 {
                    let tokens = percentage * context_window as f64 / 100.0;
                    self.context_input_tokens = Some(tokens.round() as u64);
                }
            }
            Event::TokenUsage {
                uncached_input_tokens,
                output_tokens,
                cache_read_input_tokens,
                cache_write_input_tokens,
            } => {
                self.reported = Some(ReportedUsage {
                    uncached_input_tokens,
                    output_tokens,
                    cache_read_input_tokens,
                    cache_write_input_tokens,
                });
            }
            Event::InitialResponse { .. }
            | Event::AssistantResponse { .. }
            | Event::ToolUse { .. }
            | Event::Reasoning { .. }
            | Event::MessageMetadata { .. }
            | Event::InvalidState { .. } => {}
        }
    }

    /// The usage to report, given the local prompt and output estimates.
    pub(super) fn usage(&self, estimated_input: u64, estimated_output: u64) -> Usage {
        let reported = self.reported.unwrap_or_default();
        let output_tokens = reported.output_tokens.unwrap_or(estimated_output);
        if reported.has_input() {
            // Anthropic counts cached prompt tokens apart from `input_tokens`.
            Usage {
                input_tokens: reported.uncached_input_tokens.unwrap_or(0),
                output_tokens,
                cache_creation_input_tokens: reported.cache_write_input_tokens,
                cache_read_input_tokens: reported.cache_read_input_tokens,
            }
        } else {
            Usage {
                input_tokens: self.context_input_tokens.unwrap_or(estimated_input),
                output_tokens,
                cache_creation_input_tokens: None,
                cache_read_input_tokens: None,
            }
        }
    }

    /// The whole prompt as the upstream counted it (cached tokens included).
    pub(super) fn input_tokens(&self) -> Option<u64> {
        match self.reported {
            Some(reported) if reported.has_input() => Some(reported.total_input()),
            Some(_) | None => self.context_input_tokens,
        }
    }

    pub(super) fn credits(&self) -> f64 {
        self.credits
    }
}
