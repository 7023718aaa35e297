//! The CLI's end of the admin socket: sends one [`RequestLine`] and reads the typed
//! answer. It owns only the connection; it never runs a command itself and never
//! decides what the answer means to the user.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{
    AdminRequest, AdminResponse, CommandError, PendingApproval, ReadReplyError, Reply, RequestLine,
    parse_reply,
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach the gateway's admin socket {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("admin socket: cannot {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("admin socket: cannot encode the request: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the gateway closed the admin connection without answering")]
    Closed,
    #[error(transparent)]
    Reply(#[from] ReadReplyError),
}

/// Sends one request to a running gateway. `Ok(None)` when no gateway listens.
pub fn send(
    path: &Path,
    request: &AdminRequest,
    timeout: Duration,
) -> Result<Option<Result<AdminResponse, CommandError>>, AdminError> {
    send_noting(path, request, timeout, |_| {})
}

/// [`send`], handing each [`PendingApproval`] line that comes before the answer to
/// `pending`.
pub fn send_noting(
    path: &Path,
    request: &AdminRequest,
    timeout: Duration,
    mut pending: impl FnMut(&PendingApproval),
) -> Result<Option<Result<AdminResponse, CommandError>>, AdminError> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(source) => {
            return Err(AdminError::Connect {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let io = |op| move |source| AdminError::Io { op, source };
    stream
        .set_read_timeout(Some(timeout))
        .map_err(io("set a timeout"))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(io("set a timeout"))?;
    let mut line = serde_json::to_vec(&RequestLine::new(request.clone()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io("send the request"))?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut reply = String::new();
        reader
            .read_line(&mut reply)
            .map_err(io("read the answer"))?;
        if reply.is_empty() {
            return Err(AdminError::Closed);
        }
        match parse_reply(&reply)? {
            Reply::Pending(note) => pending(&note),
            Reply::Ok(response) => return Ok(Some(Ok(response))),
            Reply::Error(error) => return Ok(Some(Err(error))),
        }
    }
}
