//! The sandbox as an attacker meets it: real escapes through `aisopod sandbox run`, each
//! of which must fail with the specific refusal, plus bad input, cleanliness after
//! failures, runs through a live gateway, and runs as an unprivileged service user.
//!
//! Every test here starts real namespaces and cgroups, so they need root (or a delegated
//! cgroup) and a kernel with user namespaces, as on the build machine and the Pi.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{BIN, Setup, stderr, stdout};

/// Sandbox settings for tests: small scratch space so disk-fill tests are quick.
pub const SANDBOX: &str =
    "tmp_size = \"8m\"\nmemory_limit = \"128m\"\ntimeout = \"20s\"\nmax_concurrent = 8\n";

/// Which cgroup interface the tests use: `AISOPOD_TEST_CGROUP=v1|v2` (default: auto).
fn cgroup_choice() -> String {
    std::env::var("AISOPOD_TEST_CGROUP").unwrap_or_else(|_| "auto".into())
}

/// A test setup whose `[tools.sandbox]` table holds `keys` and the cgroup choice. On a
/// v2 hierarchy without every controller (a hybrid host, where v1 keeps them) the
/// runner only runs in local mode, so the config says so.
fn sandboxed(keys: &str) -> Setup {
    Setup::new(&sandbox_toml(keys))
}

pub fn sandbox_toml(keys: &str) -> String {
    let choice = cgroup_choice();
    let mut text = format!("[tools.sandbox]\n{keys}\ncgroup = \"{choice}\"\n");
    if choice == "v2" {
        text.push_str("[security]\nmode = \"local\"\n");
    }
    text
}

/// Whether runs get `controller` limits here (from `sandbox check`). Run as root on
/// the default hierarchy, the limit must be enforced (a failed check fails the test);
/// elsewhere (not root, or the v2 pass on a hybrid host whose v2 tree lacks the
/// controller) the test reports a SKIPPED check loudly and stops.
fn enforced(setup: &Setup, controller: &str) -> bool {
    let out = setup.cli(&["sandbox", "check", "--json"]);
    let report: Option<Value> = serde_json::from_str(&stdout(&out)).ok();
    let on = report
        .as_ref()
        .and_then(|r| r["cgroup"]["enforced"][controller].as_bool());
    if on == Some(true) {
        return true;
    }
    let why = match on {
        Some(_) => format!("the {} hierarchy lacks the controller", cgroup_choice()),
        None => format!(
            "`sandbox check --json` failed (exit {:?}): {}",
            out.status.code(),
            stderr(&out).trim()
        ),
    };
    let required = nix::unistd::geteuid().is_root() && cgroup_choice() != "v2";
    assert!(
        !required,
        "running as root, the {controller} limit must be enforced here, but {why}"
    );
    skipped(&format!("{controller} limit not enforced: {why}"));
    false
}

/// Reports a check that could not run: on stderr, and as a line in the file named by
/// `AISOPOD_TEST_SKIP_LOG`, which `scripts/test` prints and counts at the end (nextest
/// hides a passing test's output, so stderr alone would pass silently).
pub fn skipped(what: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let line = format!("SKIPPED: {what} ({test})");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("AISOPOD_TEST_SKIP_LOG") {
        use std::io::Write;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(err) = appended {
            panic!(
                "cannot write the skip log {}: {err}",
                Path::new(&path).display()
            );
        }
    }
}

/// One run's result as `--json` prints it, with the exit status.
struct Run {
    json: Value,
    code: i32,
    stderr: String,
}

impl Run {
    fn reason(&self) -> &str {
        self.json["reason"].as_str().unwrap_or("")
    }

    fn stdout(&self) -> &str {
        self.json["stdout"].as_str().unwrap_or("")
    }

    /// The program's stdout parsed as JSON (the probes print one object).
    fn probe(&self) -> Value {
        serde_json::from_str(self.stdout().trim()).unwrap_or_else(|e| {
            panic!(
                "probe output is not JSON ({e}):\nstdout: {}\nstderr: {}\nrun: {}",
                self.stdout(),
                self.json["stderr"],
                self.stderr
            )
        })
    }
}

fn run(setup: &Setup, lang: &str, code: &str, extra: &[&str]) -> Run {
    let mut args = vec!["sandbox", "run", "--lang", lang, "--json"];
    args.extend_from_slice(extra);
    let out = setup.cli_with(&args, &[], Some(code.as_bytes()));
    let json = serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null);
    Run {
        json,
        code: out.status.code().unwrap_or(-1),
        stderr: stderr(&out),
    }
}

/// Python that tries each named action and prints {name: "ok" | errno name}.
fn probe_program(attempts: &[(&str, &str)]) -> String {
    let mut code = String::from(
        "import errno, json, os, socket, ctypes, fcntl, termios\n\
         def attempt(f):\n    try:\n        f()\n        return 'ok'\n    except OSError as e:\n        return errno.errorcode.get(e.errno, str(e.errno))\n\
         r = {}\n",
    );
    for (name, body) in attempts {
        code.push_str(&format!("def _{name}():\n"));
        for line in body.lines() {
            code.push_str(&format!("    {line}\n"));
        }
        code.push_str(&format!("r['{name}'] = attempt(_{name})\n"));
    }
    code.push_str("print(json.dumps(r))\n");
    code
}

fn assert_refused(probe: &Value, name: &str, allowed: &[&str]) {
    let got = probe[name].as_str().unwrap_or("missing");
    assert!(
        allowed.contains(&got),
        "{name}: expected one of {allowed:?}, got {got} (all: {probe})"
    );
}

#[test]
fn a_plain_program_runs_as_an_unprivileged_user_with_files_in_and_out() {
    let setup = sandboxed(SANDBOX);
    let input = setup.dir.path().join("input.csv");
    std::fs::write(&input, "a,b\n1,2\n").unwrap();
    let file_arg = format!("data.csv={}", input.display());
    let result = run(
        &setup,
        "python",
        "import os\nprint(os.getuid(), os.getgid(), open('data.csv').read().count('\\n'))\nopen('out.txt','w').write('written')\n",
        &["--file", &file_arg],
    );
    assert_eq!(result.code, 0, "{}\n{}", result.json, result.stderr);
    assert_eq!(result.reason(), "exited");
    assert_eq!(result.stdout(), "1000 1000 2\n");
    let files = result.json["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "only the new file comes back: {files:?}");
    assert_eq!(files[0]["name"], "out.txt");
    assert_eq!(files[0]["data"], "d3JpdHRlbg==");
    if enforced(&setup, "memory") {
        assert!(result.json["peak_memory"].as_u64().unwrap() > 0);
    }

    for (lang, code, expected) in [
        ("javascript", "console.log(6 * 7)", "42\n"),
        ("bash", "echo $((6 * 7)); exit 3", "42\n"),
    ] {
        let result = run(&setup, lang, code, &[]);
        assert_eq!(result.stdout(), expected, "{lang}: {}", result.json);
        assert_eq!(result.code, if lang == "bash" { 3 } else { 0 });
    }
    // Without --json: the program's own output and exit status.
    let out = setup.cli_with(
        &[
            "sandbox",
            "run",
            "--lang",
            "bash",
            "--code",
            "echo out; echo err >&2; exit 7",
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stdout(&out), "out\n");
    // Without a gateway the CLI audits into the store itself: one record per run.
    let audit = setup.cli(&["audit", "list", "--json"]);
    let records: Value = serde_json::from_str(&stdout(&audit)).unwrap();
    let runs: Vec<&Value> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "sandbox.run")
        .collect();
    assert_eq!(runs.len(), 4, "{records}");
    assert!(
        runs.iter()
            .all(|r| r["actor"].as_str().unwrap().starts_with("cli uid:"))
    );
    assert_eq!(runs[3]["details"]["exit_code"], 7);
    // (Where limits are missing, the runner's warning about it precedes the output.)
    let err = stderr(&out);
    let err: Vec<&str> = err.lines().filter(|l| !l.contains("WARN")).collect();
    assert_eq!(err, vec!["err"]);
}

#[test]
fn programs_start_with_default_signal_handling() {
    // The helper is a Rust program, which ignores SIGPIPE; an ignored signal would
    // survive exec and make `yes | head` report "Broken pipe" instead of ending quietly.
    let setup = sandboxed(SANDBOX);
    let result = run(
        &setup,
        "bash",
        "yes | head -n 1; grep -E '^Sig(Ign|Blk)' /proc/self/status",
        &[],
    );
    assert_eq!(result.code, 0, "{}", result.json);
    assert_eq!(result.json["stderr"], "", "{}", result.json);
    assert!(result.stdout().starts_with("y\n"), "{}", result.stdout());
    assert!(
        result.stdout().contains("SigBlk:\t0000000000000000"),
        "{}",
        result.stdout()
    );
}

#[test]
fn a_fork_bomb_hits_the_process_limit_and_the_run_is_killed() {
    let setup = sandboxed(SANDBOX);
    if !enforced(&setup, "pids") {
        return;
    }
    for (lang, bomb) in [
        // The classic, with the program staying around while its bomb grows.
        ("bash", ":(){ :|:& };:; sleep 30"),
        (
            "python",
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        ),
    ] {
        let started = Instant::now();
        let result = run(&setup, lang, bomb, &[]);
        assert_eq!(result.reason(), "pids", "{lang}: {}", result.json);
        assert_eq!(result.code, 137);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "killed at the limit, not the timeout"
        );
    }
    // The classic alone returns at once; its background bomb dies with the run.
    let started = Instant::now();
    let result = run(&setup, "bash", ":(){ :|:& };:", &[]);
    assert!(
        ["exited", "pids"].contains(&result.reason()),
        "{}",
        result.json
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_memory_bomb_is_killed_by_the_memory_limit() {
    let setup = sandboxed(SANDBOX);
    if !enforced(&setup, "memory") {
        return;
    }
    let result = run(
        &setup,
        "python",
        "x = b'x' * (1 << 30)\nprint('survived')\n",
        &[],
    );
    assert_eq!(result.reason(), "memory", "{}", result.json);
    assert_eq!(result.code, 137);
    assert!(!result.stdout().contains("survived"));
    let peak = result.json["peak_memory"].as_u64().unwrap();
    assert!(peak <= 128 << 20, "peak {peak} above the 128m limit");
}

#[test]
fn filling_tmp_stops_at_its_size_and_touches_no_host_disk() {
    let setup = sandboxed(SANDBOX);
    let code = "import errno, json\n\
                written = 0\n\
                err = None\n\
                try:\n    for i in range(1000):\n        with open(f'/tmp/fill{i}', 'wb') as f:\n            f.write(b'x' * (1 << 20))\n        written += 1 << 20\n\
                except OSError as e:\n    err = errno.errorcode[e.errno]\n\
                print(json.dumps({'written': written, 'error': err}))\n";
    let result = run(&setup, "python", code, &[]);
    let probe = result.probe();
    assert_eq!(probe["error"], "ENOSPC", "{probe}");
    assert!(probe["written"].as_u64().unwrap() <= 8 << 20, "{probe}");
    assert!(!Path::new("/tmp/fill0").exists());
}

#[test]
fn host_secrets_and_files_are_not_there_to_read() {
    let setup = sandboxed(SANDBOX);
    // Make the store and master key exist, then try to read them by their host paths.
    let first = run(&setup, "bash", "true", &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let data_dir = std::fs::canonicalize(setup.data_dir()).unwrap();
    let master_key = data_dir.join("master.key");
    assert!(master_key.exists());
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let attempts = [
        ("shadow", "open('/etc/shadow').read()".to_string()),
        ("gshadow", "open('/etc/gshadow').read()".to_string()),
        ("ssh", "os.listdir('/etc/ssh')".to_string()),
        ("home", format!("os.listdir({home:?})")),
        ("home_dir", "os.listdir('/home')".to_string()),
        (
            "data_dir",
            format!("os.listdir({:?})", data_dir.display().to_string()),
        ),
        (
            "master_key",
            format!("open({:?}, 'rb').read()", master_key.display().to_string()),
        ),
        (
            "store",
            format!(
                "os.listdir({:?})",
                data_dir.join("db").display().to_string()
            ),
        ),
        ("init_mem", "open('/proc/1/mem', 'rb').read(1)".to_string()),
        ("init_root", "os.listdir('/proc/1/root/root')".to_string()),
        ("sys", "os.listdir('/sys')".to_string()),
    ];
    let attempts: Vec<(&str, &str)> = attempts.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let probe = run(&setup, "python", &probe_program(&attempts), &[]).probe();
    for name in [
        "shadow",
        "gshadow",
        "ssh",
        "home",
        "home_dir",
        "data_dir",
        "master_key",
        "store",
        "sys",
    ] {
        assert_refused(&probe, name, &["ENOENT"]);
    }
    // Init is non-dumpable: the program (same uid) cannot read its memory or reach
    // anything through its /proc links.
    assert_refused(&probe, "init_mem", &["EACCES", "EPERM"]);
    assert_refused(&probe, "init_root", &["EACCES"]);
    // The only accounts are the sandbox's.
    let passwd = run(&setup, "bash", "cat /etc/passwd /etc/group", &[]);
    assert_eq!(
        passwd.stdout(),
        "sandbox:x:1000:1000:sandbox:/work:/bin/sh\nsandbox:x:1000:\n"
    );
}

#[test]
fn writing_outside_the_working_directory_is_refused() {
    let setup = sandboxed(SANDBOX);
    let probe = run(
        &setup,
        "python",
        &probe_program(&[
            ("usr", "open('/usr/aisopod-escape', 'w').write('x')"),
            ("root", "open('/aisopod-escape', 'w').write('x')"),
            (
                "passwd",
                "open('/etc/passwd', 'a').write('root::0:0::/:/bin/sh\\n')",
            ),
            ("bin", "os.rename('/usr/bin/python3', '/usr/bin/x')"),
            ("work", "open('/work/ok', 'w').write('x')"),
            ("tmp", "open('/tmp/ok', 'w').write('x')"),
        ]),
        &[],
    )
    .probe();
    for name in ["usr", "root", "passwd", "bin"] {
        assert_refused(&probe, name, &["EACCES", "EROFS", "EPERM"]);
    }
    assert_refused(&probe, "work", &["ok"]);
    assert_refused(&probe, "tmp", &["ok"]);
    assert!(!Path::new("/usr/aisopod-escape").exists());
    assert!(!Path::new("/aisopod-escape").exists());
    assert!(Path::new("/usr/bin/python3").exists());
}

#[test]
fn host_processes_are_invisible_and_cannot_be_signalled() {
    let setup = sandboxed(SANDBOX);
    let me = std::process::id();
    let code = format!(
        "import json, os, signal\n\
         pids = [p for p in os.listdir('/proc') if p.isdigit()]\n\
         def sig(pid, s):\n    try:\n        os.kill(pid, s)\n        return 'ok'\n    except OSError as e:\n        return e.strerror\n\
         print(json.dumps({{'pids': pids, 'host': sig({me}, 0), 'init': sig(1, signal.SIGKILL), 'ppid': os.getppid()}}))\n"
    );
    let probe = run(&setup, "python", &code, &[]).probe();
    let pids = probe["pids"].as_array().unwrap();
    assert!(pids.len() <= 3, "only the run's own processes: {pids:?}");
    assert!(!pids.iter().any(|p| p == &Value::String(me.to_string())) || me <= 3);
    assert_eq!(probe["host"], "No such process", "{probe}");
    assert_eq!(probe["init"], "Operation not permitted", "{probe}");
    assert_eq!(
        probe["ppid"], 1,
        "the program's parent is the run's own init"
    );
}

#[test]
fn the_network_is_empty_loopback_and_host_ports_are_unreachable() {
    let setup = sandboxed(SANDBOX);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = run(
        &setup,
        "python",
        &probe_program(&[
            (
                "host_port",
                &format!("socket.create_connection(('127.0.0.1', {port}), timeout=2)"),
            ),
            (
                "outside",
                "socket.create_connection(('192.0.2.1', 80), timeout=2)",
            ),
            (
                "udp",
                "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('192.0.2.1', 53))",
            ),
            ("packet", "socket.socket(socket.AF_PACKET, socket.SOCK_RAW)"),
            (
                "interfaces",
                "assert [n for _, n in socket.if_nameindex()] == ['lo'], socket.if_nameindex()",
            ),
        ]),
        &[],
    )
    .probe();
    // Landlock refuses TCP outright (EACCES); without Landlock the empty namespace
    // answers (ECONNREFUSED, ENETUNREACH). Either way nothing reaches the host.
    assert_refused(&probe, "host_port", &["EACCES", "ECONNREFUSED"]);
    assert_refused(&probe, "outside", &["EACCES", "ENETUNREACH"]);
    assert_refused(&probe, "udp", &["ENETUNREACH"]);
    assert_refused(&probe, "packet", &["EPERM"]);
    assert_refused(&probe, "interfaces", &["ok"]);
    assert!(
        listener.accept().is_err(),
        "the host listener saw a connection"
    );
}

#[test]
fn mount_unshare_ptrace_and_new_namespaces_are_refused() {
    let setup = sandboxed(SANDBOX);
    let libc = "l = ctypes.CDLL(None, use_errno=True)\n";
    let call = |expr: &str| {
        format!("{libc}if {expr} != 0:\n    raise OSError(ctypes.get_errno(), 'refused')")
    };
    let mount = call("l.mount(b'none', b'/tmp', b'tmpfs', 0, None)");
    let umount = call("l.umount2(b'/usr', 2)");
    let unshare = call("l.unshare(0x10000000)");
    let unshare_net = call("l.unshare(0x40000000)");
    let ptrace = call("l.ptrace(0, 0, None, None)");
    let chroot = call("l.chroot(b'/tmp')");
    let clone3 = format!(
        "{libc}if l.syscall(435, None, 0) < 0:\n    raise OSError(ctypes.get_errno(), 'refused')"
    );
    let bpf = format!(
        "{libc}if l.syscall(321 if os.uname().machine == 'x86_64' else 280, 0, None, 0) < 0:\n    raise OSError(ctypes.get_errno(), 'refused')"
    );
    let attempts = [
        ("mount", mount.as_str()),
        ("umount", umount.as_str()),
        ("unshare_user", unshare.as_str()),
        ("unshare_net", unshare_net.as_str()),
        ("ptrace", ptrace.as_str()),
        ("chroot", chroot.as_str()),
        ("clone3", clone3.as_str()),
        ("bpf", bpf.as_str()),
    ];
    let probe = run(&setup, "python", &probe_program(&attempts), &[]).probe();
    for name in [
        "mount",
        "umount",
        "unshare_user",
        "unshare_net",
        "ptrace",
        "chroot",
        "bpf",
    ] {
        assert_refused(&probe, name, &["EPERM"]);
    }
    // clone3 cannot be inspected by seccomp, so it is answered as "not implemented",
    // which makes the C library fall back to clone (whose flags are checked).
    assert_refused(&probe, "clone3", &["ENOSYS"]);
    let tools = run(
        &setup,
        "bash",
        "unshare -U true 2>&1; echo rc=$?; mount -t tmpfs x /tmp 2>&1; echo rc=$?",
        &[],
    );
    assert!(
        tools
            .stdout()
            .contains("unshare failed: Operation not permitted"),
        "{}",
        tools.stdout()
    );
    assert!(tools.stdout().contains("rc=32"), "{}", tools.stdout());
}

#[test]
fn setuid_binaries_gain_nothing() {
    let setup = sandboxed(SANDBOX);
    let code = "import json, os, subprocess, time\n\
                st = os.statvfs('/usr')\n\
                status = open('/proc/self/status').read()\n\
                p = subprocess.Popen(['/usr/bin/passwd'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n\
                time.sleep(0.2)\n\
                uid = [l for l in open(f'/proc/{p.pid}/status').read().splitlines() if l.startswith('Uid:')][0]\n\
                p.kill(); p.communicate()\n\
                g = subprocess.run(['/usr/bin/newgrp', 'sandbox'], capture_output=True, text=True)\n\
                print(json.dumps({'suid_bit': bool(os.stat('/usr/bin/passwd').st_mode & 0o4000), 'nosuid': bool(st.f_flag & os.ST_NOSUID),\n\
                  'nnp': 'NoNewPrivs:\\t1' in status, 'passwd_uid': uid.split()[1:], 'newgrp': g.stderr.strip()}))\n";
    let probe = run(&setup, "python", code, &[]).probe();
    assert_eq!(
        probe["suid_bit"], true,
        "the setuid binary is there: {probe}"
    );
    assert_eq!(probe["nosuid"], true, "{probe}");
    assert_eq!(probe["nnp"], true, "{probe}");
    assert_eq!(
        probe["passwd_uid"],
        serde_json::json!(["1000", "1000", "1000", "1000"]),
        "{probe}"
    );
    assert_eq!(
        probe["newgrp"], "setgroups: Operation not permitted",
        "{probe}"
    );
}

#[test]
fn no_terminal_and_tiocsti_is_refused() {
    let setup = sandboxed(SANDBOX);
    let probe = run(
        &setup,
        "python",
        &probe_program(&[
            ("tiocsti_stdin", "fcntl.ioctl(0, termios.TIOCSTI, b'x')"),
            ("tiocsti_stdout", "fcntl.ioctl(1, termios.TIOCSTI, b'x')"),
            ("tiocsti_stderr", "fcntl.ioctl(2, termios.TIOCSTI, b'x')"),
            ("tty", "open('/dev/tty', 'rb')"),
            ("ptmx", "open('/dev/ptmx', 'rb')"),
            ("session", "assert os.getsid(0) != os.getpid() or True"),
        ]),
        &[],
    )
    .probe();
    for name in ["tiocsti_stdin", "tiocsti_stdout", "tiocsti_stderr"] {
        assert_refused(&probe, name, &["EPERM"]);
    }
    assert_refused(&probe, "tty", &["ENOENT"]);
    assert_refused(&probe, "ptmx", &["ENOENT"]);
}

#[test]
fn an_inherited_file_descriptor_does_not_reach_the_program() {
    let setup = sandboxed(SANDBOX);
    let secret = setup.dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    // The shell opens fd 7 without close-on-exec; aisopod inherits it.
    let script = format!(
        "exec 7<{}; exec {BIN} --config {} sandbox run --lang python --json",
        secret.display(),
        setup.config.display()
    );
    let code = "import json, os\n\
                def fd(n):\n    try:\n        return os.read(n, 100).decode()\n    except OSError as e:\n        return e.strerror\n\
                print(json.dumps({'fd7': fd(7), 'open': sorted(os.listdir('/proc/self/fd'))}))\n";
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(code.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let probe: Value = serde_json::from_str(json["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(probe["fd7"], "Bad file descriptor", "{probe}");
    // stdin, stdout, stderr and the directory listing's own descriptor.
    assert_eq!(probe["open"].as_array().unwrap().len(), 4, "{probe}");
}

#[test]
fn proc_self_exe_cannot_be_overwritten() {
    let setup = sandboxed(SANDBOX);
    let before = std::fs::read(BIN).unwrap();
    let probe = run(
        &setup,
        "python",
        &probe_program(&[
            ("self_exe", "open('/proc/self/exe', 'r+b').write(b'x')"),
            ("init_exe", "open('/proc/1/exe', 'r+b').write(b'x')"),
            ("init_exe_read", "open('/proc/1/exe', 'rb').read(4)"),
        ]),
        &[],
    )
    .probe();
    assert_refused(&probe, "self_exe", &["EACCES", "EROFS", "ETXTBSY"]);
    // /proc/1/exe would be the aisopod binary itself (runc's CVE-2019-5736).
    assert_refused(&probe, "init_exe", &["EACCES", "EPERM"]);
    assert_refused(&probe, "init_exe_read", &["EACCES", "EPERM"]);
    assert!(
        std::fs::read(BIN).unwrap() == before,
        "the aisopod binary changed"
    );
}

#[test]
fn cgroups_cannot_be_reached_or_escaped() {
    let setup = sandboxed(SANDBOX);
    let probe = run(
        &setup,
        "python",
        &probe_program(&[
            ("sysfs", "os.listdir('/sys/fs/cgroup')"),
            ("release_agent", "open('/sys/fs/cgroup/release_agent', 'w').write('/work/x')"),
            ("mount_cgroup", "l = ctypes.CDLL(None, use_errno=True)\nif l.mount(b'cgroup', b'/tmp', b'cgroup', 0, b'memory') != 0:\n    raise OSError(ctypes.get_errno(), 'refused')"),
            ("mount_cgroup2", "l = ctypes.CDLL(None, use_errno=True)\nif l.mount(b'cgroup2', b'/tmp', b'cgroup2', 0, None) != 0:\n    raise OSError(ctypes.get_errno(), 'refused')"),
            ("own_cgroup", "assert open('/proc/self/cgroup').read().strip().endswith(':/'), open('/proc/self/cgroup').read()"),
        ]),
        &[],
    )
    .probe();
    assert_refused(&probe, "sysfs", &["ENOENT"]);
    assert_refused(&probe, "release_agent", &["ENOENT"]);
    assert_refused(&probe, "mount_cgroup", &["EPERM"]);
    assert_refused(&probe, "mount_cgroup2", &["EPERM"]);
    // The cgroup namespace's root is the run's own cgroup: there is no path above it.
    assert_refused(&probe, "own_cgroup", &["ok"]);
}

/// Whether a host process's command line starts with `name` (its `argv[0]`), unlike the
/// CLI that asked for it, whose arguments merely contain it.
fn holds_a_process_named(name: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| cmdline.starts_with(name.as_bytes()))
    })
}

/// Host processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(marker)
        {
            found.push(pid);
        }
    }
    found
}

#[test]
fn double_forked_children_die_with_the_run() {
    let setup = sandboxed(SANDBOX);
    let marker = format!("aisopod-escape-{}", std::process::id());
    // The program leaves a daemon behind and exits at once.
    let quick = run(
        &setup,
        "bash",
        &format!("(setsid bash -c 'exec -a {marker}-a sleep 1000' &) ; exit 0"),
        &[],
    );
    assert_eq!(quick.code, 0, "{}", quick.json);
    // The program daemonizes and then outlives the timeout itself.
    let started = Instant::now();
    let slow = run(
        &setup,
        "bash",
        &format!(
            "(setsid bash -c 'trap \"\" TERM HUP; exec -a {marker}-b sleep 1000' &) ; sleep 1000"
        ),
        &["--timeout", "1"],
    );
    assert_eq!(slow.reason(), "timeout", "{}", slow.json);
    assert_eq!(slow.code, 124);
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(
        processes_with(&marker),
        Vec::<u32>::new(),
        "a daemon outlived its run"
    );
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_at_the_timeout() {
    let setup = sandboxed(SANDBOX);
    let started = Instant::now();
    let result = run(
        &setup,
        "python",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('started', flush=True)\ntime.sleep(1000)\n",
        &["--timeout", "1"],
    );
    assert_eq!(result.reason(), "timeout", "{}", result.json);
    assert_eq!(result.code, 124);
    assert_eq!(
        result.stdout(),
        "started\n",
        "output before the kill is kept"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    let out = setup.cli_with(
        &[
            "sandbox",
            "run",
            "--lang",
            "bash",
            "--timeout",
            "1",
            "--code",
            "trap '' TERM; sleep 100",
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(124));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
}

#[test]
fn output_is_capped_per_stream() {
    let setup = sandboxed("max_output = \"4k\"");
    let result = run(
        &setup,
        "python",
        "import sys\nsys.stdout.write('x' * 100000)\nsys.stderr.write('y' * 10)\n",
        &[],
    );
    assert_eq!(result.code, 0);
    assert_eq!(result.stdout().len(), 4096);
    assert_eq!(result.json["stderr"], "y".repeat(10));
    assert_eq!(result.json["truncated"], true);
}

// ---------------------------------------------------------------------------------------
// Bad input, and what failures leave behind.

/// Directories run cgroups are created in, from `sandbox check --json`.
fn run_directories(setup: &Setup) -> Vec<PathBuf> {
    let out = setup.cli(&["sandbox", "check", "--json"]);
    let report: Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|_| panic!("{}", stderr(&out)));
    report["cgroup"]["run_directories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| PathBuf::from(d.as_str().unwrap()))
        .collect()
}

/// Run cgroups named after any of `pids` (the CLI processes a test started).
fn leftover_runs(dirs: &[PathBuf], pids: &BTreeSet<u32>) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let owner = name
                .strip_prefix("run-")
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            if owner.is_some_and(|p| pids.contains(&p)) {
                left.push(entry.path());
            }
        }
    }
    left
}

fn mount_table() -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').skip(1).collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    lines
}

/// Runs the CLI and returns (exit code, stderr, the CLI's pid).
fn cli_pid(setup: &Setup, args: &[&str], stdin: &[u8]) -> (i32, String, u32) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&setup.config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(stdin);
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), err, pid)
}

#[test]
fn bad_input_gets_a_clear_error_and_leaves_nothing_behind() {
    let setup = sandboxed("max_code = \"1k\"");
    let dirs = run_directories(&setup);
    assert!(!dirs.is_empty());
    let mounts_before = mount_table();
    let mut pids = BTreeSet::new();
    let run_args = |lang: &'static str| vec!["sandbox", "run", "--lang", lang];
    let cases: Vec<(Vec<&str>, Vec<u8>, i32, &str)> = vec![
        (run_args("ruby"), b"puts 1".to_vec(), 2, "ruby"),
        (run_args("python"), b"".to_vec(), 1, "the program is empty"),
        (
            run_args("python"),
            b"   \n\t".to_vec(),
            1,
            "the program is empty",
        ),
        (
            run_args("python"),
            vec![b'#'; 2048],
            1,
            "more than the limit of 1024",
        ),
        (
            run_args("python"),
            vec![0xff, 0xfe, 0x00, 0x9f, 0x80],
            1,
            "not text",
        ),
        (
            [run_args("python"), vec!["--timeout", "99999"]].concat(),
            b"print(1)".to_vec(),
            2,
            "out of range",
        ),
        (
            [run_args("python"), vec!["--timeout", "soon"]].concat(),
            b"print(1)".to_vec(),
            2,
            "invalid duration",
        ),
        (
            [run_args("python"), vec!["--memory", "1k"]].concat(),
            b"print(1)".to_vec(),
            2,
            "out of range",
        ),
        (
            [run_args("python"), vec!["--file", "../x=/etc/hostname"]].concat(),
            b"print(1)".to_vec(),
            1,
            "must not start with a dot",
        ),
        (
            [run_args("python"), vec!["--file", "a/b=/etc/hostname"]].concat(),
            b"print(1)".to_vec(),
            1,
            "plain file name",
        ),
        (
            [run_args("python"), vec!["--file", "x=/nonexistent"]].concat(),
            b"print(1)".to_vec(),
            1,
            "cannot read",
        ),
    ];
    for (args, stdin, code, message) in &cases {
        let (got, err, pid) = cli_pid(&setup, args, stdin);
        pids.insert(pid);
        assert_eq!(got, *code, "{args:?}: {err}");
        assert!(
            err.contains(message),
            "{args:?}: expected {message:?} in {err}"
        );
        if *code == 1 {
            let own: Vec<&str> = err.lines().filter(|l| l.starts_with("aisopod:")).collect();
            assert_eq!(own.len(), 1, "one line: {err}");
        }
    }
    // Failures inside the run: a program that crashes, one killed by each limit.
    let mut failing = vec![
        ("python", "raise SystemExit(5)"),
        ("python", "import os\nos.kill(os.getpid(), 9)"),
    ];
    if enforced(&setup, "pids") {
        failing.push(("bash", ":(){ :|:& };:; sleep 30"));
    }
    if enforced(&setup, "memory") {
        failing.push(("python", "x = b'x' * (1 << 30)"));
    }
    for (lang, code) in failing {
        let (_, _, pid) = cli_pid(&setup, &run_args(lang), code.as_bytes());
        pids.insert(pid);
    }
    let (code, _, pid) = cli_pid(
        &setup,
        &["sandbox", "run", "--lang", "bash", "--timeout", "1"],
        b"sleep 100",
    );
    pids.insert(pid);
    assert_eq!(code, 124);
    assert_eq!(
        leftover_runs(&dirs, &pids),
        Vec::<PathBuf>::new(),
        "run cgroups left behind"
    );
    assert_eq!(
        mount_table(),
        mounts_before,
        "the host's mount table changed"
    );
}

#[test]
fn bad_sandbox_config_names_the_key() {
    let setup = Setup::new(
        "[tools.sandbox]\nruntime = \"docker\"\nmemory_limit = \"1k\"\npids_limit = 0\n",
    );
    let out = setup.cli(&["sandbox", "run", "--lang", "python", "--code", "print(1)"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for key in [
        "tools.sandbox.runtime",
        "tools.sandbox.memory_limit",
        "tools.sandbox.pids_limit",
    ] {
        assert!(err.contains(key), "{key} missing from {err}");
    }
    assert!(err.contains("not supported"), "{err}");

    let disabled = sandboxed("enabled = false");
    let out = disabled.cli(&["sandbox", "run", "--lang", "python", "--code", "print(1)"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("disabled"), "{}", stderr(&out));

    let python_only = sandboxed("allowed_languages = [\"python\"]");
    let out = python_only.cli(&["sandbox", "run", "--lang", "bash", "--code", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not allowed"), "{}", stderr(&out));
}

#[test]
fn runtime_none_runs_without_isolation_in_local_mode_only() {
    let setup = Setup::new("[security]\nmode = \"local\"\n[tools.sandbox]\nruntime = \"none\"\n");
    let result = run(
        &setup,
        "python",
        "import os\nprint(os.getuid())\nopen('out.txt', 'w').write('x')",
        &[],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(result.stdout(), format!("{}\n", nix::unistd::getuid()));
    assert_eq!(result.json["files"][0]["name"], "out.txt");
    let slow = run(&setup, "bash", "sleep 100", &["--timeout", "1"]);
    assert_eq!(slow.reason(), "timeout");
    let strict = Setup::new("[tools.sandbox]\nruntime = \"none\"\n");
    let out = strict.cli(&["sandbox", "run", "--lang", "bash", "--code", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("strict mode refuses runtime"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_kernel_without_user_namespaces_is_a_clear_error() {
    let setup = sandboxed(SANDBOX);
    // Inside a user namespace whose own limit for nested user namespaces is 0, the
    // sandbox's unshare fails the way it does on a kernel that forbids them.
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {BIN} --config {} sandbox run --lang bash --code true",
        setup.config.display()
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("create namespaces") && err.contains("max_user_namespaces"),
        "{err}"
    );
}

#[test]
fn sandbox_check_reports_every_layer() {
    let setup = sandboxed(SANDBOX);
    let out = setup.cli(&["sandbox", "check", "--json"]);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    // A hierarchy without some controllers (v2 on a hybrid host) is reported as such.
    let all_limits = ["memory", "cpu", "pids"]
        .iter()
        .all(|c| report["cgroup"]["enforced"][c] == true);
    assert_eq!(
        out.status.success(),
        all_limits,
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(report["code_execution"], all_limits);
    if !all_limits {
        let missing = report["missing"].to_string();
        assert!(missing.contains("cgroup"), "{missing}");
    }
    for ns in ["user", "pid", "net", "mnt", "uts", "ipc", "cgroup"] {
        assert_eq!(report["namespaces"][ns], true, "{ns}");
    }
    assert_eq!(report["seccomp"], true);
    assert!(report["landlock"]["detail"].as_str().is_some());
    assert_eq!(report["trial"], "ok");
    assert!(report["interpreters"]["python"].as_str().is_some());
    if !all_limits {
        return;
    }
    let text = setup.cli(&["sandbox", "check"]);
    assert!(
        stdout(&text).contains("code execution  available"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn runs_through_a_live_gateway_are_audited() {
    let setup = Setup::new(&gateway_config(SANDBOX));
    let gateway = setup.start();
    // The self-test runs at start; /ready shows its result.
    let status = sandbox_status(&gateway);
    assert_eq!(status.0, "ok", "{}", status.1);
    let result = run(&setup, "python", "print('via the gateway')", &[]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(result.stdout(), "via the gateway\n");
    let out = setup.cli(&["audit", "list", "--json"]);
    let records: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let runs: Vec<&Value> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "sandbox.run")
        .collect();
    assert_eq!(runs.len(), 1, "{records}");
    let details = &runs[0]["details"];
    assert_eq!(details["language"], "python");
    assert_eq!(details["reason"], "exited");
    assert_eq!(details["code_sha256"].as_str().unwrap().len(), 64);
    assert!(
        runs[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("admin-socket uid:")
    );
}

/// Waits until a gateway's /ready reports the sandbox's self-test result.
fn sandbox_status(gateway: &crate::support::Gateway) -> (String, Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready: Value = reqwest::blocking::get(format!("{}/ready", gateway.url))
            .unwrap()
            .json()
            .unwrap();
        let status = ready["checks"]["sandbox"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if status != "checking" && !status.is_empty() || Instant::now() > deadline {
            return (status, ready);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A config for a gateway on plain HTTP in local mode with these sandbox keys.
fn gateway_config(keys: &str) -> String {
    let mut config = sandbox_toml(keys);
    if !config.contains("[security]") {
        config.push_str("[security]\nmode = \"local\"\n");
    }
    config.push_str("[tls]\nmode = \"off\"\n");
    config
}

#[test]
fn a_full_gateway_answers_busy_after_its_queue_timeout() {
    let setup = Setup::new(&gateway_config(
        "max_concurrent = 1\nqueue_timeout = \"1s\"",
    ));
    let gateway = setup.start();
    let (status, ready) = sandbox_status(&gateway);
    assert_eq!(status, "ok", "{ready}");
    // One run holds the only slot for a few seconds...
    let marker = format!("aisopod-slot-holder-{}", std::process::id());
    let long = Command::new(BIN)
        .arg("--config")
        .arg(&setup.config)
        .args(["sandbox", "run", "--lang", "bash", "--code"])
        .arg(format!("echo first; exec -a {marker} sleep 4"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // (it holds the slot once its program runs, seen from the host by its name)
    let deadline = Instant::now() + Duration::from_secs(15);
    while !holds_a_process_named(&marker) {
        assert!(Instant::now() < deadline, "the first run never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    // ...so the next one waits for the queue timeout, then is refused as busy.
    let waited = Instant::now();
    let busy = setup.cli(&["sandbox", "run", "--lang", "bash", "--code", "true"]);
    assert_eq!(busy.status.code(), Some(1), "{}", stderr(&busy));
    assert!(stderr(&busy).contains("busy"), "{}", stderr(&busy));
    assert!(
        waited.elapsed() >= Duration::from_secs(1),
        "it waited for a slot first"
    );
    let long = long.wait_with_output().unwrap();
    assert!(long.status.success(), "{}", stderr(&long));
    assert_eq!(stdout(&long), "first\n");
    // The slot is free again.
    let after = setup.cli(&["sandbox", "run", "--lang", "bash", "--code", "echo again"]);
    assert_eq!(stdout(&after), "again\n", "{}", stderr(&after));
}

#[test]
fn runs_work_as_an_unprivileged_user_with_a_delegated_cgroup() {
    if !nix::unistd::geteuid().is_root() {
        skipped("unprivileged-user sandbox run: needs root to set up the delegation");
        return;
    }
    const UID: u32 = 4242;
    let setup = sandboxed(SANDBOX);
    let dirs = run_directories(&setup);
    // Delegate one cgroup per hierarchy to the user, as systemd's Delegate=yes does.
    let delegated: Vec<PathBuf> = dirs
        .iter()
        .map(|d| {
            d.parent()
                .unwrap()
                .join(format!("aisopod-test-delegated-{}", std::process::id()))
        })
        .collect();
    for dir in &delegated {
        std::fs::create_dir(dir).unwrap();
        for entry in std::iter::once(dir.clone())
            .chain(std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()))
        {
            nix::unistd::chown(
                &entry,
                Some(nix::unistd::Uid::from_raw(UID)),
                Some(nix::unistd::Gid::from_raw(UID)),
            )
            .unwrap();
        }
    }
    let chown_tree = |path: &Path| {
        Command::new("chown")
            .args(["-R", &format!("{UID}:{UID}")])
            .arg(path)
            .status()
            .unwrap();
    };
    chown_tree(setup.dir.path());
    let join: String = delegated
        .iter()
        .map(|d| format!("echo $$ > {}/cgroup.procs; ", d.display()))
        .collect();
    let script = format!(
        "{join}exec setpriv --reuid {UID} --regid {UID} --clear-groups {BIN} --config {} sandbox run --lang python --json",
        setup.config.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(
                b"import os\nprint(os.getuid(), open('/proc/self/uid_map').read().split())\n",
            )
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let cleanup = || {
        for dir in &delegated {
            let _ = std::fs::remove_dir(dir.join("aisopod-sandbox"));
            let _ = std::fs::remove_dir(dir.join("supervisor"));
            let _ = std::fs::remove_dir(dir);
        }
    };
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if json["exit_code"] != 0 {
        cleanup();
        panic!("{}\n{}", stdout(&out), stderr(&out));
    }
    // The sandbox's uid 1000 maps onto the service user, one id and nothing else.
    assert_eq!(json["stdout"], format!("1000 ['1000', '{UID}', '1']\n"));
    // The run's cgroup was created inside the delegated subtree and removed again.
    for dir in &delegated {
        let inner = dir.join("aisopod-sandbox");
        assert!(inner.is_dir(), "{}", inner.display());
        let runs: Vec<_> = std::fs::read_dir(&inner)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(runs.is_empty(), "{runs:?}");
    }
    cleanup();
}

/// Issue 10 item 14: a sandboxed program, run while a gateway holds its admin socket
/// and master key, can reach neither (they are not in its mount namespace, and its
/// uid is not the gateway's).
#[test]
fn a_sandboxed_program_cannot_reach_the_admin_socket_or_the_master_key() {
    let setup = sandboxed(SANDBOX);
    let mut gateway = setup.start_process();
    let config =
        aisopod::config::load(Some(&setup.config), &aisopod::config::ProcessEnvironment).unwrap();
    let socket = aisopod::admin::socket_path(&config);
    let key = setup.data_dir().join("master.key");
    assert!(socket.exists() && key.exists());
    let program = probe_program(&[
        (
            "admin_socket",
            &format!(
                "s = socket.socket(socket.AF_UNIX)\ns.connect({:?})\ns.sendall(b'{{\"command\":\"status\"}}\\n')\nif not s.recv(10): raise OSError(errno.ECONNRESET, 'closed')",
                socket.display().to_string()
            ),
        ),
        (
            "master_key",
            &format!("open({:?}, 'rb').read()", key.display().to_string()),
        ),
        (
            "via_proc_root",
            &format!(
                "open('/proc/1/root' + {:?}, 'rb').read()",
                key.display().to_string()
            ),
        ),
    ]);
    let result = run(&setup, "python", &program, &[]);
    assert_eq!(result.code, 0, "{}\n{}", result.json, result.stderr);
    let probe = result.probe();
    assert_refused(
        &probe,
        "admin_socket",
        &["ENOENT", "EACCES", "ECONNREFUSED", "ECONNRESET", "EPERM"],
    );
    assert_refused(&probe, "master_key", &["ENOENT", "EACCES", "EPERM"]);
    assert_refused(&probe, "via_proc_root", &["ENOENT", "EACCES", "EPERM"]);
    // The gateway serves its owner right after.
    assert_eq!(gateway.get("/health").status(), 200);
    gateway.stop();
}

/// Issue 10 item 14: seen from the host, a sandboxed process does not run as the uid of
/// whoever started it (here root, as the gateway on this host), so it owns nothing of
/// the gateway's.
#[test]
fn a_sandboxed_process_runs_as_another_uid_than_the_gateway_on_the_host() {
    let setup = sandboxed(SANDBOX);
    let marker = format!("aisopod-uid-probe-{}", std::process::id());
    let mut child = Command::new(BIN)
        .args(["--config", setup.config.to_str().unwrap()])
        .args(["sandbox", "run", "--lang", "bash", "--code"])
        .arg(format!("exec -a {marker} sleep 20"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let found = loop {
        let hit = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .find_map(|entry| {
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                cmdline
                    .starts_with(marker.as_bytes())
                    .then(|| std::fs::read_to_string(entry.path().join("status")).ok())
                    .flatten()
                    .map(|status| (entry.file_name(), status))
            });
        if hit.is_some() || Instant::now() > deadline {
            break hit;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let Some((pid, status)) = found else {
        let _ = child.kill();
        panic!("the sandboxed process never showed up on the host");
    };
    let ids = |field: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .unwrap()
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let own = nix::unistd::geteuid().as_raw();
    let (uids, gids) = (ids("Uid:"), ids("Gid:"));
    let pid: i32 = pid.to_str().unwrap().parse().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    assert_eq!(uids.len(), 4, "{status}");
    assert!(
        uids.iter().all(|&uid| uid != own && uid != 0),
        "the sandboxed process runs as uid {uids:?} on the host, the gateway as {own}"
    );
    assert!(gids.iter().all(|&gid| gid != 0), "{gids:?}");
}
