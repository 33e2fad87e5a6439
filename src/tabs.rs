//! Telling the other tabs: a BroadcastChannel named after the prefix carries each task's writes;
//! the `storage` event other tabs' writes raise is listened to as well. Where BroadcastChannel is
//! missing it is the only link; where it is not, it settles what the channel cannot: a tab's
//! storage write and its channel message reach other tabs by separate routes, so an older record
//! may land in storage after a newer one whose message was already handled. The event says so,
//! and the tab holding the newer write writes it back. Listeners are removed on drop.
use std::rc::Weak;

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent, StorageEvent};

use crate::driver::Driver;

/// A BroadcastChannel and the closure it calls (kept alive while the link is).
type Channel = (BroadcastChannel, Closure<dyn FnMut(MessageEvent)>);
/// The window whose `storage` event is listened to, and the closure (needed again to remove it).
type StorageListener = (web_sys::Window, Closure<dyn FnMut(StorageEvent)>);

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
            let closure = Closure::<dyn FnMut(StorageEvent)>::new(move |event: StorageEvent| {
                let same_area = event.storage_area().is_some_and(|area| Object::is(area.as_ref(), &storage));
                let Some(key) = event.key().filter(|_| same_area) else { return };
                let value = event.new_value();
                Driver::input(&driver, |inner, now| inner.client.storage_event(&key, value.as_deref(), has_channel, now));
            });
            let added = window.add_event_listener_with_callback("storage", closure.as_ref().unchecked_ref());
            added.is_ok().then_some((window, closure))
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
        if let Some((window, closure)) = &self.storage {
            let _ = window.remove_event_listener_with_callback("storage", closure.as_ref().unchecked_ref());
        }
    }
}
