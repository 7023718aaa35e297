//! Rules for programs that write disks and partition tables (`dd`, `mkfs`, `fdisk`), one
//! function per family. They never judge ordinary files: that is `files.rs`.

use super::common::*;

/// `dd`: `of=` is a write; `if=` a raw disk is denied.
pub(super) fn dd(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { args, .. } = *call;
    let cmd = call.cmd();
    for a in args {
        if let Some(of) = a.text.strip_prefix("of=") {
            let w = Word {
                text: of.to_string(),
                wild_at: a.wild_at.map(|p| p.saturating_sub(3)),
                ..a.clone()
            };
            write_target(analyzer, cmd, &w);
        }
        if let Some(input) = a.text.strip_prefix("if=") {
            let w = Word {
                text: input.to_string(),
                wild_at: a.wild_at.map(|p| p.saturating_sub(3)),
                ..a.clone()
            };
            let place = analyzer.place(&w);
            if is_disk_device(&place) {
                call.deny(
                    analyzer,
                    "access.raw_disk",
                    format!("dd reads the raw disk {}", place.display()),
                );
            }
        }
    }
}

/// Programs that format or wipe a disk or partition.
pub(super) fn format(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    call.deny(
        analyzer,
        "destructive.format_disk",
        format!("{name} formats or wipes a disk or partition"),
    );
}

/// Partition editors: listing needs approval, changing is denied.
pub(super) fn partition(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, args, .. } = *call;
    let ops = call.operands();
    if has_flag(args, 'l', &["--list"]) && ops.is_empty()
        || args.iter().any(|a| a.text == "print" || a.text == "-l")
    {
        call.approve(
            analyzer,
            "system.disk_inspect",
            format!("{name} inspects the partition table"),
        );
    } else {
        call.deny(
            analyzer,
            "destructive.partition_disk",
            format!("{name} changes a partition table"),
        );
    }
}
