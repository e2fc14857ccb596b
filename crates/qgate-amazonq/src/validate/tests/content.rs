//! Content rules: images and text sizes.

use super::*;

fn with_images(images: Value) -> Value {
    let mut v = first_turn("look at this");
    v["conversationState"]["currentMessage"]["userInputMessage"]["images"] = images;
    v
}

fn png() -> Value {
    json!({"format": "png", "source": {"bytes": PNG_1X1}})
}

#[test]
fn images_are_counted_over_the_whole_request() {
    let limits = Limits::default();
    let at_limit: Vec<Value> = (0..limits.max_images).map(|_| png()).collect();
    check(&with_images(json!(at_limit))).unwrap();

    let mut over = with_images(json!(at_limit));
    over["conversationState"]["history"] = json!([
        {"userInputMessage": {"content": "earlier", "images": [png()]}},
        {"assistantResponseMessage": {"content": "seen"}},
    ]);
    assert_kind(&over, ViolationKind::Malformed);
}

#[test]
fn image_formats_are_limited() {
    for format in ["png", "jpeg", "gif", "webp"] {
        check(&with_images(
            json!([{"format": format, "source": {"bytes": PNG_1X1}}]),
        ))
        .unwrap();
    }
    for format in ["bmp", "jpg", "PNG", "image/png"] {
        let v = with_images(json!([{"format": format, "source": {"bytes": PNG_1X1}}]));
        assert_kind(&v, ViolationKind::Malformed);
    }
}

#[test]
fn image_bytes_must_be_base64() {
    for bytes in ["not base64!", "abcde", "ab=c", "a==="] {
        let v = with_images(json!([{"format": "png", "source": {"bytes": bytes}}]));
        assert_kind(&v, ViolationKind::Malformed);
    }
}

#[test]
fn decoded_image_size_is_limited() {
    let limits = Limits {
        max_image_bytes: 3,
        ..Limits::default()
    };
    let three = with_images(json!([{"format": "gif", "source": {"bytes": "AAAA"}}]));
    check_with(&three, &limits).unwrap();
    let four = with_images(json!([{"format": "gif", "source": {"bytes": "AAAAAA=="}}]));
    assert_kind_with(&four, &limits, ViolationKind::TooLong);
}

#[test]
fn base64_lengths() {
    assert_eq!(base64_decoded_len(""), Some(0));
    assert_eq!(base64_decoded_len("AAAA"), Some(3));
    assert_eq!(base64_decoded_len("AAA="), Some(2));
    assert_eq!(base64_decoded_len("AA=="), Some(1));
    assert_eq!(base64_decoded_len("AAA"), Some(2));
    assert_eq!(base64_decoded_len("AA"), Some(1));
    assert_eq!(base64_decoded_len("A"), None);
    assert_eq!(base64_decoded_len("AA="), None);
    assert_eq!(base64_decoded_len("A-_A"), None);
    assert_eq!(base64_decoded_len(PNG_1X1), Some(70));
}

#[test]
fn a_user_message_is_limited_in_characters() {
    let limits = Limits {
        max_user_message_chars: 10,
        ..Limits::default()
    };
    check_with(&first_turn("0123456789"), &limits).unwrap();
    assert_kind_with(&first_turn("0123456789a"), &limits, ViolationKind::TooLong);
    // Characters, not bytes: ten two-byte characters fit.
    check_with(&first_turn("éééééééééé"), &limits).unwrap();

    let mut in_history = base();
    history(&mut in_history)[0]["userInputMessage"]["content"] = json!("x".repeat(11));
    assert_kind_with(&in_history, &limits, ViolationKind::TooLong);
}

#[test]
fn a_tool_result_is_limited_in_characters() {
    let limits = Limits {
        max_tool_result_chars: 20,
        ..Limits::default()
    };
    check_with(&base(), &limits).unwrap();
    let v = edit(
        &format!("{CURRENT}/userInputMessageContext/toolResults/0/content"),
        |c| {
            c.as_array_mut()
                .unwrap()
                .push(json!({"text": "0123456789012345678"}));
        },
    );
    let err = check_with(&v, &limits).unwrap_err();
    assert_eq!(err.kind, ViolationKind::TooLong);
    assert!(err.detail.contains("t2"), "{}", err.detail);
}

#[test]
fn the_whole_request_is_limited_in_characters() {
    let generous = Limits {
        max_total_chars: 10_000,
        ..Limits::default()
    };
    check_with(&base(), &generous).unwrap();
    // Each part is small; together they cross the limit.
    let tight = Limits {
        max_total_chars: 150,
        ..Limits::default()
    };
    assert_kind_with(&base(), &tight, ViolationKind::TooLong);
}

#[test]
fn tool_specs_count_toward_the_total() {
    let limits = Limits {
        max_total_chars: 2_000,
        ..Limits::default()
    };
    check_with(&base(), &limits).unwrap();
    let mut v = base();
    tools_of(&mut v).push(tool("Big", &"d".repeat(2_000), json!({"type": "object"})));
    assert_kind_with(&v, &limits, ViolationKind::TooLong);
}

#[test]
fn assistant_text_and_tool_inputs_count_toward_the_total() {
    let limits = Limits {
        max_total_chars: 2_000,
        ..Limits::default()
    };
    let mut v = base();
    history(&mut v)[1]["assistantResponseMessage"]["toolUses"][0]["input"] =
        json!({"command": "x".repeat(2_000)});
    assert_kind_with(&v, &limits, ViolationKind::TooLong);
    let mut w = base();
    history(&mut w)[3]["assistantResponseMessage"]["content"] = json!("y".repeat(2_000));
    assert_kind_with(&w, &limits, ViolationKind::TooLong);
}
