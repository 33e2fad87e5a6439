//! The router: endpoints, then (inside out) auth, body limit and the cross-site write guard for
//! `/api`, the JSON error shape, CORS, and one log line per request.
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderName, HeaderValue, Method, Request, Response};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::auth::{self, Auth};
use crate::errors;
use crate::handlers;
use crate::origin::{self, AllowedOrigins};
use crate::server::AppState;
use crate::{events, inspect, invalidate, metrics, static_files};

/// What shapes the router besides the state.
#[derive(Clone, Debug, Default)]
pub struct RouterOptions {
    /// Bearer auth.
    pub auth: Option<Auth>,
    /// Largest request body.
    pub max_body: usize,
    /// Origins allowed cross-origin (`*`: any).
    pub cors_origins: Vec<String>,
    /// A directory served at `/`.
    pub static_dir: Option<PathBuf>,
}

/// Builds the application. Fails on a malformed CORS origin or an unreadable static directory.
pub fn router(state: AppState, options: &RouterOptions) -> Result<Router, String> {
    let health = get(handlers::health).with_state(state.clone());
    let api = Router::new()
        .route("/cache/sync", post(handlers::sync))
        .route("/cache/set", post(handlers::set))
        .route("/cache/remove", post(handlers::remove))
        .route("/cache/clear", post(handlers::clear))
        .route("/cache/invalidate", post(invalidate::invalidate))
        .route("/cache/entries", get(inspect::entries))
        .route("/cache/stats", get(inspect::stats))
        .route("/cache/events", get(events::events))
        // Inside auth (added below), so it counts authorised requests by their namespace.
        .route_layer(from_fn_with_state(state.metrics.clone(), metrics::count))
        .fallback(handlers::not_found)
        .layer(from_fn_with_state(options.auth.clone().unwrap_or(Auth::Open), auth::require))
        // The layer refuses a declared Content-Length over the limit before reading anything; the
        // extractor limit catches bodies that only turn out too large while streaming.
        .layer(DefaultBodyLimit::max(options.max_body))
        .layer(RequestBodyLimitLayer::new(options.max_body))
        // Outside auth and the body limit: a write from another site is refused before anything
        // else is looked at.
        .layer(from_fn_with_state(AllowedOrigins::new(&options.cors_origins), origin::guard))
        .with_state(state);

    let app = Router::new().nest("/api", api).route("/healthz", health);
    let app = match &options.static_dir {
        Some(dir) => {
            let files = static_files::serve(dir).map_err(|err| format!("--static {}: {err}", dir.display()))?;
            app.fallback_service(files)
        }
        None => app.fallback(handlers::not_found),
    };
    // Outermost first: every request is logged; CORS headers go on every answer (401 and 413
    // included, so a page can read them); API errors get the JSON shape.
    let cors = cors(&options.cors_origins)?;
    Ok(app.layer(
        ServiceBuilder::new()
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request<Body>| {
                        tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                    })
                    .on_request(())
                    .on_response(|response: &Response<Body>, latency: Duration, _: &Span| {
                        let latency_ms = format_args!("{:.3}", latency.as_secs_f64() * 1000.0);
                        tracing::info!(status = response.status().as_u16(), %latency_ms, "done");
                    })
                    .on_failure(()),
            )
            .option_layer(cors)
            .layer(from_fn(api_errors_as_json)),
    ))
}

/// The JSON error shape for the API and the health check; static files keep their own answers.
async fn api_errors_as_json(request: axum::extract::Request, next: Next) -> axum::response::Response {
    let path = request.uri().path();
    if path == "/api" || path.starts_with("/api/") || path == "/healthz" {
        errors::json_errors(request, next).await
    } else {
        next.run(request).await
    }
}

fn cors(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list = origins
            .iter()
            .map(|o| {
                let trimmed = o.trim().trim_end_matches('/');
                if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
                    return Err(format!("CORS origin {o:?} must look like https://host[:port]"));
                }
                HeaderValue::from_str(trimmed).map_err(|_| format!("CORS origin {o:?} is not a valid header value"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([CONTENT_TYPE, AUTHORIZATION, IF_NONE_MATCH, HeaderName::from_static("last-event-id")])
            // So a page can read the ETag of `/entries` and send it back.
            .expose_headers([ETAG])
            .max_age(Duration::from_secs(600)),
    ))
}
