//! Bearer auth and namespaces, CORS, the static directory.
use mfe_cache_server::Config;
use serde_json::json;

use crate::common::{by_key, now_ms, TestServer};

fn tokens_server_config(dir: &tempfile::TempDir) -> Config {
    let path = dir.path().join("tokens");
    std::fs::write(&path, "# team tokens\ntoken-alpha-123 alpha\n\ntoken-beta-456 beta\ntoken-alpha-rotated alpha\n")
        .unwrap();
    Config { tokens: Some(path), ..Config::for_tests() }
}

#[tokio::test]
async fn tokens_separate_namespaces_and_guard_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(tokens_server_config(&dir)).await;
    let t = now_ms();
    let body = json!({ "key": "shared-name", "value": "alpha's", "ttl": 0, "timestamp": t, "node": "a" });

    // Without a token, with a wrong one, with another scheme: 401, nothing stored.
    for auth in [None, Some("Bearer wrong-token"), Some("Basic dG9rZW4="), Some("Bearer token-alpha-12")] {
        let mut request = s.client.post(s.url("/api/cache/set")).json(&body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["error"], "unauthorized");
    }

    let as_token =
        |token: &str, path: &str, body: serde_json::Value| s.client.post(s.url(path)).bearer_auth(token).json(&body);
    let (status, _) = s.send(as_token("token-alpha-123", "/api/cache/set", body.clone())).await;
    assert_eq!(status, 200);
    let beta_body = json!({ "key": "shared-name", "value": "beta's", "ttl": 0, "timestamp": t - 5, "node": "b" });
    let (status, beta_set) = s.send(as_token("token-beta-456", "/api/cache/set", beta_body)).await;
    assert_eq!(status, 200);
    assert_eq!(beta_set["accepted"], true, "an older write in another namespace does not compete");

    let sync = json!({ "lastSync": 0, "changes": [] });
    let (_, alpha) = s.send(as_token("token-alpha-rotated", "/api/cache/sync", sync.clone())).await;
    let (_, beta) = s.send(as_token("token-beta-456", "/api/cache/sync", sync.clone())).await;
    assert_eq!(by_key(&alpha)["shared-name"]["value"], "alpha's", "tokens of one namespace share it");
    assert_eq!(by_key(&beta)["shared-name"]["value"], "beta's");
    assert_eq!(alpha["updates"].as_array().unwrap().len(), 1);

    // A clear in one namespace leaves the other alone.
    let (status, _) =
        s.send(as_token("token-beta-456", "/api/cache/clear", json!({ "timestamp": t + 1, "node": "b" }))).await;
    assert_eq!(status, 200);
    let (_, alpha) = s.send(as_token("token-alpha-123", "/api/cache/sync", sync)).await;
    assert_eq!(by_key(&alpha)["shared-name"]["deleted"], false);

    // The health check needs no token.
    let (status, _) = s.send(s.client.get(s.url("/healthz"))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_bad_tokens_file_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    std::fs::write(&path, "only-a-token\n").unwrap();
    let config = Config { tokens: Some(path), ..Config::for_tests() };
    let err = mfe_cache_server::Server::bind(&config).await.err().expect("refused");
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[tokio::test]
async fn cors_preflights_are_answered_for_configured_origins_only() {
    let config = Config { cors_origins: vec!["http://shell.example:3000".into()], ..Config::for_tests() };
    let dir = tempfile::tempdir().unwrap();
    let config = Config { tokens: tokens_server_config(&dir).tokens, ..config };
    let s = TestServer::start(config).await;
    let preflight = |origin: &str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url("/api/cache/sync"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,authorization")
    };

    let allowed = preflight("http://shell.example:3000").send().await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], "http://shell.example:3000");
    let methods = h["access-control-allow-methods"].to_str().unwrap().to_ascii_uppercase();
    assert!(methods.contains("POST") && methods.contains("GET") && methods.contains("OPTIONS"), "{methods}");
    let headers = h["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(headers.contains("content-type") && headers.contains("authorization"), "{headers}");

    let other = preflight("http://evil.example").send().await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none(), "no CORS grant for other origins");

    // Actual requests from the allowed origin carry the grant — the 401 too, so the page can read it.
    let response = s
        .client
        .post(s.url("/api/cache/sync"))
        .header("origin", "http://shell.example:3000")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers()["access-control-allow-origin"], "http://shell.example:3000");
}

#[tokio::test]
async fn a_static_directory_is_served_beside_the_api() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>demo shell</h1>").unwrap();
    let s = TestServer::start(Config { static_dir: Some(dir.path().to_owned()), ..Config::for_tests() }).await;
    let page = s.client.get(s.url("/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.text().await.unwrap(), "<h1>demo shell</h1>");
    let (status, answer) = s.post("/api/unknown", &json!({})).await;
    assert_eq!((status, answer["error"].as_str()), (404, Some("not_found")), "the API keeps its JSON 404");
    let (status, _) = s.send(s.client.get(s.url("/healthz"))).await;
    assert_eq!(status, 200);
}

/// The static files are sent compressed as the client accepts (brotli, gzip, or as they are), with
/// `ETag` and `Last-Modified` that make a revalidation a `304`, and cached for a year when their
/// name carries a content hash; the API's answers are not touched.
#[tokio::test]
async fn static_files_are_compressed_validated_and_cached_by_their_names() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let page: String = (0..400).map(|i| format!("<p>line {i} of the demo shell</p>\n")).collect();
    let script: String = (0..400).map(|i| format!("export const v{i} = {i};\n")).collect();
    std::fs::write(dir.path().join("index.html"), &page).unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    std::fs::write(dir.path().join("assets/app-4f9a2c1b.js"), &script).unwrap();
    let s = TestServer::start(Config { static_dir: Some(dir.path().to_owned()), ..Config::for_tests() }).await;
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut request = s.client.get(s.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let header = |r: &reqwest::Response, name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_owned());

    let br = get("/", &[("accept-encoding", "gzip, br")]).await.unwrap();
    assert_eq!(br.status().as_u16(), 200);
    assert_eq!(header(&br, "content-encoding").as_deref(), Some("br"));
    assert!(header(&br, "vary").is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")));
    assert_eq!(header(&br, "cache-control").as_deref(), Some("no-cache"), "a plain name is revalidated");
    let (tag, modified) = (header(&br, "etag").expect("an ETag"), header(&br, "last-modified").expect("Last-Modified"));
    let body = br.bytes().await.unwrap();
    assert!(body.len() < page.len() / 4, "brotli: {} of {} bytes", body.len(), page.len());
    let mut text = String::new();
    brotli::Decompressor::new(&body[..], 4096).read_to_string(&mut text).unwrap();
    assert_eq!(text, page);

    let gzip = get("/", &[("accept-encoding", "gzip")]).await.unwrap();
    assert_eq!(header(&gzip, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&gzip, "etag").as_deref(), Some(tag.as_str()), "one tag whatever the encoding");
    let body = gzip.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
    assert_eq!(text, page);

    let plain = get("/", &[]).await.unwrap();
    assert_eq!(header(&plain, "content-encoding"), None);
    assert_eq!(plain.text().await.unwrap(), page);

    // Revalidation: the tag answers 304 with no body; another tag wins over a matching date.
    let same = get("/", &[("if-none-match", &tag), ("accept-encoding", "br")]).await.unwrap();
    assert_eq!(same.status().as_u16(), 304);
    assert_eq!(header(&same, "etag").as_deref(), Some(tag.as_str()));
    assert_eq!(header(&same, "cache-control").as_deref(), Some("no-cache"));
    assert!(same.bytes().await.unwrap().is_empty());
    let listed = get("/", &[("if-none-match", &format!("\"other\", {tag}"))]).await.unwrap();
    assert_eq!(listed.status().as_u16(), 304, "a tag in a list");
    let other = get("/", &[("if-none-match", "W/\"other\""), ("if-modified-since", &modified)]).await.unwrap();
    assert_eq!(other.status().as_u16(), 200, "If-None-Match takes precedence over If-Modified-Since");
    let dated = get("/", &[("if-modified-since", &modified)]).await.unwrap();
    assert_eq!(dated.status().as_u16(), 304);

    let asset = get("/assets/app-4f9a2c1b.js", &[("accept-encoding", "gzip")]).await.unwrap();
    assert_eq!(asset.status().as_u16(), 200);
    assert_eq!(header(&asset, "cache-control").as_deref(), Some("public, max-age=31536000, immutable"));
    assert_eq!(header(&asset, "content-encoding").as_deref(), Some("gzip"));

    let missing = get("/assets/gone-4f9a2c1b.js", &[]).await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(header(&missing, "cache-control"), None, "a 404 is not cached for a year");

    let api = s
        .client
        .post(s.url("/api/cache/sync"))
        .header("accept-encoding", "gzip, br")
        .json(&json!({ "lastSync": 0, "changes": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 200);
    assert_eq!(header(&api, "content-encoding"), None, "the API is not compressed here");
}

/// A symlink in the static directory that leads out of it is answered as a missing file (404),
/// whether it is the file itself, a directory on the way, or a directory's `index.html`; a
/// symlink that stays inside keeps working.
#[tokio::test]
async fn static_files_do_not_follow_symlinks_out_of_the_directory() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside the static root").unwrap();
    std::fs::write(outside.path().join("index.html"), "outside index").unwrap();
    std::fs::write(root.path().join("index.html"), "<h1>inside</h1>").unwrap();
    std::fs::create_dir(root.path().join("docs")).unwrap();
    let link =
        |target: &std::path::Path, name: &str| std::os::unix::fs::symlink(target, root.path().join(name)).unwrap();
    link(&outside.path().join("secret.txt"), "leak.txt");
    link(outside.path(), "elsewhere");
    link(&outside.path().join("index.html"), "docs/index.html");
    link(&root.path().join("index.html"), "alias.html");
    std::os::unix::fs::symlink("../index.html", root.path().join("docs/up.html")).unwrap();

    let s = TestServer::start(Config { static_dir: Some(root.path().to_owned()), ..Config::for_tests() }).await;
    for path in ["/leak.txt", "/elsewhere/secret.txt", "/elsewhere/", "/docs/", "/docs/index.html", "/%6Ceak.txt"] {
        let answer = s.get(path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text);
        assert!(!answer.text.contains("outside"), "{path}: {}", answer.text);
    }
    for path in ["/alias.html", "/docs/up.html", "/"] {
        let answer = s.get(path).await;
        assert_eq!((answer.status, answer.text.as_str()), (200, "<h1>inside</h1>"), "{path}");
    }
}
