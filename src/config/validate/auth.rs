//! `[auth]`: the login mode, token lifetimes, password policy and lockout.

use std::time::Duration;

use super::issues::Issues;
use crate::config::env::Environment;
use crate::config::raw::RawAuth;
use crate::config::settings::*;
use crate::secret::Secret;

/// Environment variable some deployments use for the access token lifetime, in seconds.
pub const JWT_EXPIRY_ENV: &str = "JWT_TOKEN_EXPIRY";

pub(super) fn validate_auth(
    raw: RawAuth,
    env: &dyn Environment,
    check: &mut Issues<'_>,
) -> AuthConfig {
    const MIB: u64 = 1024 * 1024;
    let access = match (raw.access_token_ttl, env.var(JWT_EXPIRY_ENV)) {
        (Some(ttl), _) => ttl.0,
        (None, Some(secs)) => match secs.trim().parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => {
                check.push("auth.access_token_ttl", format!("environment variable {JWT_EXPIRY_ENV} is {secs:?}: give a number of seconds"));
                Duration::from_secs(3600)
            }
        },
        (None, None) => Duration::from_secs(3600),
    };
    if raw.mode == AuthMode::Token && raw.token.as_ref().is_none_or(Secret::is_empty) {
        check.push("auth.token", "required with [auth] mode = \"token\": set token = \"${AISOPOD_AUTH_TOKEN}\" and export the variable");
    }
    let min_length =
        check.range("auth.password_min_length", raw.password_min_length, 8, 64) as usize;
    let memory = check.range(
        "auth.argon2_memory",
        raw.argon2_memory.0,
        8 * MIB,
        1024 * MIB,
    );
    let jwt_secret = raw.jwt_secret.or_else(|| {
        ["AISOPOD_JWT_SECRET", "JWT_SECRET_KEY"]
            .iter()
            .find_map(|name| env.var(name).filter(|v| !v.is_empty()))
            .map(Secret::new)
    });
    AuthConfig {
        mode: raw.mode,
        token: raw.token,
        jwt_secret,
        access_token_ttl: check.duration(
            "auth.access_token_ttl",
            access,
            Duration::from_secs(60),
            Duration::from_secs(86_400),
        ),
        refresh_token_ttl: check.duration(
            "auth.refresh_token_ttl",
            raw.refresh_token_ttl.0,
            Duration::from_secs(300),
            Duration::from_secs(90 * 86_400),
        ),
        claim_code_ttl: check.duration(
            "auth.claim_code_ttl",
            raw.claim_code_ttl.0,
            Duration::from_secs(60),
            Duration::from_secs(7 * 86_400),
        ),
        password: PasswordConfig {
            min_length,
            max_length: 128,
            argon2_memory_kib: (memory / 1024) as u32,
            argon2_iterations: check.range("auth.argon2_iterations", raw.argon2_iterations, 1, 20)
                as u32,
            argon2_parallelism: check.range(
                "auth.argon2_parallelism",
                raw.argon2_parallelism,
                1,
                16,
            ) as u32,
            max_concurrent_hashes: check.range(
                "auth.max_concurrent_hashes",
                raw.max_concurrent_hashes,
                1,
                64,
            ) as usize,
        },
        lockout_threshold: check.range("auth.lockout_threshold", raw.lockout_threshold, 3, 1000)
            as u32,
        lockout_duration: check.duration(
            "auth.lockout_duration",
            raw.lockout_duration.0,
            Duration::from_secs(60),
            Duration::from_secs(86_400),
        ),
        device_code_ttl: check.duration(
            "auth.device_code_ttl",
            raw.device_code_ttl.0,
            Duration::from_secs(60),
            Duration::from_secs(3600),
        ),
        device_poll_interval: check.duration(
            "auth.device_poll_interval",
            raw.device_poll_interval.0,
            Duration::from_secs(1),
            Duration::from_secs(60),
        ),
    }
}
