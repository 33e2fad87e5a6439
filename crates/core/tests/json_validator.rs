//! The hand-written JSON validator (used by the wasm client instead of a JSON library) must agree
//! with serde_json on what is JSON.
use mfe_shared_cache_core::json;
use proptest::prelude::*;

#[path = "support/json_value.rs"]
mod support;

fn agrees(text: &str) {
    let ours = json::validate(text).is_ok();
    let reference = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
    assert_eq!(ours, reference, "disagree on {text:?}");
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    support::json_value(48, 6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn every_serialised_value_is_valid(v in json_value(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { v.to_string() };
        prop_assert_eq!(json::validate(&text), Ok(()));
    }

    #[test]
    fn mutated_json_gets_the_same_verdict(v in json_value(), cut in any::<prop::sample::Index>(), insert in "[\\[\\]{}:,\"\\\\0-9eE.+\\- a-z\u{0}-\u{1f}]") {
        let text = v.to_string();
        let at = cut.index(text.len() + 1);
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        agrees(&text[..at]);
        agrees(&format!("{}{}{}", &text[..at], insert, &text[at..]));
        let mut deleted = text.clone();
        if at < deleted.len() {
            deleted.remove(at);
        }
        agrees(&deleted);
    }

    #[test]
    fn json_ish_noise_gets_the_same_verdict(text in "[\\[\\]{}:,\"\\\\0-9eE.+\\- truefalsn]{0,24}") {
        agrees(&text);
    }
}
