use super::*;
use proptest::prelude::*;

/// Runs the splitter over `chunks` and merges adjacent pieces of the same kind, so runs
/// that differ only in how pieces were cut compare equal.
fn split(chunks: &[&str]) -> Vec<Piece> {
    let mut splitter = ThinkingSplitter::new();
    let mut raw = Vec::new();
    for chunk in chunks {
        splitter.push(chunk, &mut raw);
    }
    splitter.finish(&mut raw);
    merge(raw)
}

fn merge(raw: Vec<Piece>) -> Vec<Piece> {
    let mut merged: Vec<Piece> = Vec::new();
    for piece in raw {
        match (merged.last_mut(), piece) {
            (Some(Piece::Thinking(acc)), Piece::Thinking(more))
            | (Some(Piece::Text(acc)), Piece::Text(more)) => acc.push_str(&more),
            (_, piece) => merged.push(piece),
        }
    }
    merged
}

fn thinking(s: &str) -> Piece {
    Piece::Thinking(s.to_owned())
}

fn text(s: &str) -> Piece {
    Piece::Text(s.to_owned())
}

const CANONICAL: &str = "<thinking>\nabc</thinking>\n\nhello";

#[test]
fn canonical_reply_splits_into_thinking_then_text() {
    assert_eq!(split(&[CANONICAL]), vec![thinking("abc"), text("hello")]);
}

#[test]
fn every_single_split_position_gives_the_same_pieces() {
    let expected = split(&[CANONICAL]);
    for at in 0..=CANONICAL.len() {
        let (a, b) = CANONICAL.split_at(at);
        assert_eq!(split(&[a, b]), expected, "split at {at}");
    }
}

#[test]
fn every_pair_of_split_positions_gives_the_same_pieces() {
    let expected = split(&[CANONICAL]);
    for first in 0..=CANONICAL.len() {
        for second in first..=CANONICAL.len() {
            let chunks = [
                &CANONICAL[..first],
                &CANONICAL[first..second],
                &CANONICAL[second..],
            ];
            assert_eq!(split(&chunks), expected, "split at {first} and {second}");
        }
    }
}

#[test]
fn one_character_per_chunk_gives_the_same_pieces() {
    let chars: Vec<String> = CANONICAL.chars().map(String::from).collect();
    let chunks: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(split(&chunks), vec![thinking("abc"), text("hello")]);
}

#[test]
fn tags_inside_later_text_stay_text() {
    let reply = "Use <thinking>tags</thinking> like this.";
    assert_eq!(split(&[reply]), vec![text(reply)]);
    let after_thinking = "<thinking>x</thinking>then <thinking>y</thinking>";
    assert_eq!(
        split(&[after_thinking]),
        vec![thinking("x"), text("then <thinking>y</thinking>")]
    );
}

#[test]
fn unterminated_thinking_is_flushed_as_thinking() {
    assert_eq!(
        split(&["<thinking>\nstill ", "thinking"]),
        vec![thinking("still thinking")]
    );
}

#[test]
fn dangling_partial_close_tag_at_end_is_dropped() {
    assert_eq!(
        split(&["<thinking>abc</thi"]),
        vec![thinking("abc")],
        "a cut-off closing tag must not leak"
    );
}

#[test]
fn leading_whitespace_before_the_tag_is_allowed_and_dropped() {
    assert_eq!(
        split(&["\n  ", "<thinking>a</thinking>b"]),
        vec![thinking("a"), text("b")]
    );
}

#[test]
fn near_miss_open_tag_is_text() {
    assert_eq!(split(&["<think", "er> hi"]), vec![text("<thinker> hi")]);
    assert_eq!(split(&["<thin"]), vec![text("<thin")]);
}

#[test]
fn plain_text_is_not_held_back() {
    let mut splitter = ThinkingSplitter::new();
    let mut out = Vec::new();
    splitter.push("hello", &mut out);
    assert_eq!(out, vec![text("hello")]);
    assert!(splitter.is_passthrough());
}

#[test]
fn thinking_is_streamed_while_only_a_possible_tag_tail_is_held() {
    let mut splitter = ThinkingSplitter::new();
    let mut out = Vec::new();
    splitter.push("<thinking>\nstep one </thi", &mut out);
    assert_eq!(out, vec![thinking("step one ")]);
    out.clear();
    splitter.push("s is not a tag", &mut out);
    assert_eq!(out, vec![thinking("</this is not a tag")]);
}

#[test]
fn only_one_newline_after_the_open_tag_is_dropped() {
    assert_eq!(
        split(&["<thinking>\n\nx</thinking>y"]),
        vec![thinking("\nx"), text("y")]
    );
    assert_eq!(
        split(&["<thinking>", "\r", "\nx</thinking>y"]),
        vec![thinking("x"), text("y")]
    );
}

#[test]
fn empty_thinking_gives_no_thinking_piece() {
    assert_eq!(
        split(&["<thinking></thinking>\n\nanswer"]),
        vec![text("answer")]
    );
}

#[test]
fn multibyte_text_around_tags_is_kept_whole() {
    assert_eq!(
        split(&["<thinking>日本", "語</", "thinking>\n✓ done"]),
        vec![thinking("日本語"), text("✓ done")]
    );
}

#[test]
fn text_after_finish_passes_through() {
    let mut splitter = ThinkingSplitter::new();
    let mut out = Vec::new();
    splitter.push("<thinking>a", &mut out);
    splitter.finish(&mut out);
    splitter.push("<thinking>b", &mut out);
    assert_eq!(merge(out), vec![thinking("a"), text("<thinking>b")]);
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<thinking>".to_owned()),
        Just("</thinking>".to_owned()),
        Just("<think".to_owned()),
        Just("ing>".to_owned()),
        Just("</".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        Just("日本".to_owned()),
        "[a-z<>/\n ]{0,6}",
    ]
}

proptest! {
    /// However the reply is chunked, the pieces are those of the unchunked reply.
    #[test]
    fn chunking_never_changes_the_pieces(
        fragments in proptest::collection::vec(fragment(), 0..12),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
    ) {
        let reply: String = fragments.concat();
        let mut positions: Vec<usize> = cuts
            .iter()
            .map(|cut| cut.index(reply.len() + 1))
            .filter(|&at| reply.is_char_boundary(at))
            .collect();
        positions.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for at in positions {
            chunks.push(&reply[from..at]);
            from = at;
        }
        chunks.push(&reply[from..]);
        let pieces = split(&chunks);
        prop_assert_eq!(&pieces, &split(&[reply.as_str()]));
        for piece in &pieces {
            match piece {
                Piece::Thinking(s) => prop_assert!(!s.contains(CLOSE_TAG)),
                Piece::Text(_) => {}
            }
        }
    }
}
