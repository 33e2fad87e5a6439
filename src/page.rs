//! The page's own events: `online` and `offline` (sync goes offline and comes back at once), and
//! `pagehide` (a storage lease is given up, so the next tab need not wait for it to lapse).
//! Listeners are removed on drop.
use std::rc::Weak;

use wasm_bindgen::prelude::*;
use web_sys::EventTarget;

use crate::driver::Driver;

/// An event name and its listener.
type Listener = (&'static str, Closure<dyn FnMut()>);

/// The listeners of one cache instance.
pub(crate) struct PageEvents {
    target: EventTarget,
    listeners: Vec<Listener>,
}

impl PageEvents {
    /// Listens on the global object, where it is an event target (not in every worker).
    pub(crate) fn listen(driver: &Weak<Driver>) -> Option<Self> {
        let target: EventTarget = js_sys::global().dyn_into().ok()?;
        let mut listeners: Vec<Listener> = Vec::new();
        for (name, online) in [("online", Some(true)), ("offline", Some(false)), ("pagehide", None)] {
            let driver = driver.clone();
            let closure = Closure::<dyn FnMut()>::new(move || match online {
                Some(online) => Driver::input(&driver, |inner, now| inner.client.set_online(online, now)),
                None => Driver::input(&driver, |inner, _| inner.client.page_hidden()),
            });
            if target.add_event_listener_with_callback(name, closure.as_ref().unchecked_ref()).is_ok() {
                listeners.push((name, closure));
            }
        }
        Some(PageEvents { target, listeners })
    }

    /// `navigator.onLine`, where there is one (`false` only when the browser says so).
    pub(crate) fn online() -> bool {
        let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok();
        let online = navigator.and_then(|n| js_sys::Reflect::get(&n, &"onLine".into()).ok());
        online.and_then(|o| o.as_bool()) != Some(false)
    }
}

impl Drop for PageEvents {
    fn drop(&mut self) {
        for (name, closure) in &self.listeners {
            let _ = self.target.remove_event_listener_with_callback(name, closure.as_ref().unchecked_ref());
        }
    }
}
