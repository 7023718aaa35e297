//! The checks on file modes: the data directory, `master.key` (and a pending next key),
//! the TLS private keys, and the config file; and `--fix`, which repairs exactly these
//! modes and nothing else (never an owner, never a file's content, never a file it did
//! not find wrong).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::keys::secrets::master_key_path;

use super::catalog::finding;
use super::findings::Finding;

/// What a checked path is, which decides the mode it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// The data directory: 0700.
    DataDir,
    /// `master.key` or the next key during a rotation: 0600.
    MasterKey,
    /// A TLS private key: 0600.
    TlsKey,
    /// The config file: never writable by group or others; not readable by others when
    /// it holds secrets in clear.
    Config { holds_secrets: bool },
}

impl FileRole {
    /// The permission bits this role must not have.
    fn forbidden(self) -> u32 {
        match self {
            FileRole::DataDir | FileRole::MasterKey | FileRole::TlsKey => 0o077,
            FileRole::Config {
                holds_secrets: true,
            } => 0o026,
            FileRole::Config {
                holds_secrets: false,
            } => 0o022,
        }
    }
}

/// A path to check, with its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub role: FileRole,
}

/// The paths this configuration relies on. `config_file` is the loaded file, if any;
/// `config_secrets` whether it holds secrets in clear.
pub fn targets(config: &Config, config_file: Option<&Path>, config_secrets: bool) -> Vec<Target> {
    let data_dir = &config.storage.data_dir;
    let mut targets = vec![
        Target {
            path: data_dir.clone(),
            role: FileRole::DataDir,
        },
        Target {
            path: master_key_path(data_dir),
            role: FileRole::MasterKey,
        },
        Target {
            path: data_dir.join(crate::store::NEXT_KEY_FILE),
            role: FileRole::MasterKey,
        },
    ];
    targets.extend(
        crate::tls::key_files(&config.tls, data_dir)
            .into_iter()
            .map(|path| Target {
                path,
                role: FileRole::TlsKey,
            }),
    );
    if let Some(path) = config_file {
        targets.push(Target {
            path: path.to_path_buf(),
            role: FileRole::Config {
                holds_secrets: config_secrets,
            },
        });
    }
    targets
}

fn mode_of(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|meta| meta.permissions().mode() & 0o7777)
}

/// A finding for each target whose mode is wrong (missing paths are not findings).
pub fn check(targets: &[Target]) -> Vec<Finding> {
    let mut found = Vec::new();
    for target in targets {
        let Some(mode) = mode_of(&target.path) else {
            continue;
        };
        let wrong = mode & target.role.forbidden();
        if wrong == 0 {
            continue;
        }
        let path = target.path.display();
        let shown = format!("{path} has mode {:03o}", mode & 0o777);
        let wanted = repaired(mode, target.role) & 0o777;
        let fix = format!("chmod {wanted:o} {path} (or run `aisopod security audit --fix`)");
        match target.role {
            FileRole::DataDir => found.push(finding(
                "files.data_dir_mode",
                format!("{shown}: other users can list or change the store, keys and certificates"),
                fix,
            )),
            FileRole::MasterKey => found.push(finding(
                "files.master_key_mode",
                format!(
                    "{shown}: whoever reads it can decrypt every sealed secret and forge sessions"
                ),
                fix,
            )),
            FileRole::TlsKey => found.push(finding(
                "files.tls_key_mode",
                format!("{shown}: whoever reads it can impersonate this device"),
                fix,
            )),
            FileRole::Config { .. } => {
                if wrong & 0o022 != 0 {
                    found.push(finding(
                        "files.config_writable",
                        format!("{shown}: other users can change how the gateway runs"),
                        fix.clone(),
                    ));
                }
                if wrong & 0o004 != 0 {
                    found.push(finding(
                        "files.config_readable",
                        format!("{shown} and holds secrets in clear"),
                        fix,
                    ));
                }
            }
        }
    }
    found
}

/// The data directory's permission bits when group or others have any (`None` when it
/// is private or missing). Opening the store makes it private again, so a command that
/// opens the store asks this first.
pub fn loose_data_dir(config: &Config) -> Option<u32> {
    mode_of(&config.storage.data_dir).filter(|mode| mode & FileRole::DataDir.forbidden() != 0)
}

/// What to add to a report made after opening the store made the data directory private
/// again (it was `was`): a finding, or with `fix` a line saying it was repaired.
pub fn tightened_on_open(config: &Config, was: u32, fix: bool) -> (Vec<Finding>, Vec<String>) {
    let path = config.storage.data_dir.display();
    let now = mode_of(&config.storage.data_dir).unwrap_or(was) & 0o777;
    if fix {
        return (
            Vec::new(),
            vec![format!("chmod {now:o} {path} (was {:03o})", was & 0o777)],
        );
    }
    (
        vec![finding(
            "files.data_dir_mode",
            format!(
                "{path} had mode {:03o} until this audit opened the store, which set it to {now:o}: other users could list or change the store, keys and certificates, and something made it so",
                was & 0o777
            ),
            "find what loosened it (a deployment script, a restore by hand) and keep it at 700",
        )],
        Vec::new(),
    )
}

/// The mode a target is given by `--fix`: the forbidden bits removed, nothing added.
fn repaired(mode: u32, role: FileRole) -> u32 {
    mode & !role.forbidden()
}

/// Repairs the mode of each target that [`check`] finds wrong; one line per change or
/// failure, naming the path and the old and new modes.
pub fn fix(targets: &[Target]) -> Vec<String> {
    let mut done = Vec::new();
    for target in targets {
        let Some(mode) = mode_of(&target.path) else {
            continue;
        };
        if mode & target.role.forbidden() == 0 {
            continue;
        }
        let new = repaired(mode, target.role);
        let path = target.path.display();
        match std::fs::set_permissions(&target.path, std::fs::Permissions::from_mode(new)) {
            Ok(()) => done.push(format!(
                "chmod {:o} {path} (was {:03o})",
                new & 0o777,
                mode & 0o777
            )),
            Err(err) => done.push(format!(
                "could not chmod {:o} {path} (mode {:03o}): {err}",
                new & 0o777,
                mode & 0o777
            )),
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn wrong_modes_are_found_fixed_and_then_gone() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let key = data.join("master.key");
        let tls = data.join("key.pem");
        let config = dir.path().join("config.toml");
        for file in [&key, &tls, &config] {
            std::fs::write(file, "x").unwrap();
        }
        set_mode(&data, 0o755);
        set_mode(&key, 0o644);
        set_mode(&tls, 0o640);
        set_mode(&config, 0o666);
        let targets = vec![
            Target {
                path: data.clone(),
                role: FileRole::DataDir,
            },
            Target {
                path: key.clone(),
                role: FileRole::MasterKey,
            },
            Target {
                path: tls.clone(),
                role: FileRole::TlsKey,
            },
            Target {
                path: config.clone(),
                role: FileRole::Config {
                    holds_secrets: true,
                },
            },
            Target {
                path: data.join("missing.key"),
                role: FileRole::TlsKey,
            },
        ];
        let ids: Vec<String> = check(&targets).into_iter().map(|f| f.id).collect();
        assert_eq!(
            ids,
            [
                "files.data_dir_mode",
                "files.master_key_mode",
                "files.tls_key_mode",
                "files.config_writable",
                "files.config_readable"
            ]
        );
        let done = fix(&targets);
        assert_eq!(done.len(), 4, "{done:?}");
        assert!(done[1].starts_with(&format!("chmod 600 {} (was 644)", key.display())));
        assert_eq!(mode_of(&data), Some(0o700));
        assert_eq!(mode_of(&key), Some(0o600));
        assert_eq!(mode_of(&tls), Some(0o600));
        // Owner and group keep what they had; only others' read and all foreign writes go.
        assert_eq!(mode_of(&config), Some(0o640));
        assert!(check(&targets).is_empty());
        assert!(fix(&targets).is_empty());
    }

    #[test]
    fn a_config_without_secrets_may_be_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "").unwrap();
        set_mode(&config, 0o644);
        let target = [Target {
            path: config,
            role: FileRole::Config {
                holds_secrets: false,
            },
        }];
        assert!(check(&target).is_empty());
    }
}
