//! Pairing a phone end to end: a scripted phone holding a P-256 key takes the QR payload
//! from the admin API, claims, is confirmed by an admin, gets tokens, calls the API,
//! refreshes with proof of possession and is revoked; and the attacks on it (a replayed
//! or guessed secret, an expired offer, a key on another curve, a signature over a
//! stale nonce, a stolen refresh token). Over HTTP/1.1 and HTTP/2.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::StatusCode;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::support::{Gateway, Setup, stderr, stdout, version_of};

const FAST: &str = "[rate_limit]\nauth_per_minute = 1000\nauth_burst = 1000\napi_per_minute = 10000\napi_burst = 1000\n[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1";
const TIGHT: &str = "[rate_limit]\nauth_per_minute = 5\nauth_burst = 5\napi_per_minute = 10000\napi_burst = 1000\n[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1";
const OWNER_PW: &str = "walrus cinnamon lantern quietly";

/// A phone: its own HTTP client (from its own loopback address) and its device key.
struct Phone {
    client: reqwest::blocking::Client,
    key: EcdsaKeyPair,
    url: String,
}

impl Phone {
    fn new(gateway: &Gateway, version: http::Version, from: &str) -> Phone {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Phone {
            client: gateway.client_speaking(version, from),
            key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
            url: gateway.url.clone(),
        }
    }

    /// A phone that resolves `host` (the `.local` name the QR names) to the gateway, as
    /// mDNS does on the owner's network.
    fn resolving(gateway: &Gateway, version: http::Version, from: &str, host: &str) -> Phone {
        let pem = std::fs::read(gateway.data_dir.join("tls/ca.pem")).unwrap();
        let builder = reqwest::blocking::Client::builder()
            .local_address(Some(from.parse().unwrap()))
            .resolve(host, gateway.addr())
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .use_rustls_tls()
            .timeout(Duration::from_secs(30));
        let builder = if version == http::Version::HTTP_2 {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        };
        let mut phone = Phone::new(gateway, version, from);
        phone.client = builder.build().unwrap();
        phone
    }

    /// The public key as WebCrypto exports it (JWK).
    fn jwk(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    fn sign(&self, message: &str) -> String {
        let rng = ring::rand::SystemRandom::new();
        STANDARD.encode(self.key.sign(&rng, message.as_bytes()).unwrap().as_ref())
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
        let status = response.status();
        (status, response.json().unwrap_or(Value::Null))
    }

    fn claim(&self, secret: &str, name: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/pair/claim",
            Some(json!({"secret": secret, "device_name": name, "public_key": self.jwk()})),
            None,
        )
    }

    fn poll(&self, started: &Value) -> (StatusCode, Value) {
        self.call(
            "POST",
            &format!("/pair/claim/{}/poll", started["id"].as_str().unwrap()),
            Some(json!({"poll_token": started["poll_token"]})),
            None,
        )
    }

    fn nonce(&self) -> String {
        let (status, body) = self.call("GET", "/pair/nonce", None, None);
        assert_eq!(status, StatusCode::OK, "{body}");
        body["nonce"].as_str().unwrap().to_string()
    }

    fn refresh_message(device_id: &str, nonce: &str) -> String {
        format!("aisopod-device-refresh\n{device_id}\n{nonce}")
    }

    fn refresh(&self, tokens: &Value, nonce: &str, signature: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/pair/refresh",
            Some(json!({"refresh_token": tokens["refresh_token"], "nonce": nonce, "signature": signature})),
            None,
        )
    }
}

fn owner_gateway(extra: &str) -> (Setup, Gateway, String) {
    owner_gateway_on(extra, None)
}

/// [`owner_gateway`] on a simulated board, when one is given.
fn owner_gateway_on(
    extra: &str,
    board: Option<&crate::hardware::Board>,
) -> (Setup, Gateway, String) {
    let setup = Setup::new(extra);
    let added = setup.cli_with(
        &["user", "add", "--admin", "owner", "--password-stdin"],
        &[],
        Some(OWNER_PW.as_bytes()),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let gateway = match board {
        Some(board) => setup.start_on(board.devices()),
        None => setup.start(),
    };
    let response = gateway
        .client()
        .post(format!("{}/auth/login", gateway.url))
        .json(&json!({"username": "owner", "password": OWNER_PW}))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().unwrap();
    let admin = tokens["access_token"].as_str().unwrap().to_string();
    (setup, gateway, admin)
}

fn admin_call(
    gateway: &Gateway,
    admin: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = gateway
        .client()
        .request(method.parse().unwrap(), format!("{}{path}", gateway.url))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

/// Opens an offer through the admin API and returns the QR payload's secret.
fn offer(gateway: &Gateway, admin: &str) -> (Value, String) {
    let (status, offer) = admin_call(
        gateway,
        admin,
        "POST",
        "/api/v1/pairing",
        json!({"replace": true}),
    );
    assert_eq!(status, StatusCode::CREATED, "{offer}");
    let payload = offer["payload"].as_str().unwrap();
    let expected = format!("HTTPS://127.0.0.1:{}/P#", gateway.addr().port());
    assert!(payload.starts_with(&expected), "{payload}");
    let secret = payload.rsplit_once('#').unwrap().1.to_string();
    assert_eq!(secret.len(), 16);
    (offer, secret)
}

fn ws(gateway: &Gateway, bearer: &str) -> crate::support::WsSocket {
    let ca = std::fs::read(gateway.data_dir.join("tls/ca.pem")).unwrap();
    let auth = format!("Bearer {bearer}");
    crate::support::wss_connect(
        &ca,
        gateway.addr().port(),
        "/ws",
        &[("authorization", &auth)],
    )
    .unwrap()
}

/// The next message of `kind`, skipping others.
fn next_of(socket: &mut crate::support::WsSocket, kind: &str) -> Value {
    loop {
        let message = crate::support::next_ws_message(socket);
        if message["type"] == kind {
            return message;
        }
    }
}

#[test]
fn a_phone_pairs_with_confirmation_refreshes_with_its_key_and_is_revoked() {
    let (_setup, gateway, admin) = owner_gateway(FAST);
    for (round, http1) in [true, false].into_iter().enumerate() {
        let version = version_of(http1);
        let phone = Phone::new(&gateway, version, "127.0.0.2");
        let mut owner_ws = ws(&gateway, &admin);
        next_of(&mut owner_ws, "hello");
        let (_, secret) = offer(&gateway, &admin);
        // The QR opens /P; the page is served under both spellings, never cached.
        for path in ["/P", "/p"] {
            let response = phone
                .client
                .get(format!("{}{path}", gateway.url))
                .send()
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["cache-control"], "no-store");
            assert!(response.text().unwrap().contains("/pair.js"));
        }
        let name = format!("phone {round}");
        let (status, started) = phone.claim(&secret, &name);
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        let (_, waiting) = phone.poll(&started);
        assert_eq!(waiting["status"], "waiting", "{waiting}");
        // The admin sees the same short code the phone shows, and confirms.
        let (_, pending) = admin_call(&gateway, &admin, "GET", "/api/v1/pairing", json!({}));
        let claim = &pending["claims"][0];
        assert_eq!(claim["code"], started["code"]);
        assert_eq!(claim["device_name"], name);
        let (status, device) = admin_call(
            &gateway,
            &admin,
            "POST",
            &format!("/api/v1/pairing/{}/confirm", claim["id"].as_str().unwrap()),
            json!({}),
        );
        assert_eq!(status, StatusCode::OK, "{device}");
        let announced = next_of(&mut owner_ws, "device.paired");
        assert_eq!(announced["deviceId"], device["id"]);
        assert_eq!(announced["name"], name);
        let (_, confirmed) = phone.poll(&started);
        assert_eq!(confirmed["status"], "confirmed", "{confirmed}");
        let tokens = confirmed["tokens"].clone();
        assert_eq!(tokens["scopes"], json!(["chat:read", "chat:write"]));
        let (status, _) = phone.poll(&started);
        assert_eq!(status, StatusCode::NOT_FOUND, "tokens are collected once");
        let access = tokens["access_token"].as_str().unwrap();
        let (status, me) = phone.call("GET", "/api/v1/me", None, Some(access));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["via"], "paired_device");
        assert_eq!(me["username"], "owner");
        let (status, _) = phone.call("GET", "/api/v1/approvals", None, Some(access));
        assert_eq!(status, StatusCode::OK);
        let (status, _) = phone.call("GET", "/api/v1/pairing", None, Some(access));
        assert_eq!(status, StatusCode::FORBIDDEN, "a device does not get admin");
        let device_id = tokens["device_id"].as_str().unwrap();
        // The device sees and renames only itself.
        let (status, listed) = phone.call("GET", "/api/v1/devices", None, Some(access));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        assert!(
            listed[0].get("access_hash").is_none(),
            "no token hashes listed"
        );
        let renamed = phone.call(
            "PATCH",
            &format!("/api/v1/devices/{device_id}"),
            Some(json!({"name": "renamed"})),
            Some(access),
        );
        assert_eq!(renamed.1["name"], "renamed", "{}", renamed.1);

        // A stolen refresh token without the key: refused.
        let thief = Phone::new(&gateway, version, "127.0.0.3");
        let nonce = thief.nonce();
        let forged = thief.sign(&Phone::refresh_message(device_id, &nonce));
        let (status, _) = thief.refresh(&tokens, &nonce, &forged);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // A signature over a nonce already spent (stale): refused.
        let stale = phone.sign(&Phone::refresh_message(device_id, &nonce));
        let (status, _) = phone.refresh(&tokens, &nonce, &stale);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // A signature over the wrong nonce: refused.
        let nonce = phone.nonce();
        let wrong = phone.sign(&Phone::refresh_message(device_id, "another-nonce"));
        let (status, _) = phone.refresh(&tokens, &nonce, &wrong);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // The phone itself, right after: served.
        let nonce = phone.nonce();
        let signed = phone.sign(&Phone::refresh_message(device_id, &nonce));
        let (status, refreshed) = phone.refresh(&tokens, &nonce, &signed);
        assert_eq!(status, StatusCode::OK, "{refreshed}");
        let access = refreshed["access_token"].as_str().unwrap();
        assert_eq!(
            phone.call("GET", "/api/v1/me", None, Some(access)).0,
            StatusCode::OK
        );
        let old = tokens["access_token"].as_str().unwrap();
        assert_eq!(
            phone.call("GET", "/api/v1/me", None, Some(old)).0,
            StatusCode::UNAUTHORIZED
        );

        // Revoked: its next call is refused and its open WebSocket closes.
        let mut device_ws = ws(&gateway, access);
        next_of(&mut device_ws, "hello");
        let (status, revoked) = admin_call(
            &gateway,
            &admin,
            "DELETE",
            &format!("/api/v1/devices/{device_id}"),
            json!({}),
        );
        assert_eq!(status, StatusCode::OK, "{revoked}");
        assert!(revoked["revoked"].is_i64());
        assert_eq!(
            phone.call("GET", "/api/v1/me", None, Some(access)).0,
            StatusCode::UNAUTHORIZED
        );
        let closed = loop {
            match device_ws.read() {
                Ok(tungstenite::Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        assert_eq!(closed, Some(1008), "the device's socket closes as revoked");
        let nonce = phone.nonce();
        let signed = phone.sign(&Phone::refresh_message(device_id, &nonce));
        assert_eq!(
            phone.refresh(&refreshed, &nonce, &signed).0,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[test]
fn guessed_replayed_and_expired_secrets_and_foreign_keys_are_refused_and_the_owner_still_pairs() {
    let (setup, gateway, admin) = owner_gateway(TIGHT);
    for http1 in [true, false] {
        let version = version_of(http1);
        let (_, secret) = offer(&gateway, &admin);
        // A flood of guesses from one address: refused, then limited.
        let attacker = Phone::new(
            &gateway,
            version,
            if http1 { "127.0.0.4" } else { "127.0.0.5" },
        );
        let statuses: Vec<StatusCode> = (0..12)
            .map(|i| attacker.claim(&format!("AAAAAAAAAAAAAA{i:02}"), "evil").0)
            .collect();
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
            "{statuses:?}"
        );
        assert!(
            statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
            "{statuses:?}"
        );
        // Even the right secret from the flooding address waits out the limit.
        assert_eq!(
            attacker.claim(&secret, "evil").0,
            StatusCode::TOO_MANY_REQUESTS
        );
        // The owner's phone, from its own address, pairs right after.
        let phone = Phone::new(&gateway, version, "127.0.0.6");
        // A key on another curve is refused by name, and does not spend the offer.
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let spki = {
            use rcgen::PublicKeyData;
            STANDARD.encode(p384.subject_public_key_info())
        };
        let (status, body) = phone.call(
            "POST",
            "/pair/claim",
            Some(json!({"secret": secret, "device_name": "p384", "public_key": spki})),
            None,
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("P-384"),
            "{body}"
        );
        let (status, started) = phone.claim(&secret, "owner's phone");
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        // The secret is spent: replaying it is refused.
        let replay = Phone::new(&gateway, version, "127.0.0.7");
        let (status, body) = replay.claim(&secret, "replay");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(
            body["error"]["message"],
            "the pairing code is wrong, expired or already used"
        );
        // An expired offer is refused.
        let (_, secret) = offer(&gateway, &admin);
        gateway.advance_clock(Duration::from_secs(121));
        let (status, _) = replay.claim(&secret, "late");
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // A second offer while one is open is refused unless it replaces the first.
        let (_, _) = offer(&gateway, &admin);
        let (status, body) = admin_call(&gateway, &admin, "POST", "/api/v1/pairing", json!({}));
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        gateway.advance_clock(Duration::from_secs(121));
    }
    let audit = setup.cli(&["audit", "list", "--json"]);
    let text = stdout(&audit);
    assert!(text.contains("/pair/claim"), "refused claims are audited");
    assert!(text.contains("pairing.claim"));
}

#[test]
fn the_console_opens_an_offer_confirms_the_claim_and_revokes_the_device() {
    let (setup, gateway, _admin) = owner_gateway(FAST);
    let host = format!("127.0.0.1:{}", gateway.addr().port());
    let started = setup.cli(&["pair", "start", "--json", "--host", &host, "--ttl", "3m"]);
    assert!(started.status.success(), "{}", stderr(&started));
    let offer: Value = serde_json::from_str(&stdout(&started)).unwrap();
    let payload = offer["payload"].as_str().unwrap();
    assert!(
        payload.starts_with(&format!("HTTPS://{host}/P#")),
        "{payload}"
    );
    // One offer at a time: a second start is refused, naming --replace.
    let again = setup.cli(&["pair", "start", "--host", &host]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--replace"), "{}", stderr(&again));
    let phone = Phone::new(&gateway, version_of(true), "127.0.0.2");
    let (status, claim) = phone.claim(payload.rsplit_once('#').unwrap().1, "console phone");
    assert_eq!(status, StatusCode::ACCEPTED, "{claim}");
    let listed = setup.cli(&["pair", "list", "--json"]);
    let state: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(state["claims"][0]["code"], claim["code"]);
    let confirmed = setup.cli(&["pair", "confirm", claim["id"].as_str().unwrap()]);
    assert!(confirmed.status.success(), "{}", stderr(&confirmed));
    let (_, polled) = phone.poll(&claim);
    let tokens = &polled["tokens"];
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        phone.call("GET", "/api/v1/me", None, Some(access)).0,
        StatusCode::OK
    );
    let device_id = tokens["device_id"].as_str().unwrap();
    let revoked = setup.cli(&["pair", "revoke", device_id]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert_eq!(
        phone.call("GET", "/api/v1/me", None, Some(access)).0,
        StatusCode::UNAUTHORIZED
    );
    // The page's trust links: the CA as an iOS profile wrapping the same certificate.
    let profile = gateway.get("/ca.mobileconfig");
    assert_eq!(
        profile.headers()["content-type"],
        "application/x-apple-aspen-config"
    );
    let profile = profile.text().unwrap();
    let ca = std::fs::read_to_string(gateway.data_dir.join("tls/ca.pem")).unwrap();
    let der: String = ca.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(profile.contains("<string>com.apple.security.root</string>"));
    assert!(profile.contains(&format!("<data>{der}</data>")));
    // --png writes the frame the display shows: private, and its QR reads back to the
    // very payload printed beside it.
    let png = setup.dir.path().join("offer.png");
    let started = setup.cli(&[
        "pair",
        "start",
        "--json",
        "--host",
        &host,
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    let offer: Value = serde_json::from_str(&stdout(&started)).unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&png).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let codes = crate::hardware::qr_codes_in_png(&std::fs::read(&png).unwrap());
    assert_eq!(codes, vec![offer["payload"].as_str().unwrap().to_string()]);
    // A path that cannot be written: a clear error naming the open offer, nothing left.
    let nowhere = setup.dir.path().join("missing/offer.png");
    let failed = setup.cli(&[
        "pair",
        "start",
        "--replace",
        "--host",
        &host,
        "--png",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr(&failed).contains("is open, but its picture cannot be written"),
        "{}",
        stderr(&failed)
    );
    assert!(!nowhere.parent().unwrap().exists());
}

/// The QR codes in what the gateway's display task draws now: the screen it asks
/// `app::display_screen` for, rendered at the gateway's clock, as the PNG a person sees.
fn display_codes(gateway: &Gateway) -> (aisopod::hardware::Screen, Vec<String>) {
    let app = gateway.app.as_ref().unwrap();
    let now = aisopod::clock::Clock::now(gateway.clock.as_ref().unwrap());
    let screen = aisopod::app::display_screen(app, &gateway.url, "aisopod");
    let frame = aisopod::hardware::render(&screen, now).unwrap();
    let png = aisopod::hardware::png::encode(&frame).unwrap();
    (screen, crate::hardware::qr_codes_in_png(&png))
}

/// The pattern the gateway's LED would play now.
fn led(gateway: &Gateway) -> aisopod::hardware::LedPattern {
    aisopod::app::led_pattern(gateway.app.as_ref().unwrap())
}

#[test]
fn the_display_shows_the_offer_s_qr_then_the_phone_to_confirm_and_drops_the_code_at_expiry() {
    use aisopod::hardware::{LedPattern, Screen};
    let (_setup, gateway, admin) = owner_gateway(FAST);
    assert_eq!(led(&gateway), LedPattern::Ready);
    let (screen, codes) = display_codes(&gateway);
    assert!(
        matches!(
            screen,
            Screen::Status {
                devices: Some(0),
                ..
            }
        ),
        "{screen:?}"
    );
    assert!(codes.is_empty());

    let (first, secret) = offer(&gateway, &admin);
    assert_eq!(led(&gateway), LedPattern::Pairing);
    let (screen, codes) = display_codes(&gateway);
    assert!(matches!(screen, Screen::Pairing { .. }), "{screen:?}");
    assert_eq!(codes, vec![first["payload"].as_str().unwrap().to_string()]);

    // A claim spends the offer: the display names the phone and its code, no QR.
    let phone = Phone::new(&gateway, version_of(false), "127.0.0.2");
    let (status, claim) = phone.claim(&secret, "kitchen phone");
    assert_eq!(status, StatusCode::ACCEPTED, "{claim}");
    let (screen, codes) = display_codes(&gateway);
    match &screen {
        Screen::PairingConfirm { device, code, .. } => {
            assert_eq!(device, "kitchen phone");
            assert_eq!(code, claim["code"].as_str().unwrap());
        }
        other => panic!("{other:?}"),
    }
    assert!(codes.is_empty());
    let (status, _) = admin_call(
        &gateway,
        &admin,
        "POST",
        &format!("/api/v1/pairing/{}/confirm", claim["id"].as_str().unwrap()),
        json!({}),
    );
    assert_eq!(status, StatusCode::OK);
    let (screen, _) = display_codes(&gateway);
    assert!(
        matches!(
            screen,
            Screen::Status {
                devices: Some(1),
                ..
            }
        ),
        "the paired device is counted: {screen:?}"
    );
    assert_eq!(
        led(&gateway),
        LedPattern::Ready,
        "nothing waits once confirmed"
    );

    // A second offer shows until its lifetime ends, and not a moment after.
    let (second, _) = offer(&gateway, &admin);
    let (_, codes) = display_codes(&gateway);
    assert_eq!(codes, vec![second["payload"].as_str().unwrap().to_string()]);
    let clock = gateway.clock.as_ref().unwrap();
    clock.freeze();
    let left =
        second["expires"].as_i64().unwrap() - aisopod::clock::Clock::now(clock).unix_timestamp();
    clock.advance(Duration::from_secs(u64::try_from(left).unwrap()));
    let (screen, codes) = display_codes(&gateway);
    assert!(codes.is_empty(), "{screen:?}");
    assert!(matches!(screen, Screen::Status { .. }), "{screen:?}");
    assert_eq!(
        led(&gateway),
        LedPattern::Ready,
        "an expired offer stops the blinking"
    );
}

/// Feeds presses to the gateway's button handler, as the debounced GPIO button would.
fn button(gateway: &Gateway) -> tokio::sync::mpsc::UnboundedSender<aisopod::hardware::ButtonEvent> {
    let (presses, heard) = tokio::sync::mpsc::unbounded_channel();
    let app = std::sync::Arc::downgrade(gateway.app.as_ref().unwrap());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(aisopod::app::follow_button(app, heard));
    });
    presses
}

/// Waits (by condition, a few seconds at most) until `done` holds.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The audit records of button presses: (action, outcome).
fn button_records(gateway: &Gateway) -> Vec<(String, Value)> {
    let query = aisopod::audit::Query {
        since: None,
        action: None,
        limit: None,
    };
    let records = gateway.app.as_ref().unwrap().audit().list(&query).unwrap();
    records
        .into_iter()
        .filter(|r| r.actor == "button")
        .map(|r| (r.action, serde_json::to_value(r.outcome).unwrap()))
        .collect()
}

#[test]
fn a_long_press_opens_an_offer_and_a_short_press_confirms_the_phone_the_display_names() {
    use aisopod::hardware::ButtonEvent::{Long, Short};
    let (_setup, gateway, admin) =
        owner_gateway(&format!("public_url = \"https://pi.example:8443\"\n{FAST}"));
    let app = gateway.app.clone().unwrap();
    let presses = button(&gateway);
    for (round, http1) in [true, false].into_iter().enumerate() {
        // A short press with nothing to confirm does nothing.
        presses.send(Short).unwrap();
        presses.send(Long).unwrap();
        until("a long press opens an offer", || {
            app.pairing.offer().is_some()
        });
        let (_, codes) = display_codes(&gateway);
        let [payload] = codes.as_slice() else {
            panic!("{codes:?}")
        };
        assert!(
            payload.starts_with("HTTPS://PI.EXAMPLE:8443/P#"),
            "{payload}"
        );
        // Held again while the offer is open: refused, the same offer stays up.
        presses.send(Long).unwrap();
        until("the second long press is refused", || {
            button_records(&gateway).len() == 3 * round + 2
        });
        assert_eq!(display_codes(&gateway).1, codes);
        let phone = Phone::new(&gateway, version_of(http1), "127.0.0.2");
        let (status, claim) = phone.claim(payload.rsplit_once('#').unwrap().1, "hall phone");
        assert_eq!(status, StatusCode::ACCEPTED, "{claim}");
        let (_, waiting) = phone.poll(&claim);
        assert_eq!(waiting["status"], "waiting", "{waiting}");
        presses.send(Short).unwrap();
        until("a short press confirms", || {
            app.pairing.pending().is_empty()
        });
        let (status, polled) = phone.poll(&claim);
        assert_eq!(status, StatusCode::OK, "{polled}");
        assert_eq!(polled["status"], "confirmed", "{polled}");
        let access = polled["tokens"]["access_token"].as_str().unwrap();
        assert_eq!(
            phone.call("GET", "/api/v1/me", None, Some(access)).0,
            StatusCode::OK
        );
        let (_, devices) = admin_call(&gateway, &admin, "GET", "/api/v1/devices", json!({}));
        assert_eq!(
            devices.as_array().map(Vec::len),
            Some(round + 1),
            "{devices}"
        );
    }

    // Two phones waiting: the display names neither, so a press confirms neither.
    let mut claims = Vec::new();
    for from in ["127.0.0.3", "127.0.0.4"] {
        let (status, offer) = admin_call(&gateway, &admin, "POST", "/api/v1/pairing", json!({}));
        assert_eq!(status, StatusCode::CREATED, "{offer}");
        let secret = offer["payload"]
            .as_str()
            .unwrap()
            .rsplit_once('#')
            .unwrap()
            .1;
        let phone = Phone::new(&gateway, version_of(true), from);
        let (status, claim) = phone.claim(secret, from);
        assert_eq!(status, StatusCode::ACCEPTED, "{claim}");
        claims.push((phone, claim));
    }
    presses.send(Short).unwrap();
    presses.send(Long).unwrap();
    until("the long press after it is handled", || {
        app.pairing.offer().is_some()
    });
    assert_eq!(app.pairing.pending().len(), 2);
    for (phone, claim) in &claims {
        assert_eq!(phone.poll(claim).1["status"], "waiting");
    }

    // A press is audited after its effect is visible: wait for the last record.
    until("the last press is audited", || {
        button_records(&gateway).len() >= 7
    });
    let kinds: Vec<(String, String)> = button_records(&gateway)
        .into_iter()
        .map(|(action, outcome)| (action, outcome.as_str().unwrap_or("").to_string()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("pairing.start", "success"),
        ("pairing.start", "failure"),
        ("pairing.confirm", "success"),
        ("pairing.start", "success"),
        ("pairing.start", "failure"),
        ("pairing.confirm", "success"),
        ("pairing.start", "success"),
    ]
    .iter()
    .map(|(a, o)| (format!("admin.{a}"), (*o).to_string()))
    .collect();
    assert_eq!(kinds, expected);
}

/// The "done when", end to end on a simulated board: the long press opens an
/// offer; the phone reads the QR off the SSD1306's own display RAM (as the driver wrote
/// it over I2C) and opens that URL; the short press (bouncing contact, the gateway's own
/// debouncer) confirms it; it refreshes with proof of possession; revoked, its open /ws
/// closes at once, not at the socket's next recheck (every 2 s).
#[test]
fn done_when_a_phone_pairs_from_the_oled_is_confirmed_by_the_button_refreshes_and_is_revoked() {
    use aisopod::hardware::LedPattern;
    let board = crate::hardware::Board::default();
    let config = format!("{FAST}\n[hardware]\nlong_press = \"500ms\"");
    let (_setup, gateway, admin) = owner_gateway_on(&config, Some(&board));
    until("the display shows the status screen", || {
        board.oled.written() >= 1024
    });
    assert!(
        board.oled.codes().is_empty(),
        "no QR before a deliberate act"
    );
    for (round, http1) in [true, false].into_iter().enumerate() {
        let version = version_of(http1);
        let led_before = board.led.sets();
        board.button.long();
        let payload = {
            let mut codes = Vec::new();
            until("the OLED shows the offer's QR", || {
                codes = board.oled.codes();
                !codes.is_empty()
            });
            codes.remove(0)
        };
        let (url, secret) = payload.split_once('#').unwrap();
        let host = format!(
            "{}.local",
            nix::unistd::gethostname().unwrap().to_str().unwrap()
        );
        assert_eq!(
            url,
            format!(
                "HTTPS://{}:{}/P",
                host.to_uppercase(),
                gateway.addr().port()
            )
        );
        assert_eq!(led(&gateway), LedPattern::Pairing);
        until("the LED blinks while the offer is open", || {
            board.led.blinked_since(led_before)
        });

        // The phone opens exactly what it scanned (the fragment stays on the phone), and
        // then speaks to the same origin.
        let mut phone = Phone::resolving(&gateway, version, "127.0.0.2", &host);
        let page = phone.client.get(url).send().unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().unwrap().contains("/pair.js"));
        phone.url = format!("https://{host}:{}", gateway.addr().port());
        let name = format!("pocket phone {round}");
        let (status, started) = phone.claim(secret, &name);
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        until("the QR leaves the display once claimed", || {
            board.oled.codes().is_empty()
        });
        assert_eq!(phone.poll(&started).1["status"], "waiting");
        board.button.short();
        let mut polled = Value::Null;
        until("the short press confirms", || {
            polled = phone.poll(&started).1;
            polled["status"] != "waiting"
        });
        assert_eq!(polled["status"], "confirmed", "{polled}");
        let tokens = polled["tokens"].clone();
        let device_id = tokens["device_id"].as_str().unwrap().to_string();

        // Refresh with proof of possession of the device key.
        let nonce = phone.nonce();
        let signed = phone.sign(&Phone::refresh_message(&device_id, &nonce));
        let (status, refreshed) = phone.refresh(&tokens, &nonce, &signed);
        assert_eq!(status, StatusCode::OK, "{refreshed}");
        let access = refreshed["access_token"].as_str().unwrap();
        assert_eq!(
            phone.call("GET", "/api/v1/me", None, Some(access)).1["via"],
            "paired_device"
        );

        // Revoked: the open socket closes at once.
        let mut device_ws = ws(&gateway, access);
        next_of(&mut device_ws, "hello");
        let revoked_at = std::time::Instant::now();
        let (status, _) = admin_call(
            &gateway,
            &admin,
            "DELETE",
            &format!("/api/v1/devices/{device_id}"),
            json!({}),
        );
        assert_eq!(status, StatusCode::OK);
        let closed = loop {
            match device_ws.read() {
                Ok(tungstenite::Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        let took = revoked_at.elapsed();
        assert_eq!(closed, Some(1008));
        assert!(
            took < Duration::from_millis(1500),
            "closed {took:?} after the revocation"
        );
        assert_eq!(
            phone.call("GET", "/api/v1/me", None, Some(access)).0,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// A distributed guesser (one wrong secret from each of many addresses, under every
/// per-address limit) and a poll flood: the pairing service's own budgets refuse them,
/// and the owner pairs normally once the attack stops (the injected clock moves on).
#[test]
fn a_distributed_guesser_and_a_poll_flood_are_capped_and_the_owner_pairs_right_after() {
    let (_setup, gateway, admin) = owner_gateway(FAST);
    for http1 in [true, false] {
        let version = version_of(http1);
        let (_, secret) = offer(&gateway, &admin);
        let mut statuses = Vec::new();
        for host in 10..40 {
            let guesser = Phone::new(&gateway, version, &format!("127.0.0.{host}"));
            let (status, body) = guesser.claim(&format!("AAAAAAAAAAAAAA{host:02}"), "evil");
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
            }
            statuses.push(status);
        }
        let wrong = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        assert_eq!(wrong, 10, "the shared budget: {statuses:?}");
        assert_eq!(
            statuses.len() - wrong,
            20,
            "the rest refused unchecked: {statuses:?}"
        );
        // While it lasts, even the right secret waits (the guesser learns nothing).
        let phone = Phone::new(&gateway, version, "127.0.0.2");
        let response = phone
            .client
            .post(format!("{}/pair/claim", gateway.url))
            .json(&json!({"secret": secret, "device_name": "mine", "public_key": phone.jwk()}))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().contains_key("retry-after"));

        // The attack stops; a minute later the owner pairs.
        gateway.advance_clock(Duration::from_secs(60));
        let (status, started) = phone.claim(&secret, "mine");
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");

        // A poll flood from one address is cut off; the phone polling from its own
        // address is served throughout, and the flooder again a moment later.
        let flooder = Phone::new(&gateway, version, "127.0.0.50");
        let flood: Vec<StatusCode> = (0..25).map(|_| flooder.poll(&started).0).collect();
        assert!(flood.contains(&StatusCode::TOO_MANY_REQUESTS), "{flood:?}");
        assert_eq!(phone.poll(&started).1["status"], "waiting");
        gateway.advance_clock(Duration::from_secs(2));
        assert_eq!(flooder.poll(&started).0, StatusCode::OK);
        let (_, pending) = admin_call(&gateway, &admin, "GET", "/api/v1/pairing", json!({}));
        let id = pending["claims"][0]["id"].as_str().unwrap().to_string();
        let (status, _) = admin_call(
            &gateway,
            &admin,
            "POST",
            &format!("/api/v1/pairing/{id}/confirm"),
            json!({}),
        );
        assert_eq!(status, StatusCode::OK);
        let (_, confirmed) = phone.poll(&started);
        assert_eq!(confirmed["status"], "confirmed", "{confirmed}");
        gateway.advance_clock(Duration::from_secs(60));
    }
}

/// First run on a simulated board: with no account the OLED shows the claim code and a
/// QR of the setup page at the name a phone can reach (never loopback); the phone that
/// scans it claims the gateway, and the display turns to the status screen (URL,
/// address, paired devices).
#[test]
fn first_run_the_oled_shows_the_claim_code_and_setup_qr_then_the_status() {
    use aisopod::hardware::{Screen, render};
    let board = crate::hardware::Board::default();
    let setup = Setup::new(FAST);
    let gateway = setup.start_on(board.devices());
    let app = gateway.app.clone().unwrap();
    let port = gateway.addr().port();
    let host = format!(
        "{}.local",
        nix::unistd::gethostname().unwrap().to_str().unwrap()
    );
    let code = app
        .services
        .auth
        .claim
        .current()
        .expect("a claim code on first run");
    let setup_url = format!("HTTPS://{}:{port}/setup/claim", host.to_uppercase());
    let now = || aisopod::clock::Clock::now(gateway.clock.as_ref().unwrap());
    let claim_screen = render(
        &Screen::Claim {
            code: aisopod::secret::Secret::new(code.clone()),
            setup_url: setup_url.clone(),
        },
        now(),
    )
    .unwrap();
    until("the OLED shows the claim code and its QR", || {
        board.oled.frame() == claim_screen
    });
    assert_eq!(board.oled.codes(), [setup_url]);

    let mut phone = Phone::resolving(&gateway, version_of(false), "127.0.0.2", &host);
    phone.url = format!("https://{host}:{port}");
    let (status, tokens) = phone.call(
        "POST",
        "/setup/claim",
        Some(json!({"code": code, "username": "owner", "password": OWNER_PW})),
        None,
    );
    assert_eq!(status, StatusCode::CREATED, "{tokens}");
    let status_screen = render(
        &Screen::Status {
            url: format!("https://{host}:{port}"),
            address: host.clone(),
            devices: Some(0),
        },
        now(),
    )
    .unwrap();
    until("the OLED shows the status once claimed", || {
        board.oled.frame() == status_screen
    });
    assert!(board.oled.codes().is_empty(), "the claim QR is gone");
}
