//! Tool calls in flight: fragments of each `toolUseId` collected until the call is
//! known to be whole.
//!
//! Amazon Q streams a tool call's input as string fragments and marks the last with
//! `stop: true`. When the output budget runs out mid-call the stream simply ends (or
//! raises `ContentLengthExceededException`) and the input is cut off. A client handed a
//! cut-off `tool_use` would run the tool with broken or partial arguments (a `Write`
//! that truncates a file), so a call is released only once its input is a complete JSON
//! object; anything else is reported as [`Finished::CutOff`].

use serde_json::Value;
use std::collections::HashSet;

/// A tool call whose fate is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Finished {
    /// Input is a complete JSON object (`{}` when the upstream sent none).
    Complete {
        id: String,
        name: String,
        input_json: String,
    },
    /// Input is incomplete or not a JSON object: the call must not reach the client.
    CutOff { name: String },
    /// The upstream never named the tool: there is nothing a client could run.
    Unnamed,
}

#[derive(Debug)]
struct InFlight {
    id: String,
    name: String,
    input: String,
}

/// Collects tool-call fragments, in order of each call's first fragment.
#[derive(Debug, Default)]
pub(super) struct ToolCalls {
    in_flight: Vec<InFlight>,
    /// Ids already finished: a repeated `stop` frame must not produce a second block.
    finished_ids: HashSet<String>,
}

impl ToolCalls {
    /// Adds one `toolUseEvent`; returns the finished call when this was its last fragment.
    pub(super) fn push(
        &mut self,
        id: String,
        name: String,
        input: &str,
        stop: bool,
    ) -> Option<Finished> {
        if self.finished_ids.contains(&id) {
            return None;
        }
        let position = match self.in_flight.iter().position(|call| call.id == id) {
            Some(position) => position,
            None => {
                self.in_flight.push(InFlight {
                    id,
                    name: String::new(),
                    input: String::new(),
                });
                self.in_flight.len() - 1
            }
        };
        let call = &mut self.in_flight[position];
        if call.name.is_empty() {
            call.name = name;
        }
        call.input.push_str(input);
        if !stop {
            return None;
        }
        let call = self.in_flight.remove(position);
        Some(self.decide(call, true))
    }

    /// The stream ended: decides every call still in flight, in order.
    pub(super) fn drain(&mut self) -> Vec<Finished> {
        let calls = std::mem::take(&mut self.in_flight);
        calls
            .into_iter()
            .map(|call| self.decide(call, false))
            .collect()
    }

    /// An empty input is a call without arguments only when the upstream said the call
    /// is over; without `stop` it is a call whose input never arrived.
    fn decide(&mut self, call: InFlight, stopped: bool) -> Finished {
        self.finished_ids.insert(call.id.clone());
        if call.name.trim().is_empty() {
            return Finished::Unnamed;
        }
        let trimmed = call.input.trim();
        if trimmed.is_empty() && stopped {
            return Finished::Complete {
                id: call.id,
                name: call.name,
                input_json: "{}".to_owned(),
            };
        }
        match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Object(_)) => Finished::Complete {
                input_json: trimmed.to_owned(),
                id: call.id,
                name: call.name,
            },
            Ok(_) | Err(_) => Finished::CutOff { name: call.name },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(id: &str, name: &str, input_json: &str) -> Option<Finished> {
        Some(Finished::Complete {
            id: id.to_owned(),
            name: name.to_owned(),
            input_json: input_json.to_owned(),
        })
    }

    #[test]
    fn fragments_of_one_id_are_joined_until_stop() {
        let mut calls = ToolCalls::default();
        assert_eq!(
            calls.push("t1".into(), "Bash".into(), "{\"cmd\":", false),
            None
        );
        assert_eq!(calls.push("t2".into(), "Read".into(), "{}", false), None);
        assert_eq!(
            calls.push("t1".into(), String::new(), "\"ls\"}", true),
            complete("t1", "Bash", "{\"cmd\":\"ls\"}")
        );
        assert_eq!(
            calls.drain(),
            vec![Finished::Complete {
                id: "t2".into(),
                name: "Read".into(),
                input_json: "{}".into()
            }]
        );
    }

    #[test]
    fn empty_input_is_an_empty_object() {
        let mut calls = ToolCalls::default();
        assert_eq!(
            calls.push("t".into(), "Now".into(), "", true),
            complete("t", "Now", "{}")
        );
    }

    #[test]
    fn cut_off_or_non_object_input_is_not_released() {
        let mut calls = ToolCalls::default();
        calls.push("t1".into(), "Write".into(), "{\"content\":\"abc", false);
        assert_eq!(
            calls.drain(),
            vec![Finished::CutOff {
                name: "Write".into()
            }]
        );
        assert_eq!(
            calls.push("t2".into(), "Write".into(), "[1]", true),
            Some(Finished::CutOff {
                name: "Write".into()
            })
        );
    }

    #[test]
    fn empty_input_without_stop_is_cut_off() {
        let mut calls = ToolCalls::default();
        assert_eq!(calls.push("t".into(), "Write".into(), "", false), None);
        assert_eq!(
            calls.drain(),
            vec![Finished::CutOff {
                name: "Write".into()
            }]
        );
    }

    #[test]
    fn fragments_after_stop_are_ignored() {
        let mut calls = ToolCalls::default();
        assert!(calls.push("t".into(), "A".into(), "{}", true).is_some());
        assert_eq!(calls.push("t".into(), "A".into(), "", true), None);
        assert!(calls.drain().is_empty());
    }
}
