//! The coordinator's listener, guarded: every accepted connection counts against a total cap and a cap per source
//! address (beyond either it is closed at once), and must start a gRPC call within a deadline (TLS handshake and
//! HTTP/2 preface included) or it is closed. Descriptors never run out under a flood of idle connections, and an
//! accept error such as EMFILE backs off instead of spinning.
//!
//! A call is seen by [`CallSeen`], an interceptor on every service: it marks the connection (found by its peer
//! address, which tonic puts in every request) as started, and from then on only HTTP/2 keepalive pings decide
//! whether the peer is still there.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Bounds on the connections a coordinator holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once. Default: [`DEFAULT_MAX_CONNECTIONS`].
    pub max_total: usize,
    /// Most connections open at once from one source address. Default: [`DEFAULT_MAX_PER_SOURCE`].
    pub max_per_source: usize,
    /// Time a new connection has to start its first call (TLS and HTTP/2 handshakes included). Default: 10 s.
    pub first_call: Duration,
}

/// Sized for 10,000 agents, a CI caller per run and room to spare.
pub const DEFAULT_MAX_CONNECTIONS: usize = 12_000;
/// Agents behind one NAT address share it; one flooding source still leaves the rest of the total to others.
pub const DEFAULT_MAX_PER_SOURCE: usize = 1_024;
pub const DEFAULT_FIRST_CALL: Duration = Duration::from_secs(10);
/// Descriptors kept beyond the connections: the store, the metrics listener, logs.
pub const SPARE_DESCRIPTORS: u64 = 128;
/// Connections the kernel queues before they are accepted (capped by net.core.somaxconn): room for a burst, so
/// a flood that outpaces accept for a moment does not drop the SYN of a health check (retried only after 1 s).
const LISTEN_BACKLOG: u32 = 4096;

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_total: DEFAULT_MAX_CONNECTIONS,
            max_per_source: DEFAULT_MAX_PER_SOURCE,
            first_call: DEFAULT_FIRST_CALL,
        }
    }
}

impl ConnectionLimits {
    /// The limits within the process's open-file limit (raised to its hard limit first): the total is lowered to
    /// what the descriptors allow, and the returned text says so when it was.
    pub fn fitted_to_open_files(mut self) -> (Self, Option<String>) {
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap_or((1024, 1024));
        let soft = if soft < hard && rlimit::Resource::NOFILE.set(hard, hard).is_ok() {
            hard
        } else {
            soft
        };
        let room = usize::try_from(soft.saturating_sub(SPARE_DESCRIPTORS)).unwrap_or(usize::MAX);
        if self.max_total <= room {
            return (self, None);
        }
        let asked = self.max_total;
        self.max_total = room.max(1);
        (
            self,
            Some(format!(
                "--max-connections {asked} is more than the open-file limit ({soft}) allows; at most {} connections \
                 are held. Raise LimitNOFILE (systemd) or ulimit -n",
                self.max_total
            )),
        )
    }
}

/// A listening socket on `addr` with a deep accept queue ([`LISTEN_BACKLOG`]).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Counters the listener keeps (read by /metrics).
#[derive(Debug, Clone, Default)]
pub struct ConnectionCounters {
    pub open: prometheus_client::metrics::gauge::Gauge,
    pub refused: prometheus_client::metrics::counter::Counter,
    pub timed_out: prometheus_client::metrics::counter::Counter,
}

/// Who is connected: counts per source, and each connection's "a call started" flag by peer address.
#[derive(Debug, Default)]
struct Book {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
    started: HashMap<SocketAddr, Arc<AtomicBool>>,
}

/// The shared side of a guarded listener: admission and the call marks.
#[derive(Debug, Clone)]
pub struct Gate {
    pub(super) limits: ConnectionLimits,
    book: Arc<Mutex<Book>>,
    pub(super) counters: ConnectionCounters,
}

impl Gate {
    pub fn new(limits: ConnectionLimits, counters: ConnectionCounters) -> Self {
        Gate {
            limits,
            book: Arc::default(),
            counters,
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `peer`, or `None` when a cap is reached.
    pub(super) fn admit(&self, peer: SocketAddr) -> Option<Admission> {
        let mut book = self.book();
        let from_source = book.per_source.get(&peer.ip()).copied().unwrap_or(0);
        if book.total >= self.limits.max_total || from_source >= self.limits.max_per_source {
            return None;
        }
        book.total += 1;
        *book.per_source.entry(peer.ip()).or_default() += 1;
        let started = Arc::new(AtomicBool::new(false));
        book.started.insert(peer, started.clone());
        self.counters.open.inc();
        Some(Admission {
            gate: self.clone(),
            peer,
            started,
        })
    }

    /// A call arrived from `peer`: its connection is in use.
    pub fn call_from(&self, peer: SocketAddr) {
        if let Some(flag) = self.book().started.get(&peer) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.book().total
    }
}

/// A connection's place in the [`Gate`], given back when it is dropped.
#[derive(Debug)]
pub(super) struct Admission {
    gate: Gate,
    peer: SocketAddr,
    started: Arc<AtomicBool>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut book = self.gate.book();
        book.total = book.total.saturating_sub(1);
        if let Some(n) = book.per_source.get_mut(&self.peer.ip()) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                book.per_source.remove(&self.peer.ip());
            }
        }
        book.started.remove(&self.peer);
        self.gate.counters.open.dec();
    }
}

/// An admitted connection: the TCP stream, its place in the gate, and the deadline for its first call.
pub struct GuardedConn {
    pub(super) stream: TcpStream,
    pub(super) admission: Admission,
    pub(super) deadline: Option<Pin<Box<Sleep>>>,
}

impl GuardedConn {
    /// Fails reads once the first-call deadline passed without a call.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.admission.started.load(Ordering::Relaxed) {
            self.deadline = None;
            return Ok(());
        }
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            self.deadline = None;
            self.admission.gate.counters.timed_out.inc();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no gRPC call started within the first-call deadline",
            ));
        }
        Ok(())
    }
}

impl Connected for GuardedConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for GuardedConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check_deadline(cx)?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Marks a connection as in use when a call arrives on it (an interceptor on the whole server).
#[derive(Clone)]
pub struct CallSeen(pub Gate);

impl tonic::service::Interceptor for CallSeen {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(peer) = request.remote_addr() {
            self.0.call_from(peer);
        }
        Ok(request)
    }
}
