//! The messages between the gateway and its sandbox helper, over the helper's stdin (a
//! unix socket pair): the gateway sends one [`LaunchSpec`], the helper side answers with
//! [`Report`]s. Each message is a 4-byte big-endian length and that many bytes of JSON.
//!
//! Reports come from inside the sandbox (the run's init and the program's process just
//! before `exec`), so the gateway treats them as untrusted input: sizes are capped and
//! every field is checked again where it is used. A helper step that fails is sent as
//! a [`Failure`], and the helper then exits with [`HELPER_FAILED`]; both sides of the
//! helper (the launcher and the run's init) report through here. This module only
//! encodes and decodes.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::landlock::Enforcement;
use super::spec::{FileData, Language, Limits};

/// The hidden subcommand that makes `aisopod` the sandbox helper.
pub const HELPER_ARG: &str = "__sandbox-exec";
/// Largest message either side accepts (a spec with the largest program and files).
pub const MAX_MESSAGE: u32 = 512 << 20;
/// Exit status of a helper that reported a setup failure.
pub const HELPER_FAILED: u8 = 125;

/// Everything the helper needs to set up and start one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// The gateway's pid: the helper dies with it and checks it is still its parent.
    pub parent_pid: u32,
    /// `cgroup.procs` files the helper joins before anything else.
    pub cgroup_procs: Vec<PathBuf>,
    pub language: Language,
    pub interpreter: PathBuf,
    pub program: FileData,
    pub files: Vec<FileData>,
    pub limits: Limits,
}

/// What the helper side reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Report {
    /// The program's process is about to `exec` the interpreter under every restriction.
    Ready { landlock: Enforcement },
    /// The program ended; the run's other processes are gone; these files were written.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        files: Vec<FileData>,
        files_dropped: usize,
    },
    /// Setting up the run failed at `stage`.
    Failed { stage: String, message: String },
}

/// Writes one message.
pub fn write_message<T: Serialize>(out: &mut impl Write, message: &T) -> io::Result<()> {
    let body = serde_json::to_vec(message).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| *len <= MAX_MESSAGE)
        .ok_or_else(|| io::Error::other("message too large"))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    out.write_all(&frame)?;
    out.flush()
}

/// Reads one message; `Ok(None)` at a clean end of stream.
pub fn read_message<T: for<'de> Deserialize<'de>>(
    input: &mut impl Read,
    max: u32,
) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match input.read_exact(&mut header) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let len = u32::from_be_bytes(header);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds {max}"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    input.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Async twin of [`read_message`] for the gateway side.
pub async fn read_message_async<T: for<'de> Deserialize<'de>>(
    input: &mut (impl tokio::io::AsyncRead + Unpin),
    max: u32,
) -> io::Result<Option<T>> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 4];
    match input.read_exact(&mut header).await {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let len = u32::from_be_bytes(header);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds {max}"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    input.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A failed helper step: where, and what the kernel said.
#[derive(Debug)]
pub struct Failure {
    pub stage: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(stage: &'static str, err: impl std::fmt::Display) -> Failure {
        Failure {
            stage,
            message: err.to_string(),
        }
    }

    /// Reports the failure to the gateway (best effort: the gateway may be gone).
    pub fn report(&self, control: &mut UnixStream) {
        let _ = write_message(
            control,
            &Report::Failed {
                stage: self.stage.to_string(),
                message: self.message.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_oversized_ones_are_refused() {
        let report = Report::Exited {
            code: Some(3),
            signal: None,
            files: vec![FileData {
                name: "out.txt".into(),
                data: vec![0, 159, 255],
            }],
            files_dropped: 1,
        };
        let mut buf = Vec::new();
        write_message(&mut buf, &report).unwrap();
        write_message(
            &mut buf,
            &Report::Failed {
                stage: "mount".into(),
                message: "EPERM".into(),
            },
        )
        .unwrap();
        let mut reader = buf.as_slice();
        assert_eq!(
            read_message::<Report>(&mut reader, 1 << 20).unwrap(),
            Some(report)
        );
        assert!(matches!(
            read_message::<Report>(&mut reader, 1 << 20).unwrap(),
            Some(Report::Failed { .. })
        ));
        assert_eq!(read_message::<Report>(&mut reader, 1 << 20).unwrap(), None);

        let mut big = Vec::new();
        write_message(&mut big, &"x".repeat(100)).unwrap();
        assert!(read_message::<String>(&mut big.as_slice(), 10).is_err());
        assert!(read_message::<Report>(&mut &b"\x00\x00\x00\x02{]"[..], 100).is_err());
    }
}
