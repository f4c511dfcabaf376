//! One scrape of the target: an HTTP/1.1 GET on a kept-alive connection to the address the allowlist checked,
//! timed from the request to the last body byte, the body bounded.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The largest scrape body read (Prometheus's own default `body_size_limit` is unlimited; 256 MiB is far above
/// any exporter a load box should scrape).
pub const MAX_BODY: usize = 256 << 20;

/// What Prometheus 2.x asks for: OpenMetrics first, the text format after.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                      text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A scrape's response.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
    pub took: Duration,
}

/// Why a scrape got no response.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the body is larger than {} MiB", MAX_BODY >> 20)]
    TooLarge,
    #[error("{0}")]
    Http(String),
}

/// A target's address, path and one kept-alive connection.
pub struct Fetcher {
    addr: SocketAddr,
    authority: String,
    path: String,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Fetcher {
    /// `url` is `http://AUTHORITY/PATH` (checked by the plan); `addr` the address the allowlist admitted.
    pub fn new(url: &str, addr: SocketAddr) -> Fetcher {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Fetcher {
            addr,
            authority: authority.to_owned(),
            path: path.split('#').next().unwrap_or("/").to_owned(),
            sender: None,
        }
    }

    /// One scrape, given up after `timeout`.
    pub async fn fetch(&mut self, timeout: Duration) -> Result<Fetched, FetchError> {
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.exchange()).await {
            Ok(Ok((status, content_type, body))) => Ok(Fetched {
                status,
                content_type,
                body,
                took: started.elapsed(),
            }),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(FetchError::Timeout(timeout))
            }
        }
    }

    async fn exchange(&mut self) -> Result<(u16, String, Bytes), FetchError> {
        let http = |e: hyper::Error| FetchError::Http(e.to_string());
        let reusable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(FetchError::Connect)?;
            let _ = stream.set_nodelay(true);
            // A response head is bounded like a load request's (64 KiB, 256 lines): an endless header line from
            // the target fails the scrape instead of filling the agent's memory.
            let (sender, conn) = hyper::client::conn::http1::Builder::new()
                .max_buf_size(crate::http::h1::DEFAULT_MAX_HEAD)
                .max_headers(crate::http::h1::MAX_HEADERS)
                .handshake(TokioIo::new(stream))
                .await
                .map_err(http)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err(FetchError::Http("no connection".to_owned()));
        };
        let request = hyper::Request::get(&self.path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::ACCEPT, ACCEPT)
            .header(hyper::header::USER_AGENT, "loadgrade-scrape")
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    FetchError::TooLarge
                } else {
                    FetchError::Http(e.to_string())
                }
            })?
            .to_bytes();
        Ok((status, content_type, body))
    }
}
