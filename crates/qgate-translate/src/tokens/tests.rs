#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is the test failing

use super::*;
use qgate_amazonq::{
    AssistantResponseMessage, ChatMessage, ConversationState, CurrentMessage,
    GenerateAssistantResponseRequest, Image, ImageSource, InputSchema, Tool, ToolResult,
    ToolResultStatus, ToolSpecification, ToolUse, UserInputMessage, UserInputMessageContext,
};
use serde_json::json;

#[test]
fn empty_text_is_zero_tokens() {
    assert_eq!(estimate_text(""), 0);
}

#[test]
fn english_prose_is_about_four_characters_a_token() {
    let text = "The quick brown fox jumps over the lazy dog while the cat watches from the window.";
    let tokens = estimate_text(text);
    // A BPE tokenizer gives 18 tokens for this sentence.
    assert!((15..=21).contains(&tokens), "{tokens}");
}

#[test]
fn cjk_costs_more_per_character_than_latin() {
    let chinese = "我们希望网关能够快速地估算请求中包含的令牌数量";
    let english = "we hope the gateway can quickly estimate tokens";
    let per_char = |t: &str| estimate_text(t) as f64 / t.chars().count() as f64;
    assert!(per_char(chinese) > 3.0 * per_char(english));
    // About one token per ideograph.
    let n = chinese.chars().count() as u64;
    assert!(estimate_text(chinese) >= n * 9 / 10 && estimate_text(chinese) <= n * 12 / 10);
}

#[test]
fn other_scripts_cost_more_than_latin_letters() {
    let russian = "Пожалуйста проверь почему эта функция зависает";
    let english = "Please check why this function hangs when run";
    assert!(estimate_text(russian) > estimate_text(english));
}

#[test]
fn long_numbers_split_into_digit_groups() {
    assert_eq!(estimate_text("123"), 1);
    assert_eq!(estimate_text("123456789"), 3);
}

#[test]
fn runs_end_at_a_block_of_other_characters() {
    // Digit, space and word runs that meet a 64-byte block boundary, with a whole block
    // of other characters between two runs.
    let cases = [
        format!("{}1{}1", "x".repeat(63), "-".repeat(64)),
        format!("{}12{}3", "x".repeat(62), "a".repeat(64)),
        format!("{}  {} ", "x".repeat(62), "b".repeat(64)),
        format!("{}{}", "1".repeat(130), "é".repeat(40)),
        format!("{}1234{}", "x".repeat(60), "5".repeat(70)),
        format!("{}12{}", "x".repeat(62), "3".repeat(2)),
        format!("{}123{}", "x".repeat(61), "4".repeat(3)),
        format!("{}1{}", "x".repeat(63), "23x4"),
    ];
    for text in &cases {
        assert_eq!(estimate_milli(text), reference_milli(text), "{text}");
    }
}

#[test]
fn indentation_runs_cost_about_one_token() {
    let flat = estimate_milli("a\nb");
    let indented = estimate_milli("a\n        b");
    assert!(indented > flat);
    assert!(indented - flat <= 1000);
}

#[test]
fn estimate_is_additive_enough_for_concatenation() {
    let a = "fn main() { println!(\"hi\"); }";
    let b = "Some English words after the code.";
    let whole = estimate_text(&format!("{a}\n{b}"));
    let parts = estimate_text(a) + estimate_text(b);
    assert!(whole.abs_diff(parts) <= 2, "{whole} vs {parts}");
}

fn user(content: &str) -> UserInputMessage {
    UserInputMessage {
        content: content.to_owned(),
        ..Default::default()
    }
}

fn request(
    history: Vec<ChatMessage>,
    current: UserInputMessage,
) -> GenerateAssistantResponseRequest {
    GenerateAssistantResponseRequest {
        conversation_state: ConversationState {
            conversation_id: "c".into(),
            history,
            current_message: CurrentMessage {
                user_input_message: current,
            },
            chat_trigger_type: "MANUAL".into(),
            agent_continuation_id: None,
            agent_task_type: None,
        },
        profile_arn: None,
    }
}

#[test]
fn request_estimate_counts_every_part() {
    let text = "Please list the files in the current directory and summarise them.";
    let bare = estimate_request(&request(vec![], user(text)));
    assert_eq!(bare, estimate_text(text) + MESSAGE_OVERHEAD_TOKENS);

    let with_history = estimate_request(&request(
        vec![
            ChatMessage::UserInputMessage(user("earlier question about the build")),
            ChatMessage::AssistantResponseMessage(AssistantResponseMessage {
                content: "I'll run it.".into(),
                tool_uses: vec![ToolUse {
                    tool_use_id: "t1".into(),
                    name: "Bash".into(),
                    input: json!({"command": "cargo build --release"}),
                }],
                ..Default::default()
            }),
        ],
        user(text),
    ));
    assert!(
        with_history > bare + 2 * MESSAGE_OVERHEAD_TOKENS + 10,
        "{with_history}"
    );

    let mut current = user(text);
    current.images.push(Image {
        format: "png".into(),
        source: ImageSource {
            bytes: "AAAA".into(),
        },
    });
    current.user_input_message_context = Some(UserInputMessageContext {
        env_state: None,
        tools: vec![Tool {
            tool_specification: ToolSpecification {
                name: "Read".into(),
                description: "Reads a file from the local filesystem.".into(),
                input_schema: InputSchema {
                    json: json!({"type":"object","properties":{"file_path":{"type":"string"}},"required":["file_path"]}),
                },
            },
        }]
        .into(),
        tool_results: vec![ToolResult {
            tool_use_id: "t1".into(),
            content: vec![qgate_amazonq::ToolResultContent::Text(
                "Finished release target in 12.3s".into(),
            )],
            status: ToolResultStatus::Success,
        }],
    });
    let full = estimate_request(&request(vec![], current));
    assert!(
        full > bare + IMAGE_TOKENS + TOOL_OVERHEAD_TOKENS + 20,
        "{full}"
    );
}

#[test]
fn calibration_starts_neutral_and_moves_toward_observations() {
    let mut calibration = Calibration::new();
    assert_eq!(calibration.ratio(), 1.0);
    assert_eq!(calibration.apply(1000), 1000);
    calibration.observe(1000, 1200);
    assert!((calibration.ratio() - 1.2).abs() < 1e-9);
    for _ in 0..50 {
        calibration.observe(1000, 1500);
    }
    assert!(
        (calibration.ratio() - 1.5).abs() < 0.01,
        "{}",
        calibration.ratio()
    );
    assert_eq!(calibration.apply(2000), 3000);
}

#[test]
fn calibration_is_clamped() {
    let mut calibration = Calibration::new();
    calibration.observe(1000, 100_000);
    assert_eq!(calibration.ratio(), 2.0);
    for _ in 0..60 {
        calibration.observe(1000, 1);
        assert!(calibration.ratio() >= 0.5);
    }
    assert!(
        (calibration.ratio() - 0.5).abs() < 1e-3,
        "{}",
        calibration.ratio()
    );
}

#[test]
fn calibration_ignores_meaningless_observations() {
    let mut calibration = Calibration::default();
    calibration.observe(0, 500);
    calibration.observe(1000, 0);
    calibration.observe(3, 9);
    assert_eq!(calibration.ratio(), 1.0);
    assert_eq!(calibration.observations(), 0);
}

/// The rules written the obvious way (a run-length state machine over chars), to check
/// the table-driven scanner against.
fn reference_milli(text: &str) -> u64 {
    #[derive(PartialEq, Clone, Copy)]
    enum Run {
        Word,
        Digits,
        Punct,
        Space,
        Newline,
        Other,
    }
    let mut milli = 0;
    let mut run = Run::Other;
    let mut len = 0u64;
    for c in text.chars() {
        let kind = match c {
            'a'..='z' | 'A'..='Z' => Run::Word,
            '0'..='9' => Run::Digits,
            ' ' | '\t' => Run::Space,
            '\n' | '\r' => Run::Newline,
            c if c.is_ascii() => Run::Punct,
            _ => Run::Other,
        };
        let continues = kind == run && kind != Run::Other;
        milli += match kind {
            Run::Word if continues => 0,
            Run::Word => 1080,
            Run::Digits if continues && !len.is_multiple_of(3) => 0,
            Run::Digits => 1000,
            Run::Punct if continues => 150,
            Run::Punct => 700,
            Run::Space if continues && len == 1 => 700,
            Run::Space => 0,
            Run::Newline if continues => 0,
            Run::Newline => 800,
            Run::Other => non_ascii_cost(c),
        };
        if continues {
            len += 1;
        } else {
            run = kind;
            len = 1;
        }
    }
    milli
}

proptest::proptest! {
    #[test]
    fn table_scanner_matches_the_reference_rules(
        text in "[a-zA-Z0-9 \\t\\n\\r{}\":,.é中ж😀]{0,200}"
    ) {
        proptest::prop_assert_eq!(estimate_milli(&text), reference_milli(&text));
    }

    /// Long texts cross the scanner's 64-byte blocks inside words, digit runs, space runs
    /// and multi-byte characters.
    #[test]
    fn block_scanner_matches_the_reference_rules_across_blocks(
        parts in proptest::collection::vec("[a-z]{1,150}|[0-9]{1,70}|[ ]{1,150}|[\\n]{1,5}|[{}\":,.]{1,9}|[é中ж😀]{1,3}", 0..40)
    ) {
        let text = parts.concat();
        proptest::prop_assert_eq!(estimate_milli(&text), reference_milli(&text));
    }
}
