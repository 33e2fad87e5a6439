//! Requests to the backend through gloo-net (fetch): POSTs of the core's bodies with a timeout
//! and abort, and the event stream, a GET whose body is read as it arrives (so the `headers`
//! option, e.g. `Authorization`, applies to it too; `EventSource` sends none). What came back —
//! a status and a body, bytes of the stream, a failure — goes to the core as it is.
use std::cell::Cell;
use std::rc::{Rc, Weak};

use gloo_net::http::{Request, RequestBuilder};
use gloo_timers::callback::Timeout;
use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use mfe_shared_cache_core::client::Fetch;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortController, ReadableStreamDefaultReader, RequestCache};

use crate::driver::{Driver, Inner};
use crate::errors::js_error_message;

/// The backend and the requests under way.
pub(crate) struct Http {
    base: String,
    /// The `headers` option: an object, or a function returning one or a promise of one.
    headers: JsValue,
    /// A few at a time: a list costs the wasm less than a map.
    running: Vec<(u32, AbortController)>,
}

impl Http {
    pub(crate) fn new(base: String, headers: JsValue) -> Self {
        Http { base: base.trim_end_matches('/').to_owned(), headers, running: Vec::new() }
    }

    /// Starts `fetch`; its outcome comes back as an input of the core.
    pub(crate) fn start(&mut self, fetch: Fetch, driver: &Weak<Driver>) {
        let Ok(controller) = AbortController::new() else {
            let id = fetch.id;
            return Driver::input(driver, move |inner, now| inner.client.request_failed(id, "fetch is not available", false, now));
        };
        self.running.push((fetch.id, controller.clone()));
        let url = format!("{}{}", self.base, fetch.path);
        let headers = self.headers.clone();
        let driver = driver.clone();
        spawn_local(async move { run(url, fetch, headers, controller, driver).await });
    }

    /// Aborts a request or closes the stream.
    pub(crate) fn abort(&mut self, id: u32) {
        if let Some(controller) = self.finished(id) {
            controller.abort();
        }
    }

    fn finished(&mut self, id: u32) -> Option<AbortController> {
        let i = self.running.iter().position(|(running, _)| *running == id)?;
        Some(self.running.swap_remove(i).1)
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        for (_, controller) in &self.running {
            controller.abort();
        }
    }
}

/// The extra headers of one request: the option's object, or what its function gives.
async fn extra_headers(headers: &JsValue) -> Result<Vec<(String, String)>, String> {
    let mut value = headers.clone();
    if let Some(f) = value.dyn_ref::<Function>() {
        value = f.call0(&JsValue::NULL).map_err(|e| js_error_message(&e))?;
    }
    if value.has_type::<Promise>() {
        value = JsFuture::from(value.unchecked_into::<Promise>()).await.map_err(|e| js_error_message(&e))?;
    }
    if value.is_null() || value.is_undefined() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in Object::entries(value.dyn_ref::<Object>().ok_or("the headers option did not give an object")?).iter() {
        let name = Reflect::get(&entry, &0.into()).ok().and_then(|v| v.as_string());
        let text = Reflect::get(&entry, &1.into()).ok().and_then(|v| v.as_string());
        if let (Some(name), Some(text)) = (name, text) {
            out.push((name, text));
        }
    }
    Ok(out)
}

async fn run(url: String, fetch: Fetch, headers: JsValue, controller: AbortController, driver: Weak<Driver>) {
    let id = fetch.id;
    let failed = |driver: &Weak<Driver>, message: String, timed_out: bool| {
        Driver::input(driver, move |inner, now| {
            inner.http.finished(id);
            inner.client.request_failed(id, &message, timed_out, now);
        })
    };
    let extra = match extra_headers(&headers).await {
        Ok(extra) => extra,
        Err(why) => return failed(&driver, format!("the headers option failed: {why}"), false),
    };
    let mut request: RequestBuilder = if fetch.stream {
        Request::get(&url).header("accept", "text/event-stream").cache(RequestCache::NoStore)
    } else {
        Request::post(&url).header("content-type", "application/json")
    };
    for (name, value) in &extra {
        request = request.header(name, value);
    }
    let request = request.abort_signal(Some(&controller.signal()));
    let request = match fetch.body {
        Some(body) => request.body(body),
        None => request.build(),
    };
    let request = match request {
        Ok(request) => request,
        Err(e) => return failed(&driver, e.to_string(), false),
    };
    // The timeout covers the whole answer of a request, and only the headers of the stream.
    let timed_out = Rc::new(Cell::new(false));
    let timer = {
        let (controller, timed_out) = (controller.clone(), timed_out.clone());
        Timeout::new(u32::try_from(fetch.timeout_ms).unwrap_or(u32::MAX), move || {
            timed_out.set(true);
            controller.abort();
        })
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return failed(&driver, e.to_string(), timed_out.get()),
    };
    let status = response.status();
    if !fetch.stream {
        let text = response.text().await;
        drop(timer);
        return match text {
            Ok(text) => Driver::input(&driver, move |inner, now| {
                inner.http.finished(id);
                inner.client.answered(id, status, &text, now);
            }),
            Err(e) => failed(&driver, e.to_string(), timed_out.get()),
        };
    }
    drop(timer);
    let content_type = response.headers().get("content-type").unwrap_or_default();
    if !(200..300).contains(&status) {
        let text = response.text().await.unwrap_or_default();
        return Driver::input(&driver, move |inner, now| inner.client.stream_opened(id, status, &content_type, Some(&text), now));
    }
    Driver::input(&driver, |inner, now| inner.client.stream_opened(id, status, &content_type, None, now));
    let reader = response.body().and_then(|body| body.get_reader().dyn_into::<ReadableStreamDefaultReader>().ok());
    if let Some(reader) = reader {
        read_stream(id, reader, &driver).await;
    }
    Driver::input(&driver, move |inner: &mut Inner, now| {
        inner.http.finished(id);
        inner.client.stream_ended(id, now);
    });
}

/// Hands the stream's bytes to the core as they arrive, until it ends, fails or is aborted.
async fn read_stream(id: u32, reader: ReadableStreamDefaultReader, driver: &Weak<Driver>) {
    loop {
        let Ok(chunk) = JsFuture::from(reader.read()).await else { return };
        if Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
            return;
        }
        let Ok(value) = Reflect::get(&chunk, &"value".into()) else { return };
        let bytes = value.dyn_into::<Uint8Array>().map(|a| a.to_vec()).unwrap_or_default();
        if driver.upgrade().is_none() {
            let _ = reader.cancel();
            return;
        }
        Driver::input(driver, |inner, now| inner.client.stream_data(id, &bytes, now));
    }
}
