//! Telling the other tabs: a BroadcastChannel named after the prefix carries each task's writes;
//! the `storage` event other tabs' writes raise is listened to as well. Where BroadcastChannel is
//! missing it is the only link; where it is not, it settles what the channel cannot: a tab's
//! storage write and its channel message reach other tabs by separate routes, so an older record
//! may land in storage after a newer one whose message was already handled. The event says so,
//! and the tab holding the newer write writes it back. Listeners are removed on drop.
use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent, StorageEvent};

/// A BroadcastChannel and the closure it calls (kept alive while the link is).
type Channel = (BroadcastChannel, Closure<dyn FnMut(MessageEvent)>);
/// The window whose `storage` event is listened to, and the closure (needed again to remove it).
type StorageListener = (web_sys::Window, Closure<dyn FnMut(StorageEvent)>);

/// A live subscription to other tabs' changes.
pub struct TabLink {
    channel: Option<Channel>,
    storage: Option<StorageListener>,
}

impl TabLink {
    /// Opens the link for `name`; `on_message` gets message payloads, `on_storage` storage events.
    pub fn open(
        name: &str,
        on_message: impl FnMut(MessageEvent) + 'static,
        on_storage: impl FnMut(StorageEvent) + 'static,
    ) -> Self {
        let global = js_sys::global();
        let mut channel = None;
        if Reflect::get(&global, &"BroadcastChannel".into()).is_ok_and(|c| c.is_function()) {
            if let Ok(opened) = BroadcastChannel::new(name) {
                let closure = Closure::<dyn FnMut(MessageEvent)>::new(on_message);
                opened.set_onmessage(Some(closure.as_ref().unchecked_ref::<Function>()));
                channel = Some((opened, closure));
            }
        }
        let storage = web_sys::window().and_then(|window| {
            let closure = Closure::<dyn FnMut(StorageEvent)>::new(on_storage);
            let added = window.add_event_listener_with_callback("storage", closure.as_ref().unchecked_ref());
            added.is_ok().then_some((window, closure))
        });
        TabLink { channel, storage }
    }

    /// Sends a message to the other tabs (a no-op without BroadcastChannel: there the storage
    /// writes themselves are the message).
    pub fn post(&self, message: &JsValue) -> Result<(), JsValue> {
        match &self.channel {
            Some((channel, _on_message)) => channel.post_message(message),
            None => Ok(()),
        }
    }

    /// Whether tab messages carry the writes (else storage events alone do).
    pub fn has_channel(&self) -> bool {
        self.channel.is_some()
    }

    /// Which mechanism carries writes: `broadcast-channel`, `storage-event` or `none`.
    pub fn kind(&self) -> &'static str {
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
        if let Some((window, closure)) = &self.storage {
            let _ = window.remove_event_listener_with_callback("storage", closure.as_ref().unchecked_ref());
        }
    }
}
