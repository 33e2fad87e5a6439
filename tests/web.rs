//! Browser tests of the wasm client (`CacheCore`) in headless Chromium.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn placeholder_opens_over_local_storage() {
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let core = mfe_shared_cache::CacheCore::new(storage.into(), "t_".into(), "page".into(), js_sys::Function::new_no_args(""));
    core.set("k", "1".into(), 0.0).unwrap();
    assert_eq!(core.get("k").unwrap().as_deref(), Some("1"));
}
