//! Rules for programs that change the network configuration, listen, scan or open raw
//! connections (`iptables`, `nft`, `ufw`, `ip`, `nc`, `socat`, `nmap`), one function per
//! family. Which hosts a client may reach is judged by `network` in `mod.rs`, not here.

use super::common::*;

/// `iptables` and its kin: listing is fine, changing rules needs approval, flushing is
/// denied.
pub(super) fn packet_filter(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, args, .. } = *call;
    let flush = args.iter().any(|a| ["-F", "--flush", "-X", "--delete-chain"].contains(&a.text.as_str()))
        || args.windows(3).any(|w| matches!(w, [p, _, t] if (p.text == "-P" || p.text == "--policy") && t.text == "ACCEPT"));
    if flush {
        call.deny(
            analyzer,
            "destructive.firewall_flush",
            format!("{name} flushes firewall rules or opens the default policy"),
        );
    } else if !args
        .iter()
        .any(|a| ["-L", "--list", "-S", "--list-rules"].contains(&a.text.as_str()))
    {
        call.approve(
            analyzer,
            "system.firewall_change",
            format!("{name} changes the firewall"),
        );
    }
}

/// `nft`: listing is fine, changing rules needs approval, flushing is denied.
pub(super) fn nft(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { args, .. } = *call;
    let first_op = call.first_operand();
    let words: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
    let joined = words.join(" ");
    if joined.contains("flush") || joined.contains("delete table") || joined.contains("destroy") {
        call.deny(
            analyzer,
            "destructive.firewall_flush",
            "nft flushes or deletes firewall rules".into(),
        );
    } else if !joined.starts_with("list") && !joined.contains(" list ") && first_op != "list" {
        call.approve(
            analyzer,
            "system.firewall_change",
            "nft changes the firewall".into(),
        );
    }
}

/// `ufw`: status is fine, disabling is denied, other changes need approval.
pub(super) fn ufw(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let first_op = call.first_operand();
    if ["disable", "reset"].contains(&first_op) {
        call.deny(
            analyzer,
            "destructive.firewall_flush",
            format!("ufw {first_op} turns the firewall off"),
        );
    } else if first_op != "status" {
        call.approve(
            analyzer,
            "system.firewall_change",
            format!("ufw {first_op} changes the firewall"),
        );
    }
}

/// `firewall-cmd`: queries are fine, changes need approval.
pub(super) fn firewalld(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { args, .. } = *call;
    if args
        .iter()
        .any(|a| a.text.contains("trusted") || a.text == "--panic-off")
    {
        call.deny(
            analyzer,
            "destructive.firewall_flush",
            "firewall-cmd opens the firewall".into(),
        );
    } else if !args
        .iter()
        .all(|a| a.text.starts_with("--list") || a.text.starts_with("--get") || a.text == "--state")
    {
        call.approve(
            analyzer,
            "system.firewall_change",
            "firewall-cmd changes the firewall".into(),
        );
    }
}

/// `ip`: showing is fine, changing links, addresses and routes needs approval.
pub(super) fn ip(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { args, .. } = *call;
    if args.iter().any(|a| {
        [
            "add", "del", "delete", "set", "flush", "change", "replace", "append",
        ]
        .contains(&a.text.as_str())
    }) {
        call.approve(
            analyzer,
            "system.network_config",
            "ip changes the network configuration".into(),
        );
    }
}

/// Interface and wireless tools: changes need approval.
pub(super) fn interfaces(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, args, .. } = *call;
    if args.len() > 1
        && !(name == "nmcli"
            && ["show", "status", "list"]
                .iter()
                .any(|w| args.iter().any(|a| a.text == *w)))
    {
        call.approve(
            analyzer,
            "system.network_config",
            format!("{name} changes the network configuration"),
        );
    }
}

/// `nc`: listening or running a program on a connection.
pub(super) fn netcat(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, args, .. } = *call;
    let cmd = call.cmd();
    if args.iter().any(|a| {
        a.text == "-e"
            || a.text == "-c"
            || a.text == "--exec"
            || a.text == "--sh-exec"
            || a.text == "--lua-exec"
            || (is_option(a) && !a.text.starts_with("--") && short_flags(a).contains('e'))
    }) {
        call.deny(
            analyzer,
            "network.reverse_shell",
            format!("{name} connects a shell to the network"),
        );
    } else if has_flag(args, 'l', &["--listen"]) {
        analyzer.find(
            cmd,
            Decision::Approve,
            "network.listen",
            format!("{name} listens for network connections"),
            true,
        );
    }
}

/// `socat`: listening, or connecting a program to a connection.
pub(super) fn socat(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { args, .. } = *call;
    let cmd = call.cmd();
    let lower: Vec<String> = args.iter().map(|a| a.text.to_ascii_lowercase()).collect();
    if lower.iter().any(|a| {
        a.starts_with("exec:")
            || a.starts_with("system:")
            || a.contains(",exec")
            || a.starts_with("exec,")
    }) {
        call.deny(
            analyzer,
            "network.reverse_shell",
            "socat connects a program to the network".into(),
        );
    } else if lower.iter().any(|a| a.contains("listen")) {
        analyzer.find(
            cmd,
            Decision::Approve,
            "network.listen",
            "socat listens for network connections",
            true,
        );
    }
}

/// Network scanners and capture tools.
pub(super) fn scanners(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let Call { name, .. } = *call;
    call.approve(
        analyzer,
        "network.scan",
        format!("{name} scans or captures network traffic"),
    );
}

/// `openssl s_client`/`s_server` open connections.
pub(super) fn openssl(analyzer: &mut Analyzer<'_>, call: &Call<'_>) {
    let first_op = call.first_operand();
    if ["s_client", "s_server"].contains(&first_op) {
        analyzer.network_reads += 1;
        call.approve(
            analyzer,
            "network.host_not_allowed",
            format!("openssl {first_op} opens a network connection"),
        );
    }
}

/// `ssh [OPTIONS] HOST [CMD]`: reaches the host, runs local commands of `-o` options, and
/// the remote command (judged as shell code; it runs on the other machine).
pub(super) fn ssh(analyzer: &mut Analyzer<'_>, call: &Call<'_>, _stdin: &Stdin) -> bool {
    let Call {
        index, args, depth, ..
    } = *call;
    let cmd = Some(index);
    let with_value = [
        "-p", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-b", "-c", "-E", "-e", "-I", "-m",
        "-O", "-Q", "-S", "-W", "-w", "-B",
    ];
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a.text == "-o"
            && let Some(option) = args.get(i + 1)
        {
            let lower = option.text.to_ascii_lowercase();
            if lower.starts_with("proxycommand")
                || lower.starts_with("localcommand")
                || lower.starts_with("permitlocalcommand")
            {
                analyzer.find(
                    cmd,
                    Decision::Approve,
                    "network.ssh_local_command",
                    "an ssh option runs a local command",
                    false,
                );
                if let Some((_, code)) = option.text.split_once(['=', ' ']) {
                    analyzer.program(code, depth + 1);
                }
            }
        }
        if !is_option(a) {
            break;
        }
        i += if with_value.contains(&a.text.as_str()) {
            2
        } else {
            1
        };
    }
    analyzer.network_reads += 1;
    let Some(host) = args.get(i) else {
        return true;
    };
    host_check(analyzer, index, "ssh", host, true);
    let remote = args.get(i + 1..).unwrap_or(&[]);
    if remote.is_empty() {
        analyzer.find(
            cmd,
            Decision::Approve,
            "network.remote_shell",
            "ssh opens an interactive shell on another machine",
            true,
        );
        return true;
    }
    let code: Vec<&str> = remote.iter().map(|w| w.text.as_str()).collect();
    analyzer.code_string(index, &code.join(" "), depth, false);
    policy(analyzer, index, "ssh");
    true
}

/// Clients that reach other hosts, and whether their output is data from the network.
pub(super) const NETWORK_CLIENTS: &[&str] = &[
    "curl",
    "wget",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "telnet",
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "ftp",
    "tftp",
    "lftp",
    "aria2c",
    "http",
    "https",
    "xh",
    "ping",
    "ping6",
    "traceroute",
    "tracepath",
    "mtr",
    "dig",
    "nslookup",
    "host",
    "whois",
    "nmap",
    "axel",
    "fetch",
];

pub(super) const NETWORK_READERS: &[&str] = &[
    "curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "ftp", "tftp", "lftp",
    "aria2c", "http", "https", "xh", "axel", "fetch",
];

pub(super) fn remote_spec(text: &str) -> bool {
    text.contains("://")
        || text
            .split_once(':')
            .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

/// Judges the hosts a network client would reach.
pub(super) fn network(analyzer: &mut Analyzer<'_>, index: usize, name: &str, args: &[Word]) {
    if !NETWORK_CLIENTS.contains(&name) {
        return;
    }
    if NETWORK_READERS.contains(&name) {
        analyzer.network_reads += 1;
    }
    let with_value: &[&str] = match name {
        "curl" => &[
            "-o",
            "--output",
            "-H",
            "--header",
            "-d",
            "--data",
            "--data-raw",
            "--data-binary",
            "--data-urlencode",
            "-X",
            "--request",
            "-u",
            "--user",
            "-A",
            "--user-agent",
            "-e",
            "--referer",
            "-b",
            "--cookie",
            "-c",
            "--cookie-jar",
            "-T",
            "--upload-file",
            "-F",
            "--form",
            "-m",
            "--max-time",
            "--connect-timeout",
            "-w",
            "--write-out",
            "-r",
            "--range",
            "-K",
            "--config",
            "--cacert",
            "--cert",
            "--key",
            "-E",
            "--retry",
            "-Y",
            "-y",
            "-z",
            "--limit-rate",
            "--resolve",
            "--proxy",
            "-x",
            "--output-dir",
            "-D",
            "--dump-header",
            "--max-redirs",
            "-C",
            "--interface",
        ],
        "wget" => &[
            "-O",
            "--output-document",
            "-o",
            "--output-file",
            "-P",
            "--directory-prefix",
            "-U",
            "--user-agent",
            "--header",
            "-t",
            "--tries",
            "-T",
            "--timeout",
            "-e",
            "--execute",
            "--post-data",
            "--post-file",
            "-i",
            "--input-file",
            "--user",
            "--password",
            "-a",
            "--append-output",
            "-Q",
            "-l",
            "--level",
        ],
        "nc" | "ncat" | "netcat" => &[
            "-p", "-s", "-w", "-i", "-q", "-e", "-c", "-x", "-X", "-P", "-O", "-I",
        ],
        "ping" | "ping6" => &[
            "-c", "-i", "-w", "-W", "-s", "-t", "-I", "-l", "-Q", "-p", "-M",
        ],
        "dig" => &["-p", "-t", "-c", "-q", "-x", "-b", "-f", "-k", "-y"],
        "traceroute" | "tracepath" | "mtr" => {
            &["-m", "-q", "-w", "-p", "-i", "-s", "-f", "-z", "-c"]
        }
        "scp" | "sftp" => &["-P", "-i", "-o", "-F", "-J", "-l", "-c", "-S", "-B", "-b"],
        "rsync" => &[
            "-e",
            "--rsh",
            "--exclude",
            "--include",
            "--filter",
            "-f",
            "--port",
            "--password-file",
            "--exclude-from",
            "--include-from",
            "--files-from",
            "--log-file",
            "--chmod",
            "--chown",
            "--bwlimit",
            "--timeout",
            "-T",
            "--temp-dir",
            "--backup-dir",
            "--suffix",
            "--partial-dir",
            "--link-dest",
            "--compare-dest",
        ],
        "aria2c" => &["-d", "--dir", "-o", "--out", "-x", "-s"],
        "telnet" => &["-l", "-n", "-b", "-e"],
        _ => &[],
    };
    let mut hosts: Vec<&Word> = Vec::new();
    let mut i = 0;
    let mut saves_file =
        name == "wget" || name == "aria2c" || name == "axel" || name == "scp" || name == "rsync";
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if [
            "-o",
            "--output",
            "-O",
            "--remote-name",
            "--remote-name-all",
            "-P",
            "--directory-prefix",
            "--output-dir",
        ]
        .contains(&t)
            && name == "curl"
        {
            saves_file = true;
        }
        if name == "wget"
            && (t == "-O"
                || t == "--output-document"
                || t.starts_with("-qO")
                || t == "-qO-"
                || t.starts_with("-O"))
        {
            let target = if t == "-O" || t == "--output-document" {
                args.get(i + 1).map(|w| w.text.as_str())
            } else {
                t.strip_prefix("-qO").or_else(|| t.strip_prefix("-O"))
            };
            if target == Some("-")
                || target == Some("") && args.get(i + 1).is_some_and(|w| w.text == "-")
            {
                saves_file = false;
            }
        }
        if ((name == "curl" && (t == "-o" || t == "--output"))
            || (name == "wget" && (t == "-O" || t == "--output-document" || t == "-P")))
            && let Some(target) = args.get(i + 1)
            && target.text != "-"
        {
            write_target(analyzer, Some(index), target);
        }
        if name == "curl" && (t == "-K" || t == "--config")
            || name == "wget" && (t == "-i" || t == "--input-file" || t == "-e" || t == "--execute")
        {
            analyzer.find(
                Some(index),
                Decision::Approve,
                "network.unresolved_host",
                format!("{name} {t} reads its targets or settings from elsewhere"),
                false,
            );
        }
        if t == "--url" {
            if let Some(url) = args.get(i + 1) {
                hosts.push(url);
            }
            i += 2;
            continue;
        }
        if t == "--" {
            hosts.extend(args.get(i + 1..).unwrap_or(&[]).iter());
            break;
        }
        if is_option(a) {
            let takes = with_value.contains(&t);
            i += if takes { 2 } else { 1 };
            continue;
        }
        hosts.push(a);
        i += 1;
    }
    if saves_file {
        analyzer.fetched_to_file = true;
    }
    let hosts: Vec<&Word> = match name {
        "ssh" | "sftp" | "nc" | "ncat" | "netcat" | "telnet" | "ping" | "ping6" | "traceroute"
        | "tracepath" | "mtr" | "whois" | "nslookup" | "host" => {
            hosts.into_iter().take(1).collect()
        }
        "scp" | "rsync" => hosts
            .into_iter()
            .filter(|w| remote_spec(&w.text) || !w.is_static())
            .collect(),
        "dig" => hosts
            .into_iter()
            .filter(|w| {
                !w.text.starts_with('+')
                    && ![
                        "A", "AAAA", "MX", "TXT", "NS", "ANY", "CNAME", "SOA", "PTR", "SRV",
                    ]
                    .contains(&w.text.as_str())
            })
            .collect(),
        _ => hosts,
    };
    for host in hosts {
        host_check(analyzer, index, name, host, name == "ssh" || name == "sftp");
    }
}

/// Approval unless the host a word names is in `allowed_hosts`.
pub(super) fn host_check(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    w: &Word,
    ssh_style: bool,
) {
    let cmd = Some(index);
    if !w.is_static() {
        analyzer.find(
            cmd,
            Decision::Approve,
            "network.unresolved_host",
            format!(
                "{name} reaches a host that is only known when the line runs: {}",
                w.text
            ),
            false,
        );
        return;
    }
    let host = host_of(&w.text, ssh_style);
    if host.is_empty() {
        return;
    }
    if !analyzer.filter.host_allowed(&host) {
        analyzer.find(
            cmd,
            Decision::Approve,
            "network.host_not_allowed",
            format!("{name} reaches {host}, which is not in allowed_hosts"),
            true,
        );
    }
}

/// The host part of a URL, `user@host:path`, `host:port` or a bare name, lowercased.
pub(super) fn host_of(text: &str, ssh_style: bool) -> String {
    let mut rest = text;
    if let Some((_, after)) = rest.split_once("://") {
        rest = after;
    } else if let Some(after) = rest.strip_prefix("//") {
        rest = after;
    }
    let rest = rest.split(['/', '?', '#']).next().unwrap_or("");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else if ssh_style || rest.matches(':').count() <= 1 {
        rest.split(':').next().unwrap_or("")
    } else {
        rest
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}
