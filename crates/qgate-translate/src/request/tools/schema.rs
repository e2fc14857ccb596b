//! Tool input schemas normalised to the shape the service accepts: an object schema with
//! a string `type` (default `"object"`), an object `properties`, a `required` array of
//! strings, a boolean-or-object `additionalProperties`, no `$schema`, and lower-case type
//! names throughout (some clients, e.g. Gemini-style tooling, send `"STRING"`).

use serde_json::{Map, Value};

/// `{"type":"object","properties":{},"required":[]}`.
pub(super) fn empty_object() -> Value {
    let mut map = Map::new();
    map.insert("type".into(), Value::String("object".into()));
    map.insert("properties".into(), Value::Object(Map::new()));
    map.insert("required".into(), Value::Array(Vec::new()));
    Value::Object(map)
}

/// The normalised schema, or `None` when it is not a JSON object at all.
pub(super) fn normalize(schema: &Value) -> Option<Value> {
    let Value::Object(original) = schema else {
        return None;
    };
    let mut root = original.clone();
    root.remove("$schema");
    if !matches!(root.get("type"), Some(Value::String(_))) {
        root.insert("type".into(), Value::String("object".into()));
    }
    if !matches!(root.get("properties"), Some(Value::Object(_))) {
        root.insert("properties".into(), Value::Object(Map::new()));
    }
    let required = match root.remove("required") {
        Some(Value::Array(items)) => items.into_iter().filter(|item| item.is_string()).collect(),
        _ => Vec::new(),
    };
    root.insert("required".into(), Value::Array(required));
    if let Some(additional) = root.get("additionalProperties")
        && !matches!(additional, Value::Bool(_) | Value::Object(_))
    {
        root.insert("additionalProperties".into(), Value::Bool(true));
    }
    let mut root = Value::Object(root);
    lowercase_types(&mut root);
    Some(root)
}

/// Lower-cases `type` values (strings or arrays of strings) at every depth. Only the
/// value of a `type` key that is a string or string array is touched, so a property that
/// happens to be *named* `type` (its value is a schema object) is left alone.
fn lowercase_types(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "type" {
                    match child {
                        Value::String(name) => lowercase_in_place(name),
                        Value::Array(names) => {
                            for name in names.iter_mut() {
                                if let Value::String(name) = name {
                                    lowercase_in_place(name);
                                }
                            }
                        }
                        _ => lowercase_types(child),
                    }
                } else {
                    lowercase_types(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(lowercase_types),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

fn lowercase_in_place(name: &mut str) {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        name.make_ascii_lowercase();
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_missing_parts_and_drops_dollar_schema() {
        let schema = json!({"$schema": "https://json-schema.org/draft/2020-12/schema"});
        assert_eq!(
            normalize(&schema),
            Some(json!({"type":"object","properties":{},"required":[]}))
        );
    }

    #[test]
    fn cleans_required_and_additional_properties() {
        let schema = json!({
            "type": "object",
            "properties": null,
            "required": ["a", 3, null, "b"],
            "additionalProperties": "sometimes"
        });
        assert_eq!(
            normalize(&schema),
            Some(json!({
                "type": "object",
                "properties": {},
                "required": ["a", "b"],
                "additionalProperties": true
            }))
        );
        let null_required = json!({"type":"object","properties":{},"required":null});
        assert_eq!(
            normalize(&null_required).and_then(|s| s.get("required").cloned()),
            Some(json!([]))
        );
    }

    #[test]
    fn lowercases_type_tokens_at_every_depth_but_not_property_names() {
        let schema = json!({
            "type": "OBJECT",
            "properties": {
                "type": {"type": "STRING", "enum": ["FILE", "DIR"]},
                "items": {"type": "ARRAY", "items": {"type": ["INTEGER", "NULL"]}},
                "choice": {"anyOf": [{"type": "BOOLEAN"}, {"type": "Number"}]}
            }
        });
        assert_eq!(
            normalize(&schema),
            Some(json!({
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["FILE", "DIR"]},
                    "items": {"type": "array", "items": {"type": ["integer", "null"]}},
                    "choice": {"anyOf": [{"type": "boolean"}, {"type": "number"}]}
                },
                "required": []
            }))
        );
    }

    #[test]
    fn non_objects_are_rejected() {
        assert_eq!(normalize(&json!(null)), None);
        assert_eq!(normalize(&json!("object")), None);
        assert_eq!(normalize(&json!([])), None);
    }
}
