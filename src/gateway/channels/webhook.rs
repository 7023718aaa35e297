//! The signed webhook: how a delivery is authenticated and how a reply is posted.
//!
//! A delivery carries `X-Aisopod-Delivery: <id>` and `X-Aisopod-Signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC keyed with the channel's secret over
//! `"<t>.<id>.<body>"`. It is accepted when `t` is within [`WINDOW_SECS`] of the
//! gateway's clock and one `v1` matches, compared in constant time (`ring::hmac::verify`).
//! The body is `{"text": "..."}`. A reply posted to a `reply_url` is signed the same way,
//! under the same delivery id. This module parses and checks; it never decides whether
//! an id was seen before (the registry's `Deliveries` does), never runs an agent and
//! never logs a secret, a signature or a body.

use std::time::Duration;

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::channel::{Channel, ChannelSettings, Inbound};
use super::error::ChannelError;
use crate::config::ChannelKindName;
use crate::secret::Secret;

/// How far a signature's timestamp may be from the gateway's clock, either way.
pub const WINDOW_SECS: i64 = 300;
/// The largest body a delivery may carry.
pub const MAX_BODY: usize = 64 * 1024;
/// The header naming the delivery.
pub const DELIVERY_HEADER: &str = "x-aisopod-delivery";
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-aisopod-signature";

const MAX_SIGNATURE_HEADER: usize = 512;
const MAX_SIGNATURES: usize = 4;
const MAX_DELIVERY_ID: usize = 128;

/// `X-Aisopod-Signature` as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    /// One or more HMAC-SHA256 values (several while a sender rotates secrets).
    pub v1: Vec<[u8; 32]>,
}

/// Parses `t=<unix>,v1=<64 hex>[,v1=...]`; other schemes are ignored.
pub fn parse_signature(text: &str) -> Result<SignatureHeader, ChannelError> {
    const SHAPE: &str = "X-Aisopod-Signature must be t=<unix seconds>,v1=<64 hex digits>";
    if text.len() > MAX_SIGNATURE_HEADER {
        return Err(ChannelError::MalformedHeader(SHAPE));
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in text.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(ChannelError::MalformedHeader(SHAPE))?;
        match key {
            "t" => {
                let valid = !value.is_empty()
                    && value.len() <= 12
                    && value.bytes().all(|b| b.is_ascii_digit());
                if !valid || timestamp.is_some() {
                    return Err(ChannelError::MalformedHeader(SHAPE));
                }
                timestamp = value.parse::<i64>().ok();
            }
            "v1" => {
                let mut mac = [0u8; 32];
                hex::decode_to_slice(value, &mut mac)
                    .map_err(|_| ChannelError::MalformedHeader(SHAPE))?;
                if v1.len() == MAX_SIGNATURES {
                    return Err(ChannelError::MalformedHeader(SHAPE));
                }
                v1.push(mac);
            }
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) if !v1.is_empty() => Ok(SignatureHeader { timestamp, v1 }),
        _ => Err(ChannelError::MalformedHeader(SHAPE)),
    }
}

/// Checks a delivery id: 1 to 128 of `A-Z a-z 0-9 . _ : -`.
pub fn check_delivery_id(id: &str) -> Result<(), ChannelError> {
    let valid = (1..=MAX_DELIVERY_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ChannelError::MalformedHeader(
            "X-Aisopod-Delivery must be 1 to 128 letters, digits, '.', '_', ':' or '-'",
        ))
    }
}

fn key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

/// The message a signature covers: `"<t>.<id>.<body>"`.
fn message(timestamp: i64, delivery: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{timestamp}.{delivery}.").into_bytes();
    message.extend_from_slice(body);
    message
}

/// The hex HMAC-SHA256 of a delivery under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, delivery: &str, body: &[u8]) -> String {
    let tag = hmac::sign(&key(secret), &message(timestamp, delivery, body));
    hex::encode(tag.as_ref())
}

/// The full `X-Aisopod-Signature` value for a delivery.
pub fn signature_header(secret: &[u8], timestamp: i64, delivery: &str, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        sign(secret, timestamp, delivery, body)
    )
}

/// Whether one of `header`'s signatures is right for `secret`, in constant time.
pub fn verify(secret: &[u8], header: &SignatureHeader, delivery: &str, body: &[u8]) -> bool {
    let key = key(secret);
    let message = message(header.timestamp, delivery, body);
    // Every value is checked, so the time taken does not say which one matched.
    header.v1.iter().fold(false, |ok, mac| {
        hmac::verify(&key, &message, mac).is_ok() | ok
    })
}

/// Whether `timestamp` is within the window around `now`.
pub fn fresh(timestamp: i64, now: i64) -> bool {
    (now - WINDOW_SECS..=now + WINDOW_SECS).contains(&timestamp)
}

/// A delivery's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    text: String,
}

/// The text of a delivery's body `{"text": "..."}`.
pub fn parse_body(body: &[u8]) -> Result<String, ChannelError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ChannelError::BadBody);
    }
    let body: Body = serde_json::from_slice(body).map_err(|_| ChannelError::BadBody)?;
    if body.text.trim().is_empty() {
        return Err(ChannelError::BadBody);
    }
    Ok(body.text)
}

/// A webhook channel: its settings and the secret deliveries are signed with.
#[derive(Debug)]
pub struct Webhook {
    settings: ChannelSettings,
    secret: Secret,
}

impl Webhook {
    pub fn new(settings: ChannelSettings, secret: Secret) -> Webhook {
        Webhook { settings, secret }
    }

    /// A channel that exists nowhere, keyed with `decoy`: checking a delivery against
    /// it costs what a real check costs and always fails, so an unknown channel
    /// answers exactly as a bad signature does.
    pub fn decoy(decoy: Secret) -> Webhook {
        Webhook {
            settings: ChannelSettings {
                name: String::new(),
                kind: ChannelKindName::Webhook,
                agent: String::new(),
                owner: String::new(),
                reply_url: None,
                reply_timeout: crate::config::DEFAULT_REPLY_TIMEOUT,
            },
            secret: decoy,
        }
    }
}

impl Channel for Webhook {
    fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    fn authenticate(
        &self,
        delivery: &str,
        signature: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Inbound, ChannelError> {
        check_delivery_id(delivery)?;
        let header = parse_signature(signature)?;
        if !fresh(header.timestamp, now) {
            return Err(ChannelError::Stale);
        }
        if !verify(self.secret.expose().as_bytes(), &header, delivery, body) {
            return Err(ChannelError::BadSignature);
        }
        Ok(Inbound {
            delivery: delivery.to_string(),
            timestamp: header.timestamp,
            text: parse_body(body)?,
        })
    }
}

/// What is posted to a `reply_url`.
#[derive(Debug, Serialize)]
pub struct ReplyBody<'a> {
    pub channel: &'a str,
    pub delivery: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

/// Posts `reply` to the channel's `reply_url`, signed with its secret under the
/// delivery's id and `now`, within the channel's `reply_timeout`. Redirects are not
/// followed; any answer but 2xx is a failure.
pub async fn post_reply(
    url: &str,
    timeout: Duration,
    secret: &Secret,
    reply: &ReplyBody<'_>,
    now: i64,
) -> Result<u16, ChannelError> {
    let body = serde_json::to_vec(reply).map_err(|err| ChannelError::Reply(err.to_string()))?;
    let signature = signature_header(secret.expose().as_bytes(), now, reply.delivery, &body);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|_| ChannelError::Reply("the HTTP client could not be built".into()))?;
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(DELIVERY_HEADER, reply.delivery)
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .map_err(|err| {
            ChannelError::Reply(if err.is_timeout() {
                format!("no answer within {}", humantime::format_duration(timeout))
            } else if err.is_connect() {
                "the reply URL could not be reached".into()
            } else {
                "the request to the reply URL failed".into()
            })
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err(ChannelError::Reply(format!(
            "the reply URL answered {}",
            status.as_u16()
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signature_made_by_sign_verifies_and_any_change_breaks_it() {
        let header =
            parse_signature(&signature_header(SECRET, 1_700_000_000, "d1", b"{}")).unwrap();
        assert!(verify(SECRET, &header, "d1", b"{}"));
        assert!(!verify(SECRET, &header, "d2", b"{}"));
        assert!(!verify(SECRET, &header, "d1", b"{ }"));
        assert!(!verify(
            b"another secret of enough length!!",
            &header,
            "d1",
            b"{}"
        ));
        let moved = SignatureHeader {
            timestamp: header.timestamp + 1,
            ..header.clone()
        };
        assert!(!verify(SECRET, &moved, "d1", b"{}"));
    }

    #[test]
    fn the_signature_matches_openssl_for_a_known_vector() {
        // printf '%s' '1700000000.abc.{"text":"hi"}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            sign(b"key", 1_700_000_000, "abc", br#"{"text":"hi"}"#),
            "494db5b305ab9fe280e6b5965bc713933cff455c3e0ef915e11051d8b6713f2c"
        );
    }

    #[test]
    fn the_header_parser_takes_the_documented_form_and_refuses_the_rest() {
        let mac = "ab".repeat(32);
        let parsed = parse_signature(&format!("t=12, v1={mac},v0=zz")).unwrap();
        assert_eq!(parsed.timestamp, 12);
        assert_eq!(parsed.v1.len(), 1);
        for bad in [
            String::new(),
            "t=12".into(),
            format!("v1={mac}"),
            format!("t=1,t=2,v1={mac}"),
            format!("t=-1,v1={mac}"),
            format!("t=1,v1={}", &mac[..62]),
            format!("t=1,v1={mac}x"),
            format!("t=1,v1={mac}").repeat(40),
            format!("t=1,{}", vec![format!("v1={mac}"); 5].join(",")),
            "t=1234567890123,v1=00".into(),
            "garbage".into(),
        ] {
            assert!(parse_signature(&bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_window_is_five_minutes_either_way() {
        assert!(fresh(1000, 1000 + 300));
        assert!(fresh(1000 + 300, 1000));
        assert!(!fresh(1000, 1000 + 301));
        assert!(!fresh(1000 + 301, 1000));
    }

    #[test]
    fn delivery_ids_and_bodies_have_one_shape() {
        assert!(check_delivery_id("evt_01:a-b.c").is_ok());
        assert!(check_delivery_id("").is_err());
        assert!(check_delivery_id("a b").is_err());
        assert!(check_delivery_id(&"a".repeat(129)).is_err());
        assert_eq!(parse_body(br#"{"text":"hello"}"#).unwrap(), "hello");
        for bad in [
            &br#"{"text":""}"#[..],
            br#"{"text":"x","extra":1}"#,
            br#"["text"]"#,
            b"not json",
            br#"{"text":5}"#,
        ] {
            assert!(parse_body(bad).is_err());
        }
    }

    #[test]
    fn a_decoy_never_accepts() {
        let decoy = Webhook::decoy(Secret::new("d".repeat(32)));
        let body = br#"{"text":"hi"}"#;
        let header = signature_header(SECRET, 100, "d1", body);
        assert!(matches!(
            decoy.authenticate("d1", &header, body, 100),
            Err(ChannelError::BadSignature)
        ));
    }
}
