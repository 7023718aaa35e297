//! The one HTTP client every provider kind sends through: rustls on ring with the
//! system's roots (and a provider's `extra_roots`), HTTP/2 by ALPN where the upstream
//! offers it, connect and read timeouts, no redirects and no proxies taken from the
//! environment (either could carry our key somewhere the owner did not configure), and
//! bounded retries with backoff on 429, 5xx and failed connections, honouring
//! `Retry-After`. Retries happen only here, before a response is handed back, so no
//! output can have reached the caller. It never logs or returns an upstream's body,
//! headers or URL.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;

use super::types::{ProviderError, TimeoutPhase};

/// How long to wait and how often to try.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    /// The longest silence while waiting for the status or for the next bytes of a body.
    pub read_timeout: Duration,
    /// Tries after the first.
    pub retries: u32,
    /// The first backoff; each retry doubles it, up to `max_wait`.
    pub backoff: Duration,
    /// The longest we sleep before a retry, whatever `Retry-After` asks; a longer ask
    /// ends the retries with `RateLimited` so a fallback can be tried at once.
    pub max_wait: Duration,
    /// The most a non-streamed answer may hold.
    pub max_body: usize,
    /// PEM certificates of CAs trusted besides the system's roots (a LAN upstream with a
    /// private CA). Verification is never switched off.
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
            retries: 2,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(20),
            max_body: 8 << 20,
            extra_roots: Vec::new(),
        }
    }
}

/// How the client waits between tries. Production sleeps on tokio's timer; tests pass
/// one that records the waits and returns at once, so Retry-After is checked without
/// sleeping.
pub trait Pause: Send + Sync + std::fmt::Debug {
    fn pause(&self, wait: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Sleeps for real.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioPause;

impl Pause for TokioPause {
    fn pause(&self, wait: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A configured client. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    settings: ClientSettings,
    pause: Arc<dyn Pause>,
}

impl HttpClient {
    pub fn new(settings: ClientSettings, pause: Arc<dyn Pause>) -> Result<Self, ProviderError> {
        let mut builder = reqwest::Client::builder();
        for pem in &settings.extra_roots {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|roots| !roots.is_empty())
                .ok_or(ProviderError::Config {
                    provider: String::new(),
                    what: "an extra_roots file holds no PEM certificate",
                })?;
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        // ALPN offers h2 and http/1.1 (reqwest's `http2` feature): an upstream that
        // speaks HTTP/2 over TLS gets one multiplexed connection.
        let inner = builder
            .use_rustls_tls()
            .https_only(false)
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("aisopod/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| ProviderError::Config {
                provider: String::new(),
                what: "the HTTP client could not be built (TLS roots)",
            })?;
        Ok(Self {
            inner,
            settings,
            pause,
        })
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Sends the request `build` makes (called again for each try) and returns the first
    /// successful response. Error statuses, timeouts and failed connections are retried
    /// as [`ClientSettings`] allows; the bodies of error responses are dropped unread.
    pub(crate) async fn send(
        &self,
        provider: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut attempt: u32 = 0;
        loop {
            let outcome = build(&self.inner).send().await;
            let (error, asked) = match outcome {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let asked = retry_after(response.headers());
                    tracing::debug!(
                        provider,
                        status = status.as_u16(),
                        attempt,
                        "upstream error status"
                    );
                    (status_error(provider, status, asked), asked)
                }
                Err(err) => {
                    tracing::debug!(
                        provider,
                        attempt,
                        kind = error_kind(&err),
                        "upstream request failed"
                    );
                    (self.transport_error(provider, &err), None)
                }
            };
            let retryable = matches!(
                error,
                ProviderError::RateLimited { .. }
                    | ProviderError::Connection { .. }
                    | ProviderError::Timeout { .. }
            ) || matches!(error, ProviderError::Status { status, .. } if status >= 500);
            if !retryable || attempt >= self.settings.retries {
                return Err(error);
            }
            let backoff = self
                .settings
                .backoff
                .saturating_mul(2u32.saturating_pow(attempt));
            let wait = asked.unwrap_or(backoff);
            if wait > self.settings.max_wait {
                return Err(error);
            }
            self.pause.pause(wait).await;
            attempt += 1;
        }
    }

    /// Reads a whole (non-streamed) body, refusing one larger than `max_body`.
    pub(crate) async fn read_body(
        &self,
        provider: &str,
        response: reqwest::Response,
    ) -> Result<Vec<u8>, ProviderError> {
        let mut body = Vec::new();
        let mut chunks = self.body_stream(provider, response);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if body.len().saturating_add(chunk.len()) > self.settings.max_body {
                return Err(ProviderError::BadResponse {
                    provider: provider.to_string(),
                    what: "the answer is larger than the gateway accepts",
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The body as a stream of chunks, its failures already typed. Dropping it closes the
    /// upstream connection (HTTP/1.1) or resets the stream (HTTP/2).
    pub(crate) fn body_stream(
        &self,
        provider: &str,
        response: reqwest::Response,
    ) -> impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static {
        let provider = provider.to_string();
        let client = self.clone();
        response.bytes_stream().map(move |chunk| {
            chunk.map_err(|err| {
                if err.is_timeout() {
                    client.transport_error(&provider, &err)
                } else {
                    ProviderError::Dropped {
                        provider: provider.clone(),
                    }
                }
            })
        })
    }

    fn transport_error(&self, provider: &str, err: &reqwest::Error) -> ProviderError {
        let provider = provider.to_string();
        if err.is_connect() {
            // reqwest reports a connect timeout as a connect error that is also a timeout.
            if err.is_timeout() {
                return ProviderError::Timeout {
                    provider,
                    phase: TimeoutPhase::Connect,
                    after: self.settings.connect_timeout,
                };
            }
            return ProviderError::Connection { provider };
        }
        if err.is_timeout() {
            return ProviderError::Timeout {
                provider,
                phase: TimeoutPhase::Read,
                after: self.settings.read_timeout,
            };
        }
        if err.is_builder() {
            return ProviderError::Config {
                provider,
                what: "the request could not be built (check base_url)",
            };
        }
        ProviderError::Dropped { provider }
    }
}

fn status_error(provider: &str, status: StatusCode, asked: Option<Duration>) -> ProviderError {
    let provider = provider.to_string();
    match status {
        StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
            provider,
            retry_after: asked,
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            ProviderError::AuthRejected { provider }
        }
        _ => ProviderError::Status {
            provider,
            status: status.as_u16(),
        },
    }
}

/// `Retry-After` as delta-seconds (what LLM APIs send) or `retry-after-ms` (OpenAI's
/// finer hint). An HTTP-date is not honoured: it depends on clocks agreeing, and the
/// backoff applies instead.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    text("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn error_kind(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
        let mut dated = reqwest::header::HeaderMap::new();
        dated.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&dated), None);
    }
}
