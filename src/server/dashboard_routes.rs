//! Serving the LAN web dashboard: `GET /`, the PWA manifest and the files under
//! `/assets/{version}/...`, all embedded in the binary at build time from `web/`.
//!
//! The assets' URLs carry a version made from a SHA-256 over every embedded file, so
//! they are served `immutable` for a year, and a new binary's page asks for new URLs;
//! the page and the manifest (whose URLs never change) are revalidated by `ETag` on
//! every load. Every answer passes the server's security headers (a strict
//! `Content-Security-Policy` without inline scripts or styles). This module only
//! serves bytes: it never reads a credential, the store or any state.

use axum::body::Body;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::server::api::Api;
use crate::server::auth::Access;
use crate::server::error::{ApiError, ErrorCode};

/// The files of `web/`: name under `/assets/{version}/`, content type, bytes. Written
/// out by hand rather than by a build script, so `cargo build` needs nothing but the
/// compiler; a unit test fails when a file in `web/` is missing here.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/api.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/ui.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/pages.js"),
    ),
    (
        "chat.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/chat.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../web/icon.svg"),
    ),
];
/// The page; `{{version}}` becomes the assets' version.
const INDEX: &str = include_str!("../../web/index.html");
/// The PWA manifest; `{{version}}` as in the page.
const MANIFEST: &str = include_str!("../../web/manifest.webmanifest");
/// Files of `web/` that are not under `/assets/`.
pub const PAGES: [&str; 2] = ["index.html", "manifest.webmanifest"];

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// One servable file with its validators.
#[derive(Debug)]
struct File {
    content_type: &'static str,
    body: bytes::Bytes,
    etag: HeaderValue,
    cache: &'static str,
}

impl File {
    fn new(content_type: &'static str, body: bytes::Bytes, cache: &'static str) -> File {
        let digest = ring::digest::digest(&ring::digest::SHA256, &body);
        let tag = format!(
            "\"{}\"",
            hex::encode(digest.as_ref().get(..12).unwrap_or_default())
        );
        File {
            content_type,
            body,
            // Hex in quotes is always a valid header value.
            etag: HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\"")),
            cache,
        }
    }

    fn serve(&self, request: &HeaderMap) -> Response {
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',').any(|tag| {
                    tag.trim().trim_start_matches("W/").as_bytes() == self.etag.as_bytes()
                })
            });
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            Response::new(Body::from(self.body.clone()))
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(self.cache));
        if !fresh {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
        }
        response
    }
}

/// Everything the dashboard serves, built once when the router is.
#[derive(Debug)]
pub struct Dashboard {
    version: String,
    index: File,
    manifest: File,
    assets: Vec<(&'static str, File)>,
}

impl Dashboard {
    pub fn new() -> Dashboard {
        let mut all = ring::digest::Context::new(&ring::digest::SHA256);
        for (name, _, body) in ASSETS {
            all.update(name.as_bytes());
            all.update(&(body.len() as u64).to_le_bytes());
            all.update(body);
        }
        let version = hex::encode(all.finish().as_ref().get(..6).unwrap_or_default());
        let index = INDEX.replace("{{version}}", &version);
        let manifest = MANIFEST.replace("{{version}}", &version);
        Dashboard {
            index: File::new("text/html; charset=utf-8", index.into(), REVALIDATE),
            manifest: File::new("application/manifest+json", manifest.into(), REVALIDATE),
            assets: ASSETS
                .iter()
                .map(|(name, content_type, body)| {
                    let body = bytes::Bytes::from_static(body);
                    (*name, File::new(content_type, body, IMMUTABLE))
                })
                .collect(),
            version,
        }
    }

    /// The version in the assets' URLs.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Bytes of JavaScript and CSS the page loads.
    pub fn script_and_style_bytes(&self) -> usize {
        self.assets
            .iter()
            .filter(|(name, _)| name.ends_with(".js") || name.ends_with(".css"))
            .map(|(_, file)| file.body.len())
            .sum()
    }

    fn asset(&self, version: &str, name: &str, request: &HeaderMap) -> Response {
        let file = (version == self.version)
            .then(|| self.assets.iter().find(|(n, _)| *n == name))
            .flatten();
        match file {
            Some((_, file)) => file.serve(request),
            None => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "no such dashboard file (the page may be from an older version: reload it)",
            )
            .into_response(),
        }
    }
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard::new()
    }
}

/// The embedded files, read and hashed once.
static DASHBOARD: std::sync::LazyLock<Dashboard> = std::sync::LazyLock::new(Dashboard::new);

/// The URL of one of this build's assets (`/assets/{version}/{name}`), so pages the
/// server renders itself (the device-flow approval page) share the dashboard's look.
pub fn asset_url(name: &str) -> String {
    format!("/assets/{}/{name}", DASHBOARD.version())
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(index, manifest, asset))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

pub fn api() -> Api {
    Api::new()
        .route("/", Access::Public, get(index))
        .route("/manifest.webmanifest", Access::Public, get(manifest))
        .route("/assets/{version}/{file}", Access::Public, get(asset))
}

/// `GET /`: the dashboard's page.
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    summary = "The dashboard's page",
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
        (status = 304, description = "Unchanged since the ETag sent")
    )
)]
async fn index(headers: HeaderMap) -> Response {
    DASHBOARD.index.serve(&headers)
}

/// `GET /manifest.webmanifest`: the PWA manifest.
#[utoipa::path(
    get,
    path = "/manifest.webmanifest",
    tag = "dashboard",
    summary = "The dashboard's web app manifest",
    responses(
        (status = 200, description = "The manifest", body = Object, content_type = "application/manifest+json"),
        (status = 304, description = "Unchanged since the ETag sent")
    )
)]
async fn manifest(headers: HeaderMap) -> Response {
    DASHBOARD.manifest.serve(&headers)
}

/// `GET /assets/{version}/{file}`: a script, style sheet or icon of this build.
#[utoipa::path(
    get,
    path = "/assets/{version}/{file}",
    tag = "dashboard",
    summary = "A dashboard asset of this build (cached as immutable)",
    params(
        ("version" = String, Path, description = "The build's asset version"),
        ("file" = String, Path, description = "The file's name")
    ),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript"),
            (String = "text/css"),
            (String = "image/svg+xml")
        )),
        (status = 304, description = "Unchanged since the ETag sent"),
        (status = 404, description = "No such file in this build", body = Object)
    )
)]
async fn asset(Path((version, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    DASHBOARD.asset(&version, &file, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_web_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let known = PAGES.contains(&name.as_str()) || ASSETS.iter().any(|(n, ..)| *n == name);
            if !known {
                missing.push(name);
            }
        }
        assert!(missing.is_empty(), "not in ASSETS: {missing:?}");
    }

    #[test]
    fn the_page_names_the_versioned_assets_and_no_inline_code() {
        let dashboard = Dashboard::new();
        let page = String::from_utf8(dashboard.index.body.to_vec()).unwrap();
        let v = dashboard.version();
        assert!(page.contains(&format!("/assets/{v}/app.js")), "{page}");
        assert!(page.contains(&format!("/assets/{v}/app.css")), "{page}");
        assert!(!page.contains("{{"), "{page}");
        // CSP-clean: every script is loaded from a file, no inline style or handler.
        assert!(!page.contains("<script>") && !page.contains("style="));
        assert!(!page.contains(" onclick=") && !page.contains("<style"));
        for (name, _, body) in ASSETS {
            let text = String::from_utf8_lossy(body);
            assert!(!text.contains("eval("), "{name}");
            assert!(!text.contains("new Function"), "{name}");
            assert!(!text.contains("innerHTML"), "{name}");
            assert!(!text.contains("localStorage"), "{name}");
        }
    }

    #[test]
    fn script_and_style_stay_under_150_kb() {
        let bytes = Dashboard::new().script_and_style_bytes();
        assert!(bytes < 150 * 1024, "{bytes} bytes");
    }

    #[test]
    fn an_old_version_or_unknown_file_is_not_found() {
        let dashboard = Dashboard::new();
        let headers = HeaderMap::new();
        let v = dashboard.version().to_string();
        assert_eq!(dashboard.asset(&v, "app.js", &headers).status(), 200);
        assert_eq!(
            dashboard.asset("000000000000", "app.js", &headers).status(),
            404
        );
        assert_eq!(dashboard.asset(&v, "../Cargo.toml", &headers).status(), 404);
        assert_eq!(dashboard.asset(&v, "index.html", &headers).status(), 404);
    }
}
