#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is the test failing

use super::*;

fn upstream(map: &ModelMap, requested: &str) -> String {
    match map.resolve(requested) {
        Ok(resolved) => resolved.upstream_id,
        Err(e) => panic!("{requested}: {e}"),
    }
}

#[test]
fn claude_names_in_every_spelling_resolve() {
    let map = ModelMap::builtin();
    let cases = [
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4.5", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("Claude-Sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("  CLAUDE-OPUS-4-8 ", "claude-opus-4.8"),
        (" claude-haiku-4.5\t", "claude-haiku-4.5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("claude-sonnet-4-6", "claude-sonnet-4.6"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4.5"),
        ("claude-haiku-4-5", "claude-haiku-4.5"),
        ("claude-opus-4-5-20251101", "claude-opus-4.5"),
        ("claude-opus-4-6", "claude-opus-4.6"),
        ("claude-opus-4-7", "claude-opus-4.7"),
        ("claude-opus-4-8", "claude-opus-4.8"),
        ("claude-opus-4.8", "claude-opus-4.8"),
        ("claude-sonnet-5", "claude-sonnet-5"),
        ("claude-opus-5", "claude-opus-5"),
        ("claude-opus-4-8[1m]", "claude-opus-4.8"),
        ("claude-3-7-sonnet-20250219", "claude-sonnet-4.5"),
        ("claude-3-7-sonnet-latest", "claude-sonnet-4.5"),
        ("claude-3-5-sonnet-20241022", "claude-sonnet-4.5"),
        ("claude-3-5-haiku-20241022", "claude-haiku-4.5"),
        ("claude-3-opus-20240229", "claude-opus-4.5"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4.5"),
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "claude-sonnet-4.5",
        ),
        // Versions the upstream lacks go to the closest newer one of the same generation.
        ("claude-opus-4-1-20250805", "claude-opus-4.5"),
        ("claude-opus-4-20250514", "claude-opus-4.5"),
    ];
    for (requested, expected) in cases {
        assert_eq!(upstream(&map, requested), expected, "{requested}");
    }
}

#[test]
fn upstream_ids_pass_through() {
    let map = ModelMap::builtin();
    for id in [
        "claude-sonnet-4",
        "claude-sonnet-4.5",
        "claude-sonnet-4.6",
        "claude-haiku-4.5",
        "claude-opus-4.5",
        "claude-opus-4.6",
        "claude-opus-4.7",
        "claude-opus-4.8",
        "claude-sonnet-5",
        "claude-opus-5",
    ] {
        assert_eq!(upstream(&map, id), id);
    }
}

#[test]
fn context_windows_follow_the_generation() {
    let map = ModelMap::builtin();
    let window = |name: &str| map.resolve(name).map(|r| r.context_window);
    assert_eq!(window("claude-sonnet-4-5"), Ok(200_000));
    assert_eq!(window("claude-haiku-4-5"), Ok(200_000));
    assert_eq!(window("claude-opus-4-5"), Ok(200_000));
    assert_eq!(window("claude-sonnet-4-6"), Ok(1_000_000));
    assert_eq!(window("claude-opus-4-8"), Ok(1_000_000));
    assert_eq!(window("claude-sonnet-5"), Ok(1_000_000));
    assert_eq!(window("claude-opus-5"), Ok(1_000_000));
}

#[test]
fn unknown_names_are_errors_that_name_the_model_and_list_known_ones() {
    let map = ModelMap::builtin();
    for requested in [
        "gpt-4o",
        "claude-sonnet-4-7",
        "claude-instant-1",
        // A third number names no Claude model.
        "claude-sonnet-4-5-1",
        "claude-opus-4.8.1",
        "claude-sonnet",
        "q-custom-model",
        "",
    ] {
        let err = map.resolve(requested).expect_err(requested);
        let text = err.to_string();
        assert!(text.contains(&format!("`{requested}`")), "{text}");
        assert!(text.contains("claude-opus-4-8"), "{text}");
    }
}

#[test]
fn default_model_catches_unknown_names() {
    let cfg = ModelMapConfig {
        default: Some("claude-sonnet-4.5".into()),
        ..Default::default()
    };
    let map = ModelMap::from_config(&cfg).expect("valid");
    assert_eq!(upstream(&map, "q-custom-model"), "claude-sonnet-4.5");
    assert_eq!(upstream(&map, "claude-opus-4-8"), "claude-opus-4.8");
    assert_eq!(map.default_model(), Some("claude-sonnet-4.5"));
}

#[test]
fn toml_section_with_both_entry_forms() {
    let text = r#"
        default = "fast"
        exposed = ["fast", "big", "claude-sonnet-4-5"]
        [entries]
        fast = "claude-haiku-4.5"
        big = { upstream = "claude-opus-4.8", display_name = "Big one" }
        other = { upstream = "deepseek-3.2", context_window = 128000 }
    "#;
    let cfg: ModelMapConfig = toml::from_str(text).expect("parses");
    let map = ModelMap::from_config(&cfg).expect("valid");
    assert_eq!(upstream(&map, "FAST"), "claude-haiku-4.5");
    assert_eq!(
        map.resolve("big"),
        Ok(ResolvedModel {
            upstream_id: "claude-opus-4.8".into(),
            context_window: 1_000_000
        })
    );
    assert_eq!(map.resolve("other").map(|r| r.context_window), Ok(128_000));
    assert_eq!(upstream(&map, "nonsense"), "claude-haiku-4.5");
    let listed: Vec<(String, String)> = map
        .list()
        .into_iter()
        .map(|m| (m.id, m.display_name))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("fast".to_owned(), "Claude Haiku 4.5".to_owned()),
            ("big".to_owned(), "Big one".to_owned()),
            (
                "claude-sonnet-4-5".to_owned(),
                "Claude Sonnet 4.5".to_owned()
            ),
        ]
    );
}

#[test]
fn toml_typos_are_rejected_with_the_field_name() {
    let err = toml::from_str::<ModelMapConfig>("defualt = \"x\"").expect_err("unknown field");
    assert!(err.to_string().contains("defualt"), "{err}");
    let err = toml::from_str::<ModelMapConfig>("[entries]\nx = { upstrem = \"y\" }")
        .expect_err("unknown field");
    assert!(err.to_string().contains("upstrem"), "{err}");
}

#[test]
fn config_problems_are_all_reported() {
    let text = r#"
        default = "nope"
        exposed = ["also-nope"]
        [entries]
        empty = ""
        zero = { upstream = "claude-sonnet-4.5", context_window = 0 }
    "#;
    let cfg: ModelMapConfig = toml::from_str(text).expect("parses");
    let problems = ModelMap::from_config(&cfg).expect_err("invalid");
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("models.default") && p.contains("nope"))
    );
    assert!(problems.iter().any(|p| p.contains("models.exposed")));
    assert!(problems.iter().any(|p| p.contains("models.entries.empty")));
    assert!(problems.iter().any(|p| p.contains("models.entries.zero")));
}

#[test]
fn builtin_rules_can_be_turned_off() {
    let cfg: ModelMapConfig =
        toml::from_str("builtin = false\n[entries]\nonly = \"claude-sonnet-4.5\"").expect("parses");
    let map = ModelMap::from_config(&cfg).expect("valid");
    assert!(map.resolve("claude-sonnet-4-5").is_err());
    assert_eq!(upstream(&map, "only"), "claude-sonnet-4.5");
    let ids: Vec<String> = map.list().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, vec!["only".to_owned()]);
}

#[test]
fn env_overrides_add_entries_and_default() {
    let map = ModelMap::builtin()
        .with_env(
            Some("my-model=claude-opus-4.8, claude-sonnet-4-5 = claude-sonnet-4.6"),
            Some("my-model"),
        )
        .expect("valid");
    assert_eq!(upstream(&map, "my-model"), "claude-opus-4.8");
    // An explicit entry wins over the built-in rule for the same name.
    assert_eq!(upstream(&map, "claude-sonnet-4-5"), "claude-sonnet-4.6");
    assert_eq!(upstream(&map, "whatever"), "claude-opus-4.8");
}

#[test]
fn env_problems_are_all_reported() {
    let problems = ModelMap::builtin()
        .with_env(Some("novalue,=x,y="), Some("missing-model"))
        .expect_err("invalid");
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems.iter().any(|p| p.starts_with("DEFAULT_MODEL")));
}

#[test]
fn empty_env_values_change_nothing() {
    let map = ModelMap::builtin()
        .with_env(Some(""), Some("  "))
        .expect("valid");
    assert_eq!(map, ModelMap::builtin());
}

#[test]
fn default_listing_shows_builtin_models_newest_first() {
    let listed = ModelMap::builtin().list();
    assert_eq!(listed.len(), 10);
    assert_eq!(listed[0].id, "claude-opus-5");
    assert!(listed.iter().all(|m| m.kind == "model"));
    // Every listed name resolves, so a client can pick any of them.
    let map = ModelMap::builtin();
    for model in &listed {
        assert!(map.resolve(&model.id).is_ok(), "{}", model.id);
    }
}

#[test]
fn entries_overriding_a_listed_name_are_listed_once() {
    let map = ModelMap::builtin()
        .with_env(
            Some("claude-opus-4-8=claude-opus-4.7,extra=claude-sonnet-4.5"),
            None,
        )
        .expect("valid");
    let ids: Vec<String> = map.list().into_iter().map(|m| m.id).collect();
    assert_eq!(ids.iter().filter(|id| *id == "claude-opus-4-8").count(), 1);
    assert_eq!(ids.len(), 11);
    assert_eq!(upstream(&map, "claude-opus-4-8"), "claude-opus-4.7");
}
