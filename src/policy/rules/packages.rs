//! Rules for package managers and containers (`pip`, `npm`, `cargo install`, `apt`,
//! `docker`), one function per family: installing or running software from the network
//! needs approval. They never judge the code a package runs once installed.

use super::common::*;
use super::shells::pip;

/// `pip`, `pipx`, `uv`: installing from the network needs approval.
pub(super) fn python_packages(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call {
        index, name, args, ..
    } = *call;
    let ops = call.operands();
    let first_op = call.first_operand();
    if name == "uv" {
        if ops.first().is_some_and(|w| w.text == "pip") {
            pip(analyzer, index, args.get(1..).unwrap_or(&[]));
        } else if ops
            .first()
            .is_some_and(|w| ["add", "tool", "sync"].contains(&w.text.as_str()))
        {
            call.approve(
                analyzer,
                "network.package_install",
                format!("uv {first_op} installs packages from the network"),
            );
        }
    } else if name == "pipx" {
        if ["install", "run", "inject", "upgrade"].contains(&first_op) {
            call.approve(
                analyzer,
                "network.package_install",
                format!("pipx {first_op} installs packages from the network"),
            );
        }
    } else {
        pip(analyzer, index, args);
    }
}

/// `npm`, `pnpm`, `yarn`, `bun`: installs and package scripts.
pub(super) fn node_packages(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, args, .. } = *call;
    let first_op = call.first_operand();
    if [
        "i",
        "install",
        "ci",
        "add",
        "update",
        "upgrade",
        "uninstall",
        "remove",
        "rm",
        "dlx",
        "exec",
        "x",
        "link",
        "publish",
        "global",
    ]
    .contains(&first_op)
        || (name == "yarn" && args.is_empty())
    {
        call.approve(
            analyzer,
            "network.package_install",
            format!(
                "{name} {first_op} installs or runs packages from the network (their install scripts run)"
            ),
        );
    }
}

/// `npx` and its kin download and run a package.
pub(super) fn package_runners(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    call.approve(
        analyzer,
        "network.package_install",
        format!("{name} downloads and runs a package"),
    );
}

/// Language and user package managers: installs need approval.
pub(super) fn language_packages(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    let ops = call.operands();
    let first_op = call.first_operand();
    if [
        "install",
        "get",
        "add",
        "update",
        "upgrade",
        "remove",
        "uninstall",
        "publish",
        "create",
        "self",
        "toolchain",
        "refresh",
    ]
    .contains(&first_op)
        || ["cpan", "cpanm"].contains(&name) && !ops.is_empty()
    {
        call.approve(
            analyzer,
            "network.package_install",
            format!("{name} {first_op} installs or removes software"),
        );
    }
}

/// System package managers: anything but queries changes installed software.
pub(super) fn system_packages(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, args, .. } = *call;
    let first_op = call.first_operand();
    let readonly = [
        "list", "search", "show", "policy", "info", "-l", "-L", "-s", "-q", "-Q", "-Ss", "-Qi",
        "-Si", "-qa", "--list", "--search", "--info", "-S", "madison", "depends", "rdepends",
    ]
    .contains(&first_op)
        || ["search", "show", "list", "info", "query"].contains(&first_op)
        || args.first().is_some_and(|a| {
            [
                "-l", "-L", "-s", "-S", "-q", "-Q", "-Qi", "-Ss", "-Si", "-Qs", "--list",
                "--status", "-qa", "-qi",
            ]
            .contains(&a.text.as_str())
        });
    if !readonly && !args.is_empty() {
        call.approve(
            analyzer,
            "system.package_change",
            format!("{name} installs, removes or upgrades system packages"),
        );
    }
}

/// Containers and virtual machines.
pub(super) fn containers(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    let first_op = call.first_operand();
    if [
        "run", "exec", "rm", "rmi", "kill", "stop", "delete", "apply", "create", "cp", "prune",
        "system", "build", "push", "pull", "start", "restart", "destroy", "undefine", "load",
        "import", "volume", "network", "compose",
    ]
    .contains(&first_op)
    {
        call.approve(
            analyzer,
            "system.containers",
            format!("{name} {first_op} changes containers or runs code in them"),
        );
    }
}
