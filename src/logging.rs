//! Logging: the `tracing` subscriber, its filter and its output format.
//!
//! `AISOPOD_LOG` sets the filter (else `[logging] filter`), `AISOPOD_LOG_FORMAT=json` or
//! `[logging] format = "json"` switches to one JSON object per line for journald and log
//! shippers. Logs go to stderr. This module never decides what is logged; callers never
//! pass secrets to it (the `Secret` type prints as `***` if they try).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingConfig};

/// Installs the global subscriber. Safe to call more than once; later calls do nothing.
pub fn init(config: &LoggingConfig) {
    let filter = std::env::var("AISOPOD_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(&config.filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let json = match std::env::var("AISOPOD_LOG_FORMAT").ok().as_deref() {
        Some("json") => true,
        Some("text") => false,
        _ => config.format == LogFormat::Json,
    };
    // Colours only for a person at a terminal: journald, files and pipes get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // An error only means a subscriber is already installed (tests, repeated init).
    drop(result);
}

/// Logging for CLI commands that are not the gateway: warnings and errors only, unless
/// `AISOPOD_LOG` asks for more.
pub fn init_cli() {
    init(&LoggingConfig {
        format: LogFormat::Text,
        filter: "warn".into(),
    });
}
