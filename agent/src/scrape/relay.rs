//! The relay a Prometheus run scrapes: an HTTP/1.1 endpoint on a free loopback port of this agent. Each request
//! is one scrape of the target (timed and recorded by the scraper), answered with the target's body, or with
//! `replicas` copies of its series. Only the agent's own Prometheus is told the address; it serves until the
//! shard ends.

use super::scraper::Scraper;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A relay serving until dropped.
pub struct Relay {
    pub addr: SocketAddr,
    /// The one path that is a scrape (random: only the agent's Prometheus is told it).
    pub path: String,
    /// The bearer token a scrape must carry (random; Prometheus never shows it in its API).
    pub token: String,
    /// Scrapes served so far (good or not): a Prometheus scrape has just happened when it changes.
    pub served: watch::Receiver<u64>,
    stop: CancellationToken,
    _tasks: JoinSet<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Relay {
    /// Binds 127.0.0.1 on a free port and serves scrapes through `scraper`.
    pub async fn start(scraper: Arc<Mutex<Scraper>>) -> std::io::Result<Relay> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (served_tx, served) = watch::channel(0u64);
        let served_tx = Arc::new(served_tx);
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let accept_stop = stop.clone();
        let path = format!("/metrics-{:032x}", rand::random::<u128>());
        let token = format!("{:032x}", rand::random::<u128>());
        let accept_path = Arc::new(path.clone());
        let accept_auth = Arc::new(format!("Bearer {token}"));
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let stream = tokio::select! {
                    () = accept_stop.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) if peer.ip().is_loopback() => stream,
                        Ok(_) => continue,
                        Err(_) => continue,
                    },
                };
                let scraper = scraper.clone();
                let served_tx = served_tx.clone();
                let conn_stop = accept_stop.clone();
                let path = accept_path.clone();
                let auth = accept_auth.clone();
                conns.spawn(async move {
                    let path = path.clone();
                    let service =
                        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let scraper = scraper.clone();
                            let served_tx = served_tx.clone();
                            // Only the agent's Prometheus knows the path and the token: any other local process that
                            // finds the port scrapes nothing and adds nothing to the figures.
                            let known = request.uri().path() == path.as_str()
                                && request
                                    .headers()
                                    .get(hyper::header::AUTHORIZATION)
                                    .is_some_and(|v| v.as_bytes() == auth.as_bytes());
                            async move {
                                if !known {
                                    return Ok::<_, Infallible>(not_found());
                                }
                                let result = scraper.lock().await.scrape(true).await;
                                served_tx.send_modify(|n| *n += 1);
                                Ok(respond(result))
                            }
                        });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        () = conn_stop.cancelled() => {}
                    }
                });
            }
            conns.abort_all();
        });
        Ok(Relay {
            addr,
            path,
            token,
            served,
            stop,
            _tasks: tasks,
        })
    }
}

fn not_found() -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::NOT_FOUND;
    response
}

fn respond(
    result: Result<super::scraper::Served, super::scraper::Problem>,
) -> hyper::Response<Full<Bytes>> {
    let (status, content_type, body) = match result {
        Ok(served) => (200, served.content_type, served.body),
        Err(problem) => (
            502,
            "text/plain; charset=utf-8".to_owned(),
            Bytes::from(format!(
                "loadgrade relay: the target's scrape failed: {problem}\n"
            )),
        ),
    };
    let mut response = hyper::Response::new(Full::new(body));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    if let Ok(value) = hyper::header::HeaderValue::from_str(&content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
