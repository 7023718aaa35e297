//! Logging: the `tracing` subscriber, its filter and its output format.
//!
//! `AISOPOD_LOG` sets the filter (else `[logging] filter`): a level, or comma-separated
//! `target=level` directives such as `info,aisopod::http=warn`. `AISOPOD_LOG_FORMAT=json` or
//! `[logging] format = "json"` switches to one JSON object per line for journald and log
//! shippers. Logs go to stderr. This module never decides what is logged; callers never
//! pass secrets to it (the `Secret` type prints as `***` if they try).

use std::io::IsTerminal;

use tracing_subscriber::filter::{LevelFilter, ParseError, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LoggingConfig};

/// Parses a log filter: a level (`off`, `error`, `warn`, `info`, `debug`, `trace`), a
/// target (all its levels), or comma-separated `target=level` directives, the most
/// specific target winning. (A static filter: no regular expressions, no span fields.)
pub fn parse_filter(text: &str) -> Result<Targets, ParseError> {
    text.parse()
}

/// Installs the global subscriber. Safe to call more than once; later calls do nothing.
pub fn init(config: &LoggingConfig) {
    let filter = std::env::var("AISOPOD_LOG")
        .ok()
        .and_then(|f| parse_filter(&f).ok())
        .or_else(|| parse_filter(&config.filter).ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let json = match std::env::var("AISOPOD_LOG_FORMAT").ok().as_deref() {
        Some("json") => true,
        Some("text") => false,
        _ => config.format == LogFormat::Json,
    };
    // Colours only for a person at a terminal: journald, files and pipes get plain text.
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .finish()
            .with(filter)
            .try_init()
    } else {
        builder.with_target(false).finish().with(filter).try_init()
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

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn filters_name_a_level_and_targets_the_most_specific_winning() {
        let filter = parse_filter("info,aisopod::http=warn,aisopod::gateway=trace").unwrap();
        assert!(filter.would_enable("aisopod::store", &Level::INFO));
        assert!(!filter.would_enable("aisopod::store", &Level::DEBUG));
        assert!(!filter.would_enable("aisopod::http", &Level::INFO));
        assert!(filter.would_enable("aisopod::http", &Level::WARN));
        assert!(filter.would_enable("aisopod::gateway::loop", &Level::TRACE));
        let off = parse_filter("off").unwrap();
        assert!(!off.would_enable("aisopod", &Level::ERROR));
        let one = parse_filter("aisopod").unwrap();
        assert!(one.would_enable("aisopod::http", &Level::TRACE));
        assert!(!one.would_enable("hyper", &Level::ERROR));
    }

    #[test]
    fn a_bad_level_is_refused() {
        assert!(parse_filter("aisopod=loud").is_err());
        assert!(parse_filter("info,hyper=verbose").is_err());
    }
}
