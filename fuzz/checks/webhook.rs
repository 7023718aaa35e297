//! Fuzz check: a webhook delivery as `POST /hooks/{channel}` reads it. Any signature
//! header, delivery id and body is checked without panicking; a header that parses is
//! never accepted for a secret it was not made with, and a delivery signed with the
//! channel's secret is always accepted (when its id and body are well formed).

use aisopod::gateway::channels::webhook::{
    Webhook, check_delivery_id, parse_body, parse_signature, signature_header, verify,
};
use aisopod::gateway::channels::{Channel, ChannelSettings};
use aisopod::secret::Secret;

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

/// Runs the check on one input; panics on a broken promise.
pub fn run(data: &[u8]) {
    // header \n delivery id \n body
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let delivery = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();

    if let Ok(parsed) = parse_signature(&header) {
        assert!(!parsed.v1.is_empty());
        assert!(!verify(
            b"a secret nobody signed this with!",
            &parsed,
            &delivery,
            body
        ));
    }
    let _ = parse_body(body);
    let channel = Webhook::new(
        ChannelSettings {
            name: "ci".into(),
            kind: aisopod::config::ChannelKindName::Webhook,
            agent: "helper".into(),
            owner: "owner".into(),
            reply_url: None,
            reply_timeout: aisopod::config::DEFAULT_REPLY_TIMEOUT,
        },
        Secret::new(SECRET),
    );
    let now = 1_700_000_000;
    let _ = channel.authenticate(&delivery, &header, body, now);
    let signed = signature_header(SECRET.as_bytes(), now, &delivery, body);
    let accepted = channel.authenticate(&delivery, &signed, body, now);
    if check_delivery_id(&delivery).is_ok() && parse_body(body).is_ok() {
        assert!(accepted.is_ok());
    }
}
