//! Fuzz target: the command filter judges any text without panicking, overflowing its
//! stack or hanging (libFuzzer's `-timeout` catches a slow input). Arbitrary bytes are
//! read as lossy UTF-8, which is what a shell line from an LLM becomes before it reaches
//! the filter. The first byte picks one of the four setups the product may run: the
//! allowlist (strict) or denylist (local) policy of the built-in default configuration,
//! with the home directory known or not.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run command_filter -- -max_len=4096 -timeout=2
//! ```

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use aisopod::config::{ApplianceEnvironment, ConfigSource};
use aisopod::policy::{CommandFilter, FilterContext};
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
    let (pick, rest) = data.split_first().unwrap_or((&0, &[]));
    let filters = filters();
    let filter = &filters[usize::from(*pick) % filters.len()];
    let text = String::from_utf8_lossy(rest);
    let judgement = filter.judge(&text);
    assert!(!judgement.rule.is_empty() && !judgement.reason.is_empty());
});
