//! The command line's HTTPS requests (`gateway health`, `login --device`): reqwest, the
//! client the providers already link, driven on a current-thread runtime made for the
//! command. It trusts exactly the roots its caller names (never the system's), or, to
//! fetch a CA that the caller then pins by its fingerprint, no certificate at all. It
//! never follows redirects, never uses a proxy from the environment, and reads at most
//! [`MAX_BODY`] bytes of an answer.

use std::time::Duration;

use anyhow::{Context, bail};

/// The largest answer body read (a CA certificate, a device code or a token answer).
pub const MAX_BODY: usize = 1 << 20;

/// Which servers a [`Client`] accepts.
#[derive(Debug)]
pub enum Trust {
    /// Servers whose chain ends at one of these certificates (PEM; at least one).
    Roots(Vec<u8>),
    /// No certificate: for plain-HTTP URLs (any HTTPS server is refused).
    Nothing,
    /// Any certificate: only for fetching a CA whose fingerprint the caller checks.
    AnyCertificate,
}

/// An answer: its status and its body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("the answer is not JSON")
    }
}

/// A client for one command's requests.
#[derive(Debug)]
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: reqwest::Client,
}

impl Client {
    /// `timeout` bounds each whole request (connect, send, read the answer).
    pub fn new(trust: Trust, timeout: Duration) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("aisopod/", env!("CARGO_PKG_VERSION")));
        match trust {
            Trust::Roots(pem) => {
                let roots = reqwest::Certificate::from_pem_bundle(&pem)
                    .context("a damaged PEM certificate")?;
                if roots.is_empty() {
                    bail!("it holds no certificate");
                }
                for root in roots {
                    builder = builder.add_root_certificate(root);
                }
            }
            Trust::Nothing => {}
            Trust::AnyCertificate => builder = builder.danger_accept_invalid_certs(true),
        }
        let inner = builder.build().context("setting up the HTTPS client")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        Ok(Self { runtime, inner })
    }

    pub fn get(&self, url: &str) -> anyhow::Result<Answer> {
        self.send(self.inner.get(url))
    }

    /// POSTs `form` as `application/x-www-form-urlencoded`.
    pub fn post_form(&self, url: &str, form: &[(&str, &str)]) -> anyhow::Result<Answer> {
        self.send(self.inner.post(url).form(form))
    }

    fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        self.runtime.block_on(async {
            let mut response = request.send().await?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_BODY {
                    bail!("the answer is larger than {MAX_BODY} bytes");
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Answer { status, body })
        })
    }
}
