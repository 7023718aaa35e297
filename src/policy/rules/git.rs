//! Rules for `git`: the subcommands that discard work, rewrite history, push, serve or
//! change configuration, and the ways git runs other programs (`-c core.pager=...`,
//! `--config-env`, aliases, `rebase -x`, `bisect run`, `submodule foreach`, external
//! `git-*` commands). The keys whose value is a command and the built-in subcommands are
//! tables ([`GIT_COMMAND_KEYS`], [`GIT_SUBCOMMANDS`]). Which hosts git reaches is judged
//! by `network` in `mod.rs`.

use super::common::*;
use super::networking::host_check;

/// The entry in the program table.
pub(super) fn judge(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    git(analyzer, call.index, call.args, call.depth);
}

/// Git configuration keys whose value is a command git runs (`core.pager`,
/// `alias.x = !cmd`, `diff.x.textconv`, `filter.x.clean`).
pub(crate) const GIT_COMMAND_KEYS: &[&str] = &[
    "pager",
    "editor",
    "sshcommand",
    "askpass",
    "program",
    "external",
    "textconv",
    "clean",
    "smudge",
    "process",
    "driver",
    "helper",
    "fsmonitor",
    "command",
    "cmd",
    "hookspath",
    "packobjectshook",
    "receivepack",
    "uploadpack",
    "proxy",
];

/// Git subcommands (built in); anything else is an alias or an external `git-*`
/// program, which may run any command.
const GIT_SUBCOMMANDS: &[&str] = &[
    "add",
    "am",
    "annotate",
    "apply",
    "archive",
    "bisect",
    "blame",
    "branch",
    "bundle",
    "cat-file",
    "check-attr",
    "check-ignore",
    "check-mailmap",
    "checkout",
    "cherry",
    "cherry-pick",
    "citool",
    "clean",
    "clone",
    "commit",
    "commit-tree",
    "config",
    "count-objects",
    "credential",
    "describe",
    "diff",
    "diff-files",
    "diff-index",
    "diff-tree",
    "difftool",
    "fetch",
    "for-each-ref",
    "format-patch",
    "fsck",
    "gc",
    "grep",
    "hash-object",
    "help",
    "init",
    "instaweb",
    "log",
    "ls-files",
    "ls-remote",
    "ls-tree",
    "merge",
    "merge-base",
    "merge-file",
    "mergetool",
    "mv",
    "name-rev",
    "notes",
    "pull",
    "push",
    "range-diff",
    "rebase",
    "reflog",
    "remote",
    "repack",
    "replace",
    "request-pull",
    "reset",
    "restore",
    "rev-list",
    "rev-parse",
    "revert",
    "rm",
    "send-email",
    "shortlog",
    "show",
    "show-branch",
    "show-ref",
    "sparse-checkout",
    "stash",
    "status",
    "submodule",
    "switch",
    "symbolic-ref",
    "tag",
    "update-index",
    "update-ref",
    "var",
    "verify-commit",
    "version",
    "whatchanged",
    "worktree",
    "write-tree",
    "daemon",
    "filter-branch",
    "filter-repo",
    "lfs",
    "maintenance",
    "prune",
    "shortlog",
    "stage",
    "unpack-objects",
    "verify-pack",
];

/// `git -c key=value`: configuration that may name a program; a command value is judged.
fn git_config_value(analyzer: &mut Analyzer<'_>, index: usize, setting: &str, depth: usize) {
    analyzer.find(
        Some(index),
        Decision::Approve,
        "vcs.config",
        "git -c/--config-env sets configuration (it can name programs to run)",
        false,
    );
    let Some((key, value)) = setting.split_once('=') else {
        return;
    };
    let key = key.to_ascii_lowercase();
    let runs = key.starts_with("alias.")
        || GIT_COMMAND_KEYS
            .iter()
            .any(|k| key.rsplit('.').next() == Some(k));
    if runs {
        let code = value.strip_prefix('!').unwrap_or(value);
        analyzer.code_string(index, code, depth, false);
    }
}

fn git(analyzer: &mut Analyzer<'_>, index: usize, args: &[Word], depth: usize) {
    let cmd = Some(index);
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a.text == "-c" || a.text == "--config-env" {
            let value = args.get(i + 1).map(|w| w.text.clone()).unwrap_or_default();
            git_config_value(analyzer, index, &value, depth);
            i += 2;
            continue;
        }
        // The value glued to the option (`--config-env=K=V`, `-cK=V`) is read the same.
        if let Some(value) = a
            .text
            .strip_prefix("--config-env=")
            .or_else(|| a.text.strip_prefix("-c").filter(|v| !v.is_empty()))
        {
            git_config_value(analyzer, index, value, depth);
            i += 1;
            continue;
        }
        if a.text.starts_with("--exec-path=") || a.text.starts_with("--git-dir") {
            analyzer.find(
                cmd,
                Decision::Approve,
                "vcs.foreign_repo",
                format!(
                    "git {} takes its programs or configuration from elsewhere",
                    a.text
                ),
                true,
            );
        }
        if a.text == "-C" {
            if let Some(dir) = args.get(i + 1) {
                let place = analyzer.place(dir);
                let in_workspace = analyzer.filter.layout.inside_workspace(&place)
                    || analyzer.filter.layout.workspace.as_ref() == Some(&place.comps);
                if !in_workspace || written_by_line(analyzer, dir) {
                    analyzer.find(
                        cmd,
                        Decision::Approve,
                        "vcs.foreign_repo",
                        format!(
                            "git -C {} uses a repository (and its configuration, which can name programs) outside the workspace",
                            dir.text
                        ),
                        true,
                    );
                }
            }
            i += 2;
            continue;
        }
        if a.text == "--git-dir" || a.text == "--work-tree" || a.text == "--namespace" {
            i += 2;
            continue;
        }
        if !is_option(a) {
            break;
        }
        i += 1;
    }
    let Some(sub) = args.get(i) else { return };
    let rest = args.get(i + 1..).unwrap_or(&[]);
    let approve = |analyzer: &mut Analyzer<'_>, rule: &str, reason: String| {
        analyzer.find(cmd, Decision::Approve, rule, reason, true)
    };
    // Options of any subcommand that name a program to run.
    let mut j = 0;
    while let Some(a) = rest.get(j) {
        let exec_opt = match sub.text.as_str() {
            "rebase" => &["-x", "--exec"][..],
            "difftool" | "mergetool" => &["-x", "--extcmd"][..],
            "grep" => &["-O", "--open-files-in-pager"][..],
            "clone" | "fetch" | "pull" | "ls-remote" | "archive" | "push" | "submodule" => {
                &["-u", "--upload-pack", "--receive-pack", "--exec"][..]
            }
            _ => &[][..],
        };
        for o in exec_opt {
            let value = if a.text == *o {
                j += 1;
                rest.get(j).map(|w| w.text.clone())
            } else {
                a.text
                    .strip_prefix(o)
                    .and_then(|v| {
                        v.strip_prefix('=')
                            .or(if o.len() == 2 { Some(v) } else { None })
                    })
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            };
            if let Some(value) = value {
                analyzer.find(
                    cmd,
                    Decision::Approve,
                    "vcs.runs_command",
                    format!("git {} {o} runs a command", sub.text),
                    false,
                );
                analyzer.code_string(index, &value, depth, false);
                break;
            }
        }
        j += 1;
    }
    for (k, a) in rest.iter().enumerate() {
        let target = if a.text == "--output" {
            rest.get(k + 1).cloned()
        } else {
            a.text.strip_prefix("--output=").map(|v| Word {
                text: v.to_string(),
                ..a.clone()
            })
        };
        if let Some(target) = target {
            write_target(analyzer, cmd, &target);
        }
    }
    if rest.iter().any(|a| a.text == "--ext-diff") {
        analyzer.find(
            cmd,
            Decision::Approve,
            "vcs.runs_command",
            format!(
                "git {} --ext-diff runs the configured external diff program",
                sub.text
            ),
            false,
        );
    }
    if !GIT_SUBCOMMANDS.contains(&sub.text.as_str()) && !sub.text.starts_with('-') {
        approve(
            analyzer,
            "vcs.alias",
            format!(
                "git {} is not a git command: an alias or an external program, which may run anything",
                sub.text
            ),
        );
    }
    match sub.text.as_str() {
        "bisect" if rest.first().is_some_and(|a| a.text == "run") => {
            analyzer.judge_inner(
                index,
                rest.get(1..).unwrap_or(&[]),
                depth,
                &Stdin::default(),
                "git bisect run",
            );
        }
        "submodule" if rest.iter().any(|a| a.text == "foreach") => {
            let at = rest.iter().position(|a| a.text == "foreach").unwrap_or(0);
            let code: Vec<&str> = rest
                .iter()
                .skip(at + 1)
                .filter(|a| !is_option(a))
                .map(|a| a.text.as_str())
                .collect();
            analyzer.find(
                cmd,
                Decision::Approve,
                "vcs.runs_command",
                "git submodule foreach runs a command in every submodule",
                false,
            );
            analyzer.code_string(index, &code.join(" "), depth, false);
        }
        "difftool" | "mergetool" => approve(
            analyzer,
            "vcs.runs_command",
            format!("git {} runs an external tool", sub.text),
        ),
        _ => {}
    }
    match sub.text.as_str() {
        "clone" | "fetch" | "pull" | "ls-remote" | "submodule" | "archive" => {
            analyzer.network_reads += 1;
            let urls: Vec<&Word> = operands(rest)
                .into_iter()
                .filter(|w| w.text.contains("://") || w.text.contains('@') || w.text.contains(':'))
                .collect();
            if sub.text == "clone" && !urls.is_empty() {
                for url in urls {
                    host_check(analyzer, index, "git", url, false);
                }
            } else if sub.text != "archive" || rest.iter().any(|a| a.text.starts_with("--remote")) {
                approve(
                    analyzer,
                    "network.git_remote",
                    format!(
                        "git {} talks to a remote whose host is not on the line",
                        sub.text
                    ),
                );
            }
        }
        "push" => approve(
            analyzer,
            "network.git_push",
            "git push sends commits to a remote".into(),
        ),
        "reset"
            if rest
                .iter()
                .any(|a| a.text == "--hard" || a.text == "--merge") =>
        {
            approve(
                analyzer,
                "vcs.discard_work",
                "git reset --hard throws away uncommitted work".into(),
            )
        }
        "clean"
            if rest
                .iter()
                .any(|a| is_option(a) && (short_flags(a).contains('f') || a.text == "--force")) =>
        {
            approve(
                analyzer,
                "vcs.discard_work",
                "git clean -f deletes untracked files".into(),
            )
        }
        "checkout" | "restore"
            if rest.iter().any(|a| {
                a.text == "." || a.text == "--" || a.text == "-f" || a.text == "--force"
            }) =>
        {
            approve(
                analyzer,
                "vcs.discard_work",
                format!("git {} may throw away uncommitted changes", sub.text),
            )
        }
        "stash"
            if rest
                .first()
                .is_some_and(|a| a.text == "drop" || a.text == "clear") =>
        {
            approve(
                analyzer,
                "vcs.discard_work",
                "git stash drop/clear deletes stashed work".into(),
            )
        }
        "branch"
            if rest.iter().any(|a| {
                a.text == "-D" || a.text == "--delete" && rest.iter().any(|b| b.text == "--force")
            }) =>
        {
            approve(
                analyzer,
                "vcs.discard_work",
                "git branch -D deletes a branch that may not be merged".into(),
            )
        }
        "filter-branch" | "filter-repo" | "gc" | "reflog" | "update-ref" | "replace" => approve(
            analyzer,
            "vcs.discard_work",
            format!("git {} rewrites or prunes history", sub.text),
        ),
        "config" => {
            let read_only = rest.iter().any(|a| {
                [
                    "--get",
                    "--get-all",
                    "--list",
                    "-l",
                    "--get-regexp",
                    "--show-origin",
                ]
                .contains(&a.text.as_str())
            }) || operands(rest).len() <= 1
                && !rest
                    .iter()
                    .any(|a| a.text == "--unset" || a.text == "--add" || a.text == "--replace-all");
            if !read_only {
                approve(
                    analyzer,
                    "vcs.config",
                    "git config changes settings (hooks, pagers and aliases can run programs)"
                        .into(),
                );
            }
        }
        "daemon" | "instaweb" => approve(
            analyzer,
            "network.listen",
            format!("git {} serves the repository on the network", sub.text),
        ),
        "send-email" | "request-pull" => approve(
            analyzer,
            "network.git_push",
            format!("git {} sends data out", sub.text),
        ),
        _ => {}
    }
}
