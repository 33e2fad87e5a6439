//! The messages the core decodes itself (news between tabs, `/sync` answers, the event stream,
//! error bodies): what the server and other tabs really send decodes to what they meant, a bad
//! part costs only itself, and hostile input is an error, never a panic or a stack overflow.
use mfe_shared_cache_core::message::{
    decode_error_body, decode_news, decode_stream_event, decode_sync_answer, encode_news, encode_sync_answer, ErrorBody, News, SseEvent,
    SseRead, SseReader, StreamItem, SyncAnswer, MAX_EVENT_BYTES,
};
use mfe_shared_cache_core::{
    encode_record, encode_record_pending, json, prefix_tag, wire_text, CacheError, Entry, ErrorKind, Pending, Stamp, MAX_SAFE_INTEGER,
    MAX_STAMP_MS,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

#[path = "support/json_value.rs"]
mod support;

fn is_protocol<T: std::fmt::Debug>(result: &Result<T, CacheError>) -> bool {
    matches!(result, Err(e) if e.kind() == ErrorKind::Protocol)
}

/// A fixed seed: a failure reproduces, and every run covers the same cases.
fn seeded(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x6d66_652d_6361_6368),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// What the properties generate

/// Keys the cache accepts, with characters JSON must escape.
fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z:_]{1,12}", "\\PC{1,8}", "[\u{1}-\u{1f}\"\\\\/]{1,4}"]
}

/// Writer ids the cache accepts.
fn node() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.:-]{0,12}"
}

/// Values as `set` stores them: JSON text.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    support::json_value(32, 5)
}

/// Any write a peer may make: values with TTLs, tombstones, written before their stamp or not.
fn entry() -> impl Strategy<Value = Entry> {
    (
        0..=MAX_STAMP_MS,
        node(),
        prop::option::weighted(0.8, (json_value(), 0u64..400_000_000_000)),
        prop::option::of(0..=MAX_SAFE_INTEGER),
    )
        .prop_map(|(ts, node, value, written_at)| {
            let stamp = Stamp::new(ts, node);
            let entry = match value {
                Some((value, ttl_ms)) => Entry::value(stamp, ttl_ms, value.to_string()),
                None => Entry::tombstone(stamp),
            };
            match written_at {
                Some(at) => entry.written_at(at),
                None => entry,
            }
        })
}

// ---------------------------------------------------------------------------------------------
// /sync answers

/// A `/sync` answer as the reference server writes it.
fn server_answer(
    updates: &[(&str, Entry)],
    cursor: u64,
    clear: Option<&Stamp>,
    more: bool,
    rejected: &[(&str, &str)],
    now: u64,
) -> String {
    encode_sync_answer(updates.iter().map(|(k, e)| (*k, e)), cursor, clear, more, rejected.iter().copied(), now)
}

fn ok_updates(answer: &SyncAnswer) -> Vec<(String, Entry)> {
    answer.updates.iter().map(|u| u.clone().unwrap()).collect()
}

#[test]
fn the_reference_servers_answers_decode() {
    let updates = [
        ("user", Entry::value(Stamp::new(1_700_000_000_000, "app:1"), 3_600_000, r#"{"name":"John"}"#)),
        ("k\"ey\\ünï", Entry::value(Stamp::new(1_700_000_000_001, ""), 1_500, "null")),
        ("gone", Entry::tombstone(Stamp::new(1_700_000_000_002, "n-2"))),
        ("fast", Entry::value(Stamp::new(90_000_000_000, "n"), 5_000, "[1,{\"a\":[]}]").written_at(1_700_000_000_003)),
        ("gone-fast", Entry::tombstone(Stamp::new(90_000_000_000, "n")).written_at(1_700_000_000_004)),
        ("tiny ttl", Entry::value(Stamp::new(1, "n"), 1, "0")),
    ];
    let epoch = Stamp::new(1_600_000_000_000, "clearer");
    let text = server_answer(
        &updates,
        42,
        Some(&epoch),
        true,
        &[("k", "below the GC floor"), ("\u{1}", "reused stamp")],
        1_700_000_000_500,
    );
    let answer = decode_sync_answer(&text).unwrap();
    assert_eq!(
        answer,
        SyncAnswer {
            cursor: 42,
            updates: updates.iter().map(|(k, e)| Ok((k.to_string(), e.clone()))).collect(),
            clear: Some(Ok(epoch)),
            more: true,
            rejected: vec![("k".into(), "below the GC floor".into()), ("\u{1}".into(), "reused stamp".into())],
            now: Some(1_700_000_000_500),
        }
    );
    // The everyday answer: nothing new.
    let answer = decode_sync_answer(&server_answer(&[], 7, None, false, &[], 9)).unwrap();
    assert_eq!(
        answer,
        SyncAnswer { cursor: 7, updates: vec![], clear: None, more: false, rejected: vec![], now: Some(9) }
    );
}

#[test]
fn hand_written_answers_decode() {
    let text = r#"
    {
      "now": 1700000000500, "unknown": {"nested": [1, {"x": null}]},
      "updates": [
        {"timestamp": 1700000000000, "deleted": false, "ttl": 2.5, "value": {"a": [1, "]"]}, "key": "k\u0065y", "extra": true},
        {"key": "nul", "value": null, "ttl": 0, "timestamp": 1.7e12, "deleted": false, "node": null, "writtenAt": null},
        {"key": "rm", "timestamp": 17E11, "deleted": true, "ttl": -1, "value": "ignored"},
        {"key": "pair \ud83d\udd74", "value": "x", "timestamp": 1, "node": "n", "writtenAt": 0}
      ],
      "timestamp": 99,
      "rejected": [{"key": "a"}, {"reason": "no key"}, {"key": 5, "reason": "x"}, {"key": "b", "reason": 7}, 5],
      "more": false
    }"#;
    let answer = decode_sync_answer(text).unwrap();
    assert_eq!(answer.cursor, 99);
    assert_eq!(
        ok_updates(&answer),
        [
            ("key".to_owned(), Entry::value(Stamp::new(1_700_000_000_000, ""), 2_500, r#"{"a": [1, "]"]}"#)),
            ("nul".to_owned(), Entry::value(Stamp::new(1_700_000_000_000, ""), 0, "null")),
            ("rm".to_owned(), Entry::tombstone(Stamp::new(1_700_000_000_000, ""))),
            ("pair 🕴".to_owned(), Entry::value(Stamp::new(1, "n"), 0, "\"x\"").written_at(0)),
        ]
    );
    assert_eq!(answer.rejected, [("a".to_owned(), "refused".to_owned()), ("b".to_owned(), "refused".to_owned())]);
    assert_eq!((answer.more, answer.now, answer.clear), (false, Some(1_700_000_000_500), None));
}

#[test]
fn seed_only_answers_decode() {
    // Exactly the seed protocol: `Date.now()` may come as 1.7e12, nothing but updates and timestamp.
    let text = r#"{"updates":[{"key":"user","value":{"name":"John"},"ttl":3600,"timestamp":1.7e12,"deleted":false}],"timestamp":1.7e12}"#;
    let answer = decode_sync_answer(text).unwrap();
    assert_eq!(
        answer,
        SyncAnswer {
            cursor: 1_700_000_000_000,
            updates: vec![Ok((
                "user".into(),
                Entry::value(Stamp::new(1_700_000_000_000, ""), 3_600_000, r#"{"name":"John"}"#)
            ))],
            clear: None,
            more: false,
            rejected: vec![],
            now: None,
        }
    );
    assert_eq!(decode_sync_answer(r#"{"updates":[],"timestamp":0}"#).unwrap().cursor, 0);
}

#[test]
fn the_cursor_wins_over_the_timestamp() {
    let cursor = |text: &str| decode_sync_answer(text).map(|a| a.cursor);
    assert_eq!(cursor(r#"{"updates":[],"timestamp":5,"cursor":9}"#), Ok(9));
    assert_eq!(cursor(r#"{"cursor":9,"updates":[],"timestamp":5}"#), Ok(9));
    assert_eq!(cursor(r#"{"updates":[],"cursor":9}"#), Ok(9));
    assert_eq!(cursor(r#"{"updates":[],"timestamp":5,"cursor":null}"#), Ok(5), "null is absent, as with ??");
    assert!(is_protocol(&cursor(r#"{"updates":[],"timestamp":5,"cursor":"9"}"#)));
    assert!(is_protocol(&cursor(r#"{"updates":[],"timestamp":5,"cursor":-9}"#)));
}

#[test]
fn extensions_of_the_wrong_type_are_ignored_like_a_seed_client_would() {
    let text = r#"{"updates":[],"timestamp":5,"more":"yes","now":"soon","rejected":{"key":"k"},"clear":null}"#;
    assert_eq!(
        decode_sync_answer(text),
        Ok(SyncAnswer { cursor: 5, updates: vec![], clear: None, more: false, rejected: vec![], now: None })
    );
    assert_eq!(decode_sync_answer(r#"{"updates":[],"timestamp":5,"now":-1}"#).unwrap().now, None);
    assert_eq!(
        decode_sync_answer(r#"{"updates":[],"timestamp":5,"now":1.7e12}"#).unwrap().now,
        Some(1_700_000_000_000)
    );
}

#[test]
fn a_bad_clear_is_an_error_of_its_own() {
    for clear in [
        r#"5"#,
        r#"[]"#,
        r#"{}"#,
        r#"{"timestamp":-1}"#,
        r#"{"timestamp":1,"node":"a b"}"#,
        r#"{"timestamp":1,"node":5}"#,
        r#"{"timestamp":"\ud800"}"#,
    ] {
        let text = format!(r#"{{"updates":[{{"key":"k","value":1,"timestamp":3}}],"timestamp":5,"clear":{clear}}}"#);
        let answer = decode_sync_answer(&text).unwrap();
        assert!(matches!(&answer.clear, Some(Err(CacheError::Protocol { .. }))), "{clear}: {:?}", answer.clear);
        assert!(answer.updates[0].is_ok());
    }
    let answer = decode_sync_answer(r#"{"updates":[],"timestamp":5,"clear":{"timestamp":1.7e12}}"#).unwrap();
    assert_eq!(answer.clear, Some(Ok(Stamp::new(1_700_000_000_000, ""))), "a seed backend's clear has no node");
}

#[test]
fn a_bad_update_costs_only_itself() {
    let good = r#"{"key":"good","value":1,"ttl":1,"timestamp":3,"deleted":false,"node":"n"}"#;
    let bad_updates = [
        (r#"{"key":"x\ud800","value":1,"timestamp":3}"#, "lone surrogate"),
        (r#"{"key":"\udc00x","value":1,"timestamp":3}"#, "lone surrogate"),
        (r#"{"key":"a\u0000b","value":1,"timestamp":3}"#, "U+0000"),
        (r#"{"key":"","value":1,"timestamp":3}"#, "empty"),
        (r#"{"key":5,"value":1,"timestamp":3}"#, "expected a string"),
        (r#"{"key":null,"value":1,"timestamp":3}"#, "expected a string"),
        (r#"{"value":1,"timestamp":3}"#, "no key"),
        (r#"{"key":"k","value":1,"timestamp":1e300}"#, "0..=2^53-1"),
        (r#"{"key":"k","value":1,"timestamp":9007199254740992}"#, "0..=2^53-1"),
        (r#"{"key":"k","value":1,"timestamp":123456789012345678901234567890}"#, "0..=2^53-1"),
        (r#"{"key":"k","value":1,"timestamp":-1}"#, "0..=2^53-1"),
        (r#"{"key":"k","value":1,"timestamp":1.5}"#, "0..=2^53-1"),
        (r#"{"key":"k","value":1,"timestamp":"1"}"#, "expected a number"),
        (r#"{"key":"k","value":1}"#, "no timestamp"),
        (r#"{"key":"k","value":1,"timestamp":1,"ttl":-1}"#, "ttl"),
        (r#"{"key":"k","value":1,"timestamp":1,"ttl":1e400}"#, "ttl"),
        (r#"{"key":"k","value":1,"timestamp":1,"ttl":1e300}"#, "ttl"),
        (r#"{"key":"k","value":1,"timestamp":1,"ttl":"60"}"#, "expected a number"),
        (r#"{"key":"k","value":1,"timestamp":1,"node":"a b"}"#, "writer id"),
        (r#"{"key":"k","value":1,"timestamp":1,"node":"a\"b"}"#, "writer id"),
        (r#"{"key":"k","value":1,"timestamp":1,"node":5}"#, "expected a string"),
        (
            r#"{"key":"k","value":1,"timestamp":1,"node":"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"}"#,
            "writer id",
        ),
        (r#"{"key":"k","timestamp":1}"#, "no value"),
        (r#"{"key":"k","timestamp":1,"deleted":false}"#, "no value"),
        (r#"{"key":"k","value":1,"timestamp":1,"deleted":"yes"}"#, "true or false"),
        (r#"{"key":"k","value":1,"timestamp":1,"deleted":null}"#, "true or false"),
        (r#"{"key":"k","value":1,"timestamp":1,"writtenAt":-1}"#, "0..=2^53-1"),
        (r#"{"key":"k","value":1,"timestamp":1,"writtenAt":"x"}"#, "expected a number"),
        (r#"5"#, "expected an object"),
        (r#"null"#, "expected an object"),
        (r#""key""#, "expected an object"),
        (r#"[{"key":"k","value":1,"timestamp":1}]"#, "expected an object"),
    ];
    for (bad, why) in bad_updates {
        let text = format!(r#"{{"updates":[{good},{bad},{good}],"timestamp":5}}"#);
        let answer = decode_sync_answer(&text).unwrap_or_else(|e| panic!("{bad}: the whole answer failed: {e}"));
        assert_eq!(answer.updates.len(), 3, "{bad}");
        assert!(answer.updates[0].is_ok() && answer.updates[2].is_ok(), "{bad}: {:?}", answer.updates);
        match &answer.updates[1] {
            Err(CacheError::Protocol { message }) => {
                assert!(message.contains(why), "{bad}: {message:?} does not say {why:?}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // The error names the key when it was read.
    let answer =
        decode_sync_answer(r#"{"updates":[{"key":"cart","value":1,"timestamp":1,"ttl":-1}],"timestamp":5}"#).unwrap();
    let CacheError::Protocol { message } = answer.updates[0].clone().unwrap_err() else { unreachable!() };
    assert!(message.contains("\"cart\""), "{message}");
}

#[test]
fn unusable_answers_are_errors_as_a_whole() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    for bad in [
        String::new(),
        "<html>502 Bad Gateway</html>".into(),
        "null".into(),
        "[]".into(),
        "5".into(),
        "{}".into(),
        r#"{"timestamp":1}"#.into(),
        r#"{"updates":null,"timestamp":1}"#.into(),
        r#"{"updates":{},"timestamp":1}"#.into(),
        r#"{"updates":[]}"#.into(),
        r#"{"updates":[],"timestamp":null}"#.into(),
        r#"{"updates":[],"timestamp":-1}"#.into(),
        r#"{"updates":[],"timestamp":1.5}"#.into(),
        r#"{"updates":[],"timestamp":"1"}"#.into(),
        r#"{"updates":[],"timestamp":9007199254740992}"#.into(),
        r#"{"updates":[],"timestamp":1} {}"#.into(),
        r#"{"updates":[],"timestamp":1,}"#.into(),
        r#"{"updates":[{"key":"k","value":[1,],"timestamp":1}],"timestamp":1}"#.into(),
        r#"{"updates":[{"key":"k","value":NaN,"timestamp":1}],"timestamp":1}"#.into(),
        r#"{"updates":[{"key":"k" "value":1,"timestamp":1}],"timestamp":1}"#.into(),
        format!(r#"{{"updates":[{{"key":"k","value":{deep},"timestamp":1}}],"timestamp":1}}"#),
        format!(r#"{{"updates":[],"timestamp":1,"x":{deep}}}"#),
        format!(r#"{{"updates":{deep},"timestamp":1}}"#),
        deep.clone(),
    ] {
        let result = decode_sync_answer(&bad);
        assert!(is_protocol(&result), "{:?} gave {result:?}", &bad[..bad.len().min(80)]);
    }
}

proptest! {
    #![proptest_config(seeded(512))]

    #[test]
    fn server_answers_round_trip_anything(
        updates in prop::collection::vec((key(), entry()), 0..6),
        cursor in 0..=MAX_SAFE_INTEGER,
        clear in prop::option::of(((0..=MAX_STAMP_MS), node())),
        more in any::<bool>(),
        now in 0..=MAX_SAFE_INTEGER,
    ) {
        let clear = clear.map(|(ts, node)| Stamp::new(ts, node));
        let borrowed: Vec<(&str, Entry)> = updates.iter().map(|(k, e)| (k.as_str(), e.clone())).collect();
        let answer = decode_sync_answer(&server_answer(&borrowed, cursor, clear.as_ref(), more, &[], now)).unwrap();
        prop_assert_eq!(answer, SyncAnswer { cursor, updates: updates.into_iter().map(Ok).collect(), clear: clear.map(Ok), more, rejected: vec![], now: Some(now) });
    }
}

// ---------------------------------------------------------------------------------------------
// The same verdicts as the server's serde wire types

#[cfg(feature = "serde")]
mod agrees_with_serde {
    use super::*;
    use mfe_shared_cache_core::wire;
    use serde_json::value::RawValue;

    /// A change as any peer may write it: seed fields, optional extensions, sometimes invalid
    /// by the cache's rules (empty key, U+0000, bad writer id, negative TTL).
    fn change() -> impl Strategy<Value = wire::Change> {
        let key = prop_oneof![8 => key(), 1 => Just(String::new()), 1 => Just("a\u{0}b".to_owned()), 1 => Just("k".repeat(1025))];
        let node = prop_oneof![6 => node().prop_map(Some), 1 => Just(None), 1 => Just(Some("a b".to_owned()))];
        let ttl = prop_oneof![
            4 => (0u64..400_000_000_000).prop_map(|ms| ms as f64 / 1000.0),
            2 => 0f64..1e9,
            1 => Just(0.0004),
            1 => -1e6f64..0.0,
            1 => Just(1e300),
        ];
        (
            key,
            prop::option::weighted(0.9, json_value()),
            ttl,
            0..=MAX_STAMP_MS,
            any::<bool>(),
            node,
            prop::option::of(0..=MAX_SAFE_INTEGER),
        )
            .prop_map(|(key, value, ttl, timestamp, deleted, node, written_at)| wire::Change {
                key,
                value: value.filter(|_| !deleted).map(|v| RawValue::from_string(v.to_string()).unwrap()),
                ttl,
                timestamp,
                deleted,
                node,
                written_at,
            })
    }

    /// What the server's wire types make of an update: `into_entry`'s verdict. (They read a
    /// missing value as null, where the core refuses it: the generator always sends a value
    /// with a write.)
    fn serde_verdict(change: wire::Change) -> Option<(String, Entry)> {
        change.into_entry().ok()
    }

    proptest! {
        #![proptest_config(seeded(1024))]

        #[test]
        fn sync_answers_agree_with_serde(
            changes in prop::collection::vec(change(), 0..6),
            timestamp in 0..=MAX_SAFE_INTEGER,
            now in prop::option::of(0..=MAX_SAFE_INTEGER),
            pretty in any::<bool>(),
        ) {
            let sent = changes.clone();
            let response = wire::SyncResponse { updates: changes, timestamp, now };
            let text = if pretty { serde_json::to_string_pretty(&response).unwrap() } else { serde_json::to_string(&response).unwrap() };
            let theirs: wire::SyncResponse = serde_json::from_str(&text).unwrap();
            let ours = decode_sync_answer(&text).unwrap();
            prop_assert_eq!(ours.cursor, theirs.timestamp);
            prop_assert_eq!(ours.now, theirs.now);
            prop_assert_eq!(ours.updates.len(), theirs.updates.len());
            for ((ours, theirs), sent) in ours.updates.into_iter().zip(theirs.updates).zip(sent) {
                if !sent.deleted && sent.value.is_none() {
                    // The one deliberate difference: a write without its value is refused (the
                    // wire types read it as null, which no writer meant).
                    prop_assert!(ours.is_err());
                } else {
                    prop_assert_eq!(ours.ok(), serde_verdict(theirs));
                }
            }
        }

        #[test]
        fn changes_written_by_the_core_agree_with_serde(updates in prop::collection::vec((key(), entry()), 0..6), cursor in 0..=MAX_SAFE_INTEGER) {
            let borrowed: Vec<(&str, Entry)> = updates.iter().map(|(k, e)| (k.as_str(), e.clone())).collect();
            let text = server_answer(&borrowed, cursor, None, false, &[], 1);
            let theirs: wire::SyncResponse = serde_json::from_str(&text).unwrap();
            let ours = decode_sync_answer(&text).unwrap();
            prop_assert_eq!(ours.cursor, theirs.timestamp);
            for (ours, theirs) in ours.updates.into_iter().zip(theirs.updates) {
                prop_assert_eq!(ours.ok(), serde_verdict(theirs));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// News

fn tag() -> String {
    prefix_tag("app_")
}

fn record(entry: &Entry, unsynced: bool) -> String {
    encode_record_pending(entry, &tag(), pending(unsynced))
}

fn pending<E>(unsynced: bool) -> Pending<E> {
    if unsynced {
        Pending::This
    } else {
        Pending::None
    }
}

#[test]
fn news_round_trips_every_field() {
    let writes = [
        (
            "user",
            Entry::value(Stamp::new(1_700_000_000_000, "app:x1"), 3_600_000, r#"{"name":"John","tags":["a"]}"#),
            false,
        ),
        ("q\"uote\\back\nslash\u{1}", Entry::value(Stamp::new(5, "n"), 0, "null"), true),
        ("ünï ✓ 🕴", Entry::tombstone(Stamp::new(90_000_000, "n.2")).written_at(7), true),
        ("skewed", Entry::value(Stamp::new(90_000_042, "fast-device"), 5_000, "[1,2.5,-3e2]").written_at(42), false),
    ];
    let records: Vec<(String, String)> = writes.iter().map(|(k, e, u)| (k.to_string(), record(e, *u))).collect();
    let epoch = Stamp::new(1_699_999_999_999, "other:tab");
    let text = encode_news(
        "page-1",
        Some((&epoch, true)),
        records.iter().map(|(k, r)| (k.as_str(), r.as_str())),
        Some(-82_800_000),
    );
    assert!(
        text.starts_with(
            r#"{"v":2,"page":"page-1","clear":{"t":1699999999999,"n":"other:tab","u":1},"w":{"user":{"t":"#
        ),
        "{text}"
    );
    assert_eq!(json::validate(&text), Ok(()));
    let news = decode_news(&text, &tag()).unwrap();
    let expected = News {
        page: "page-1".into(),
        clear: Some((epoch.clone(), true)),
        writes: writes.iter().map(|(k, e, u)| Ok((k.to_string(), e.clone(), pending(*u)))).collect(),
        clock: Some(-82_800_000),
    };
    assert_eq!(news, expected);
    // A clear the backend has acknowledged carries no mark.
    let text = encode_news("p", Some((&epoch, false)), [], Some(0));
    assert_eq!(text, r#"{"v":2,"page":"p","clear":{"t":1699999999999,"n":"other:tab"},"clock":0}"#);
    assert_eq!(decode_news(&text, &tag()).unwrap().clear, Some((epoch, false)));
}

#[test]
fn news_with_nothing_optional_is_small() {
    let text = encode_news("p\"1", None, [], None);
    assert_eq!(text, r#"{"v":2,"page":"p\"1"}"#);
    assert_eq!(decode_news(&text, &tag()), Ok(News { page: "p\"1".into(), clear: None, writes: vec![], clock: None }));
    // Field order and whitespace are free; unknown fields are ignored.
    let text = r#" { "clock" : 5 , "future" : {"x":[1]}, "page" : "p", "v" : 2.0e0 } "#;
    assert_eq!(decode_news(text, &tag()).unwrap().clock, Some(5));
}

#[test]
fn news_of_a_later_version_that_adds_members_is_read() {
    // A newer copy of the package in another MFE or tab: version 2 news with members this one
    // does not know, at the top and in its records.
    let t = tag();
    let text = format!(
        r#"{{"v":2,"page":"p","hint":{{"a":[1]}},"w":{{"k":{{"t":5,"n":"n","p":"{t}","u":1,"x":"}}","v":[1]}},"gone":{{"t":6,"n":"n","p":"{t}","x":{{}},"d":1}}}},"later":true}}"#
    );
    let news = decode_news(&text, &t).unwrap();
    assert_eq!(
        news.writes,
        vec![
            Ok(("k".to_owned(), Entry::value(Stamp::new(5, "n"), 0, "[1]"), Pending::This)),
            Ok(("gone".to_owned(), Entry::tombstone(Stamp::new(6, "n")), Pending::None)),
        ]
    );
}

#[test]
fn a_value_of_the_deepest_nesting_travels_in_news() {
    let deepest = "[".repeat(json::MAX_DEPTH) + &"]".repeat(json::MAX_DEPTH);
    let entry = Entry::value(Stamp::new(1, "n"), 0, deepest);
    let rec = record(&entry, false);
    let news = decode_news(&encode_news("p", None, [("k", rec.as_str())], None), &tag()).unwrap();
    assert_eq!(news.writes, vec![Ok(("k".to_owned(), entry, Pending::None))]);
}

#[test]
fn a_bad_write_of_news_costs_only_itself() {
    let good = record(&Entry::value(Stamp::new(5, "n"), 0, "1"), false);
    let other_cache = encode_record(&Entry::value(Stamp::new(5, "n"), 0, "1"), &prefix_tag("app_x_"));
    let t = tag();
    let text = format!(
        r#"{{"v":2,"page":"p","w":{{"a":{good},"":{good},"a\u0000b":{good},"x\ud800":{good},"long":{good},"{long}":{good},"corrupt":{{"t":1}},"not an object":5,"bad tombstone":{{"t":1,"n":"n","p":"{t}","d":2}},"bad node":{{"t":1,"n":"a b","p":"{t}","v":1}},"other":{other_cache},"z":{good}}}}}"#,
        long = "k".repeat(1025),
    );
    let news = decode_news(&text, &tag()).unwrap();
    let entry = Entry::value(Stamp::new(5, "n"), 0, "1");
    assert_eq!(news.writes.len(), 11, "the other cache's write is left out: {:?}", news.writes);
    assert_eq!(news.writes[0], Ok(("a".to_owned(), entry.clone(), Pending::None)));
    assert_eq!(news.writes[4], Ok(("long".to_owned(), entry.clone(), Pending::None)));
    assert_eq!(news.writes[10], Ok(("z".to_owned(), entry, Pending::None)));
    for (i, write) in news.writes.iter().enumerate() {
        if ![0, 4, 10].contains(&i) {
            assert!(is_protocol(write), "write {i}: {write:?}");
        }
    }
    let CacheError::Protocol { message } = news.writes[3].clone().unwrap_err() else { unreachable!() };
    assert!(message.contains("lone surrogate"), "{message}");
    let CacheError::Protocol { message } = news.writes[6].clone().unwrap_err() else { unreachable!() };
    assert!(message.contains("\"corrupt\""), "{message}");
}

#[test]
fn malformed_news_is_an_error_as_a_whole() {
    let good = record(&Entry::value(Stamp::new(5, "n"), 0, "1"), false);
    for bad in [
        String::new(),
        "[]".into(),
        "5".into(),
        "null".into(),
        r#"[1,"page",-1,null,"k","rec"]"#.into(),
        r#"{"page":"p"}"#.into(),
        r#"{"v":1,"page":"p"}"#.into(),
        r#"{"v":3,"page":"p"}"#.into(),
        r#"{"v":"2","page":"p"}"#.into(),
        r#"{"v":2.5,"page":"p"}"#.into(),
        r#"{"v":2}"#.into(),
        r#"{"v":2,"page":5}"#.into(),
        r#"{"v":2,"page":null}"#.into(),
        r#"{"v":2,"page":"\ud800"}"#.into(),
        r#"{"v":2,"page":"p","clear":5}"#.into(),
        r#"{"v":2,"page":"p","clear":null}"#.into(),
        r#"{"v":2,"page":"p","clear":{"t":1}}"#.into(),
        r#"{"v":2,"page":"p","clear":{"n":"a"}}"#.into(),
        r#"{"v":2,"page":"p","clear":{"t":-1,"n":"a"}}"#.into(),
        r#"{"v":2,"page":"p","clear":{"t":1.5,"n":"a"}}"#.into(),
        r#"{"v":2,"page":"p","clear":{"t":9007199254740992,"n":"a"}}"#.into(),
        r#"{"v":2,"page":"p","clear":{"t":1,"n":"a b"}}"#.into(),
        r#"{"v":2,"page":"p","clear":{"t":1,"n":"a","u":2}}"#.into(),
        r#"{"v":2,"page":"p","clear":{"t":1,"n":"a","u":true}}"#.into(),
        r#"{"v":2,"page":"p","clock":1.5}"#.into(),
        r#"{"v":2,"page":"p","clock":"5"}"#.into(),
        r#"{"v":2,"page":"p","clock":1e300}"#.into(),
        r#"{"v":2,"page":"p","w":5}"#.into(),
        r#"{"v":2,"page":"p","w":[]}"#.into(),
        format!(r#"{{"v":2,"page":"p","w":{{"k":{good}}}}} trailing"#),
        format!(r#"{{"v":2,"page":"p","w":{{"k":{good},"j":{{"t":}}}}}}"#),
        r#"{"v":2,"page":"p","w":{"k":[1,]}}"#.into(),
    ] {
        let result = decode_news(&bad, &tag());
        assert!(is_protocol(&result), "{bad:?} gave {result:?}");
    }
}

proptest! {
    #![proptest_config(seeded(512))]

    #[test]
    fn news_round_trips_anything(
        page in "\\PC{0,10}",
        clear in prop::option::of(((0..=MAX_STAMP_MS), node(), any::<bool>())),
        writes in prop::collection::vec((key(), entry(), any::<bool>()), 0..6),
        clock in prop::option::of(-(MAX_SAFE_INTEGER as i64)..=MAX_SAFE_INTEGER as i64),
    ) {
        let clear = clear.map(|(ts, node, unsynced)| (Stamp::new(ts, node), unsynced));
        let records: Vec<(String, String)> = writes.iter().map(|(k, e, u)| (k.clone(), record(e, *u))).collect();
        let text = encode_news(&page, clear.as_ref().map(|(s, u)| (s, *u)), records.iter().map(|(k, r)| (k.as_str(), r.as_str())), clock);
        prop_assert_eq!(json::validate(&text), Ok(()));
        let news = decode_news(&text, &tag()).unwrap();
        prop_assert_eq!(news, News { page, clear, writes: writes.into_iter().map(|(k, e, u)| Ok((k, e, pending(u)))).collect(), clock });
    }
}

// ---------------------------------------------------------------------------------------------
// The event stream

/// What the reference server sends (server/src/events.rs), with a heartbeat comment, CRLF lines
/// and the fields of the format the server does not use.
fn stream_text() -> String {
    let mut change = String::new();
    wire_text::write_change(
        &mut change,
        "cart ✓",
        &Entry::value(Stamp::new(1_700_000_000_000, "n"), 60_000, r#"{"items":[1]}"#),
    );
    let mut clear = String::new();
    wire_text::write_clear(&mut clear, &Stamp::new(1_700_000_000_001, "m"));
    format!(
        ": stream opened\n\nid: 41\nevent: change\ndata: {change}\n\n:\n\nid: 42\r\nevent: clear\r\ndata: {clear}\r\n\r\n\
         id: 50\nevent: cursor\ndata: {{\"cursor\":50}}\n\nevent: ready\ndata: {{\"cursor\":50,\"heartbeat\":15000}}\n\n\
         retry: 1000\nevent: nothing\nid: 51\n\ndata\ndata:  two spaces\ndata:é\nunknown: x\n\nevent: error\ndata: store failed\n\n"
    )
}

fn expected_events() -> Vec<SseEvent> {
    let text = stream_text();
    let data_of = |prefix: &str| {
        text.lines().find(|l| l.starts_with(prefix)).unwrap().trim_end_matches('\r')["data: ".len()..].to_owned()
    };
    let event =
        |event: &str, data: String, id: Option<&str>| SseEvent { event: event.into(), data, id: id.map(Into::into) };
    vec![
        event("change", data_of("data: {\"key\""), Some("41")),
        event("clear", data_of("data: {\"timestamp\""), Some("42")),
        event("cursor", r#"{"cursor":50}"#.into(), Some("50")),
        event("ready", r#"{"cursor":50,"heartbeat":15000}"#.into(), None),
        event("message", "\n two spaces\né".into(), None),
        event("error", "store failed".into(), None),
    ]
}

fn read_all(reader: &mut SseReader, chunks: &[&[u8]]) -> Result<SseRead, CacheError> {
    let mut all = SseRead::default();
    for chunk in chunks {
        let read = reader.push(chunk)?;
        all.events.extend(read.events);
        all.lines += read.lines;
    }
    Ok(all)
}

#[test]
fn the_stream_is_framed_into_events() {
    let text = stream_text();
    let read = SseReader::new().push(text.as_bytes()).unwrap();
    assert_eq!(read.events, expected_events());
    assert_eq!(read.lines, text.matches('\n').count());
}

#[test]
fn a_stream_split_at_any_byte_gives_the_same_events() {
    let text = stream_text();
    let bytes = text.as_bytes();
    for at in 0..=bytes.len() {
        let (a, b) = bytes.split_at(at);
        let mut reader = SseReader::new();
        let read = read_all(&mut reader, &[a, b]).unwrap();
        assert_eq!(read.events, expected_events(), "split at {at}");
        assert_eq!(read.lines, text.matches('\n').count(), "split at {at}");
    }
    // One byte at a time, through every multi-byte character.
    let mut reader = SseReader::new();
    let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(read_all(&mut reader, &chunks).unwrap().events, expected_events());
}

#[test]
fn only_whole_lines_are_a_sign_of_life() {
    let mut reader = SseReader::new();
    assert_eq!(reader.push(b"").unwrap().lines, 0);
    assert_eq!(reader.push(b": heartb").unwrap().lines, 0);
    assert_eq!(reader.push(b"eat\n").unwrap(), SseRead { events: vec![], lines: 1 });
    assert_eq!(
        reader.push(b"\n").unwrap(),
        SseRead { events: vec![], lines: 1 },
        "a blank line without data dispatches nothing"
    );
    assert_eq!(reader.push(b"event: x\nid: 3\n\n").unwrap(), SseRead { events: vec![], lines: 3 }, "no data, no event");
    let read = reader.push(b"data: a\n\ndata: b\n").unwrap();
    assert_eq!((read.events.len(), read.lines), (1, 3));
    assert_eq!(read.events[0].id, None, "an id belongs to its own event");
}

#[test]
fn a_line_past_the_limit_is_an_error_and_never_held() {
    let mut reader = SseReader::new();
    reader.push(b"data: ").unwrap();
    let chunk = vec![b'x'; 64 << 10];
    let mut pushed = 6;
    let error = loop {
        match reader.push(&chunk) {
            Ok(read) => {
                assert_eq!(read.lines, 0);
                pushed += chunk.len();
                assert!(reader.buffered() <= MAX_EVENT_BYTES, "holds {} after {pushed} bytes", reader.buffered());
                assert!(pushed <= 5 << 20, "a 5 MiB line was accepted");
            }
            Err(e) => break e,
        }
    };
    assert!(pushed <= MAX_EVENT_BYTES);
    assert!(matches!(&error, CacheError::Protocol { message } if message.contains("a line")), "{error}");
    assert_eq!(reader.buffered(), 0, "nothing is held after the error");
    assert!(reader.push(b"\n\ndata: x\n\n").is_err(), "the stream is given up");
    // One push of a whole 5 MiB line fails the same, without buffering it.
    let mut reader = SseReader::new();
    let mut line = b"data: ".to_vec();
    line.resize(5 << 20, b'y');
    line.extend_from_slice(b"\n\n");
    assert!(reader.push(&line).is_err());
    assert_eq!(reader.buffered(), 0);
}

#[test]
fn an_event_past_the_limit_is_an_error() {
    let mut reader = SseReader::new();
    let line = format!("data: {}\n", "z".repeat(1023));
    let mut error = None;
    for _ in 0..5 * 1024 {
        match reader.push(line.as_bytes()) {
            Ok(read) => assert!(read.events.is_empty() && reader.buffered() <= MAX_EVENT_BYTES),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let error = error.expect("a 5 MiB event was accepted");
    assert!(matches!(&error, CacheError::Protocol { message } if message.contains("an event")), "{error}");
    assert_eq!(reader.buffered(), 0);
    // Comments are not kept, however many: an idle stream's heartbeats never fill the buffer.
    let mut reader = SseReader::new();
    for _ in 0..10_000 {
        reader.push(format!(": {}\n", "h".repeat(1000)).as_bytes()).unwrap();
    }
    assert!(reader.buffered() < 4096, "{}", reader.buffered());
}

#[test]
fn a_large_event_is_not_held_once_dispatched() {
    let mut reader = SseReader::new();
    let data = "d".repeat(3 << 20);
    let read = reader.push(format!("event: change\ndata: {data}\n\n").as_bytes()).unwrap();
    assert_eq!(read.events[0].data.len(), data.len());
    assert!(reader.buffered() <= 64 << 10, "{}", reader.buffered());
}

#[test]
fn a_line_that_is_not_utf8_is_an_error() {
    for bad in [&b"data: \xff\n"[..], b"data: \xe2\x82\n", b": comment \xc0\xaf\n", b"\xed\xa0\x80\n"] {
        let mut reader = SseReader::new();
        assert!(matches!(reader.push(bad), Err(CacheError::Protocol { .. })), "{bad:?}");
    }
    // A character split across pushes is fine.
    let mut reader = SseReader::new();
    reader.push(b"data: \xe2\x82").unwrap();
    let read = reader.push(b"\xac\n\n").unwrap();
    assert_eq!(read.events[0].data, "€");
}

#[test]
fn stream_events_mean_what_the_server_meant() {
    let items: Vec<StreamItem> = expected_events().iter().map(decode_stream_event).collect();
    assert_eq!(
        items,
        [
            StreamItem::Change(
                Ok(("cart ✓".into(), Entry::value(Stamp::new(1_700_000_000_000, "n"), 60_000, r#"{"items":[1]}"#))),
                Some(41)
            ),
            StreamItem::Clear(Ok(Stamp::new(1_700_000_000_001, "m")), Some(42)),
            StreamItem::Cursor(50),
            StreamItem::Ready { heartbeat_ms: Some(15_000) },
            StreamItem::Other,
            StreamItem::Error("store failed".into()),
        ]
    );
    let event = |event: &str, data: &str, id: Option<&str>| SseEvent {
        event: event.into(),
        data: data.into(),
        id: id.map(Into::into),
    };
    for id in ["", "-1", "1.5", "1e3", " 7", "9007199254740992", "99999999999999999999999", "٣", "abc"] {
        assert_eq!(decode_stream_event(&event("cursor", "{}", Some(id))), StreamItem::Other, "{id:?}");
        let StreamItem::Clear(_, got) = decode_stream_event(&event("clear", r#"{"timestamp":1}"#, Some(id))) else {
            unreachable!()
        };
        assert_eq!(got, None, "{id:?}");
    }
    assert_eq!(decode_stream_event(&event("cursor", "{}", Some("007"))), StreamItem::Cursor(7));
    // `reconnect`: its spread, a default when it gives none (or garbage), and a cap.
    for (data, spread) in [
        (r#"{"reason":"going away","spreadMs":2500}"#, 2_500),
        ("{}", 1_000),
        ("not json", 1_000),
        (r#"{"spreadMs":-5}"#, 1_000),
        (r#"{"spreadMs":86400000}"#, 60_000),
    ] {
        assert_eq!(decode_stream_event(&event("reconnect", data, None)), StreamItem::Reconnect { spread_ms: spread }, "{data:?}");
    }
    assert_eq!(decode_stream_event(&event("cursor", "{}", None)), StreamItem::Other);
    for data in
        ["", "x", "[]", "{\"key\":\"k\",\"value\":1,\"timestamp\":1} x", r#"{"key":"x\ud800","value":1,"timestamp":1}"#]
    {
        let item = decode_stream_event(&event("change", data, Some("3")));
        assert!(matches!(&item, StreamItem::Change(Err(CacheError::Protocol { .. }), Some(3))), "{data:?}: {item:?}");
    }
    for data in ["", "{}", r#"{"timestamp":-1}"#, r#"{"timestamp":1} 2"#] {
        assert!(
            matches!(decode_stream_event(&event("clear", data, None)), StreamItem::Clear(Err(_), None)),
            "{data:?}"
        );
    }
    for data in [
        "",
        "x",
        "{}",
        r#"{"heartbeat":0}"#,
        r#"{"heartbeat":-5}"#,
        r#"{"heartbeat":"15000"}"#,
        r#"{"heartbeat":1.5}"#,
        r#"{"heartbeat":5} x"#,
    ] {
        assert_eq!(
            decode_stream_event(&event("ready", data, None)),
            StreamItem::Ready { heartbeat_ms: None },
            "{data:?}"
        );
    }
    assert_eq!(
        decode_stream_event(&event("ready", r#"{"heartbeat":1.5e4}"#, None)),
        StreamItem::Ready { heartbeat_ms: Some(15_000) }
    );
    assert_eq!(decode_stream_event(&event("message", "{}", Some("9"))), StreamItem::Other);
}

proptest! {
    #![proptest_config(seeded(512))]

    #[test]
    fn a_stream_split_anywhere_gives_the_same_events(cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let text = stream_text();
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(text.len() + 1)).collect();
        at.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in at {
            chunks.push(&text.as_bytes()[start..cut]);
            start = cut;
        }
        chunks.push(&text.as_bytes()[start..]);
        let read = read_all(&mut SseReader::new(), &chunks).unwrap();
        prop_assert_eq!(read.events, expected_events());
    }
}

// ---------------------------------------------------------------------------------------------
// Error bodies

#[test]
fn error_bodies_decode() {
    let body = |code: &str, message: &str, index: Option<usize>, key: Option<&str>| {
        Some(ErrorBody { code: code.into(), message: message.into(), index, key: key.map(Into::into) })
    };
    assert_eq!(
        decode_error_body(
            r#"{"error":"invalid_key","message":"changes[3]: key must not be empty","index":3,"key":""}"#
        ),
        body("invalid_key", "changes[3]: key must not be empty", Some(3), Some(""))
    );
    assert_eq!(
        decode_error_body(r#"{"error":"overloaded","message":"try later"}"#),
        body("overloaded", "try later", None, None)
    );
    assert_eq!(decode_error_body(r#" {"error":"x"} "#), body("x", "", None, None));
    for (text, index) in [
        (r#"{"error":"x","index":-1}"#, None),
        (r#"{"error":"x","index":1.5}"#, None),
        (r#"{"error":"x","index":"3"}"#, None),
        (r#"{"error":"x","index":2147483648}"#, None),
        (r#"{"error":"x","index":2147483647}"#, Some(2_147_483_647)),
        (r#"{"error":"x","index":3.0}"#, Some(3)),
    ] {
        assert_eq!(decode_error_body(text).unwrap().index, index, "{text}");
    }
    assert_eq!(decode_error_body(r#"{"error":"x","key":"\ud800","message":5}"#), body("x", "", None, None));
    for bad in
        ["", "<html>", "null", "[]", r#"{"message":"m"}"#, r#"{"error":5}"#, r#"{"error":"x"} y"#, r#"{"error":"x","#]
    {
        assert_eq!(decode_error_body(bad), None, "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile input

fn valid_messages() -> Vec<String> {
    let rec = record(&Entry::value(Stamp::new(5, "n"), 1000, r#"{"a":[1,"\u00e9"]}"#), true);
    let epoch = Stamp::new(3, "m");
    vec![
        encode_news("p", Some((&epoch, true)), [("k\u{e9}y", rec.as_str()), ("b", rec.as_str())], Some(-5)),
        server_answer(
            &[("k", Entry::value(Stamp::new(1, "n"), 1500, "[1,{\"b\":null}]")), ("t", Entry::tombstone(Stamp::new(2, "n")).written_at(1))],
            9,
            Some(&epoch),
            true,
            &[("k", "why")],
            10,
        ),
        r#"{"updates":[{"key":"user","value":{"name":"John"},"ttl":3600,"timestamp":1.7e12,"deleted":false}],"timestamp":1.7e12}"#.into(),
        r#"{"error":"invalid_key","message":"m","index":3,"key":"k"}"#.into(),
    ]
}

fn decode_everything(text: &str) {
    let _ = decode_news(text, &tag());
    let _ = decode_sync_answer(text);
    let _ = decode_error_body(text);
    for event in ["change", "clear", "ready", "cursor", "error"] {
        let _ = decode_stream_event(&SseEvent { event: event.into(), data: text.into(), id: Some(text.into()) });
    }
    let _ = SseReader::new().push(text.as_bytes());
}

#[test]
fn every_truncation_of_a_valid_message_is_an_error() {
    for text in valid_messages() {
        for cut in (0..text.len()).filter(|cut| text.is_char_boundary(*cut)) {
            let part = &text[..cut];
            decode_everything(part);
            assert!(decode_news(part, &tag()).is_err(), "{part}");
            assert!(decode_sync_answer(part).is_err(), "{part}");
            assert_eq!(decode_error_body(part), None, "{part}");
        }
    }
    // A change event cut short.
    let mut change = String::new();
    wire_text::write_change(&mut change, "k", &Entry::value(Stamp::new(1, "n"), 1500, "[1,\"x\"]"));
    for cut in 0..change.len() {
        let item = decode_stream_event(&SseEvent { event: "change".into(), data: change[..cut].into(), id: None });
        assert!(matches!(item, StreamItem::Change(Err(_), None)), "{}", &change[..cut]);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let objects = "{\"a\":".repeat(100_000) + &"}".repeat(100_000);
    for nested in [&deep, &objects] {
        let rec = format!(r#"{{"t":1,"n":"n","p":"{}","v":{nested}}}"#, tag());
        assert!(decode_news(&encode_news("p", None, [("k", rec.as_str())], None), &tag()).is_err());
        assert!(decode_news(nested, &tag()).is_err());
        assert!(decode_sync_answer(&format!(
            r#"{{"updates":[{{"key":"k","value":{nested},"timestamp":1}}],"timestamp":1}}"#
        ))
        .is_err());
        assert!(decode_sync_answer(nested).is_err());
        assert_eq!(decode_error_body(&format!(r#"{{"error":"x","detail":{nested}}}"#)), None);
        let data = format!(r#"{{"key":"k","value":{nested},"timestamp":1}}"#);
        let item = decode_stream_event(&SseEvent { event: "change".into(), data, id: None });
        assert!(matches!(item, StreamItem::Change(Err(_), _)));
        decode_everything(nested);
    }
}

proptest! {
    #![proptest_config(seeded(2048))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_everything(&String::from_utf8_lossy(&bytes));
        let mut reader = SseReader::new();
        let _ = reader.push(&bytes);
        prop_assert!(reader.buffered() <= MAX_EVENT_BYTES);
    }

    #[test]
    fn json_ish_noise_never_panics(text in "[\\[\\]{}:,\"\\\\0-9eE.+\\- truefalsnupdatesimv\u{0}\u{e9}]{0,64}") {
        decode_everything(&text);
    }

    #[test]
    fn mutated_messages_never_panic(which in 0usize..4, at in any::<prop::sample::Index>(), insert in "[\\[\\]{}:,\"\\\\0-9eE.+\\- a-z\u{0}-\u{1f}\u{d7ff}\u{e000}]{0,3}", delete in 0usize..4) {
        let text = &valid_messages()[which];
        let at = at.index(text.len() + 1);
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (at..=text.len()).find(|i| *i >= at + delete && text.is_char_boundary(*i)).unwrap_or(text.len());
        decode_everything(&format!("{}{}{}", &text[..at], insert, &text[at..]));
        decode_everything(&format!("{}{}", &text[..at], &text[end..]));
    }
}
