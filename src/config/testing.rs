//! Configurations for the unit tests of the modules above `config`: an environment with
//! no variables and the settings an in-process gateway starts with in a temporary
//! directory. Compiled only for tests; it never reads the process's environment, so a
//! variable set on the machine cannot change what a test sees.

use std::path::Path;

use super::{Config, ConfigSource, Environment};

/// An environment with no variables, run from a checkout (not installed).
#[derive(Debug)]
pub struct NoEnv;

impl Environment for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }

    fn installed(&self) -> bool {
        false
    }
}

/// The TOML of a gateway on a loopback port with TLS off in local mode, keeping its data
/// under `data_dir`; `extra` is TOML whose keys are added to (or replace) those, table by
/// table, so `"[server]\nshutdown_timeout = \"2s\""` keeps the loopback `bind`.
pub fn local_gateway_toml(data_dir: &Path, extra: &str) -> String {
    let mut base = toml::Table::new();
    base.insert("server".into(), table([("bind", "127.0.0.1:0".into())]));
    base.insert(
        "storage".into(),
        table([("data_dir", data_dir.display().to_string().into())]),
    );
    base.insert("tls".into(), table([("mode", "off".into())]));
    base.insert("security".into(), table([("mode", "local".into())]));
    let extra: toml::Table = extra
        .parse()
        .unwrap_or_else(|err| panic!("extra TOML {extra:?}: {err}"));
    merge(&mut base, extra);
    base.to_string()
}

/// [`local_gateway_toml`], validated as a configuration with no file behind it.
pub fn local_gateway(data_dir: &Path, extra: &str) -> Config {
    let text = local_gateway_toml(data_dir, extra);
    super::parse(&text, ConfigSource::Defaults, &NoEnv).unwrap_or_else(|err| panic!("{err}"))
}

fn table<const N: usize>(entries: [(&str, toml::Value); N]) -> toml::Value {
    toml::Value::Table(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(more)) => merge(inner, more),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_keys_join_their_tables_and_replace_only_what_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let config = local_gateway(
            dir.path(),
            "[server]\nshutdown_timeout = \"2s\"\n[tools.sandbox]\nenabled = false\n",
        );
        assert_eq!(config.server.bind.to_string(), "127.0.0.1:0");
        assert_eq!(config.server.shutdown_timeout.as_secs(), 2);
        assert_eq!(config.storage.data_dir, dir.path());
        assert_eq!(config.tls.mode, crate::config::TlsMode::Off);
        assert!(!config.tools.sandbox.enabled);
        let moved = local_gateway(dir.path(), "[server]\nbind = \"127.0.0.1:4000\"\n");
        assert_eq!(moved.server.bind.to_string(), "127.0.0.1:4000");
    }
}
