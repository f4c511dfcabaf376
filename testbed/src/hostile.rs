//! A hostile target for tests and benchmarks of the load engine's bounds: on every connection it reads a request
//! head and answers with a response that never ends the way a parser wants (an endless header, a header trickled
//! byte by byte, an endless chunk extension, thousands of header lines). Each connection ends when the client goes
//! away or after [`MAX_CONNECTION_TIME`], so nothing it does outlives a test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The longest one connection is served.
pub const MAX_CONNECTION_TIME: Duration = Duration::from_secs(60);

/// What a hostile target answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostility {
    /// `HTTP/1.1 200 OK`, `X-A: ` and then `a` as fast as the client reads.
    HeaderBomb,
    /// The same header, one byte every 10 ms.
    SlowHeader,
    /// A chunked body whose first chunk-size line never ends (`1;eeee...`).
    ChunkExtensionBomb,
    /// 20,000 header lines of 10 bytes, then an empty body.
    ManyHeaders,
    /// A chunked body of one-byte chunks that never ends.
    EndlessBody,
}

impl std::str::FromStr for Hostility {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "header-bomb" => Hostility::HeaderBomb,
            "slow-header" => Hostility::SlowHeader,
            "chunk-extension-bomb" => Hostility::ChunkExtensionBomb,
            "many-headers" => Hostility::ManyHeaders,
            "endless-body" => Hostility::EndlessBody,
            other => {
                return Err(format!(
                    "unknown hostility {other:?}: header-bomb, slow-header, chunk-extension-bomb, many-headers or \
                     endless-body"
                ));
            }
        })
    }
}

/// A hostile target listening on loopback.
#[derive(Debug)]
pub struct HostileTarget {
    pub addr: SocketAddr,
    /// Bytes written to all clients so far.
    pub written: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl HostileTarget {
    /// Starts one on `listen` (port 0: a free port).
    pub async fn start(listen: SocketAddr, hostility: Hostility) -> std::io::Result<HostileTarget> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        MAX_CONNECTION_TIME,
                        serve(socket, hostility, &counter),
                    )
                    .await;
                });
            }
        });
        Ok(HostileTarget {
            addr,
            written,
            task,
        })
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

impl Drop for HostileTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: every request head read (at most 64 KiB of it) gets the hostile answer.
async fn serve(mut socket: TcpStream, hostility: Hostility, written: &AtomicU64) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 << 10 {
            return;
        }
    }
    let send = |bytes: Vec<u8>| {
        written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        bytes
    };
    let (prefix, filler, pause): (&[u8], Vec<u8>, Option<Duration>) = match hostility {
        Hostility::HeaderBomb => (b"HTTP/1.1 200 OK\r\nX-A: ", vec![b'a'; 16 << 10], None),
        Hostility::SlowHeader => (
            b"HTTP/1.1 200 OK\r\nX-A: ",
            vec![b'a'],
            Some(Duration::from_millis(10)),
        ),
        Hostility::ChunkExtensionBomb => (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;",
            vec![b'e'; 16 << 10],
            None,
        ),
        Hostility::EndlessBody => (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"1\r\na\r\n".repeat(4096),
            None,
        ),
        Hostility::ManyHeaders => {
            let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..20_000 {
                response.extend_from_slice(format!("X-{i:05}: v\r\n").as_bytes());
            }
            response.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            let _ = socket.write_all(&send(response)).await;
            return;
        }
    };
    if socket.write_all(&send(prefix.to_vec())).await.is_err() {
        return;
    }
    loop {
        if socket.write_all(&send(filler.clone())).await.is_err() {
            return;
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
}
