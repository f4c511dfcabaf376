//! Redis connections whose every reply is bounded: the redis crate reads a reply whole (a bulk string announced as
//! a terabyte is buffered until it arrives), so a hostile Redis could fill any process that talks to it. Here each
//! connection is made by us, to an address the caller has checked (never the name again), TLS included, and its
//! stream fails once one reply passes [`BoundedRedis::max_reply`] bytes. The agent's cache lookups and the
//! coordinator's INFO, FLUSHDB and key cleanup use it.

use redis::aio::MultiplexedConnection;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Why a bounded Redis connection cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum BoundedRedisError {
    #[error("a unix socket Redis is not supported here")]
    Unix,
    #[error("rediss:// with certificate checks turned off (#insecure) is not supported")]
    Insecure,
    #[error("rediss:// with client certificates is not supported")]
    ClientCertificates,
    #[error("no trusted root certificates for rediss://")]
    NoRoots,
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("no connection within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Redis(String),
}

/// Where and how to reach one Redis.
pub struct BoundedRedis {
    addr: SocketAddr,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
    redis: redis::RedisConnectionInfo,
    /// Most bytes one reply may take. Default for cache values: [`MAX_REPLY`].
    pub max_reply: usize,
}

impl std::fmt::Debug for BoundedRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedRedis")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// The most a reply may take: a cached value is at most the 1 MiB an agent keeps of an origin's body, INFO a few
/// KiB; 2 MiB leaves room for the reply's framing.
pub const MAX_REPLY: usize = 2 << 20;

impl BoundedRedis {
    /// A Redis at `addr` (already resolved and checked by the caller) as `info` describes it (database, user,
    /// password, TLS by the name in the URL).
    pub fn new(info: &redis::ConnectionInfo, addr: SocketAddr) -> Result<Self, BoundedRedisError> {
        let tls = match info.addr() {
            redis::ConnectionAddr::Tcp(..) => None,
            redis::ConnectionAddr::TcpTls {
                host,
                insecure,
                tls_params,
                ..
            } => {
                if *insecure {
                    return Err(BoundedRedisError::Insecure);
                }
                if tls_params.is_some() {
                    return Err(BoundedRedisError::ClientCertificates);
                }
                Some(tls_to(host)?)
            }
            _ => return Err(BoundedRedisError::Unix),
        };
        Ok(BoundedRedis {
            addr,
            tls,
            redis: info.redis_settings().clone(),
            max_reply: MAX_REPLY,
        })
    }

    /// A connection (AUTH and SELECT done), each command answered within `timeout`, each reply within
    /// `max_reply`. Its driver runs on the current runtime until the connection is dropped.
    pub async fn connect(
        &self,
        timeout: Duration,
    ) -> Result<MultiplexedConnection, BoundedRedisError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let setup = async {
            let tcp = TcpStream::connect(self.addr)
                .await
                .map_err(BoundedRedisError::Connect)?;
            let _ = tcp.set_nodelay(true);
            let stream: Box<dyn Stream> = match &self.tls {
                None => Box::new(tcp),
                Some((connector, name)) => Box::new(
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(BoundedRedisError::Connect)?,
                ),
            };
            let bounded = Bounded {
                inner: stream,
                since_write: 0,
                max: self.max_reply,
            };
            let (conn, driver) =
                MultiplexedConnection::new_with_config(&self.redis, bounded, config)
                    .await
                    .map_err(|e| BoundedRedisError::Redis(e.to_string()))?;
            tokio::spawn(driver);
            Ok(conn)
        };
        tokio::time::timeout(timeout, setup)
            .await
            .map_err(|_| BoundedRedisError::Timeout(timeout))?
    }
}

/// TLS towards `host` with the system's roots.
fn tls_to(
    host: &str,
) -> Result<
    (
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    ),
    BoundedRedisError,
> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(BoundedRedisError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BoundedRedisError::Redis(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| BoundedRedisError::ServerName(host.to_owned()))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A stream that fails once more than `max` bytes arrive after the last write: commands go one at a time on these
/// connections, so that is one reply.
struct Bounded {
    inner: Box<dyn Stream>,
    since_write: usize,
    max: usize,
}

impl AsyncRead for Bounded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            self.since_write = self.since_write.saturating_add(buf.filled().len() - before);
            if self.since_write > self.max {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a Redis reply passed {} KiB", self.max >> 10),
                )));
            }
        }
        polled
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            self.since_write = 0;
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::AsyncCommands as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A Redis that answers `+OK` to anything but GET, and to GET a bulk string announced as a terabyte and sent
    /// without end. Returns its address and how many bytes it managed to send.
    async fn endless_redis() -> (SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
            while tokio::time::Instant::now() < give_up {
                let Ok(n) = socket.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                // Setup commands (CLIENT SETINFO, SELECT) and PING are answered; GET is not.
                if !buf[..n]
                    .windows(5)
                    .any(|w| w.eq_ignore_ascii_case(b"\r\nGET"))
                {
                    // One `+OK` per command of the (possibly pipelined) batch.
                    let commands = usize::from(buf[0] == b'*')
                        + buf[..n].windows(3).filter(|w| w == b"\r\n*").count();
                    let _ = socket.write_all(&b"+OK\r\n".repeat(commands)).await;
                    continue;
                }
                let _ = socket.write_all(b"$1000000000000\r\n").await;
                let chunk = vec![b'a'; 64 << 10];
                while tokio::time::Instant::now() < give_up {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                    counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        (addr, sent)
    }

    /// Regression (issue 20, attack round 2): a Redis answering GET with `$1000000000000` and endless bytes took an
    /// agent past 2 GB (and the coordinator, through INFO). The reply now fails at its bound.
    #[tokio::test]
    async fn an_endless_reply_fails_at_its_bound() {
        use redis::IntoConnectionInfo as _;
        let (addr, sent) = endless_redis().await;
        let info = format!("redis://{addr}/0")
            .into_connection_info()
            .expect("url");
        let target = BoundedRedis::new(&info, addr).expect("target");
        let mut conn = target
            .connect(Duration::from_secs(5))
            .await
            .expect("connects");
        let got: Result<Option<Vec<u8>>, _> = conn.get("k").await;
        assert!(got.is_err(), "a reply past the bound is an error");
        let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            sent < 64 << 20,
            "the Redis sent {sent} bytes before the connection failed"
        );
        let info: Result<String, _> = redis::cmd("INFO").query_async(&mut conn).await;
        assert!(info.is_err(), "the connection is done");
    }

    #[test]
    fn unix_sockets_and_unchecked_tls_are_refused() {
        use redis::IntoConnectionInfo as _;
        let addr: SocketAddr = "127.0.0.1:6379".parse().expect("addr");
        let insecure = "rediss://127.0.0.1:6380/#insecure"
            .into_connection_info()
            .expect("url");
        assert!(matches!(
            BoundedRedis::new(&insecure, addr),
            Err(BoundedRedisError::Insecure)
        ));
        let unix = "redis+unix:///tmp/redis.sock"
            .into_connection_info()
            .expect("url");
        assert!(matches!(
            BoundedRedis::new(&unix, addr),
            Err(BoundedRedisError::Unix)
        ));
    }
}
