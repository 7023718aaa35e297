//! Where a path argument points, decided lexically: `~` and `$HOME` become the home
//! directory, relative paths join the known working directory, `.` and `..` fold away,
//! and a word with a wildcard (an unquoted glob or an unknown expansion) stands for every
//! path that starts with its literal prefix. Nothing here touches the filesystem: the
//! filter judges text, and a symlink is judged where it is created (its target is an
//! argument of `ln` like any other).

use super::verdict::Decision;

/// A path as far as it can be known without running anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Place {
    pub root: Root,
    /// Normalized components. With `wild`, the last one may be a partial name.
    pub comps: Vec<String>,
    /// The word had a wildcard: `comps` is only a prefix of the real path(s).
    pub wild: bool,
    /// With `wild`: the last component is cut by the wildcard (`/etc/sha*`).
    pub partial_last: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    /// From `/`.
    Absolute,
    /// From the home directory, whose location is not known.
    Home,
    /// From a working directory that is not known.
    Relative,
}

/// The working directory as far as the walk followed `cd`: absolute, or (with `Home`)
/// under a home directory whose location is not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cwd {
    pub root: Root,
    pub comps: Vec<String>,
}

/// What the resolution needs to know about the machine.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub home: Option<Vec<String>>,
    pub workspace: Option<Vec<String>>,
    pub data_dir: Vec<String>,
    /// The gateway's configuration file, when known (empty otherwise).
    pub config_file: Vec<String>,
}

/// Splits and folds `text` (already absolute or relative) into components.
fn fold(text: &str, mut comps: Vec<String>, relative_base: bool) -> Vec<String> {
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if comps.last().is_some_and(|c| c != "..") {
                    comps.pop();
                } else if relative_base {
                    comps.push("..".into());
                }
            }
            other => comps.push(other.to_string()),
        }
    }
    comps
}

/// Components of an absolute path known from the context.
pub(super) fn abs_comps(path: &std::path::Path) -> Vec<String> {
    fold(&path.to_string_lossy(), Vec::new(), false)
}

impl Layout {
    /// Resolves the literal `text` of a word; `wild_at` is the byte offset of its first
    /// wildcard, if any. `cwd` is the working directory when known.
    pub fn place(&self, text: &str, wild_at: Option<usize>, cwd: Option<&Cwd>) -> Place {
        let wild = wild_at.is_some();
        let literal = match wild_at {
            Some(at) => text.get(..at).unwrap_or(""),
            None => text,
        };
        let partial_last = wild && !literal.is_empty() && !literal.ends_with('/');
        let (root, comps) = if let Some(rest) = literal.strip_prefix('/') {
            (Root::Absolute, fold(rest, Vec::new(), false))
        } else if literal == "~" || literal.starts_with("~/") {
            let rest = literal.get(1..).unwrap_or("");
            match &self.home {
                Some(home) => (Root::Absolute, fold(rest, home.clone(), false)),
                None => (Root::Home, fold(rest, Vec::new(), true)),
            }
        } else if let Some(user_rest) = literal.strip_prefix('~') {
            // ~user: that user's home, usually /home/user (or /root).
            let (user, rest) = user_rest.split_once('/').unwrap_or((user_rest, ""));
            let base = if user == "root" {
                vec!["root".to_string()]
            } else {
                vec!["home".to_string(), user.to_string()]
            };
            (Root::Absolute, fold(rest, base, false))
        } else {
            match cwd {
                Some(Cwd {
                    root: Root::Home,
                    comps,
                }) => (Root::Home, fold(literal, comps.clone(), true)),
                Some(cwd) => (Root::Absolute, fold(literal, cwd.comps.clone(), false)),
                None => (Root::Relative, fold(literal, Vec::new(), true)),
            }
        };
        // A literal that ended in "/" or ".." before the wildcard has no partial name.
        let partial_last = partial_last && !literal.ends_with("/..") && !literal.ends_with("/.");
        Place {
            root,
            comps,
            wild,
            partial_last,
        }
    }
}

/// A location to compare against: components, `*` matching any one component.
type Pattern<'a> = &'a [&'a str];

impl Place {
    fn comp_matches(pattern: &str, comp: &str, partial: bool) -> bool {
        if pattern == "*" {
            return true;
        }
        if partial {
            pattern.starts_with(comp)
        } else {
            pattern == comp
        }
    }

    /// Whether this place is `target` (or, with `children`, something inside it), or
    /// with a wildcard may be.
    fn hits(&self, base: &[String], target: Pattern<'_>, children: bool) -> bool {
        let full: Vec<&str> = base
            .iter()
            .map(String::as_str)
            .chain(target.iter().copied())
            .collect();
        let n = self.comps.len();
        if !self.wild {
            if n < full.len() || (n > full.len() && !children) {
                return false;
            }
            return full
                .iter()
                .zip(&self.comps)
                .all(|(p, c)| Self::comp_matches(p, c, false));
        }
        // Wildcard: the real path starts with `comps` (the last maybe partial), so it may
        // be `full` (or inside it) when the two agree as far as both go.
        for (i, comp) in self.comps.iter().enumerate() {
            let partial = self.partial_last && i + 1 == n;
            match full.get(i) {
                Some(p) => {
                    if !Self::comp_matches(p, comp, partial) {
                        return false;
                    }
                }
                None => return children,
            }
        }
        true
    }

    /// Whether this is under a root-anchored location (home patterns start with `~`).
    fn at(&self, layout: &Layout, pattern: Pattern<'_>, children: bool) -> bool {
        match pattern.split_first() {
            Some((&"~", rest)) => match (&self.root, &layout.home) {
                (Root::Home, _) => self.hits(&[], rest, children),
                (Root::Absolute, Some(home)) => self.hits(home, rest, children),
                (Root::Absolute, None) => false,
                (Root::Relative, _) => false,
            },
            _ => self.root == Root::Absolute && self.hits(&[], pattern, children),
        }
    }

    /// The literal path for messages.
    pub fn display(&self) -> String {
        let joined = self.comps.join("/");
        let text = match self.root {
            Root::Absolute => format!("/{joined}"),
            Root::Home => format!("~/{joined}"),
            Root::Relative => joined,
        };
        if self.wild { format!("{text}*") } else { text }
    }

    fn last(&self) -> Option<&str> {
        self.comps.last().map(String::as_str)
    }
}

/// Credentials and key material: never read or written by a tool.
const SECRET_FILES: &[(&[&str], &str)] = &[
    (&["etc", "shadow"], "the password hashes"),
    (&["etc", "shadow-"], "the password hashes"),
    (&["etc", "gshadow"], "the group password hashes"),
    (&["etc", "sudoers"], "the sudo policy"),
    (&["etc", "sudoers.d"], "the sudo policy"),
    (&["etc", "ssh", "ssh_host_rsa_key"], "an SSH host key"),
    (&["etc", "ssh", "ssh_host_ecdsa_key"], "an SSH host key"),
    (&["etc", "ssh", "ssh_host_ed25519_key"], "an SSH host key"),
    (&["root"], "root's home directory"),
    (&["home", "*", ".ssh"], "SSH keys"),
    (&["~", ".ssh"], "SSH keys"),
    (&["~", ".gnupg"], "GnuPG keys"),
    (&["~", ".aws"], "cloud credentials"),
    (&["~", ".netrc"], "saved passwords"),
    (&["~", ".git-credentials"], "saved git passwords"),
    (&["~", ".pgpass"], "saved database passwords"),
    (&["~", ".docker", "config.json"], "registry credentials"),
    (&["~", ".kube", "config"], "cluster credentials"),
    (&["~", ".config", "aisopod"], "aisopod's saved tokens"),
    (&["~", ".config", "gh"], "GitHub tokens"),
    (&["~", ".config", "hub"], "GitHub tokens"),
    (&["~", ".config", "gcloud"], "cloud credentials"),
    (&["~", ".azure"], "cloud credentials"),
    (&["~", ".npmrc"], "registry tokens"),
    (&["~", ".pypirc"], "registry tokens"),
    (&["~", ".cargo", "credentials"], "registry tokens"),
    (&["~", ".cargo", "credentials.toml"], "registry tokens"),
    (&["~", ".vault-token"], "a Vault token"),
    (&["~", ".terraform.d"], "cloud credentials"),
    (&["var", "lib", "aisopod"], "aisopod's data directory"),
    (
        &["etc", "aisopod"],
        "aisopod's configuration (jwt_secret, API keys)",
    ),
    (&["dev", "mem"], "physical memory"),
    (&["dev", "kmem"], "kernel memory"),
    (&["dev", "port"], "I/O ports"),
    (&["proc", "kcore"], "kernel memory"),
    (&["proc", "*", "mem"], "another process's memory"),
    (
        &["proc", "*", "environ"],
        "another process's environment (API keys)",
    ),
];

/// Names that are secrets wherever they are (for relative paths whose directory is not
/// known, and copies elsewhere).
const SECRET_NAMES: &[&str] = &[
    "master.key",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    ".git-credentials",
    ".netrc",
    ".pgpass",
];
const SECRET_DIRS: &[&str] = &[".ssh", ".gnupg", ".aws"];

/// Files that hold credentials wherever they are (a project's `.env`, a package
/// registry's token file, private keys): reading, copying or encoding one needs approval.
/// Templates meant to be shared (`.env.example`) are not secrets.
const SECRET_FILE_NAMES: &[&str] = &[
    ".env",
    ".envrc",
    ".npmrc",
    ".pypirc",
    ".yarnrc.yml",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".pgpass",
    ".my.cnf",
    ".htpasswd",
    ".vault-token",
    ".s3cfg",
    ".boto",
    "credentials",
    "credentials.json",
    ".credentials",
    "secrets.json",
    "secrets.yaml",
    "secrets.yml",
    "terraform.tfstate",
    "master.key",
];
/// Name prefixes of private keys (`id_rsa`, `id_ed25519_work`); `.pub` files are public.
const SECRET_KEY_PREFIXES: &[&str] = &["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"];
/// Extensions of key stores and private keys (`server.pem`, `tls.key`, `cert.p12`).
const SECRET_EXTENSIONS: &[&str] = &[
    ".pem",
    ".key",
    ".p12",
    ".pfx",
    ".jks",
    ".keystore",
    ".kdbx",
    ".ppk",
    ".env",
];
/// Suffixes that mark a shared template rather than a secret (`.env.example`).
const TEMPLATE_SUFFIXES: &[&str] = &[".example", ".sample", ".template", ".dist", ".defaults"];

/// Shell startup files: writing one runs code in every later shell.
const STARTUP_NAMES: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
    ".kshrc",
    ".mkshrc",
    ".inputrc",
    "config.fish",
];
const STARTUP_SYSTEM: &[&[&str]] = &[
    &["etc", "profile"],
    &["etc", "profile.d"],
    &["etc", "bash.bashrc"],
    &["etc", "environment"],
    &["etc", "zsh"],
    &["etc", "ld.so.preload"],
];

/// Devices whose write destroys a disk.
const BLOCK_DEVICE_PREFIXES: &[&str] = &[
    "sd", "hd", "vd", "xvd", "nvme", "mmcblk", "mtd", "md", "dm-", "loop", "disk", "mapper",
];

/// Top-level directories of the system (a recursive delete there breaks the machine).
const SYSTEM_DIRS: &[&str] = &[
    "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt", "opt",
    "proc", "root", "run", "sbin", "snap", "srv", "sys", "usr", "var",
];
const SCRATCH: &[&[&str]] = &[&["tmp"], &["var", "tmp"], &["dev", "shm"]];

/// A risk found for a path, with the rule that names it.
pub(super) type Risk = (Decision, &'static str, String);

impl Layout {
    /// Whether the place is (or may be) one of the product's own secrets or the host's.
    pub fn secret(&self, place: &Place) -> Option<String> {
        let data: Vec<&str> = self.data_dir.iter().map(String::as_str).collect();
        if !data.is_empty() && place.at(self, &data, true) {
            return Some(format!(
                "{} is aisopod's data directory (keys and store)",
                place.display()
            ));
        }
        for (pattern, what) in SECRET_FILES {
            if place.at(self, pattern, true) {
                return Some(format!("{} holds {what}", place.display()));
            }
        }
        if let Some(why) = self.gateway_config(place) {
            return Some(why);
        }
        let data_name = self.data_dir.last().map(String::as_str).unwrap_or("");
        for (i, comp) in place.comps.iter().enumerate() {
            let partial = place.partial_last && i + 1 == place.comps.len();
            let named = |name: &str| {
                if partial {
                    !comp.is_empty() && name.starts_with(comp.as_str())
                } else {
                    name == comp
                }
            };
            if SECRET_DIRS.iter().any(|d| named(d))
                || (i + 1 == place.comps.len() && SECRET_NAMES.iter().any(|n| named(n)))
                || (data_name.contains("aisopod")
                    && place.root != Root::Absolute
                    && i + 1 < place.comps.len()
                    && named(data_name))
            {
                return Some(format!(
                    "{} is key material or credentials",
                    place.display()
                ));
            }
            if comp == "shadow" || comp == "sudoers" || comp == "gshadow" {
                let parent = i.checked_sub(1).and_then(|p| place.comps.get(p));
                if parent.is_some_and(|p| p == "etc") {
                    return Some(format!(
                        "{} holds password hashes or the sudo policy",
                        place.display()
                    ));
                }
            }
        }
        None
    }

    /// The gateway's configuration file, and any file named like it in a directory named
    /// like its own (`/srv/aisopod/config.toml`, a copy of `aisopod/config.toml`
    /// elsewhere): it holds `jwt_secret` and provider keys.
    fn gateway_config(&self, place: &Place) -> Option<String> {
        let config: Vec<&str> = self.config_file.iter().map(String::as_str).collect();
        if !config.is_empty() && place.at(self, &config, false) {
            return Some(format!(
                "{} is aisopod's configuration file",
                place.display()
            ));
        }
        let (name, parent) = match config.as_slice() {
            [.., parent, name] => (*name, *parent),
            _ => ("config.toml", "aisopod"),
        };
        let n = place.comps.len();
        let last = place.comps.last().map(String::as_str);
        let dir = n
            .checked_sub(2)
            .and_then(|i| place.comps.get(i))
            .map(String::as_str);
        let named_like = |file: Option<&str>, folder: Option<&str>| {
            file.is_some_and(|f| f == name || (f.ends_with(".toml") && f.starts_with("config")))
                && folder.is_some_and(|d| d == parent || d == "aisopod" || d == ".aisopod")
        };
        (!place.partial_last && named_like(last, dir)).then(|| {
            format!(
                "{} is named like aisopod's configuration file (jwt_secret, API keys)",
                place.display()
            )
        })
    }

    fn under(&self, place: &Place, base: Option<&Vec<String>>) -> bool {
        let Some(base) = base else { return false };
        place.root == Root::Absolute
            && place.comps.len() >= base.len()
            && place.comps.iter().zip(base).all(|(a, b)| a == b)
            && !(place.partial_last && place.comps.len() == base.len())
    }

    /// Whether the place's file name is one that holds credentials (`.env`, `.env.local`,
    /// `.npmrc`, `server.pem`, `id_rsa`), wherever it is; a wildcard name counts when a
    /// secret's name starts with its literal part (`.env*`).
    pub fn secret_name(&self, place: &Place) -> Option<String> {
        let last = place.last()?;
        let is_secret = |name: &str| {
            if TEMPLATE_SUFFIXES.iter().any(|t| name.ends_with(t)) || name.ends_with(".pub") {
                return false;
            }
            SECRET_FILE_NAMES.contains(&name)
                || name.starts_with(".env.")
                || SECRET_KEY_PREFIXES.iter().any(|p| name.starts_with(p))
                || SECRET_EXTENSIONS
                    .iter()
                    .any(|e| name.len() > e.len() && name.ends_with(e))
        };
        let hit = if place.partial_last {
            !last.is_empty()
                && (SECRET_FILE_NAMES.iter().any(|n| n.starts_with(last))
                    || ".env.".starts_with(last)
                    || last.starts_with(".env"))
        } else {
            is_secret(last)
        };
        hit.then(|| format!("{} may hold credentials", place.display()))
    }

    /// Whether the place lies strictly inside the known workspace (not the workspace
    /// directory itself).
    pub fn inside_workspace(&self, place: &Place) -> bool {
        self.workspace
            .as_ref()
            .is_some_and(|ws| place.comps.len() > ws.len() && self.under(place, Some(ws)))
    }

    /// Whether the place is the known workspace or lies inside it.
    pub fn under_workspace(&self, place: &Place) -> bool {
        self.under(place, self.workspace.as_ref())
    }

    /// The place lies in a scratch directory or the workspace (writes there are ordinary).
    pub fn scratch_or_workspace(&self, place: &Place) -> bool {
        if self.under(place, self.workspace.as_ref()) {
            return true;
        }
        SCRATCH.iter().any(|dir| {
            let dir: Vec<String> = dir.iter().map(|s| s.to_string()).collect();
            place.comps.len() > dir.len() && self.under(place, Some(&dir))
        })
    }

    /// Reading this place (a file argument, `< file`).
    pub fn read_risk(&self, place: &Place) -> Option<Risk> {
        self.secret(place).map(|why| {
            (
                Decision::Deny,
                "access.sensitive_file",
                format!("reads {why}"),
            )
        })
    }

    /// Writing, truncating, deleting or changing this place.
    pub fn write_risk(&self, place: &Place) -> Option<Risk> {
        if place.root == Root::Absolute
            && let Some(first) = place.comps.first()
        {
            if first == "dev" {
                let name = place.comps.get(1).map(String::as_str).unwrap_or("");
                if place.comps.len() == 2
                    && ["null", "stdout", "stderr", "tty", "zero", "full"].contains(&name)
                    && !place.wild
                {
                    return None;
                }
                if name == "fd" && !place.wild {
                    return None;
                }
                if name == "tcp" || name == "udp" {
                    return Some((
                        Decision::Deny,
                        "network.dev_tcp",
                        format!("opens a network connection through {}", place.display()),
                    ));
                }
                let wild_name = place.wild && place.comps.len() <= 2;
                if wild_name
                    || BLOCK_DEVICE_PREFIXES.iter().any(|p| name.starts_with(p))
                    || ["mem", "kmem", "port"].contains(&name)
                {
                    return Some((
                        Decision::Deny,
                        "destructive.write_device",
                        format!("writes to the device {}", place.display()),
                    ));
                }
                if !place.wild && name == "shm" && place.comps.len() > 2 {
                    return None;
                }
                return Some((
                    Decision::Approve,
                    "write.device",
                    format!("writes to the device {}", place.display()),
                ));
            }
            if first == "proc" && place.comps.get(1).is_some_and(|c| c == "sysrq-trigger") {
                return Some((
                    Decision::Deny,
                    "destructive.sysrq",
                    "writes to /proc/sysrq-trigger (can reboot or halt the machine)".into(),
                ));
            }
        }
        if let Some(git) = place.comps.iter().position(|c| c == ".git")
            && place
                .comps
                .get(git + 1)
                .is_some_and(|c| c == "hooks" || c == "config")
        {
            return Some((
                Decision::Approve,
                "write.git_hooks",
                format!(
                    "writes {}: git runs hooks and configured programs from there later",
                    place.display()
                ),
            ));
        }
        if let Some(why) = self.secret(place) {
            return Some((
                Decision::Deny,
                "access.sensitive_file",
                format!("writes {why}"),
            ));
        }
        if place.root == Root::Absolute
            && place.comps.len() == 2
            && place.comps.first().is_some_and(|c| c == "etc")
            && place
                .comps
                .get(1)
                .is_some_and(|c| c == "passwd" || c == "group")
        {
            return Some((
                Decision::Deny,
                "access.sensitive_file",
                format!("writes the account database {}", place.display()),
            ));
        }
        let startup_name = place.last().is_some_and(|last| {
            STARTUP_NAMES.iter().any(|n| {
                if place.partial_last {
                    n.starts_with(last) && !last.is_empty()
                } else {
                    *n == last
                }
            })
        });
        if startup_name || STARTUP_SYSTEM.iter().any(|p| place.at(self, p, true)) {
            return Some((
                Decision::Approve,
                "persistence.shell_startup",
                format!(
                    "writes the shell startup file {} (its code would run in every later shell)",
                    place.display()
                ),
            ));
        }
        if place.wild && place.comps.is_empty() && place.root != Root::Absolute {
            return Some((
                Decision::Approve,
                "write.unresolved_target",
                "writes to a path that is only known when the command runs".into(),
            ));
        }
        if self.scratch_or_workspace(place) {
            return None;
        }
        match place.root {
            Root::Absolute => {
                if let Some(home) = &self.home
                    && self.under(place, Some(home))
                {
                    let inner = place.comps.get(home.len());
                    if place.comps.len() == home.len()
                        || inner.is_some_and(|c| c.starts_with('.'))
                        || place.wild && place.comps.len() == home.len() + 1
                    {
                        return Some((
                            Decision::Approve,
                            "write.home_config",
                            format!("changes {} in the home directory", place.display()),
                        ));
                    }
                    return None;
                }
                Some((
                    Decision::Approve,
                    "write.system_path",
                    format!("writes outside the workspace, to {}", place.display()),
                ))
            }
            Root::Home => {
                if place.comps.first().is_none_or(|c| c.starts_with('.')) {
                    Some((
                        Decision::Approve,
                        "write.home_config",
                        format!("changes {} in the home directory", place.display()),
                    ))
                } else {
                    None
                }
            }
            Root::Relative => None,
        }
    }

    /// Why a recursive delete (or recursive chmod/chown) of this place would break the
    /// system or lose the user's home, if it would.
    pub fn precious_tree(&self, place: &Place) -> Option<String> {
        match place.root {
            Root::Home => {
                if place.comps.len() <= 1 {
                    return Some(format!(
                        "{} is the home directory or directly in it",
                        place.display()
                    ));
                }
                if place.comps.first().is_some_and(|c| c == "..") {
                    return Some(format!(
                        "{} leaves the home directory for a place that is not known (it may be /)",
                        place.display()
                    ));
                }
                None
            }
            Root::Relative => None,
            Root::Absolute => {
                if place.comps.is_empty() {
                    return Some("/ is the whole filesystem".into());
                }
                if let Some(home) = &self.home
                    && self.under(place, Some(home))
                    && !self.under(place, self.workspace.as_ref())
                    && place.comps.len() <= home.len() + 1
                {
                    return Some(format!(
                        "{} is the home directory or directly in it",
                        place.display()
                    ));
                }
                if self.scratch_or_workspace(place) {
                    return None;
                }
                let first = place.comps.first().map(String::as_str).unwrap_or("");
                let top_partial = place.partial_last && place.comps.len() == 1;
                let system = if top_partial {
                    SYSTEM_DIRS.iter().any(|d| d.starts_with(first))
                } else {
                    SYSTEM_DIRS.contains(&first)
                };
                if system {
                    // /home itself and the homes in it; deeper under /home is someone's files.
                    if first == "home" && place.comps.len() > 2 {
                        return None;
                    }
                    return Some(format!("{} is a system directory", place.display()));
                }
                None
            }
        }
    }

    /// Whether reading this directory tree would take a secret with it.
    pub fn contains_secret(&self, place: &Place) -> bool {
        if place.wild {
            return false;
        }
        let probe = |path: &[&str]| -> bool {
            match path.split_first() {
                Some((&"~", rest)) => match (&place.root, &self.home) {
                    (Root::Home, _) => rest.starts_with_comps(&place.comps),
                    (Root::Absolute, Some(home)) => {
                        let full: Vec<&str> = home
                            .iter()
                            .map(String::as_str)
                            .chain(rest.iter().copied())
                            .collect();
                        full.starts_with_comps(&place.comps)
                    }
                    _ => false,
                },
                _ => place.root == Root::Absolute && path.starts_with_comps(&place.comps),
            }
        };
        SECRET_FILES.iter().any(|(p, _)| probe(p))
            || (!self.data_dir.is_empty() && {
                let data: Vec<&str> = self.data_dir.iter().map(String::as_str).collect();
                place.root == Root::Absolute && data.starts_with_comps(&place.comps)
            })
    }
}

trait StartsWithComps {
    fn starts_with_comps(&self, prefix: &[String]) -> bool;
}

impl StartsWithComps for [&str] {
    fn starts_with_comps(&self, prefix: &[String]) -> bool {
        prefix.len() < self.len()
            && prefix
                .iter()
                .zip(self.iter())
                .all(|(a, b)| *b == "*" || a == b)
    }
}

/// Whether a file name is a block device node in /dev (for `dd`, `shred`, `mkfs`...).
pub(super) fn is_disk_device(place: &Place) -> bool {
    place.root == Root::Absolute
        && place.comps.first().is_some_and(|c| c == "dev")
        && place.comps.get(1).is_some_and(|name| {
            BLOCK_DEVICE_PREFIXES.iter().any(|p| name.starts_with(p))
                || (place.wild && place.comps.len() <= 2)
        })
}
