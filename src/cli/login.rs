//! `aisopod login --device URL`: the RFC 8628 client for another machine.
//!
//! It first pins the gateway's device CA: fetched from `/ca.crt`, its SHA-256 must match
//! `--fingerprint` (as `aisopod cert show` prints it on the device) or, without one, it is
//! trusted on first use and its fingerprint shown for the user to compare; a later login
//! to the same URL refuses a different CA. Every request after that verifies the server
//! against the pinned CA alone. Then it asks for a device code, shows the code, the URL
//! and a terminal QR code of the complete URL, polls as the server asks, and stores the
//! tokens in `~/.config/aisopod/credentials` (mode 0600).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::http::{Client, Trust};
use crate::fsutil::write_private_file;
use crate::tls::fingerprint;

/// How long a single HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The gateway, such as https://aisopod.local:3080
    #[arg(long = "device", value_name = "URL")]
    url: String,
    /// Expected SHA-256 fingerprint of the gateway's device CA (from `aisopod cert show`)
    #[arg(long)]
    fingerprint: Option<String>,
    /// Scopes to ask for (comma-separated); default: all of the approver's
    #[arg(long)]
    scopes: Option<String>,
    /// Where to store the credentials (default: ~/.config/aisopod/credentials)
    #[arg(long)]
    credentials: Option<PathBuf>,
}

/// What is stored per gateway URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub ca_pem: String,
    pub ca_sha256: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: i64,
}

fn credentials_path(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("neither XDG_CONFIG_HOME nor HOME is set; pass --credentials PATH")?;
    Ok(base.join("aisopod").join("credentials"))
}

/// Normalizes `AA:bb:cc` and `aabbcc` to the colon form `cert show` prints.
fn normalize_fingerprint(text: &str) -> String {
    let hex: String = text
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// Fetches the device CA without verification, then checks it against the pin.
fn pin_ca(
    base: &str,
    expected: Option<&str>,
    known: Option<&Stored>,
) -> anyhow::Result<(String, String)> {
    let insecure = Client::new(Trust::AnyCertificate, REQUEST_TIMEOUT)?;
    let response = insecure
        .get(&format!("{base}/ca.crt"))
        .with_context(|| format!("cannot reach {base}"))?;
    if response.status != 200 {
        bail!(
            "{base}/ca.crt answered {}: is this an aisopod gateway with its own CA?",
            response.status
        );
    }
    let pem = response.text();
    let der = ::pem::parse(&pem)
        .ok()
        .filter(|block| block.tag() == "CERTIFICATE")
        .context("the gateway sent no valid CA certificate")?;
    let actual = fingerprint(der.contents());
    if let Some(expected) = expected {
        if normalize_fingerprint(expected) != actual {
            bail!(
                "the gateway's CA fingerprint is {actual}, not the expected {}: refusing to continue",
                normalize_fingerprint(expected)
            );
        }
    } else if let Some(known) = known {
        if known.ca_sha256 != actual {
            bail!(
                "the gateway's CA changed from {} to {actual}: if the device's CA was regenerated, check `aisopod cert show` on it and pass --fingerprint",
                known.ca_sha256
            );
        }
    } else {
        eprintln!(
            "Trusting this gateway's CA on first use. Compare with `aisopod cert show` on the device:\n  {actual}"
        );
    }
    Ok((pem, actual))
}

fn qr_for_terminal(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build(),
    )
}

/// The gateway's base URL from `--device`: an https URL with a host, no query.
fn device_base(url: &str) -> anyhow::Result<String> {
    let base = url.trim_end_matches('/').to_string();
    let uri: http::Uri = base
        .parse()
        .map_err(|err| anyhow::anyhow!("--device {base:?} is not a URL: {err}"))?;
    if uri.scheme() != Some(&http::uri::Scheme::HTTPS)
        || uri.authority().is_none_or(|a| a.host().is_empty())
        || uri.query().is_some()
    {
        bail!("--device needs an https:// URL, such as https://aisopod.local:3080");
    }
    Ok(base)
}

pub fn run(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let base = device_base(&args.url)?;
    let path = credentials_path(args.credentials)?;
    let mut all: BTreeMap<String, Stored> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged", path.display()))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let (ca_pem, ca_sha256) = pin_ca(&base, args.fingerprint.as_deref(), all.get(&base))?;
    let pinned = Client::new(Trust::Roots(ca_pem.clone().into_bytes()), REQUEST_TIMEOUT)?;

    let mut form = vec![("client_id", "aisopod-cli".to_string())];
    if let Some(scopes) = &args.scopes {
        form.push(("scope", scopes.replace(',', " ")));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = pinned
        .post_form(&format!("{base}/auth/device/code"), &form)
        .context("asking for a device code")?;
    let started = response.json().context("reading the device code answer")?;
    if response.status != 200 {
        bail!("the gateway refused the device code request: {started}");
    }
    let field = |name: &str| started[name].as_str().unwrap_or_default().to_string();
    let (device_code, user_code) = (field("device_code"), field("user_code"));
    let complete = field("verification_uri_complete");
    eprintln!(
        "\nOn a signed-in device, open {}\nand enter the code  {user_code}\n",
        field("verification_uri")
    );
    if let Some(qr) = qr_for_terminal(&complete) {
        eprintln!("{qr}\nor scan this to open {complete}\n");
    }
    let mut interval = started["interval"].as_u64().unwrap_or(5).max(1);
    let deadline = std::time::Instant::now()
        + Duration::from_secs(started["expires_in"].as_u64().unwrap_or(600));
    loop {
        if std::time::Instant::now() > deadline {
            bail!("the code expired before it was approved; run aisopod login again");
        }
        std::thread::sleep(Duration::from_secs(interval));
        let response = pinned
            .post_form(
                &format!("{base}/auth/token"),
                &[
                    ("grant_type", crate::server::device_routes::DEVICE_GRANT),
                    ("device_code", device_code.as_str()),
                    ("client_id", "aisopod-cli"),
                ],
            )
            .context("polling for the token")?;
        let answer = response.json().context("reading the token answer")?;
        if response.status == 200 {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            all.insert(
                base.clone(),
                Stored {
                    ca_pem,
                    ca_sha256,
                    access_token: answer["access_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    refresh_token: answer["refresh_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    expires_at: now + answer["expires_in"].as_i64().unwrap_or(0),
                },
            );
            if let Some(dir) = path.parent() {
                crate::fsutil::ensure_private_dir(dir)?;
            }
            write_private_file(&path, &serde_json::to_vec_pretty(&all)?)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "Signed in to {base}; credentials saved in {}",
                path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        match answer["error"].as_str().unwrap_or_default() {
            "authorization_pending" => {}
            "slow_down" => interval += 5,
            "access_denied" => bail!("the sign-in was denied on the gateway"),
            "expired_token" => {
                bail!("the code expired before it was approved; run aisopod login again")
            }
            other => bail!(
                "the gateway refused the sign-in: {other} {}",
                answer["error_description"].as_str().unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_url_must_be_https_with_a_host() {
        assert_eq!(
            device_base("https://aisopod.local:3080/").unwrap(),
            "https://aisopod.local:3080"
        );
        assert_eq!(
            device_base("https://[::1]:3080").unwrap(),
            "https://[::1]:3080"
        );
        for url in [
            "http://aisopod.local",
            "https://",
            "https:///path",
            "aisopod.local:3080",
            "https://a b",
            "https://host/?next=evil",
            "ftp://host",
        ] {
            assert!(device_base(url).is_err(), "{url}");
        }
    }
}
