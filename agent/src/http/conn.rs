//! One HTTP/1.1 keep-alive connection (hyper's client connection) and the outcome of a request on it.

use super::HttpTarget;
use crate::recorder::Outcome;
use http_body_util::BodyExt;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;

pub struct Conn {
    sender: http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
}

impl Conn {
    /// Opens a connection; a failure or timeout is a connect error.
    pub async fn open(target: &HttpTarget, timeout: Duration) -> Result<Conn, Outcome> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(target.addr()))
            .await
            .map_err(|_| Outcome::Connect)?
            .map_err(|_| Outcome::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Outcome::Connect)?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the peer closes; either is normal here.
            let _ = connection.await;
        });
        Ok(Conn { sender })
    }

    /// Sends one request and reads the whole response: its status and body bytes. On `Err` the connection is
    /// no longer usable.
    pub async fn send(&mut self, target: &HttpTarget) -> Result<(u16, u64), Outcome> {
        self.sender.ready().await.map_err(|_| Outcome::Other)?;
        let response = self
            .sender
            .send_request(target.request())
            .await
            .map_err(|_| Outcome::Other)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| Outcome::Other)?;
        Ok((status, body.to_bytes().len() as u64))
    }

    /// Whether the connection can take another request (false after the peer closed it).
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }
}
