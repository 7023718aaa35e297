//! Rules for archivers (`tar`, `zip`, `unzip`), one function per family: where an
//! extraction writes and what a creation reads. Options that make an archiver run a
//! program are `exec_options.rs`'s; the archive a creation writes is `outputs.rs`'s.

use super::common::*;
use super::files::recursive_read;

/// `tar`: extraction writes where `-C` says; creation reads its operands.
pub(super) fn tar(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call {
        index, name, args, ..
    } = *call;
    let cmd = call.cmd();
    let ops = call.operands();
    let mode = args
        .first()
        .map(|a| a.text.trim_start_matches('-').to_string())
        .unwrap_or_default();
    let extract = args
        .iter()
        .any(|a| a.text == "--extract" || a.text == "--get")
        || (!mode.starts_with('-') && mode.contains('x') && !mode.contains("--"));
    if extract {
        let dir = args
            .iter()
            .position(|a| a.text == "-C" || a.text == "--directory")
            .and_then(|p| args.get(p + 1));
        if let Some(d) = dir {
            write_target(analyzer, cmd, d);
        }
        for a in args {
            if let Some(d) = a.text.strip_prefix("--directory=") {
                write_target(analyzer, cmd, &Word::lit(d));
            }
        }
    }
    let create = mode.contains('c')
        || args.iter().any(|a| {
            a.text == "--create" || (is_option(a) && a.text != "-C" && short_flags(a).contains('c'))
        });
    if create {
        recursive_read(analyzer, index, name, &ops);
        tar_directory_reads(analyzer, index, name, args, &ops);
    }
}

/// Archivers that read their operands recursively.
pub(super) fn zip(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call {
        index, name, args, ..
    } = *call;
    let ops = call.operands();
    if has_flag(args, 'r', &["--recurse-paths"]) || name != "zip" {
        recursive_read(analyzer, index, name, &ops);
    }
}

/// `unzip -d DIR` writes into DIR.
pub(super) fn unzip(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { args, .. } = *call;
    let cmd = call.cmd();
    if let Some(d) = args
        .iter()
        .position(|a| a.text == "-d")
        .and_then(|p| args.get(p + 1))
    {
        write_target(analyzer, cmd, d);
    }
}

/// `tar -C /var/lib -czf - aisopod`: the operands of a created archive are read from the
/// `-C` directory.
fn tar_directory_reads(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    args: &[Word],
    ops: &[&Word],
) {
    let cmd = Some(index);
    let dir = args
        .iter()
        .position(|a| a.text == "-C" || a.text == "--directory")
        .and_then(|p| args.get(p + 1))
        .map(|d| d.text.clone())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.text.strip_prefix("--directory=").map(str::to_string))
        });
    if let Some(dir) = dir {
        let joined: Vec<Word> = ops
            .iter()
            .filter(|op| !op.text.starts_with(['/', '~']) && op.text != "-")
            .map(|op| Word {
                text: format!("{}/{}", dir.trim_end_matches('/'), op.text),
                ..(*op).clone()
            })
            .collect();
        for w in &joined {
            read_target(analyzer, cmd, w);
        }
        recursive_read(analyzer, index, name, &joined.iter().collect::<Vec<_>>());
    }
}
