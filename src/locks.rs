//! Web Locks (`navigator.locks`): a lock is held from its callback until the promise the
//! callback returned resolves, so holding one is keeping that promise's `resolve`. Waiting has
//! an optional timeout (an abort), and a query lists the names held.
use std::rc::Weak;

use gloo_timers::callback::Timeout;
use js_sys::{Function, Promise, Reflect};
use mfe_shared_cache_core::client::LockMode;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortController, LockManager, LockOptions};

use crate::driver::Driver;

#[wasm_bindgen(module = "/src/adapters.js")]
extern "C" {
    /// The names of the held locks that start with `prefix`, each followed by a NUL.
    #[wasm_bindgen(js_name = heldNames)]
    fn held_names(locks: &LockManager, prefix: &str) -> Promise;
}

/// The platform's lock manager, where it has one.
pub(crate) fn lock_manager() -> Option<LockManager> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    let request = Reflect::get(&locks, &"request".into()).ok()?;
    request.is_function().then(|| locks.unchecked_into())
}

enum Hold {
    /// Asked for; aborting stops the wait. The timeout is kept only so that dropping the hold
    /// cancels it.
    Waiting { controller: AbortController, _timeout: Option<Timeout> },
    /// Granted; calling this releases it.
    Held(Function),
}

/// The locks of one cache instance.
#[derive(Default)]
pub(crate) struct Locks {
    /// A few at a time: a list costs the wasm less than a map.
    holds: Vec<(u32, Hold)>,
}

impl Locks {
    /// Asks for lock `name`; the core hears `lock_granted(id)` or `lock_failed(id)`.
    pub(crate) fn request(&mut self, id: u32, name: &str, mode: LockMode, timeout_ms: Option<u64>, driver: &Weak<Driver>) {
        let (Some(manager), Ok(controller)) = (lock_manager(), AbortController::new()) else {
            return Driver::input(driver, move |inner, now| inner.client.lock_failed(id, now));
        };
        let options = LockOptions::new();
        options.set_mode(match mode {
            LockMode::Exclusive => web_sys::LockMode::Exclusive,
            LockMode::Shared => web_sys::LockMode::Shared,
        });
        options.set_signal(&controller.signal());
        let granted = {
            let driver = driver.clone();
            Closure::once_into_js(move |_lock: JsValue| -> Promise {
                // Held until this promise resolves: its resolve is the release.
                let mut release = None;
                let held = Promise::new(&mut |resolve, _| release = Some(resolve));
                let Some(release) = release else { return held };
                if driver.upgrade().is_none() {
                    // Disposed while waiting: let it go at once.
                    let _ = release.call0(&JsValue::NULL);
                    return held;
                }
                let mut release = Some(release);
                Driver::input(&driver, |inner, now| {
                    // The grant ends the wait: its entry must go, or releasing would only abort
                    // a wait that is over and leave the lock held.
                    inner.locks.take(id);
                    if let Some(release) = release.take() {
                        inner.locks.holds.push((id, Hold::Held(release)));
                    }
                    inner.client.lock_granted(id, now);
                });
                // Nobody took it (disposed since): let it go rather than hold it until the page closes.
                if let Some(release) = release {
                    let _ = release.call0(&JsValue::NULL);
                }
                held
            })
        };
        let request = manager.request_with_options(name, &options, granted.unchecked_ref());
        let timer = timeout_ms.map(|ms| {
            let controller = controller.clone();
            Timeout::new(u32::try_from(ms).unwrap_or(u32::MAX), move || controller.abort())
        });
        self.holds.push((id, Hold::Waiting { controller, _timeout: timer }));
        let driver = driver.clone();
        spawn_local(async move {
            // Rejected when the wait was aborted (timeout, release, dispose) before the grant.
            if JsFuture::from(request).await.is_err() {
                Driver::input(&driver, move |inner, now| {
                    if inner.locks.holds.iter().any(|(held, hold)| *held == id && matches!(hold, Hold::Waiting { .. })) {
                        inner.locks.take(id);
                        inner.client.lock_failed(id, now);
                    }
                });
            }
        });
    }

    fn take(&mut self, id: u32) -> Option<Hold> {
        let i = self.holds.iter().position(|(held, _)| *held == id)?;
        Some(self.holds.swap_remove(i).1)
    }

    /// Releases a held lock, or stops waiting for it.
    pub(crate) fn release(&mut self, id: u32) {
        match self.take(id) {
            Some(Hold::Held(release)) => {
                let _ = release.call0(&JsValue::NULL);
            }
            Some(Hold::Waiting { controller, .. }) => controller.abort(),
            None => {}
        }
    }

    /// Lists the names of the locks held now that start with `prefix`; the core hears
    /// `locks_held(id, names)`.
    pub(crate) fn query(&mut self, id: u32, prefix: String, driver: &Weak<Driver>) {
        let Some(manager) = lock_manager() else {
            return Driver::input(driver, move |inner, now| inner.client.locks_held(id, &[], now));
        };
        let driver = driver.clone();
        spawn_local(async move {
            let joined = JsFuture::from(held_names(&manager, &prefix)).await.ok().and_then(|names| names.as_string()).unwrap_or_default();
            let names: Vec<String> = joined.split_terminator('\0').map(str::to_owned).collect();
            Driver::input(&driver, move |inner, now| inner.client.locks_held(id, &names, now));
        });
    }
}

impl Drop for Locks {
    fn drop(&mut self) {
        while let Some((id, _)) = self.holds.last() {
            let id = *id;
            self.release(id);
        }
    }
}
