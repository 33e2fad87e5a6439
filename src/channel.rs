//! Telling the other tabs: a BroadcastChannel named after the prefix, or, where BroadcastChannel
//! is missing, the `storage` event other tabs' writes raise. Listeners are removed on drop.
use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent, StorageEvent};

/// A live subscription to other tabs' changes.
#[allow(dead_code)] // the closures are held, never read: dropping them would detach the callbacks
pub enum TabLink {
    /// BroadcastChannel, and the closure it calls (kept alive while the link is).
    Channel(BroadcastChannel, Closure<dyn FnMut(MessageEvent)>),
    /// The window's `storage` event, and the closure it calls (needed again to remove it).
    StorageEvents(web_sys::Window, Closure<dyn FnMut(StorageEvent)>),
    /// Neither is available (a worker without BroadcastChannel, say): this tab only.
    None,
}

impl TabLink {
    /// Opens the link for `name`; `on_message` gets message payloads, `on_storage` storage events.
    pub fn open(
        name: &str,
        on_message: impl FnMut(MessageEvent) + 'static,
        on_storage: impl FnMut(StorageEvent) + 'static,
    ) -> Self {
        let global = js_sys::global();
        if Reflect::get(&global, &"BroadcastChannel".into()).is_ok_and(|c| c.is_function()) {
            if let Ok(channel) = BroadcastChannel::new(name) {
                let closure = Closure::<dyn FnMut(MessageEvent)>::new(on_message);
                channel.set_onmessage(Some(closure.as_ref().unchecked_ref::<Function>()));
                return TabLink::Channel(channel, closure);
            }
        }
        if let Some(window) = web_sys::window() {
            let closure = Closure::<dyn FnMut(StorageEvent)>::new(on_storage);
            let added = window.add_event_listener_with_callback("storage", closure.as_ref().unchecked_ref());
            if added.is_ok() {
                return TabLink::StorageEvents(window, closure);
            }
        }
        TabLink::None
    }

    /// Sends a message to the other tabs (a no-op on the storage-event fallback: there the
    /// storage writes themselves are the message).
    pub fn post(&self, message: &JsValue) -> Result<(), JsValue> {
        match self {
            TabLink::Channel(channel, _on_message) => channel.post_message(message),
            _ => Ok(()),
        }
    }

    /// Which mechanism is in use: `broadcast-channel`, `storage-event` or `none`.
    pub fn kind(&self) -> &'static str {
        match self {
            TabLink::Channel(..) => "broadcast-channel",
            TabLink::StorageEvents(..) => "storage-event",
            TabLink::None => "none",
        }
    }
}

impl Drop for TabLink {
    fn drop(&mut self) {
        match self {
            TabLink::Channel(channel, _on_message) => {
                channel.set_onmessage(None);
                channel.close();
            }
            TabLink::StorageEvents(window, closure) => {
                let _ = window.remove_event_listener_with_callback("storage", closure.as_ref().unchecked_ref());
            }
            TabLink::None => {}
        }
    }
}
