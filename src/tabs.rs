//! Telling the other tabs: a BroadcastChannel named after the prefix carries each task's writes;
//! the `storage` event other tabs' writes raise is listened to as well. Where BroadcastChannel is
//! missing it is the only link; where it is not, it settles what the channel cannot: a tab's
//! storage write and its channel message reach other tabs by separate routes, so an older record
//! may land in storage after a newer one whose message was already handled. The event says so,
//! and the tab holding the newer write writes it back. Listeners are removed on drop.
use std::rc::Weak;

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent};

use crate::driver::Driver;

#[wasm_bindgen(module = "/src/adapters.js")]
extern "C" {
    /// A `storage` event listener that calls `handler(key, newValue)` for this cache's keys in
    /// `storage` only.
    #[wasm_bindgen(js_name = storageListener)]
    fn storage_listener(prefix: &str, storage: &JsValue, handler: &Function) -> Function;
}

/// A BroadcastChannel and the closure it calls (kept alive while the link is).
type Channel = (BroadcastChannel, Closure<dyn FnMut(MessageEvent)>);
/// The window whose `storage` event is listened to, the listener (needed again to remove it) and
/// the closure it calls.
type StorageListener = (web_sys::Window, Function, Closure<dyn FnMut(String, Option<String>)>);

/// A live subscription to other tabs' changes.
pub(crate) struct TabLink {
    channel: Option<Channel>,
    storage: Option<StorageListener>,
}

impl TabLink {
    /// Opens the link for the cache with `prefix` over `storage`: news from other tabs and their
    /// `storage` events (on that storage only) go to the core.
    pub(crate) fn open(prefix: &str, storage: JsValue, driver: &Weak<Driver>) -> Self {
        let global = js_sys::global();
        let mut channel = None;
        if Reflect::get(&global, &"BroadcastChannel".into()).is_ok_and(|c| c.is_function()) {
            if let Ok(opened) = BroadcastChannel::new(prefix) {
                let driver = driver.clone();
                // A message that is not text comes from an older or foreign sender: the core reports it.
                let closure = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                    let text = event.data().as_string().unwrap_or_default();
                    Driver::input(&driver, |inner, now| inner.client.tab_message(&text, now));
                });
                opened.set_onmessage(Some(closure.as_ref().unchecked_ref::<Function>()));
                channel = Some((opened, closure));
            }
        }
        let has_channel = channel.is_some();
        let storage = web_sys::window().and_then(|window| {
            let driver = driver.clone();
            let closure = Closure::<dyn FnMut(String, Option<String>)>::new(move |key: String, value: Option<String>| {
                Driver::input(&driver, |inner, now| inner.client.storage_event(&key, value.as_deref(), has_channel, now));
            });
            let listener = storage_listener(prefix, &storage, closure.as_ref().unchecked_ref());
            let added = window.add_event_listener_with_callback("storage", &listener);
            added.is_ok().then_some((window, listener, closure))
        });
        TabLink { channel, storage }
    }

    /// Sends news to the other tabs (a no-op without BroadcastChannel: there the storage writes
    /// themselves are the message).
    pub(crate) fn post(&self, text: &str) -> Result<(), JsValue> {
        match &self.channel {
            Some((channel, _on_message)) => channel.post_message(&JsValue::from_str(text)),
            None => Ok(()),
        }
    }

    /// Which mechanism carries writes: `broadcast-channel`, `storage-event` or `none`.
    pub(crate) fn kind(&self) -> &'static str {
        match (&self.channel, &self.storage) {
            (Some(_), _) => "broadcast-channel",
            (None, Some(_)) => "storage-event",
            (None, None) => "none",
        }
    }
}

impl Drop for TabLink {
    fn drop(&mut self) {
        if let Some((channel, _on_message)) = &self.channel {
            channel.set_onmessage(None);
            channel.close();
        }
        if let Some((window, listener, _handler)) = &self.storage {
            let _ = window.remove_event_listener_with_callback("storage", listener);
        }
    }
}
