//! Rules for programs that create, change, copy, move, delete or search files (`rm`,
//! `mv`, `cp`, `tee`, `sed -i`, `chmod`, `grep -r`), one function per family. They judge
//! the paths a command would touch; what a path means (system, home, secret, workspace)
//! is `paths.rs`'s. They never judge programs these run: that is the wrappers' work.

use super::common::*;
use super::networking::remote_spec;

/// Deletes: recursive deletes of precious trees, of the workspace itself, of paths only
/// known at run time, and `shred` of a disk.
pub(super) fn remove(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call {
        index, name, args, ..
    } = *call;
    let cmd = call.cmd();
    let ops = call.operands();
    let recursive =
        name == "rm" && (has_flag(args, 'r', &["--recursive"]) || has_flag(args, 'R', &[]));
    for target in &ops {
        let place = analyzer.place(target);
        if recursive && let Some(why) = analyzer.filter.layout.precious_tree(&place) {
            let rule = if why.contains("home") {
                "destructive.rm_recursive_home"
            } else {
                "destructive.rm_recursive_system"
            };
            call.deny(
                analyzer,
                rule,
                format!("recursive delete of {}: {why}", place.display()),
            );
            continue;
        }
        if recursive && rm_workspace_itself(analyzer, index, &place) {
            continue;
        }
        if recursive
            && place.root == Root::Relative
            && place.comps.first().is_none_or(|c| c == "..")
        {
            // `rm -rf .` or `rm -rf ..` where the working directory is not known.
            analyzer.find(
                cmd,
                Decision::Approve,
                "destructive.rm_recursive_unresolved",
                format!(
                    "recursive delete of {} in a working directory that is not known",
                    target.text
                ),
                false,
            );
            continue;
        }
        if name == "shred" && is_disk_device(&place) {
            call.deny(
                analyzer,
                "destructive.wipe_device",
                format!("shred overwrites the disk {}", place.display()),
            );
            continue;
        }
        if recursive && target.dynamic {
            analyzer.find(
                cmd,
                Decision::Approve,
                "destructive.rm_recursive_unresolved",
                format!(
                    "recursive delete of a path only known when the line runs: {}",
                    target.text
                ),
                false,
            );
            continue;
        }
        write_target(analyzer, cmd, target);
        if recursive && analyzer.filter.layout.contains_secret(&place) {
            call.deny(
                analyzer,
                "destructive.rm_recursive_secrets",
                format!(
                    "recursive delete of {}, which holds keys or credentials",
                    place.display()
                ),
            );
        }
    }
}

/// Moves: moving a system tree away is denied; the destination is a write.
pub(super) fn move_files(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let cmd = call.cmd();
    let ops = call.operands();
    for target in &ops {
        let place = analyzer.place(target);
        if let Some(why) = analyzer.filter.layout.precious_tree(&place) {
            call.deny(
                analyzer,
                "destructive.move_system",
                format!("moves {}: {why}", place.display()),
            );
        } else {
            write_target(analyzer, cmd, target);
        }
    }
}

/// Copies, installs and links: the destination is a write; recursive copies read their
/// sources; links are recorded.
pub(super) fn copy(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call {
        index, name, args, ..
    } = *call;
    let cmd = call.cmd();
    let ops = call.operands();
    if let Some(dest) = target_dir(args).or_else(|| ops.last().copied().filter(|_| ops.len() >= 2))
        && (!(name == "rsync" || name == "scp") || !remote_spec(&dest.text))
    {
        write_target(analyzer, cmd, dest);
    }
    if has_flag(args, 'r', &["--recursive"])
        || has_flag(args, 'R', &[])
        || has_flag(args, 'a', &["--archive"])
    {
        recursive_read(analyzer, index, name, &ops);
    }
    record_symlink(analyzer, name, args, &ops);
}

/// Programs that create or truncate the files they are given.
pub(super) fn create(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    let cmd = call.cmd();
    let ops = call.operands();
    for target in &ops {
        if name == "truncate" && target.text.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        write_target(analyzer, cmd, target);
    }
}

/// `sed -i` writes its files; a script with `e`, `w` or `r` commands runs commands or
/// writes files.
pub(super) fn sed(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { args, .. } = *call;
    let cmd = call.cmd();
    let ops = call.operands();
    if args.iter().any(|a| {
        a.text.starts_with("-i")
            || a.text.starts_with("--in-place")
            || (is_option(a) && !a.text.starts_with("--") && short_flags(a).contains('i'))
    }) {
        let explicit_script = args
            .iter()
            .any(|a| a.text == "-e" || a.text == "-f" || a.text.starts_with("--expression"));
        for target in ops.iter().skip(if explicit_script { 0 } else { 1 }) {
            write_target(analyzer, cmd, target);
        }
    }
    // The scripts are the values of -e/--expression, else the first operand.
    let mut scripts: Vec<&str> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if a.text == "-e" || a.text == "--expression" {
            scripts.extend(args.get(i + 1).map(|w| w.text.as_str()));
        } else if let Some(s) = a.text.strip_prefix("--expression=") {
            scripts.push(s);
        }
    }
    if scripts.is_empty() {
        scripts.extend(ops.first().map(|w| w.text.as_str()));
    }
    if scripts.iter().any(|s| sed_runs_commands(s)) {
        call.approve(
            analyzer,
            "interpreter.sed_exec",
            "the sed script runs commands or writes files".into(),
        );
    }
}

/// Modes, owners and attributes: setuid modes need approval; recursive changes of system
/// trees are denied.
pub(super) fn change_metadata(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, args, .. } = *call;
    let cmd = call.cmd();
    let ops = call.operands();
    let recursive = has_flag(args, 'R', &["--recursive"]);
    let mode_first = name == "chmod" || name == "chown" || name == "chgrp";
    for (i, target) in ops.iter().enumerate() {
        if mode_first && i == 0 {
            if name == "chmod"
                && (target.text.contains('s') && target.text.contains('+')
                    || target.text.len() == 4 && target.text.starts_with(['4', '2', '6']))
            {
                call.approve(
                    analyzer,
                    "privilege.setuid",
                    format!(
                        "chmod {} makes a program run with its owner's rights",
                        target.text
                    ),
                );
            }
            if name == "chmod" && target.text.contains('x') {
                analyzer.ran_local_code |= analyzer.fetched_to_file;
            }
            continue;
        }
        let place = analyzer.place(target);
        if recursive && let Some(why) = analyzer.filter.layout.precious_tree(&place) {
            call.deny(
                analyzer,
                "destructive.chmod_recursive_system",
                format!("{name} -R on {}: {why}", place.display()),
            );
            continue;
        }
        write_target(analyzer, cmd, target);
    }
}

/// Searches: a recursive search reads every file under its roots.
pub(super) fn search(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call {
        index, name, args, ..
    } = *call;
    let ops = call.operands();
    if name == "rg"
        || name == "ag"
        || has_flag(args, 'r', &["--recursive"])
        || has_flag(args, 'R', &["--dereference-recursive"])
    {
        recursive_read(analyzer, index, name, &ops);
    }
}

fn target_dir(args: &[Word]) -> Option<&Word> {
    if let Some(pos) = args
        .iter()
        .position(|a| a.text == "-t" || a.text == "--target-directory")
    {
        return args.get(pos + 1);
    }
    None
}

/// Whether a sed script runs commands or writes files: the `e` command, `w`/`W`, or an
/// `s` command with the `e` or `w` flag, after any address (`1e cmd`, `/x/,$w out`).
/// The script is read command by command as sed reads it; anything this reader does not
/// know counts as running commands.
fn sed_runs_commands(script: &str) -> bool {
    let mut rest = script;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ';' | '{' | '}'));
        // Addresses: line numbers, `$`, `/regex/`, `\cregexc`, `first~step`, `,`, `!`.
        loop {
            let before = rest.len();
            rest = rest.trim_start_matches(|c: char| {
                c.is_ascii_digit() || matches!(c, '$' | ',' | '!' | '~' | '+' | ' ' | '\t')
            });
            if let Some(regex) = rest.strip_prefix('/') {
                rest = skip_delimited(regex, '/');
            } else if let Some(custom) = rest.strip_prefix('\\') {
                let mut chars = custom.chars();
                if let Some(delim) = chars.next() {
                    rest = skip_delimited(chars.as_str(), delim);
                }
            }
            if rest.len() == before {
                break;
            }
        }
        let mut chars = rest.chars();
        let Some(command) = chars.next() else {
            return false;
        };
        rest = chars.as_str();
        match command {
            'e' | 'w' | 'W' => return true,
            's' | 'y' => {
                let Some(delim) = rest.chars().next() else {
                    return false;
                };
                if delim == '\n' || delim == '\\' {
                    return true;
                }
                let body = rest.get(delim.len_utf8()..).unwrap_or("");
                rest = skip_delimited(skip_delimited(body, delim), delim);
                let flags: String = rest
                    .chars()
                    .take_while(|c| !matches!(c, ';' | '\n' | '}'))
                    .collect();
                if command == 's' && (flags.contains('e') || flags.contains('w')) {
                    return true;
                }
                rest = rest.get(flags.len()..).unwrap_or("");
            }
            // Text, file names and labels run to the end of the line.
            'a' | 'i' | 'c' | 'r' | 'R' | 'b' | 't' | 'T' | ':' | '#' => {
                rest = rest.split_once('\n').map_or("", |(_, next)| next);
            }
            'q' | 'Q' | 'l' | 'L' => {
                rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
            }
            'p' | 'P' | 'd' | 'D' | 'n' | 'N' | 'g' | 'G' | 'h' | 'H' | 'x' | '=' | 'z' | 'F' => {}
            _ => return true,
        }
    }
}

/// The text after the next unescaped `delim`; empty when there is none.
fn skip_delimited(text: &str, delim: char) -> &str {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delim {
            return text.get(i + c.len_utf8()..).unwrap_or("");
        }
    }
    ""
}

/// A recursive delete of the whole workspace (not a path inside it) needs approval.
fn rm_workspace_itself(analyzer: &mut Analyzer<'_>, index: usize, place: &Place) -> bool {
    let whole = !place.wild
        && place.root == Root::Absolute
        && analyzer.filter.layout.workspace.as_ref() == Some(&place.comps);
    if whole {
        analyzer.find(
            Some(index),
            Decision::Approve,
            "destructive.rm_workspace",
            format!(
                "recursive delete of the whole workspace {}",
                place.display()
            ),
            true,
        );
    }
    whole
}

/// A symbolic link the line makes (`ln -s`, `cp -s`): later paths through it are judged
/// where it points.
fn record_symlink(analyzer: &mut Analyzer<'_>, name: &str, args: &[Word], ops: &[&Word]) {
    let symbolic = (name == "ln" && has_flag(args, 's', &["--symbolic"]))
        || (name == "cp" && has_flag(args, 's', &["--symbolic-link"]));
    if symbolic && let [target, link] = ops {
        // A relative target is read from the link's directory.
        let target_text = match link.text.rsplit_once('/') {
            Some((dir, _)) if !target.text.starts_with(['/', '~']) => {
                format!("{dir}/{}", target.text)
            }
            _ => target.text.clone(),
        };
        let target_place = analyzer.place(&Word {
            text: target_text,
            ..(*target).clone()
        });
        let link_place = analyzer.place(link);
        analyzer.links.push((link_place, target_place));
    }
}

/// `find ROOTS EXPRESSION`: reads under its roots, deletes with `-delete`, writes with
/// `-fprint`, and runs the command of every `-exec` (a wrapper).
pub(super) fn find(analyzer: &mut Analyzer<'_>, call: &Call<'_>, _stdin: &Stdin) -> bool {
    let Call {
        index, args, depth, ..
    } = *call;
    let cmd = Some(index);
    let roots: Vec<&Word> = args
        .iter()
        .take_while(|a| !a.text.starts_with('-') && a.text != "(" && a.text != "!")
        .collect();
    let root_prefix = match roots.as_slice() {
        [one] if one.is_static() => {
            let t = one.text.trim_end_matches('/');
            format!("{t}/")
        }
        [] => "./".to_string(),
        _ => String::new(),
    };
    for root in &roots {
        read_target(analyzer, cmd, root);
    }
    let mut i = roots.len();
    while let Some(a) = args.get(i) {
        match a.text.as_str() {
            "-exec" | "-execdir" | "-ok" | "-okdir" => {
                let mut inner = Vec::new();
                let mut j = i + 1;
                while let Some(w) = args.get(j) {
                    if w.text == ";" || w.text == "+" {
                        break;
                    }
                    if w.text.contains("{}") {
                        // Paths under the one static root: a wildcard there, not an
                        // unknown value.
                        let mut under = Word::unknown(&root_prefix);
                        under.dynamic = root_prefix.is_empty();
                        inner.push(under);
                    } else {
                        inner.push(w.clone());
                    }
                    j += 1;
                }
                analyzer.judge_inner(index, &inner, depth, &Stdin::default(), "find");
                i = j + 1;
                continue;
            }
            "-delete" => {
                for root in &roots {
                    let place = analyzer.place(root);
                    if let Some(why) = analyzer.filter.layout.precious_tree(&place) {
                        analyzer.find(
                            cmd,
                            Decision::Deny,
                            "destructive.rm_recursive_system",
                            format!(
                                "find -delete removes everything under {}: {why}",
                                place.display()
                            ),
                            false,
                        );
                    }
                    let mut under = Word::unknown(&root_prefix);
                    under.dynamic = false;
                    write_target(analyzer, cmd, &under);
                }
            }
            "-fprint" | "-fprint0" | "-fprintf" | "-fls" => {
                if let Some(target) = args.get(i + 1) {
                    write_target(analyzer, cmd, target);
                }
            }
            _ => {
                if !a.is_static() && !a.text.starts_with('-') {
                    // A dynamic pattern or name: harmless for find itself.
                }
            }
        }
        i += 1;
    }
    policy(analyzer, index, "find");
    true
}

/// Programs that change a file's metadata, never its content.
pub(super) const METADATA_ONLY: &[&str] =
    &["chmod", "chown", "chgrp", "chattr", "setfacl", "touch"];

/// Programs that only change files: under the allowlist policy they run without approval
/// when every path they are given lies inside the known workspace (the workspace itself
/// excluded) with no `..`, and a symbolic link they make points inside it too.
pub(super) const WORKSPACE_EDITS: &[&str] = &[
    "rm", "rmdir", "unlink", "chmod", "chown", "chgrp", "ln", "mkdir", "mv", "cp", "touch",
];

pub(super) fn workspace_confined_edit(analyzer: &Analyzer<'_>, name: &str, args: &[Word]) -> bool {
    if !WORKSPACE_EDITS.contains(&name) || analyzer.filter.layout.workspace.is_none() {
        return false;
    }
    let cwd_inside = analyzer.cwd.as_ref().is_some_and(|cwd| {
        cwd.root == Root::Absolute
            && analyzer.filter.layout.workspace.as_ref().is_some_and(|ws| {
                cwd.comps.len() >= ws.len() && cwd.comps.iter().zip(ws).all(|(a, b)| a == b)
            })
    });
    if !cwd_inside {
        return false;
    }
    // Options with values (`--target-directory=/etc`, `--reference=...`) are not read.
    if args
        .iter()
        .any(|a| is_option(a) && (a.text.contains('=') || a.text.contains('/')))
    {
        return false;
    }
    let mut ops = operands(args);
    if name == "chmod" {
        let Some(mode) = ops.first() else {
            return false;
        };
        // setuid, setgid and sticky bits are not ordinary edits.
        // Only an octal mode has a fourth digit for them (`4755`); `go-w` is symbolic.
        let octal = mode.text.chars().all(|c| c.is_ascii_digit());
        let special = mode.text.contains(['s', 't'])
            || (octal && mode.text.len() == 4 && !mode.text.starts_with('0'));
        if special || !mode.is_static() {
            return false;
        }
        ops.remove(0);
    }
    if name == "chown" || name == "chgrp" {
        let Some(owner) = ops.first() else {
            return false;
        };
        if !owner.is_static() {
            return false;
        }
        ops.remove(0);
    }
    // Modes and owners of the workspace directory itself are the project's own
    // (`chmod -R 755 .`); deleting or moving it is not an edit inside it.
    let whole_workspace_ok = METADATA_ONLY.contains(&name);
    let inside = |place: &Place| {
        analyzer.filter.layout.inside_workspace(place)
            || (whole_workspace_ok && !place.wild && analyzer.filter.layout.under_workspace(place))
            // `rm -f *.o`: a glob right in the workspace names files inside it.
            || (place.wild
                && place.root == Root::Absolute
                && analyzer.filter.layout.workspace.as_ref() == Some(&place.comps))
    };
    // `ln -s TARGET LINK`: the target is read from the link's directory when used, and
    // is not a path `ln` walks through.
    let link_target = (name == "ln" && ops.len() == 2)
        .then(|| ops.first().copied())
        .flatten();
    if let (Some(target), Some(link)) = (link_target, ops.last()) {
        let text = match link.text.rsplit_once('/') {
            Some((dir, _)) if !target.text.starts_with(['/', '~']) => {
                format!("{dir}/{}", target.text)
            }
            _ => target.text.clone(),
        };
        let resolved = analyzer.place(&Word {
            text,
            ..target.clone()
        });
        if target.dynamic || !inside(&resolved) {
            return false;
        }
    }
    !ops.is_empty()
        && ops.iter().enumerate().all(|(i, op)| {
            (link_target.is_some() && i == 0)
                || (!op.dynamic
                    && !op.text.split('/').any(|c| c == "..")
                    && inside(&analyzer.place(op)))
        })
}

/// A recursive read of a directory that holds secrets (`tar czf x ~`).
pub(super) fn recursive_read(analyzer: &mut Analyzer<'_>, index: usize, name: &str, ops: &[&Word]) {
    for op in ops {
        let place = analyzer.place(op);
        if analyzer.filter.layout.contains_secret(&place) {
            analyzer.find(
                Some(index),
                Decision::Approve,
                "access.recursive_sensitive",
                format!(
                    "{name} reads all of {}, which holds keys or credentials",
                    place.display()
                ),
                true,
            );
        }
    }
}
