//! Preflight's probe of an HTTP target: one TCP connect and one request of the shard, never load.

use crate::shard_io::{HttpShardSpec, Mode};
use std::time::Duration;

impl HttpShardSpec {
    /// Preflight: one TCP connect and one request of the shard (a cache lookup's request for key 0 of the run in
    /// http cache mode), no load. What answered, e.g. "HTTP 200 in 1.2 ms from 127.0.0.1:8080". No connection (or
    /// no TLS handshake) fails; a target that connects but answers late, not at all or with a 5xx is doubtful: the
    /// run would measure exactly that.
    pub async fn probe(&self) -> crate::preflight::Probed {
        use crate::preflight::Probed;
        let addr = self.target.addr();
        let timeout = self.timeout.min(Duration::from_secs(10));
        let began = tokio::time::Instant::now();
        // The socket's own error ("connection refused") says more than a load connection's class of failure.
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Err(_) => {
                return Probed::Failed(format!("no TCP connection to {addr} within {timeout:?}"));
            }
            Ok(Err(e)) => return Probed::Failed(format!("cannot connect to {addr}: {e}")),
            Ok(Ok(tcp)) => drop(tcp),
        }
        let mut conn = match tokio::time::timeout(timeout, self.transport.connect(addr)).await {
            Err(_) => {
                return Probed::Failed(format!("no handshake with {addr} within {timeout:?}"));
            }
            Ok(Err(e)) => {
                return Probed::Failed(format!(
                    "cannot connect to {addr} ({e:?}){}",
                    if self.target.https {
                        ": the TLS handshake failed (an untrusted or mismatched certificate?)"
                    } else {
                        ""
                    }
                ));
            }
            Ok(Ok(conn)) => conn,
        };
        let exchange = async {
            let answered = match &self.cache {
                Some(lookup) if matches!(lookup.mode, Mode::Http { .. }) => conn
                    .exchange_bytes(&lookup.request(&lookup.key(0)), None, false)
                    .await
                    .map(|e| e.status),
                _ => conn.exchange(&self.target).await.map(|(status, _)| status),
            };
            answered.map_err(|outcome| format!("{addr} answered no HTTP response ({outcome:?})"))
        };
        let status = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => {
                return Probed::Doubtful(format!(
                    "{addr} accepted a connection but sent no response within {timeout:?}"
                ));
            }
            Ok(Err(why)) => return Probed::Doubtful(why),
            Ok(Ok(status)) => status,
        };
        let took = began.elapsed();
        let answered = format!(
            "HTTP {status} in {:.1} ms from {addr}",
            took.as_secs_f64() * 1e3
        );
        // A 4xx (a wrong path, a missing credential) or 5xx answer: the run would measure errors.
        if status >= 400 {
            Probed::Doubtful(answered)
        } else {
            Probed::Answered(answered)
        }
    }
}
