//! Shell variables that change which code later commands run (`PATH`, `LD_PRELOAD`,
//! `GIT_SSH_COMMAND`, `*_PAGER`, ...), judged where a line sets them: before a command,
//! alone, or through `env NAME=VALUE`. Settings inside a variable's value are
//! `settings`' concern.

use super::common::*;

/// Variables that change which code later runs.
const DANGEROUS_VARIABLES: &[&str] = &[
    "PATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "BASH_ENV",
    "ENV",
    "PROMPT_COMMAND",
    "IFS",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5LIB",
    "PERL5OPT",
    "RUBYLIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_CONFIG_GLOBAL",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
];

/// Variables, by name suffix, that name a program to run (`GIT_PAGER`, `MANPAGER`,
/// `SYSTEMD_PAGER`, `GIT_EDITOR`, `SUDO_ASKPASS`, `CARGO_TARGET_..._RUNNER`).
const DANGEROUS_VARIABLE_SUFFIXES: &[&str] = &["PAGER", "EDITOR", "ASKPASS", "_RUNNER"];

/// Variables, by name prefix, that load code or configuration naming programs
/// (`LD_AUDIT`, `DYLD_INSERT_LIBRARIES`, `GIT_CONFIG_KEY_0`, `BASH_FUNC_x%%`, `LESSOPEN`).
const DANGEROUS_VARIABLE_PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "GIT_CONFIG",
    "BASH_FUNC_",
    "LESSOPEN",
    "LESSCLOSE",
    "LESSKEY",
    "LESSEDIT",
];

/// More variables that make an ordinary program run another one or read configuration
/// from elsewhere (a `HOME` or `XDG_CONFIG_HOME` of the line's choosing brings its own
/// `.gitconfig` with a pager).
const DANGEROUS_VARIABLES_MORE: &[&str] = &[
    "GIT_EXTERNAL_DIFF",
    "GIT_PROXY_COMMAND",
    "GIT_TEMPLATE_DIR",
    "GIT_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "HOME",
    "XDG_CONFIG_HOME",
    "ZDOTDIR",
    "SHELL",
    "MANOPT",
    "BROWSER",
    "TAR_OPTIONS",
    "MAKEFLAGS",
    "MFLAGS",
    "GCC_EXEC_PREFIX",
    "COMPILER_PATH",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTDOC",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_HOME",
    "PERL5DB",
    "PERLLIB",
    "PYTHONBREAKPOINT",
    "PYTHONWARNINGS",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "GCONV_PATH",
    "NPM_CONFIG_SCRIPT_SHELL",
    "npm_config_script_shell",
    "npm_config_node_options",
    "GOFLAGS",
];

/// Compiler flag variables are ordinary, unless their value names a program to run.
const FLAG_VARIABLES: &[&str] = &["CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS"];

/// Whether setting `name` to `value` changes which code later commands run.
pub(super) fn dangerous_variable(name: &str, value: &str) -> bool {
    DANGEROUS_VARIABLES.contains(&name)
        || DANGEROUS_VARIABLES_MORE.contains(&name)
        || DANGEROUS_VARIABLE_SUFFIXES
            .iter()
            .any(|s| name.ends_with(s))
        || DANGEROUS_VARIABLE_PREFIXES
            .iter()
            .any(|p| name.starts_with(p))
        || (FLAG_VARIABLES.contains(&name)
            && [
                "-wrapper",
                "-fplugin",
                "-B",
                "-specs",
                "linker",
                "--ld-path",
            ]
            .iter()
            .any(|f| value.contains(f)))
}

/// An assignment before a command (`X=1 cmd`) or alone (`X=1`).
pub(crate) fn assignment(
    analyzer: &mut Analyzer<'_>,
    cmd: Option<usize>,
    name: &str,
    value: &Word,
) {
    super::super::settings::environment(analyzer, cmd, name, value, 0);
    if dangerous_variable(name, &value.text) {
        analyzer.find(
            cmd,
            Decision::Approve,
            "env.dangerous_variable",
            format!("sets {name}, which changes what code later commands run"),
            false,
        );
    }
    if value.from_network {
        analyzer.find(
            cmd,
            Decision::Approve,
            "network.read",
            format!("stores data read from the network in {name}"),
            false,
        );
    }
}
