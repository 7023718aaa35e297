//! Fuzz check: the command filter judges any text without panicking, overflowing its
//! stack or hanging (libFuzzer's `-timeout` catches a slow input). Arbitrary bytes are
//! read as lossy UTF-8, which is what a shell line from an LLM becomes before it reaches
//! the filter. The first byte picks one of the four setups the product may run: the
//! allowlist (strict) or denylist (local) policy of the built-in default configuration,
//! with the home directory known or not.

use std::path::PathBuf;
use std::sync::OnceLock;

use aisopod::config::{ApplianceEnvironment, ConfigSource};
use aisopod::policy::{CommandFilter, FilterContext};

fn filters() -> &'static [CommandFilter] {
    static FILTERS: OnceLock<Vec<CommandFilter>> = OnceLock::new();
    FILTERS.get_or_init(|| {
        let mut out = Vec::new();
        for mode in ["", "[security]\nmode = \"local\"\n"] {
            let config =
                aisopod::config::parse(mode, ConfigSource::Defaults, &ApplianceEnvironment)
                    .unwrap_or_else(|e| panic!("default config: {e}"));
            for home in [Some("/home/pi"), None] {
                let mut context = FilterContext::for_config(&config, Some(PathBuf::from("/work")));
                context.home = home.map(PathBuf::from);
                out.push(
                    CommandFilter::from_config(&config.tools.shell, context)
                        .unwrap_or_else(|e| panic!("default filter: {e}")),
                );
            }
        }
        out
    })
}

/// Runs the check on one input; panics on a broken promise.
pub fn run(data: &[u8]) {
    let (pick, rest) = data.split_first().unwrap_or((&0, &[]));
    let filters = filters();
    let filter = &filters[usize::from(*pick) % filters.len()];
    let text = String::from_utf8_lossy(rest);
    let judgement = filter.judge(&text);
    assert!(!judgement.rule.is_empty() && !judgement.reason.is_empty());
}
