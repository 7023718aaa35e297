//! Identity and access over real HTTPS: the first-run claim, logins, sessions, API
//! tokens, scopes, rate limits, lockout and the auth modes, each tried as an attacker
//! or a user would.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::StatusCode;
use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::support::{Gateway, OWNER_PW, Setup, stderr, stdout, version_of};

/// Cheap argon2 for tests only; the product defaults are far stronger. Rate limits are
/// raised so that tests of other things are not limited (one test checks the defaults).
const FAST: &str = "[rate_limit]\nauth_per_minute = 1000\nauth_burst = 1000\napi_per_minute = 10000\napi_burst = 1000\n[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1";
const FAST_DEFAULT_LIMITS: &str = "[auth]\nargon2_memory = \"8m\"\nargon2_iterations = 1";
const NEW_PW: &str = "plinth-ocarina-sleet-mural";

fn post(gateway: &Gateway, path: &str, body: Value, bearer: Option<&str>) -> Response {
    let mut request = gateway
        .client()
        .post(format!("{}{path}", gateway.url))
        .json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().unwrap()
}

fn get(gateway: &Gateway, path: &str, bearer: Option<&str>) -> Response {
    let mut request = gateway.client().get(format!("{}{path}", gateway.url));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().unwrap()
}

fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

/// A gateway with an owner account made on the console; returns the owner's tokens.
fn with_owner(extra: &str) -> (Setup, Gateway, Value) {
    owner_on(extra, Setup::start)
}

/// [`with_owner`] in a gateway process of its own, for figures of the whole process.
fn with_owner_in_a_process(extra: &str) -> (Setup, Gateway, Value) {
    owner_on(extra, Setup::start_process)
}

fn owner_on(extra: &str, start: fn(&Setup) -> Gateway) -> (Setup, Gateway, Value) {
    let setup = Setup::new(extra);
    setup.add_owner();
    let gateway = start(&setup);
    let (status, tokens) = json_of(post(
        &gateway,
        "/auth/login",
        json!({"username": "owner", "password": OWNER_PW}),
        None,
    ));
    assert_eq!(status, StatusCode::OK, "{tokens}");
    (setup, gateway, tokens)
}

/// The gateway process's resident memory, from `/proc/PID/statm`.
fn rss_of(gateway: &Gateway) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{}/statm", gateway.pid())).unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn access(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_string()
}

#[test]
fn first_run_claim_creates_the_owner_once() {
    let setup = Setup::new(FAST);
    let mut gateway = setup.start_process();
    assert!(
        gateway.log_text().contains("auth claim-code"),
        "{}",
        gateway.log_text()
    );
    let code = stdout(&setup.cli(&["auth", "claim-code"]))
        .trim()
        .to_string();
    assert_eq!(code.len(), 19, "{code}");

    let (status, body) = json_of(post(
        &gateway,
        "/setup/claim",
        json!({"code": "AAAA-BBBB-CCCC-DDDD", "username": "owner", "password": OWNER_PW}),
        None,
    ));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("wrong_claim_code"))
    );
    let (status, body) = json_of(post(
        &gateway,
        "/setup/claim",
        json!({"code": code, "username": "owner", "password": "short"}),
        None,
    ));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("weak_password"))
    );
    let (status, tokens) = json_of(post(
        &gateway,
        "/setup/claim",
        json!({"code": code.to_lowercase(), "username": "owner", "password": OWNER_PW}),
        None,
    ));
    assert_eq!(status, StatusCode::CREATED, "{tokens}");
    let (status, me) = json_of(get(&gateway, "/api/v1/me", Some(&access(&tokens))));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "owner");
    assert!(me["scopes"].as_array().unwrap().contains(&json!("admin")));

    // Replaying the code does nothing.
    let (status, body) = json_of(post(
        &gateway,
        "/setup/claim",
        json!({"code": code, "username": "mallory", "password": OWNER_PW}),
        None,
    ));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_claimed"))
    );
    assert_eq!(setup.cli(&["auth", "claim-code"]).status.code(), Some(1));
    gateway.stop();
    let users = stdout(&setup.cli(&["user", "list"]));
    assert!(
        users.contains("owner") && !users.contains("mallory"),
        "{users}"
    );
    // No default credentials exist, and a restart with an owner makes no new code.
    let mut again = setup.start_process();
    assert!(!again.log_text().contains("claim-code"));
    let (status, _) = json_of(post(
        &again,
        "/auth/login",
        json!({"username": "admin", "password": "admin"}),
        None,
    ));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    again.stop();
    let audit = stdout(&setup.cli(&["audit", "export"]));
    assert!(audit.contains("\"auth.claim\"") && !audit.contains(&code));
}

#[test]
fn logins_fail_alike_for_unknown_users_and_wrong_passwords() {
    // The product's own argon2 cost, so that hashing rather than noise dominates timing.
    let (_setup, gateway, _) =
        with_owner("[rate_limit]\nauth_per_minute = 1000\nauth_burst = 1000");
    let attempt = |username: &str, password: &str| {
        let started = Instant::now();
        let (status, body) = json_of(post(
            &gateway,
            "/auth/login",
            json!({"username": username, "password": password}),
            None,
        ));
        (status, body, started.elapsed())
    };
    let (s1, wrong, _) = attempt("owner", "not the right password");
    let (s2, unknown, _) = attempt("nobody-here", "not the right password");
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        wrong, unknown,
        "the answer must not reveal whether the user exists"
    );
    // Timing: both paths run one argon2 verification; compare medians.
    // Interleaved, so that load from other processes falls on both alike.
    let (mut known, mut missing): (Vec<Duration>, Vec<Duration>) = (0..11)
        .map(|_| {
            let known = attempt("owner", "not the right password").2;
            (known, attempt("nobody-here", "not the right password").2)
        })
        .unzip();
    known.sort();
    missing.sort();
    let (known, missing) = (known[5], missing[5]);
    let ratio = known.as_secs_f64() / missing.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "known {known:?} vs unknown {missing:?}"
    );
}

#[test]
fn refresh_rotates_reuse_ends_the_family_and_logout_ends_the_session() {
    let (setup, gateway, tokens) = with_owner(FAST);
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let (status, second) = json_of(post(
        &gateway,
        "/auth/refresh",
        json!({"refresh_token": first_refresh}),
        None,
    ));
    assert_eq!(status, StatusCode::OK);
    let second_refresh = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first_refresh, second_refresh);
    // Reusing the first token: refused, and the second one dies with its family.
    let (status, _) = json_of(post(
        &gateway,
        "/auth/refresh",
        json!({"refresh_token": first_refresh}),
        None,
    ));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = json_of(post(
        &gateway,
        "/auth/refresh",
        json!({"refresh_token": second_refresh}),
        None,
    ));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let audit = stdout(&setup.cli(&["audit", "list", "--action", "auth.refresh_reuse", "--json"]));
    assert!(audit.contains("session family revoked"), "{audit}");

    // Logout revokes the refresh family and the access token at once.
    let (_, fresh) = json_of(post(
        &gateway,
        "/auth/login",
        json!({"username": "owner", "password": OWNER_PW}),
        None,
    ));
    let bearer = access(&fresh);
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&bearer)).status(),
        StatusCode::OK
    );
    let out = post(
        &gateway,
        "/auth/logout",
        json!({"refresh_token": fresh["refresh_token"]}),
        Some(&bearer),
    );
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&bearer)).status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = json_of(post(
        &gateway,
        "/auth/refresh",
        json!({"refresh_token": fresh["refresh_token"]}),
        None,
    ));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn access_tokens_end_with_their_login_on_reuse_and_bearer_only_logout() {
    let (setup, gateway, _) = with_owner(FAST);
    for version in [http::Version::HTTP_11, http::Version::HTTP_2] {
        let client = &gateway.client_speaking(version, "127.0.0.1");
        let call = |path: &str, body: Option<Value>, bearer: Option<&str>| {
            let url = format!("{}{path}", gateway.url);
            let mut request = match body {
                // Null: a POST with no body at all.
                Some(Value::Null) => client.post(url),
                Some(body) => client.post(url).json(&body),
                None => client.get(url),
            };
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            let response = request.send().unwrap();
            assert_eq!(response.version(), version);
            json_of(response)
        };
        let login = || {
            let (status, tokens) = call(
                "/auth/login",
                Some(json!({"username": "owner", "password": OWNER_PW})),
                None,
            );
            assert_eq!(status, StatusCode::OK, "{tokens}");
            tokens
        };
        // login -> refresh -> replay the first refresh token: the access token the
        // refresh handed out dies with the login, at once.
        let first = login();
        let (status, second) = call(
            "/auth/refresh",
            Some(json!({"refresh_token": first["refresh_token"]})),
            None,
        );
        assert_eq!(status, StatusCode::OK);
        let stolen = access(&second);
        assert_eq!(call("/api/v1/me", None, Some(&stolen)).0, StatusCode::OK);
        let (status, _) = call(
            "/auth/refresh",
            Some(json!({"refresh_token": first["refresh_token"]})),
            None,
        );
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            call("/api/v1/me", None, Some(&stolen)).0,
            StatusCode::UNAUTHORIZED,
            "{version:?}: the access token outlived its login"
        );
        assert_eq!(
            call("/api/v1/me", None, Some(&access(&first))).0,
            StatusCode::UNAUTHORIZED
        );

        // Logout with only the Bearer header, as docs/src/accounts.md shows it, ends the login:
        // its refresh token no longer works.
        let session = login();
        let bearer = access(&session);
        let (status, _) = call("/auth/logout", Some(Value::Null), Some(&bearer));
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(
            call("/api/v1/me", None, Some(&bearer)).0,
            StatusCode::UNAUTHORIZED
        );
        let (status, _) = call(
            "/auth/refresh",
            Some(json!({"refresh_token": session["refresh_token"]})),
            None,
        );
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{version:?}: refresh after logout"
        );

        // The owner is served normally right after.
        let again = login();
        assert_eq!(
            call("/api/v1/me", None, Some(&access(&again))).0,
            StatusCode::OK
        );
    }
    let audit = stdout(&setup.cli(&["audit", "list", "--action", "auth.refresh_reuse", "--json"]));
    assert!(audit.contains("session family revoked"), "{audit}");
}

#[test]
fn forged_tampered_and_misused_tokens_are_refused() {
    let (_setup, gateway, tokens) = with_owner(FAST);
    let good = access(&tokens);
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    let b64 = |v: &Value| B64.encode(v.to_string());
    let mut forgeries = vec![
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT", "kid": header["kid"]})),
            parts[1]
        ),
        format!(
            "{}.{}.{}",
            b64(&json!({"alg": "HS512", "kid": header["kid"]})),
            parts[1],
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            b64(&json!({"alg": "HS256", "kid": "unknown-kid"})),
            parts[1],
            parts[2]
        ),
        good[..good.len() - 4].to_string(),
        "aisp_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        "aisr_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        tokens["refresh_token"].as_str().unwrap().to_string(),
        "garbage".to_string(),
    ];
    claims["aud"] = json!("aisopod:ws-ticket");
    forgeries.push(format!("{}.{}.{}", parts[0], b64(&claims), parts[2]));
    claims["aud"] = json!("aisopod:session");
    claims["exp"] = json!(1);
    forgeries.push(format!("{}.{}.{}", parts[0], b64(&claims), parts[2]));
    for forged in &forgeries {
        let response = get(&gateway, "/api/v1/me", Some(forged));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{forged}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    // A WebSocket ticket is not a session token.
    let (_, ticket) = json_of(post(&gateway, "/auth/ws-ticket", json!({}), Some(&good)));
    assert_eq!(ticket["expires_in"], 30);
    assert_eq!(
        get(&gateway, "/api/v1/me", ticket["ticket"].as_str()).status(),
        StatusCode::UNAUTHORIZED
    );
    // Another scheme is not a bearer token.
    let basic = gateway
        .client()
        .get(format!("{}/api/v1/me", gateway.url))
        .header("authorization", "Basic b3duZXI6eA==")
        .send()
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn api_tokens_carry_their_scopes_and_no_more() {
    let (setup, gateway, tokens) = with_owner(FAST);
    let admin = access(&tokens);
    let (status, created) = json_of(post(
        &gateway,
        "/auth/create-token",
        json!({"name": "chat-bot", "scopes": ["chat:read"], "expires": "90d"}),
        Some(&admin),
    ));
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("aisp_"));
    // Accepted as a bearer token and as X-API-Key.
    let (_, me) = json_of(get(&gateway, "/api/v1/me", Some(&token)));
    assert_eq!(me["scopes"], json!(["chat:read"]));
    let keyed = gateway
        .client()
        .get(format!("{}/api/v1/me", gateway.url))
        .header("x-api-key", &token)
        .send()
        .unwrap();
    assert_eq!(keyed.status(), StatusCode::OK);
    // It cannot reach admin routes or make tokens.
    assert_eq!(
        get(&gateway, "/api/v1/users", Some(&token)).status(),
        StatusCode::FORBIDDEN
    );
    let (status, _) = json_of(post(
        &gateway,
        "/auth/create-token",
        json!({"name": "x", "scopes": ["admin"]}),
        Some(&token),
    ));
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A non-admin user's token can never exceed the user's scopes.
    let (status, _) = json_of(post(
        &gateway,
        "/api/v1/users",
        json!({"username": "carol", "password": "plinth-ocarina-sleet-mural", "scopes": ["chat:read"]}),
        Some(&admin),
    ));
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = json_of(post(
        &gateway,
        "/auth/create-token",
        json!({"name": "carol-admin", "scopes": ["admin"], "owner": "carol"}),
        Some(&admin),
    ));
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Listing never shows secrets; revoking ends the token.
    let (_, list) = json_of(get(&gateway, "/api/v1/tokens", Some(&admin)));
    assert!(!list.to_string().contains(&token[22..]) && !list.to_string().contains("secret_hash"));
    let id = created["id"].as_str().unwrap();
    let revoked = gateway
        .client()
        .delete(format!("{}/api/v1/tokens/{id}", gateway.url))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&token)).status(),
        StatusCode::UNAUTHORIZED
    );
    let audit = stdout(&setup.cli(&["audit", "export"]));
    assert!(
        audit.contains("auth.token_created")
            && audit.contains("auth.token_revoked")
            && !audit.contains(&token)
    );
}

#[test]
fn every_route_is_declared_and_refuses_callers_without_its_scope() {
    let (_setup, gateway, tokens) = with_owner(FAST);
    let (_, created) = json_of(post(
        &gateway,
        "/auth/create-token",
        json!({"name": "reader", "scopes": ["chat:read"]}),
        Some(&access(&tokens)),
    ));
    let reader = created["token"].as_str().unwrap().to_string();
    let api = aisopod::server::api();
    let mut checked = 0;
    for (_, path, access) in api.access().entries() {
        use aisopod::server::auth::Access;
        let concrete = path
            .replace("{name}", "owner")
            .replace("{id}", "0123456789abcdef");
        match access {
            Access::Public | Access::Credentials => continue,
            Access::Authenticated | Access::Scope(_) => {
                for method in [
                    reqwest::Method::GET,
                    reqwest::Method::POST,
                    reqwest::Method::PATCH,
                    reqwest::Method::DELETE,
                ] {
                    let response = gateway
                        .client()
                        .request(method.clone(), format!("{}{concrete}", gateway.url))
                        .send()
                        .unwrap();
                    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
                        continue;
                    }
                    assert_eq!(
                        response.status(),
                        StatusCode::UNAUTHORIZED,
                        "{method} {path} without credentials"
                    );
                    if let Access::Scope(aisopod::auth::scopes::Scope::Admin) = access {
                        let response = gateway
                            .client()
                            .request(method.clone(), format!("{}{concrete}", gateway.url))
                            .bearer_auth(&reader)
                            .send()
                            .unwrap();
                        assert_eq!(
                            response.status(),
                            StatusCode::FORBIDDEN,
                            "{method} {path} with a chat:read token"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 12, "only {checked} route/method pairs checked");
}

#[test]
fn a_flood_of_wrong_logins_is_rate_limited_and_another_client_still_gets_in() {
    let (setup, gateway, _) = with_owner(FAST_DEFAULT_LIMITS);
    let mut limited = 0;
    let mut refused = 0;
    let started = std::time::Instant::now();
    for i in 0..1000 {
        let response = post(
            &gateway,
            "/auth/login",
            json!({"username": "owner", "password": format!("wrong guess number {i}")}),
            None,
        );
        match response.status() {
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                limited += 1;
            }
            StatusCode::UNAUTHORIZED => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // The limit is 10 a minute with a burst of 5: besides the burst, one guess in every
    // 6 s of the flood gets through, however long a loaded machine takes to send it.
    let elapsed = started.elapsed().as_secs();
    let let_through = 5 + elapsed / 6 + 1;
    eprintln!(
        "1000 wrong logins from one address in {elapsed} s: {limited} answered 429, {refused} answered 401"
    );
    assert!(
        refused <= let_through,
        "{refused} got through in {elapsed} s"
    );
    assert_eq!(limited + refused, 1000);
    // Another address (127.0.0.2 is loopback too) logs in with the right password. The
    // few wrong guesses that got through did not reach the lockout threshold.
    let other = reqwest::blocking::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .add_root_certificate(
            reqwest::Certificate::from_pem(
                &std::fs::read(gateway.data_dir.join("tls/ca.pem")).unwrap(),
            )
            .unwrap(),
        )
        .tls_built_in_root_certs(false)
        .use_rustls_tls()
        .build()
        .unwrap();
    let response = other
        .post(format!("{}/auth/login", gateway.url))
        .json(&json!({"username": "owner", "password": OWNER_PW}))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let refusals = stdout(&setup.cli(&["audit", "list", "--action", "http.refused", "--json"]));
    let refusals: Vec<Value> = serde_json::from_str(&refusals).unwrap();
    assert!(
        !refusals.is_empty() && refusals.len() as u64 <= 2 + elapsed / 60,
        "refusals are audited, throttled: {}",
        refusals.len()
    );
    assert_eq!(refusals[0]["details"]["status"], 429);
}

#[test]
fn repeated_failures_lock_the_account_until_the_console_unlocks_it() {
    let (setup, gateway, _) = with_owner(&format!("{FAST}\nlockout_threshold = 3"));
    for _ in 0..3 {
        assert_eq!(
            post(
                &gateway,
                "/auth/login",
                json!({"username": "owner", "password": "not it at all"}),
                None
            )
            .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = post(
        &gateway,
        "/auth/login",
        json!({"username": "owner", "password": OWNER_PW}),
        None,
    );
    assert_eq!(
        locked.status(),
        StatusCode::UNAUTHORIZED,
        "the right password is refused while locked"
    );
    let listed = stdout(&setup.cli(&["user", "list"]));
    assert!(listed.contains("locked until"), "{listed}");
    let unlocked = setup.cli(&["user", "unlock", "owner"]);
    assert!(unlocked.status.success(), "{}", stderr(&unlocked));
    assert_eq!(
        post(
            &gateway,
            "/auth/login",
            json!({"username": "owner", "password": OWNER_PW}),
            None
        )
        .status(),
        StatusCode::OK
    );
}

/// Production argon2 and rate limits; only the lockout threshold is at its minimum (3)
/// so that the guesses fit in the default per-address burst.
const PRODUCTION_LOCKOUT: &str = "[auth]\nlockout_threshold = 3";

fn login_from(gateway: &Gateway, version: http::Version, from: &str, password: &str) -> StatusCode {
    let response = gateway
        .client_speaking(version, from)
        .post(format!("{}/auth/login", gateway.url))
        .json(&json!({"username": "owner", "password": password}))
        .send()
        .unwrap();
    assert_eq!(response.version(), version);
    response.status()
}

#[test]
fn guessing_from_one_address_never_locks_the_owner_out_of_another() {
    let (_setup, gateway, _) = with_owner(PRODUCTION_LOCKOUT);
    for (version, attacker, owner) in [
        (http::Version::HTTP_11, "127.0.0.3", "127.0.0.4"),
        (http::Version::HTTP_2, "127.0.0.5", "127.0.0.6"),
    ] {
        for _ in 0..3 {
            assert_eq!(
                login_from(&gateway, version, attacker, "not it at all"),
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            login_from(&gateway, version, attacker, OWNER_PW),
            StatusCode::UNAUTHORIZED,
            "the guessing address is locked out, even with the right password"
        );
        assert_eq!(
            login_from(&gateway, version, owner, OWNER_PW),
            StatusCode::OK,
            "{version:?}: the owner, elsewhere, is not locked out"
        );
    }
}

/// A gateway served in this process on production defaults, with a clock the test
/// moves, and an owner account.
struct ClockedGateway {
    app: std::sync::Arc<aisopod::server::state::App>,
    clock: crate::support::TestClock,
    url: String,
    ca: std::path::PathBuf,
    _gateway: crate::support::Gateway,
    _setup: Setup,
}

impl ClockedGateway {
    fn start() -> ClockedGateway {
        let setup = Setup::new("");
        let gateway = setup.start();
        let app = gateway.app.clone().unwrap();
        let clock = gateway.clock.clone().unwrap();
        clock.freeze();
        app.services
            .auth
            .accounts
            .create(
                "owner",
                &aisopod::secret::Secret::new(OWNER_PW),
                aisopod::auth::scopes::Scopes::all(),
            )
            .unwrap();
        ClockedGateway {
            ca: setup.data_dir().join("tls/ca.pem"),
            app,
            clock,
            url: gateway.url.clone(),
            _gateway: gateway,
            _setup: setup,
        }
    }

    fn client(&self, version: http::Version, from: &str) -> reqwest::blocking::Client {
        crate::support::blocking_client_speaking(&self.ca, version, from)
    }

    /// A login from `client`: status, `Retry-After` and body.
    fn login(
        &self,
        client: &reqwest::blocking::Client,
        body: Value,
        cookie: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = client.post(format!("{}/auth/login", self.url)).json(&body);
        if let Some(cookie) = cookie {
            request = request.header(http::header::COOKIE, cookie);
        }
        let response = request.send().unwrap();
        let retry = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        let status = response.status();
        (status, retry, response.json().unwrap_or(Value::Null))
    }

    fn verifications(&self) -> u64 {
        self.app.services.auth.accounts.passwords().verifications()
    }
}

/// Issue 10 leftover, found by an outside attack: 41 addresses guessing once a second
/// held the owner out of a new address for 40 s, because the account's one try per
/// 15 s went to whoever asked first, and a throttled try read "wrong password". Now,
/// on production defaults and over HTTP/1.1 and HTTP/2: guessers spread over many
/// addresses get at most the account's guess budget checked, every other try is a 429
/// with `Retry-After` that no password was checked for (answered alike for a name no
/// account has), and the owner's client that signed in before is served at once from
/// a fresh address, by its token in the body or its cookie.
#[test]
fn a_spread_attack_neither_holds_the_owner_out_nor_gets_more_guesses_than_the_budget() {
    let gateway = ClockedGateway::start();
    let h1 = http::Version::HTTP_11;
    let h2 = http::Version::HTTP_2;
    let home = gateway.client(h2, "127.0.0.1");
    let (status, _, tokens) = gateway.login(
        &home,
        json!({"username": "owner", "password": OWNER_PW}),
        None,
    );
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let known_client = tokens["known_client"].as_str().unwrap().to_string();

    // 24 addresses guess once a (simulated) second for 4 s, half of them over each
    // protocol, at the owner and at a name no account has; within the per-address
    // rate limit, so only the account's budget stands in the way.
    let attackers: Vec<_> = (1..=24)
        .map(|n| {
            let version = if n % 2 == 0 { h1 } else { h2 };
            (
                gateway.client(version, &format!("127.0.1.{n}")),
                gateway.client(version, &format!("127.0.2.{n}")),
            )
        })
        .collect();
    let before = gateway.verifications();
    let (mut checked, mut throttled) = (0, 0);
    for _second in 0..4 {
        for (at_owner, at_nobody) in &attackers {
            let wrong = |name: &str| json!({"username": name, "password": "not it at all"});
            let owner = gateway.login(at_owner, wrong("owner"), None);
            let nobody = gateway.login(at_nobody, wrong("nobody"), None);
            assert_eq!(owner, nobody, "an unknown name is answered alike");
            match owner {
                (StatusCode::UNAUTHORIZED, None, body) => {
                    assert_eq!(body["error"]["code"], "invalid_credentials");
                    checked += 1;
                }
                (StatusCode::TOO_MANY_REQUESTS, Some(retry), body) => {
                    assert_eq!(body["error"]["code"], "throttled", "{body}");
                    let message = body["error"]["message"].as_str().unwrap();
                    assert!(
                        message.contains(&format!("retry in {retry} s"))
                            && !message.contains("password"),
                        "{message}"
                    );
                    throttled += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        gateway.clock.advance(Duration::from_secs(1));
    }
    // The budget: 10 checks at once, then one a minute; 4 s passed. (The owner's own
    // first login from a new client spent one too, and got it back: it was right.)
    assert_eq!(checked, 10);
    assert_eq!(throttled, 4 * 24 - checked);
    assert_eq!(
        gateway.verifications() - before,
        2 * checked,
        "a throttled try checks no password"
    );
    // The checked tries are audited one by one; the refused ones at most once per
    // address (and minute), however many there are.
    let records: Vec<_> = gateway.app.audit().all().map(Result::unwrap).collect();
    let denied_logins = records
        .iter()
        .filter(|r| r.action == "auth.login" && r.details["reason"].is_string())
        .count();
    let summarised = records
        .iter()
        .filter(|r| r.action == "http.refused" && r.details["status"] == 429)
        .count();
    assert_eq!(denied_logins as u64, 2 * checked);
    assert!(
        (1..=2 * attackers.len()).contains(&summarised),
        "{summarised} records for {throttled} refusals"
    );

    // Mid-attack, the owner's client on fresh addresses is served at once, with its
    // token in the body over HTTP/1.1 and as its cookie over HTTP/2.
    let owner =
        |token: &str| json!({"username": "owner", "password": OWNER_PW, "known_client": token});
    let (status, _, renewed) =
        gateway.login(&gateway.client(h1, "127.0.3.1"), owner(&known_client), None);
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let cookie = format!(
        "aisopod_known_client={}",
        renewed["known_client"].as_str().unwrap()
    );
    let (status, _, answer) = gateway.login(
        &gateway.client(h2, "127.0.3.2"),
        json!({"username": "owner", "password": OWNER_PW}),
        Some(&cookie),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _, _) = gateway.login(
        &home,
        json!({"username": "owner", "password": OWNER_PW}),
        None,
    );
    assert_eq!(
        status,
        StatusCode::OK,
        "a familiar address is not held up either"
    );
    // A known-client token is no credential.
    let me = gateway
        .client(h2, "127.0.3.2")
        .get(format!("{}/api/v1/users", gateway.url))
        .bearer_auth(&known_client)
        .send()
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    // A password change ends every known-client token, and hands this client a new one.
    let changed = gateway
        .client(h1, "127.0.3.3")
        .post(format!("{}/api/v1/me/password", gateway.url))
        .bearer_auth(access(&answer))
        .header(http::header::COOKIE, &cookie)
        .json(&json!({"current_password": OWNER_PW, "new_password": NEW_PW}))
        .send()
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert!(
        changed.headers()[http::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("aisopod_known_client=")
    );
    let changed: Value = changed.json().unwrap();
    let new_owner =
        |token: &str| json!({"username": "owner", "password": NEW_PW, "known_client": token});
    let (status, _, _) = gateway.login(
        &gateway.client(h2, "127.0.3.5"),
        new_owner(&known_client),
        None,
    );
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the old token ended");
    let fresh = changed["known_client"].as_str().unwrap();
    let (status, _, _) = gateway.login(&gateway.client(h2, "127.0.3.6"), new_owner(fresh), None);
    assert_eq!(status, StatusCode::OK);
    // A new client on a new address is told how long to wait, and is served then.
    let newcomer = gateway.client(h2, "127.0.3.4");
    let (status, retry, _) = gateway.login(
        &newcomer,
        json!({"username": "owner", "password": NEW_PW}),
        None,
    );
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = retry.unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    gateway.clock.advance(Duration::from_secs(wait));
    let (status, _, _) = gateway.login(
        &newcomer,
        json!({"username": "owner", "password": NEW_PW}),
        None,
    );
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn disabling_a_user_or_changing_a_password_revokes_what_they_hold() {
    let (_setup, gateway, tokens) = with_owner(FAST);
    let admin = access(&tokens);
    let carol_pw = "plinth-ocarina-sleet-mural";
    post(
        &gateway,
        "/api/v1/users",
        json!({"username": "carol", "password": carol_pw, "scopes": ["chat:read", "chat:write"]}),
        Some(&admin),
    );
    let (_, carol) = json_of(post(
        &gateway,
        "/auth/login",
        json!({"username": "carol", "password": carol_pw}),
        None,
    ));
    let (_, second) = json_of(post(
        &gateway,
        "/auth/login",
        json!({"username": "carol", "password": carol_pw}),
        None,
    ));
    // Password change needs the current password and ends the other session.
    let (status, _) = json_of(post(
        &gateway,
        "/api/v1/me/password",
        json!({"current_password": "wrong one entirely", "new_password": "quartz-meadow-violin-ember"}),
        Some(&access(&carol)),
    ));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, renewed) = json_of(post(
        &gateway,
        "/api/v1/me/password",
        json!({"current_password": carol_pw, "new_password": "quartz-meadow-violin-ember"}),
        Some(&access(&carol)),
    ));
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&access(&second))).status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&access(&renewed))).status(),
        StatusCode::OK
    );
    let (status, bot) = json_of(post(
        &gateway,
        "/auth/create-token",
        json!({"name": "carol-bot", "scopes": ["chat:read"], "owner": "carol"}),
        Some(&admin),
    ));
    assert_eq!(status, StatusCode::CREATED, "{bot}");
    let bot = bot["token"].as_str().unwrap().to_string();
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&bot)).status(),
        StatusCode::OK
    );
    // Disabling ends everything at once.
    let set_disabled = |disabled: bool| {
        let response = gateway
            .client()
            .patch(format!("{}/api/v1/users/carol", gateway.url))
            .bearer_auth(&admin)
            .json(&json!({ "disabled": disabled }))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    };
    set_disabled(true);
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&access(&renewed))).status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&bot)).status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = json_of(post(
        &gateway,
        "/auth/refresh",
        json!({"refresh_token": renewed["refresh_token"]}),
        None,
    ));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // ...and for good: enabling the account again brings none of it back.
    set_disabled(false);
    for bearer in [bot.as_str(), &access(&renewed)] {
        assert_eq!(
            get(&gateway, "/api/v1/me", Some(bearer)).status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, _) = json_of(post(
        &gateway,
        "/auth/login",
        json!({"username": "carol", "password": "quartz-meadow-violin-ember"}),
        None,
    ));
    assert_eq!(status, StatusCode::OK, "carol herself logs in again");
}

#[test]
fn hostile_request_bodies_get_clear_4xx_errors() {
    let (_setup, gateway, _) = with_owner(FAST);
    let client = gateway.client();
    let url = format!("{}/auth/login", gateway.url);
    let cases: Vec<(reqwest::blocking::RequestBuilder, StatusCode, &str)> = vec![
        (
            client
                .post(&url)
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            client.post(&url).body("username=owner"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            client.post(&url).json(&json!({"username": "owner"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            client
                .post(&url)
                .json(&json!({"username": 5, "password": []})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            client
                .post(&url)
                .json(&json!({"username": "owner", "password": "x", "admin": true})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            client
                .post(&url)
                .json(&json!({"username": "o".repeat(5000), "password": "x"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            client
                .post(&url)
                .json(&json!({"username": "owner", "password": "p".repeat(200_000)})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            client
                .post(&url)
                .json(&json!({"username": "\u{430}dmin\u{0}", "password": "whatever it is"})),
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = json_of(request.send().unwrap());
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
}

#[test]
fn token_mode_uses_one_static_token_and_has_no_logins() {
    let token = "static-token-0123456789abcdef0123456789abcdef";
    let setup = Setup::new("[auth]\nmode = \"token\"\ntoken = \"${TEST_STATIC_TOKEN}\"");
    let gateway = setup.start_with(&[("TEST_STATIC_TOKEN", token)]);
    let (status, me) = json_of(get(&gateway, "/api/v1/me", Some(token)));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["via"], "static_token");
    assert_eq!(
        get(
            &gateway,
            "/api/v1/me",
            Some("static-token-0123456789abcdef0123456789abcdeX")
        )
        .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(
            &gateway,
            "/auth/login",
            json!({"username": "a", "password": "b"}),
            None
        )
        .status(),
        StatusCode::NOT_FOUND
    );
    assert!(!gateway.log_text().contains("claim-code"));
}

#[test]
fn none_mode_is_loopback_only_and_says_so_on_every_response() {
    let setup = Setup::new("[security]\nmode = \"local\"\n[auth]\nmode = \"none\"");
    let gateway = setup.start();
    let response = get(&gateway, "/api/v1/me", None);
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["x-aisopod-warning"]
            .to_str()
            .unwrap()
            .contains("disabled")
    );
    assert_eq!(response.json::<Value>().unwrap()["username"], "local");
    assert!(
        get(&gateway, "/health", None)
            .headers()
            .contains_key("x-aisopod-warning")
    );
}

#[test]
fn device_mode_refuses_token_creation_over_http() {
    let (_setup, gateway, tokens) =
        with_owner(&FAST.replace("[auth]", "[auth]\nmode = \"device\""));
    let (status, body) = json_of(post(
        &gateway,
        "/auth/create-token",
        json!({"name": "x", "scopes": ["chat:read"]}),
        Some(&access(&tokens)),
    ));
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("device flow")
    );
}

#[test]
fn signing_key_rotation_keeps_current_sessions() {
    let (_setup, gateway, tokens) = with_owner(FAST);
    let admin = access(&tokens);
    let (status, rotated) = json_of(post(
        &gateway,
        "/auth/rotate-token",
        json!({}),
        Some(&admin),
    ));
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&admin)).status(),
        StatusCode::OK,
        "old key verifies during the grace"
    );
    let (_, fresh) = json_of(post(
        &gateway,
        "/auth/login",
        json!({"username": "owner", "password": OWNER_PW}),
        None,
    ));
    let kid = |t: &str| -> Value {
        serde_json::from_slice(&B64.decode(t.split('.').next().unwrap()).unwrap()).unwrap()
    };
    assert_eq!(kid(&access(&fresh))["kid"], rotated["kid"]);
    assert_ne!(kid(&admin)["kid"], rotated["kid"]);
}

#[test]
fn console_token_commands_create_list_rotate_and_revoke() {
    let setup = Setup::new(FAST);
    setup.add_owner();
    // Offline: straight into the store.
    let created = setup.cli(&[
        "auth",
        "create-token",
        "--scopes",
        "chat:read,chat:write",
        "--name",
        "api-client",
        "--expires",
        "90d",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    let token = stdout(&created).trim().to_string();
    assert!(token.starts_with("aisp_"), "{token}");
    assert!(stderr(&created).contains("shown once"));
    let bad = setup.cli(&[
        "auth",
        "create-token",
        "--scopes",
        "chat:read,root",
        "--name",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("unknown scope \"root\""),
        "{}",
        stderr(&bad)
    );

    let gateway = setup.start();
    let (status, me) = json_of(get(&gateway, "/api/v1/me", Some(&token)));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["scopes"], json!(["chat:read", "chat:write"]));
    // Through the admin socket while the gateway runs.
    let rotated = setup.cli(&[
        "auth",
        "rotate-token",
        "--name",
        "api-client",
        "--grace",
        "1h",
    ]);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let new_token = stdout(&rotated).trim().to_string();
    assert_ne!(new_token, token);
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&token)).status(),
        StatusCode::OK,
        "old token works during the grace"
    );
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&new_token)).status(),
        StatusCode::OK
    );
    let listed: Vec<Value> =
        serde_json::from_slice(&setup.cli(&["auth", "list-tokens", "--json"]).stdout).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        !serde_json::to_string(&listed)
            .unwrap()
            .contains(&token[22..])
    );
    let new_id = &new_token[5..21];
    let revoked = setup.cli(&["auth", "revoke-token", new_id]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert_eq!(
        get(&gateway, "/api/v1/me", Some(&new_token)).status(),
        StatusCode::UNAUTHORIZED
    );
    let key = setup.cli(&["auth", "rotate-signing-key"]);
    assert!(
        stdout(&key).contains("signing key rotated"),
        "{}",
        stderr(&key)
    );
}

/// Issue 10, item 0: on production defaults (argon2id 19 MiB t=2, two hashing slots,
/// default limits and memory budget, strict mode, the real RSS sampler), wrong logins
/// from 64 addresses used to leave one 19 MiB argon2 buffer per login resident and then
/// every request was shed for the memory budget. Hashing memory is now a fixed pool.
#[test]
fn a_login_flood_from_many_addresses_on_production_defaults_leaves_memory_bounded() {
    const MIB: u64 = 1 << 20;
    let (_setup, gateway, _) = with_owner_in_a_process("");
    let before = rss_of(&gateway);
    std::thread::scope(|scope| {
        for group in 0..8u8 {
            let gateway = &gateway;
            scope.spawn(move || {
                for i in 0..8u8 {
                    // Half over HTTP/1.1, half over HTTP/2 (ALPN).
                    let address = format!("127.0.0.{}", 10 + group * 8 + i);
                    let client = gateway.client_speaking(version_of(i % 2 == 0), &address);
                    let response = client
                        .post(format!("{}/auth/login", gateway.url))
                        .json(&json!({"username": format!("nobody{group}{i}"), "password": "not a password at all"}))
                        .send()
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{address}");
                }
            });
        }
    });
    let after = rss_of(&gateway);
    eprintln!(
        "RSS before the flood {} MiB, after 64 wrong logins from 64 addresses {} MiB",
        before / MIB,
        after / MIB
    );
    // At most the second hashing slot's 19 MiB buffer is new, plus some slack; before,
    // each login could leave its own buffer behind (+229 MiB after 64).
    assert!(
        after < before + 40 * MIB,
        "{} -> {} MiB",
        before / MIB,
        after / MIB
    );
    assert!(
        after < 96 * MIB,
        "over the default memory budget: {} MiB",
        after / MIB
    );
    // The owner logs in at once, over both protocols, and is served.
    for (address, http1) in [("127.0.0.2", true), ("127.0.0.3", false)] {
        let client = gateway.client_speaking(version_of(http1), address);
        let response = client
            .post(format!("{}/auth/login", gateway.url))
            .json(&json!({"username": "owner", "password": OWNER_PW}))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let expected = if http1 {
            reqwest::Version::HTTP_11
        } else {
            reqwest::Version::HTTP_2
        };
        assert_eq!(response.version(), expected);
        let tokens: Value = response.json().unwrap();
        let me = client
            .get(format!("{}/api/v1/users", gateway.url))
            .bearer_auth(access(&tokens))
            .send()
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
    }
    assert!(rss_of(&gateway) < before + 40 * MIB);
}

/// Issue 10, item 2: `GET /ws` without credentials is rate limited per address (429 with
/// `Retry-After`) and its refusals fold into one summary record per address, over
/// HTTP/1.1 and HTTP/2 alike; the owner's WebSocket connects right after.
#[test]
fn a_websocket_handshake_flood_is_limited_and_leaves_a_bounded_audit_trail() {
    let (setup, gateway, tokens) = with_owner("");
    for (address, http1) in [("127.0.0.20", true), ("127.0.0.21", false)] {
        let client = gateway.client_speaking(version_of(http1), address);
        let (mut unauthorized, mut limited) = (0, 0);
        for i in 0..150 {
            let query = if i % 2 == 0 { "" } else { "?ticket=guess" };
            let response = client
                .get(format!("{}/ws{query}", gateway.url))
                .send()
                .unwrap();
            match response.status() {
                StatusCode::UNAUTHORIZED => unauthorized += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert!(response.headers().contains_key("retry-after"));
                    limited += 1;
                }
                other => panic!("unexpected {other}"),
            }
        }
        assert!(
            unauthorized <= 35 && limited >= 115,
            "{address}: {unauthorized} 401, {limited} 429"
        );
    }
    let records: Vec<Value> =
        serde_json::from_str(&stdout(&setup.cli(&["audit", "list", "--json"]))).unwrap();
    let about_ws = records
        .iter()
        .filter(|r| r["target"] == "/ws" || r["action"] == "ws.refused")
        .count();
    // One summary record per flooding address (and minute), not one per request.
    assert!(
        (1..=2).contains(&about_ws),
        "{about_ws} records for 300 refused handshakes"
    );
    // The owner gets a ticket and connects at once.
    let ticket: Value = post(
        &gateway,
        "/auth/ws-ticket",
        json!({}),
        Some(&access(&tokens)),
    )
    .json()
    .unwrap();
    let ca = std::fs::read(gateway.data_dir.join("tls/ca.pem")).unwrap();
    let mut socket = crate::support::wss_connect(
        &ca,
        gateway.addr().port(),
        &format!("/ws?ticket={}", ticket["ticket"].as_str().unwrap()),
        &[],
    )
    .expect("the owner's WebSocket connects");
    assert_eq!(
        crate::support::next_ws_message(&mut socket)["type"],
        "hello"
    );
}
