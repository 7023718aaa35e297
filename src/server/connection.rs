//! One TCP connection from accept to close: the connection caps, the deadlines and the
//! HTTP/1.1 / HTTP/2 protocol settings.
//!
//! What a connection may hold, and for how long, is decided here and nowhere else:
//! - a global cap (`max_connections`) and a per-address cap
//!   (`max_connections_per_address`; IPv6 keyed per /64, IPv4-mapped IPv6 folded onto
//!   IPv4), so one host cannot hold every slot; refused connections are closed at once;
//!   the configured trusted proxies count only against the global cap (every client
//!   behind one shares its address);
//! - one deadline (`handshake_timeout`) from accept to the first complete request head,
//!   covering the TLS handshake, protocol detection (the HTTP/2 preface) and the headers
//!   together; a connection that has not asked for anything by then is dropped;
//! - an idle deadline (`idle_timeout`): an HTTP/1 keep-alive connection or an HTTP/2
//!   connection with no request or response in progress is closed gracefully (HTTP/2
//!   gets a GOAWAY); HTTP/2 keep-alive pings that go unanswered close it too;
//! - a bounded linger for request bodies an answer did not read (an early 413, 429 or
//!   503): the rest is read and discarded, up to 4 × `max_body` more bytes and
//!   [`LINGER_TIME`], so the client sees the answer instead of a reset stream or a
//!   broken pipe.
//!
//! It never looks at what a request asks for: routing, authentication and limits on
//! request content belong to the router. A WebSocket leaves this module's care once it
//! is upgraded (it is no longer idle HTTP; `server::ws` bounds it).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::IpNet;
use crate::server::state::App;

/// The first byte of a TLS ClientHello record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

const PLAIN_HTTP_ON_TLS_PORT: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 52\r\n\r\nThis port speaks HTTPS; use an https:// URL instead.\n";

/// How long the unread rest of a request body is drained after an early answer.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// How long a connection told to close (idle, or shutting down) may take to do so.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Connection limits the accept loop enforces.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_per_address: usize,
    /// Addresses that only the global cap applies to: the trusted reverse proxies.
    pub uncapped: Arc<[IpNet]>,
    /// Accept to the first complete request head; also each later HTTP/1 request head.
    pub handshake_timeout: Duration,
    /// No request or response in progress for this long closes the connection.
    pub idle_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// How much of an unread request body is drained after an early answer.
    pub linger_bytes: u64,
}

impl ConnectionLimits {
    pub fn from_app(app: &App) -> Self {
        let server = &app.config().server;
        ConnectionLimits {
            max_connections: server.max_connections,
            max_per_address: server.max_connections_per_address,
            uncapped: app.config().rate_limit.trusted_proxies.clone().into(),
            handshake_timeout: server.handshake_timeout,
            idle_timeout: server.idle_timeout,
            shutdown_timeout: server.shutdown_timeout,
            // Enough for an upload a few times over the limit to end cleanly; beyond
            // it the stream is reset (HTTP/2) or the connection closed (HTTP/1.1).
            linger_bytes: server.max_body.saturating_mul(4),
        }
    }
}

/// The key a connection counts against: one IPv4 address, or one IPv6 /64 (what one
/// host or one LAN segment is usually given).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & (u128::MAX << 64))),
        },
    }
}

/// Open connections per address key; an entry lives only while a connection does, so
/// the map never holds more than `max_connections` keys.
#[derive(Debug, Default)]
struct AddressSlots {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`AddressSlots`] (none for an uncapped address), given
/// back on drop.
struct AddressSlot {
    slots: Arc<AddressSlots>,
    key: Option<IpAddr>,
}

impl AddressSlots {
    fn take(self: &Arc<Self>, ip: IpAddr, limits: &ConnectionLimits) -> Option<AddressSlot> {
        if limits.uncapped.iter().any(|net| net.contains(ip)) {
            return Some(AddressSlot {
                slots: self.clone(),
                key: None,
            });
        }
        let max = limits.max_per_address;
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            slots: self.clone(),
            key: Some(key),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else {
            return;
        };
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown`
/// resolves, then drains in-flight requests for up to `limits.shutdown_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let addresses = Arc::new(AddressSlots::default());
    let (stop, stopping) = watch::channel(());
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let accepted_at = Instant::now();
        // Debug, not warn: an attacker decides how often these happen, and must not
        // decide how much the log writes.
        let Some(slot) = addresses.take(peer.ip(), &limits) else {
            tracing::debug!(%peer, "per-address connection limit reached; closing new connection");
            drop(stream);
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing new connection");
            drop(stream);
            continue;
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        let stopping = stopping.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _held = (permit, slot);
            let _ = stream.set_nodelay(true);
            let first_request_by = accepted_at + limits.handshake_timeout;
            match acceptor {
                Some(acceptor) => {
                    let Some(stream) =
                        tls_handshake(stream, &acceptor, first_request_by, peer).await
                    else {
                        return;
                    };
                    serve_connection(stream, router, peer, limits, first_request_by, stopping)
                        .await;
                }
                None => {
                    serve_connection(stream, router, peer, limits, first_request_by, stopping)
                        .await;
                }
            }
        });
    }
    drop(listener);
    drop(stop);
    // Every connection task holds a permit; all of them back means all have ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = permits.acquire_many(all) => tracing::debug!("all connections drained"),
        () = tokio::time::sleep(limits.shutdown_timeout) => tracing::warn!("shutdown timeout reached; closing remaining connections"),
    }
}

async fn tls_handshake(
    mut stream: TcpStream,
    acceptor: &TlsAcceptor,
    deadline: Instant,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != TLS_HANDSHAKE_RECORD => {
            tracing::debug!(%peer, "plain bytes on the TLS port");
            let _ =
                tokio::time::timeout_at(deadline, stream.write_all(PLAIN_HTTP_ON_TLS_PORT)).await;
            let _ = stream.shutdown().await;
            return None;
        }
        Ok(Ok(1)) => {}
        _ => return None,
    }
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// What a connection is doing, as the idle watchdog sees it.
#[derive(Debug)]
struct Activity {
    /// Requests whose response has not been sent completely yet.
    open: AtomicUsize,
    /// When the last request started or the last response ended; `None` before the
    /// first request head.
    last: Mutex<Option<Instant>>,
}

impl Activity {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    fn last(&self) -> Option<Instant> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counts one request as open until its response body is dropped (sent or abandoned).
struct OpenRequest(Arc<Activity>);

impl OpenRequest {
    fn new(activity: Arc<Activity>) -> Self {
        activity.open.fetch_add(1, Ordering::SeqCst);
        activity.touch();
        OpenRequest(activity)
    }
}

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0.touch();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_connection<S>(
    stream: S,
    router: Router,
    peer: SocketAddr,
    limits: ConnectionLimits,
    first_request_by: Instant,
    mut stopping: watch::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        open: AtomicUsize::new(0),
        last: Mutex::new(None),
    });
    let seen = activity.clone();
    let linger_bytes = limits.linger_bytes;
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let open = OpenRequest::new(seen.clone());
        let mut request = request.map(|body| {
            axum::body::Body::new(Lingering {
                inner: Some(body),
                limit: linger_bytes,
            })
        });
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
            Ok::<_, Infallible>(response.map(|body| {
                axum::body::Body::new(Tracked {
                    inner: body,
                    _open: open,
                })
            }))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_header_list_size(64 * 1024);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut closing: Option<Instant> = None;
    loop {
        let wake = match (closing, activity.last()) {
            (Some(by), _) => by,
            (None, None) => first_request_by,
            (None, Some(last)) => last + limits.idle_timeout,
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            _ = stopping.changed(), if closing.is_none() => {
                connection.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + limits.shutdown_timeout);
            }
            () = tokio::time::sleep_until(wake) => {
                if closing.is_some() {
                    tracing::debug!(%peer, "connection did not close in time; dropping it");
                    return;
                }
                match activity.last() {
                    None => {
                        tracing::debug!(%peer, "no complete request head before the deadline; closing");
                        return;
                    }
                    Some(last) => {
                        if activity.open.load(Ordering::SeqCst) == 0
                            && last + limits.idle_timeout <= Instant::now()
                        {
                            tracing::debug!(%peer, "idle connection; closing");
                            connection.as_mut().graceful_shutdown();
                            closing = Some(Instant::now() + CLOSE_GRACE);
                        } else if activity.open.load(Ordering::SeqCst) > 0 {
                            // Busy: look again one idle period from now.
                            activity.touch();
                        }
                    }
                }
            }
        }
    }
}

/// A response body that keeps its request counted as open until it is dropped.
struct Tracked {
    inner: axum::body::Body,
    _open: OpenRequest,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that, when dropped unread, reads and discards what is left (up to
/// `limit` bytes, for at most [`LINGER_TIME`]) instead of abandoning it.
///
/// Abandoning it makes hyper end the exchange early: HTTP/2 resets the stream after
/// the answer (RST_STREAM NO_ERROR, which RFC 9113 §8.1 allows but which clients such
/// as curl before curl/curl#22987 read as a failed request), and HTTP/1.1 closes the
/// connection while the client still sends (a broken pipe instead of the answer).
struct Lingering {
    inner: Option<Incoming>,
    limit: u64,
}

impl Body for Lingering {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(Body::size_hint)
            .unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let limit = self.limit;
        runtime.spawn(async move {
            let drain = async {
                let mut read: u64 = 0;
                while let Some(Ok(frame)) =
                    std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
                {
                    if let Some(data) = frame.data_ref() {
                        read = read.saturating_add(data.len() as u64);
                        if read > limit {
                            break;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER_TIME, drain).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_keyed_per_64_and_mapped_ipv4_folds_onto_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    fn limits(max_per_address: usize, uncapped: &[&str]) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 16,
            max_per_address,
            uncapped: uncapped.iter().map(|n| IpNet::parse(n).unwrap()).collect(),
            handshake_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(1),
            linger_bytes: 1024,
        }
    }

    #[test]
    fn address_slots_cap_one_key_and_come_back_on_drop() {
        let slots = Arc::new(AddressSlots::default());
        let limits = limits(2, &[]);
        let one: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::2".parse().unwrap();
        let first = slots.take(one, &limits).unwrap();
        let _second = slots.take(same_64, &limits).unwrap();
        assert!(
            slots.take(one, &limits).is_none(),
            "a third from the same /64"
        );
        assert!(slots.take("192.0.2.1".parse().unwrap(), &limits).is_some());
        drop(first);
        assert!(
            slots.take(one, &limits).is_some(),
            "a slot comes back when closed"
        );
    }

    #[test]
    fn a_trusted_proxy_is_held_only_to_the_global_cap() {
        let slots = Arc::new(AddressSlots::default());
        let limits = limits(1, &["127.0.0.1"]);
        let held: Vec<_> = (0..5)
            .map(|_| slots.take("127.0.0.1".parse().unwrap(), &limits))
            .collect();
        assert!(held.iter().all(Option::is_some));
        let _other = slots.take("127.0.0.2".parse().unwrap(), &limits).unwrap();
        assert!(slots.take("127.0.0.2".parse().unwrap(), &limits).is_none());
        drop(held);
        assert_eq!(
            slots.open.lock().unwrap().len(),
            1,
            "uncapped addresses are not tracked"
        );
    }
}
