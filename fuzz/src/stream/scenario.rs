//! A readable JSON form of a `stream_translator` input, for saved findings and hand-written
//! seeds: unlike the structured byte form, it does not change meaning when the generator
//! changes. An input starting with `{` is read as this.
//!
//! ```json
//! {"thinking": false, "end": "finish",
//!  "events": [{"text": "hi"}, {"tool": ["id", "name", "{\"a\":1}", true]}],
//!  "after": []}
//! ```

use super::Ending;
use qgate_amazonq::Event;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Scenario {
    #[serde(default)]
    pub thinking: bool,
    pub end: End,
    pub events: Vec<Step>,
    #[serde(default)]
    pub after: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    Finish,
    OutputLimit,
    Fail,
}

/// One upstream event, tersely.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Text(String),
    /// `[id, name, input fragment, stop]`
    Tool(String, String, String, bool),
    Reasoning(String, Option<String>),
    ContextUsage(f64),
    Metering(f64),
    /// `[uncached input, output, cache read, cache write]`
    Tokens(Option<u64>, Option<u64>, Option<u64>, Option<u64>),
    Metadata,
    InvalidState(String),
}

impl Step {
    pub fn event(self) -> Event {
        match self {
            Step::Text(content) => Event::AssistantResponse { content },
            Step::Tool(tool_use_id, name, input, stop) => Event::ToolUse {
                tool_use_id,
                name,
                input,
                stop,
            },
            Step::Reasoning(text, signature) => Event::Reasoning { text, signature },
            Step::ContextUsage(percentage) => Event::ContextUsage { percentage },
            Step::Metering(usage) => Event::Metering {
                unit: Some("credit".to_owned()),
                usage,
            },
            Step::Tokens(uncached, output, read, write) => Event::TokenUsage {
                uncached_input_tokens: uncached,
                output_tokens: output,
                cache_read_input_tokens: read,
                cache_write_input_tokens: write,
            },
            Step::Metadata => Event::MessageMetadata {
                conversation_id: Some("c".to_owned()),
                utterance_id: None,
            },
            Step::InvalidState(reason) => Event::InvalidState {
                reason,
                message: String::new(),
            },
        }
    }
}

impl Scenario {
    pub fn into_input(self) -> super::Input {
        let ending = match self.end {
            End::Finish => Ending::Finish,
            End::OutputLimit => Ending::OutputLimit,
            End::Fail => Ending::Fail,
        };
        (
            self.thinking,
            ending,
            self.events.into_iter().map(Step::event).collect(),
            self.after.into_iter().map(Step::event).collect(),
        )
    }
}
