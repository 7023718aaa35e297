//! Browser sessions of the dashboard: the refresh token kept in an `HttpOnly` cookie
//! scoped to `/auth/refresh`, and the cross-site request checks on that endpoint.
//!
//! A browser that sends [`CLIENT_HEADER`] with a login, a claim or a refresh gets its
//! refresh token as the cookie [`REFRESH_COOKIE`] (`HttpOnly; Secure; SameSite=Strict;
//! Path=/auth/refresh`) and never in the JSON body, so no script on the page can read
//! it; the page keeps only the short-lived access token, in memory. A refresh by cookie
//! must carry the same header (which no cross-site form can send and which CORS never
//! admits cross-origin) and, when the browser names an `Origin` or `Sec-Fetch-Site`,
//! come from this gateway's own origin. API clients that send the refresh token in the
//! body are unaffected. This module never verifies a token itself (`auth::sessions`
//! does) and never decides who may call a route.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, header};
use serde_json::Value;

use crate::auth::sessions::TokenPair;
use crate::secret::Secret;
use crate::server::host::RequestHost;

/// The header by which the dashboard asks for cookie-kept refresh tokens.
pub const CLIENT_HEADER: HeaderName = HeaderName::from_static("x-aisopod-client");
/// The value the dashboard sends in [`CLIENT_HEADER`].
pub const CLIENT_DASHBOARD: &str = "dashboard";
/// The cookie that holds a browser's refresh token.
pub const REFRESH_COOKIE: &str = "aisopod_refresh";
/// The only path the cookie is sent to.
pub const REFRESH_PATH: &str = "/auth/refresh";
/// Longest cookie value read; a refresh token is under 100 bytes.
const MAX_REFRESH_COOKIE: usize = 512;

/// Why a cookie refresh was refused before any token was looked at.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BrowserSessionError {
    #[error("a browser refresh must send the X-Aisopod-Client: dashboard header")]
    MissingHeader,
    #[error("a browser refresh must come from this gateway's own page")]
    CrossSite,
    #[error("no refresh token was sent; sign in again")]
    NoCookie,
}

/// Whether the request comes from the dashboard (asks for the cookie-kept refresh token).
pub fn is_dashboard(headers: &HeaderMap) -> bool {
    headers
        .get(&CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == CLIENT_DASHBOARD)
}

/// The refresh token of a cookie refresh, after the cross-site checks.
/// `uri` is the request's: over HTTP/2 its authority stands for the `Host` header.
pub fn cookie_refresh(headers: &HeaderMap, uri: &http::Uri) -> Result<Secret, BrowserSessionError> {
    if !is_dashboard(headers) {
        return Err(BrowserSessionError::MissingHeader);
    }
    if !same_origin(headers, uri) {
        return Err(BrowserSessionError::CrossSite);
    }
    refresh_cookie(headers)
        .map(Secret::new)
        .ok_or(BrowserSessionError::NoCookie)
}

/// Whether the browser's own account of where the request came from (`Sec-Fetch-Site`,
/// `Origin`) names this origin; a request that names neither (not a browser) passes,
/// since the custom header already kept cross-site pages out.
fn same_origin(headers: &HeaderMap, uri: &http::Uri) -> bool {
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(origin) = origin.to_str().ok() else {
        return false;
    };
    let Some(authority) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let host = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .and_then(RequestHost::parse);
    let origin_host = RequestHost::parse(authority);
    match (host, origin_host) {
        (Some(host), Some(origin)) => host.authority() == origin.authority(),
        _ => false,
    }
}

fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == REFRESH_COOKIE && !value.is_empty())
        .map(|(_, token)| token.to_string())
        .filter(|token| token.len() <= MAX_REFRESH_COOKIE)
}

/// How this gateway sets its cookies.
#[derive(Debug, Clone, Copy)]
pub struct CookieSettings {
    /// Marked `Secure` (the gateway serves TLS).
    pub secure: bool,
    /// How long a refresh token lives, in seconds: the cookie's `Max-Age`.
    pub refresh_ttl: i64,
}

impl CookieSettings {
    fn secure(self) -> &'static str {
        if self.secure { "; Secure" } else { "" }
    }
}

/// The `Set-Cookie` that keeps `refresh_token` in the browser.
pub fn set_cookie(settings: CookieSettings, refresh_token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={refresh_token}; Path={REFRESH_PATH}; Max-Age={}; HttpOnly; SameSite=Strict{}",
        settings.refresh_ttl,
        settings.secure()
    ))
    .ok()
}

/// The `Set-Cookie` that removes the refresh cookie.
pub fn clear_cookie(settings: CookieSettings) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}=; Path={REFRESH_PATH}; Max-Age=0; HttpOnly; SameSite=Strict{}",
        settings.secure()
    ))
    .unwrap_or(HeaderValue::from_static(
        "aisopod_refresh=; Path=/auth/refresh; Max-Age=0",
    ))
}

/// A token answer for the dashboard: the refresh token moved from `body` into the cookie.
/// `body` is the JSON the route answers API clients with (a [`TokenPair`], perhaps with
/// more fields).
pub fn into_cookie(
    settings: CookieSettings,
    status: http::StatusCode,
    mut body: Value,
) -> Response {
    let refresh = body
        .as_object_mut()
        .and_then(|object| object.remove("refresh_token"))
        .and_then(|value| value.as_str().map(str::to_string));
    let cookie = refresh.and_then(|token| set_cookie(settings, &token));
    let mut response = (status, Json(body)).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The answer with a token pair: for the dashboard through [`into_cookie`], for
/// everyone else as JSON.
pub fn pair_response(
    settings: CookieSettings,
    headers: &HeaderMap,
    status: http::StatusCode,
    pair: &TokenPair,
) -> Response {
    let body = serde_json::to_value(pair).unwrap_or(Value::Null);
    if is_dashboard(headers) {
        into_cookie(settings, status, body)
    } else {
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_cookie_refresh_needs_the_header_and_this_origin() {
        let uri = http::Uri::from_static("/auth/refresh");
        let cookie = "a=b; aisopod_refresh=rt_abc";
        let ok = headers(&[
            ("x-aisopod-client", "dashboard"),
            ("host", "pi.local:3080"),
            ("origin", "https://pi.local:3080"),
            ("sec-fetch-site", "same-origin"),
            ("cookie", cookie),
        ]);
        assert_eq!(cookie_refresh(&ok, &uri).unwrap().expose(), "rt_abc");
        let no_header = headers(&[("host", "pi.local:3080"), ("cookie", cookie)]);
        assert_eq!(
            cookie_refresh(&no_header, &uri).unwrap_err(),
            BrowserSessionError::MissingHeader
        );
        for (origin, site) in [
            ("https://evil.example", "cross-site"),
            ("https://evil.example", "same-origin"),
            ("https://pi.local:3080", "same-site"),
            ("null", "same-origin"),
        ] {
            let cross = headers(&[
                ("x-aisopod-client", "dashboard"),
                ("host", "pi.local:3080"),
                ("origin", origin),
                ("sec-fetch-site", site),
                ("cookie", cookie),
            ]);
            assert_eq!(
                cookie_refresh(&cross, &uri).unwrap_err(),
                BrowserSessionError::CrossSite,
                "{origin} {site}"
            );
        }
        let none = headers(&[("x-aisopod-client", "dashboard"), ("host", "pi.local")]);
        assert_eq!(
            cookie_refresh(&none, &uri).unwrap_err(),
            BrowserSessionError::NoCookie
        );
        let huge = format!("aisopod_refresh={}", "x".repeat(600));
        let long = headers(&[("x-aisopod-client", "dashboard"), ("cookie", &huge)]);
        assert_eq!(
            cookie_refresh(&long, &uri).unwrap_err(),
            BrowserSessionError::NoCookie
        );
        // HTTP/2: no Host header, the authority is in the URI.
        let h2 = headers(&[
            ("x-aisopod-client", "dashboard"),
            ("origin", "https://pi.local:3080"),
            ("cookie", cookie),
        ]);
        let own = http::Uri::from_static("https://pi.local:3080/auth/refresh");
        assert_eq!(cookie_refresh(&h2, &own).unwrap().expose(), "rt_abc");
        let other = http::Uri::from_static("https://other.local:3080/auth/refresh");
        assert_eq!(
            cookie_refresh(&h2, &other).unwrap_err(),
            BrowserSessionError::CrossSite
        );
    }
}
