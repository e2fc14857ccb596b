//! Image blocks, data URLs, tool-result images and the image limit.

use super::*;

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

fn image(media_type: &str, data: &str) -> Value {
    json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
}

fn user_with(blocks: Vec<Value>) -> Value {
    json!({"messages": [{"role": "user", "content": blocks}]})
}

fn error_of(extra: Value) -> TranslateError {
    translate(&request(extra), &OPTS).expect_err("should be rejected")
}

#[test]
fn base64_images_keep_their_format_and_bytes() {
    let t = translated(user_with(vec![
        image("image/png", PNG),
        image("image/jpeg", PNG),
        image("image/gif", PNG),
        image("image/webp", PNG),
        json!({"type": "text", "text": "what is this?"}),
    ]));
    let formats: Vec<&str> = current(&t)
        .images
        .iter()
        .map(|i| i.format.as_str())
        .collect();
    assert_eq!(formats, vec!["png", "jpeg", "gif", "webp"]);
    assert_eq!(current(&t).images[0].source.bytes, PNG);
    assert_eq!(current(&t).content, "what is this?");
}

#[test]
fn image_only_message_gets_text() {
    let t = translated(user_with(vec![image("image/png", PNG)]));
    assert!(!current(&t).content.trim().is_empty());
}

#[test]
fn data_urls_are_decoded() {
    let t = translated(user_with(vec![json!({
        "type": "image",
        "source": {"type": "url", "url": format!("data:image/png;base64,{PNG}")}
    })]));
    assert_eq!(current(&t).images[0].format, "png");
    assert_eq!(current(&t).images[0].source.bytes, PNG);
}

#[test]
fn wrapped_and_unpadded_base64_is_made_canonical() {
    let unpadded = PNG.trim_end_matches('=');
    let wrapped = format!("{}\n{}", &unpadded[..40], &unpadded[40..]);
    let t = translated(user_with(vec![image("image/png", &wrapped)]));
    assert_eq!(current(&t).images[0].source.bytes, PNG);
}

#[test]
fn remote_urls_are_rejected_with_a_clear_message() {
    let err = error_of(user_with(vec![json!({
        "type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}
    })]));
    assert!(matches!(err, TranslateError::ImageUrlSource { message: 0 }));
    assert!(
        err.to_string()
            .contains("image source type `url` is not supported; send base64 data")
    );
}

#[test]
fn unsupported_media_types_are_rejected() {
    let err = error_of(user_with(vec![image("image/bmp", PNG)]));
    assert!(err.to_string().contains("`image/bmp`"), "{err}");
    assert!(err.to_string().contains("image/png"), "{err}");
}

#[test]
fn invalid_base64_is_rejected() {
    let err = error_of(user_with(vec![image("image/png", "not base64 at all!!")]));
    assert!(
        matches!(err, TranslateError::InvalidBase64 { .. }),
        "{err:?}"
    );
    let err = error_of(user_with(vec![image("image/png", "")]));
    assert!(
        matches!(err, TranslateError::InvalidBase64 { .. }),
        "{err:?}"
    );
}

#[test]
fn unknown_image_sources_are_rejected() {
    let err = error_of(user_with(vec![json!({
        "type": "image", "source": {"type": "file", "file_id": "file_123"}
    })]));
    assert!(
        matches!(err, TranslateError::UnsupportedImageSource { .. }),
        "{err:?}"
    );
}

#[test]
fn images_inside_tool_results_are_lifted_to_the_message() {
    let t = translated(json!({
        "tools": [{"name": "Screenshot", "description": "d", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "take one"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "s1", "name": "Screenshot", "input": {}}]},
            {"role": "user", "content": [{
                "type": "tool_result", "tool_use_id": "s1",
                "content": [{"type": "text", "text": "captured"}, image("image/png", PNG)]
            }]}
        ]
    }));
    assert_eq!(current(&t).images.len(), 1);
    assert_eq!(result_texts(current(&t))[0].1, "captured");
    assert!(
        t.repairs
            .contains(&Repair::LiftedToolResultImage { id: "s1".into() })
    );
}

#[test]
fn more_than_ten_images_in_the_last_message_is_an_error() {
    let blocks = (0..11).map(|_| image("image/png", PNG)).collect();
    let err = error_of(user_with(blocks));
    assert_eq!(err, TranslateError::TooManyImages { count: 11 });
    assert!(err.to_string().contains("at most 10"));
}

#[test]
fn older_images_beyond_the_limit_are_replaced_by_a_note() {
    let six = || (0..6).map(|_| image("image/png", PNG)).collect::<Vec<_>>();
    let mut first = six();
    first.push(json!({"type": "text", "text": "old screenshots"}));
    let mut second = six();
    second.push(json!({"type": "text", "text": "new screenshots"}));
    let t = translated(json!({"messages": [
        {"role": "user", "content": first},
        {"role": "assistant", "content": "seen"},
        {"role": "user", "content": second}
    ]}));
    assert_eq!(current(&t).images.len(), 6);
    assert_eq!(user_at(&t, 0).images.len(), 4);
    assert!(user_at(&t, 0).content.contains("2 image(s) omitted"));
    assert!(
        t.repairs
            .contains(&Repair::DroppedHistoryImages { count: 2 })
    );
}

#[test]
fn text_documents_are_inlined_and_others_dropped() {
    let t = translated(user_with(vec![
        json!({"type": "document", "title": "notes.txt", "source": {"type": "text", "media_type": "text/plain", "data": "the notes"}}),
        json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}),
        json!({"type": "search_result", "source": "x", "title": "t", "content": []}),
        json!({"type": "text", "text": "summarise"}),
    ]));
    assert_eq!(current(&t).content, "notes.txt\n\nthe notes\nsummarise");
    assert!(t.repairs.contains(&Repair::InlinedDocument));
    assert!(
        t.repairs
            .contains(&Repair::DroppedUnsupportedBlock { kind: "document" })
    );
    assert!(
        t.repairs
            .contains(&Repair::DroppedUnsupportedBlock { kind: "unknown" })
    );
}
