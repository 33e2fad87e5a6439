//! JSON values for the property tests.
use proptest::prelude::*;

/// JSON values of every kind, nested up to 4 deep: about `size` nodes in all, at most `items`
/// per array or object.
pub fn json_value(size: u32, items: usize) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e300f64..1e300).prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, size, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..items).prop_map(serde_json::Value::from),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..items)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
