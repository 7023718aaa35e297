//! Rules for programs that change the running system: power, services, processes,
//! scheduled jobs, accounts, mounts, kernel modules and boot settings, one function per
//! family. They never judge file contents or the network.

use super::common::*;

/// Stopping or restarting the machine.
pub(super) fn power(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    call.deny(
        analyzer,
        "destructive.power",
        format!("{name} stops or restarts the machine"),
    );
}

/// `init`/`telinit` with a runlevel that halts, reboots or isolates.
pub(super) fn init(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    let first_op = call.first_operand();
    if ["0", "6", "1", "s", "S"].contains(&first_op) {
        call.deny(
            analyzer,
            "destructive.power",
            format!("{name} {first_op} halts, reboots or isolates the machine"),
        );
    }
}

/// `systemctl`/`loginctl`: power verbs are denied, service changes need approval.
pub(super) fn systemctl(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    let first_op = call.first_operand();
    let sub = first_op;
    if [
        "poweroff",
        "reboot",
        "halt",
        "kexec",
        "suspend",
        "hibernate",
        "hybrid-sleep",
        "rescue",
        "emergency",
        "isolate",
        "soft-reboot",
        "suspend-then-hibernate",
    ]
    .contains(&sub)
    {
        call.deny(
            analyzer,
            "destructive.power",
            format!("{name} {sub} stops, suspends or isolates the machine"),
        );
    } else if ["stop", "disable", "mask", "kill"].contains(&sub) {
        call.deny(
            analyzer,
            "destructive.disable_service",
            format!("{name} {sub} stops or disables a service"),
        );
    } else if ![
        "status",
        "show",
        "cat",
        "list-units",
        "list-unit-files",
        "is-active",
        "is-enabled",
        "is-failed",
        "list-timers",
        "list-sockets",
        "list-dependencies",
        "help",
        "--version",
        "get-default",
        "",
    ]
    .contains(&sub)
    {
        call.approve(
            analyzer,
            "system.service_change",
            format!("{name} {sub} changes services"),
        );
    }
}

/// `service NAME stop|restart|...`.
pub(super) fn service(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let ops = call.operands();
    let first_op = call.first_operand();
    let action = ops.get(1).map(|w| w.text.as_str()).unwrap_or("");
    if ["stop", "disable"].contains(&action) {
        call.deny(
            analyzer,
            "destructive.disable_service",
            format!("service {first_op} {action} stops a service"),
        );
    } else if !["status", ""].contains(&action) || first_op == "--status-all" {
        call.approve(
            analyzer,
            "system.service_change",
            format!("service {first_op} {action} changes a service"),
        );
    }
}

/// Enabling and disabling services at boot.
pub(super) fn boot_services(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, args, .. } = *call;
    if args
        .iter()
        .any(|a| ["disable", "remove", "off", "del", "delete"].contains(&a.text.as_str()))
    {
        call.deny(
            analyzer,
            "destructive.disable_service",
            format!("{name} disables a service"),
        );
    } else {
        call.approve(
            analyzer,
            "system.service_change",
            format!("{name} changes services"),
        );
    }
}

/// Ending processes.
pub(super) fn kill(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, args, .. } = *call;
    let targets: Vec<&str> = args
        .iter()
        .map(|a| a.text.as_str())
        .filter(|t| !t.starts_with('-') || *t == "-1")
        .collect();
    let all = name == "killall5"
        || name == "kill" && (targets.contains(&"-1") || targets.contains(&"1"))
        || (name == "pkill" || name == "killall")
            && args.iter().any(|a| {
                a.text == "."
                    || a.text == ".*"
                    || a.text == "-u" && args.iter().any(|b| b.text == "root")
            });
    if all {
        call.deny(
            analyzer,
            "destructive.kill_all",
            format!("{name} signals every process (or init)"),
        );
    } else if name != "kill"
        || targets
            .iter()
            .any(|t| t.chars().all(|c| c.is_ascii_digit()))
    {
        call.approve(
            analyzer,
            "process.kill",
            format!("{name} ends processes that may not belong to the task"),
        );
    }
}

/// `crontab`: installing a table schedules commands.
pub(super) fn crontab(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { args, .. } = *call;
    if !args
        .iter()
        .all(|a| a.text == "-l" || a.text == "-u" || a.text == "--list")
        || args.is_empty()
    {
        call.approve(
            analyzer,
            "persistence.cron",
            "crontab changes scheduled commands".into(),
        );
    }
}

/// `at`/`batch`: scheduling commands.
pub(super) fn at(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    call.approve(
        analyzer,
        "persistence.cron",
        format!("{name} schedules commands"),
    )
}

/// Changing user accounts or groups.
pub(super) fn accounts(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    call.approve(
        analyzer,
        "system.accounts",
        format!("{name} changes user accounts or groups"),
    );
}

/// Mounts, kernel modules, file system tools, boot loaders and kernel settings.
pub(super) fn kernel_and_storage(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, args, .. } = *call;
    if name == "mount" && args.is_empty()
        || name == "sysctl"
            && !args
                .iter()
                .any(|a| a.text == "-w" || a.text.contains('=') || a.text == "-p")
        || name == "swapon" && args.iter().all(|a| a.text == "--show" || a.text == "-s")
    {
        return;
    }
    let rule = if ["debugfs"].contains(&name) {
        "access.raw_disk"
    } else {
        "system.configuration"
    };
    call.approve(
        analyzer,
        rule,
        format!("{name} changes the system's configuration, disks or kernel"),
    );
}

/// `history -c`/`-w`: rewriting the shell history.
pub(super) fn history(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { args, .. } = *call;
    if args
        .iter()
        .any(|a| a.text == "-c" || a.text == "-w" || a.text == "-d")
    {
        call.approve(
            analyzer,
            "evasion.history",
            "history changes the shell history".into(),
        );
    }
}
