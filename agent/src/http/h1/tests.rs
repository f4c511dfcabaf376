//! The HTTP/1.1 reader against a scripted server: lengths, chunked bodies split at every byte, interim responses,
//! bodies to EOF, and `Connection: close`.

use super::*;
use tokio::net::TcpListener;

/// Serves `responses` in order on one connection, each after reading one request head; writes each response in
/// pieces of `piece` bytes to exercise partial reads.
async fn scripted(responses: Vec<&'static [u8]>, piece: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 4096];
        for response in responses {
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.expect("read");
                if n == 0 {
                    return;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            for chunk in response.chunks(piece) {
                socket.write_all(chunk).await.expect("write");
                socket.flush().await.expect("flush");
                tokio::task::yield_now().await;
            }
        }
    });
    addr
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn reads_length_chunked_and_interim_responses_on_one_connection() {
    for piece in [1, 3, 7, 1000] {
        let addr = scripted(
            vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
                b"HTTP/1.1 204 No Content\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            ],
            piece,
        )
        .await;
        let mut conn = H1Conn::connect(addr).await.expect("connect");
        let statuses: Vec<u16> = {
            let mut s = Vec::new();
            for _ in 0..6 {
                s.push(conn.exchange(REQUEST, false).await.expect("exchange").0);
            }
            s
        };
        assert_eq!(
            statuses,
            vec![200, 503, 201, 204, 200, 404],
            "piece {piece}"
        );
        assert!(conn.is_reusable());
    }
}

#[tokio::test]
async fn body_until_close_makes_the_connection_single_use() {
    let addr = scripted(vec![b"HTTP/1.0 200 OK\r\n\r\nall of it"], 4).await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    // The scripted server closes after its last response.
    let (status, bytes) = conn.exchange(REQUEST, false).await.expect("exchange");
    assert_eq!(status, 200);
    assert_eq!(bytes, 28);
    assert!(!conn.is_reusable());
}

#[tokio::test]
async fn a_large_body_streams_through_the_buffer() {
    static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let big = BIG.get_or_init(|| {
        let body = vec![b'x'; 1 << 20];
        let mut r =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(&body);
        r
    });
    let addr = scripted(vec![big.as_slice()], 64 * 1024).await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    let (status, bytes) = conn.exchange(REQUEST, false).await.expect("exchange");
    assert_eq!((status, bytes), (200, big.len() as u64));
    assert!(
        conn.buf.capacity() <= 4 * BUFFER,
        "buffer stays small: {}",
        conn.buf.capacity()
    );
}

#[tokio::test]
async fn a_peer_closing_mid_response_is_an_error() {
    let addr = scripted(
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"],
        100,
    )
    .await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    assert_eq!(conn.exchange(REQUEST, false).await, Err(Outcome::Other));
}

#[tokio::test]
async fn refused_connect_is_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    assert_eq!(
        H1Conn::connect(addr).await.err(),
        Some(ConnectFailure::Connect)
    );
}

#[tokio::test]
async fn connection_close_and_http10_end_reuse() {
    let addr = scripted(
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"],
        100,
    )
    .await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    assert_eq!(conn.exchange(REQUEST, false).await.map(|r| r.0), Ok(200));
    assert!(!conn.is_reusable(), "Connection: close");
    let addr = scripted(vec![b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"], 100).await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    assert_eq!(conn.exchange(REQUEST, false).await.map(|r| r.0), Ok(200));
    assert!(!conn.is_reusable(), "HTTP/1.0 without keep-alive");
}

/// A kept-alive connection the server closed while idle is reported as stale (resent by the caller, not counted),
/// while the same failure on a first request is a real error.
#[tokio::test]
async fn a_connection_closed_while_idle_is_stale_not_an_error() {
    // The scripted server answers one request, then closes.
    let addr = scripted(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], 100).await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    assert_eq!(conn.exchange(REQUEST, false).await.map(|r| r.0), Ok(200));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(conn.exchange(REQUEST, false).await, Err(Outcome::Stale));

    let addr = scripted(vec![], 100).await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    assert_eq!(
        conn.exchange(REQUEST, false).await,
        Err(Outcome::Other),
        "a first request is not stale"
    );
}

#[tokio::test]
async fn a_chunk_size_near_u64_max_is_an_error_not_an_overflow() {
    let addr = scripted(
        vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx"],
        100,
    )
    .await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    assert_eq!(conn.exchange(REQUEST, false).await, Err(Outcome::Other));
}

/// A hostile target: after the request head, writes `prefix` and then `filler` over and over until the client goes
/// away (or 10 s pass). Returns the address and a counter of the bytes it managed to write.
async fn endless(
    prefix: &'static [u8],
    filler: &'static [u8],
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::Ordering;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        if socket.write_all(prefix).await.is_err() {
            return;
        }
        while tokio::time::Instant::now() < give_up {
            match socket.write_all(filler).await {
                Ok(()) => counter.fetch_add(filler.len() as u64, Ordering::Relaxed),
                Err(_) => return,
            };
        }
    });
    (addr, written)
}

/// Regression (issue 20): a response header without end (`X-A: ` then endless bytes) grew the read buffer without
/// bound (685 MB for one connection in 2 s). Now the head stops at its bound, as `TooLarge`, and the buffer stays
/// near it.
#[tokio::test]
async fn an_endless_header_stops_at_the_head_bound() {
    let (addr, written) = endless(b"HTTP/1.1 200 OK\r\nX-A: ", &[b'a'; 8192]).await;
    let mut conn = H1Conn::connect(addr)
        .await
        .expect("connect")
        .with_head_limit(16 << 10);
    assert_eq!(conn.exchange(REQUEST, false).await, Err(Outcome::TooLarge));
    assert!(
        conn.buf.capacity() <= (16 << 10) + 2 * BUFFER,
        "{}",
        conn.buf.capacity()
    );
    drop(conn);
    let sent = written.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < 64 << 20,
        "the target wrote {sent} bytes before the agent let go"
    );
}

#[tokio::test]
async fn more_header_lines_than_the_bound_are_too_large() {
    static MANY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let many = MANY.get_or_init(|| {
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            r.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        r.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        r
    });
    let addr = scripted(vec![many.as_slice()], 4096).await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    assert_eq!(conn.exchange(REQUEST, false).await, Err(Outcome::TooLarge));
    // One line fewer is a response like any other.
    static FEWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let fewer = FEWER.get_or_init(|| {
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..MAX_HEADERS - 1 {
            r.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        r.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        r
    });
    let addr = scripted(vec![fewer.as_slice()], 4096).await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    assert_eq!(
        conn.exchange(REQUEST, false).await,
        Ok((200, fewer.len() as u64))
    );
}

/// Regression (issue 20): an endless chunk-extension line (`1;eeee...`) was buffered whole (127 MB in 2 s).
#[tokio::test]
async fn an_endless_chunk_size_line_is_too_large() {
    let (addr, _) = endless(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;",
        &[b'e'; 1024],
    )
    .await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    assert_eq!(conn.exchange(REQUEST, false).await, Err(Outcome::TooLarge));
    assert!(
        conn.buf.capacity() <= MAX_CHUNK_LINE + 2 * BUFFER,
        "{}",
        conn.buf.capacity()
    );
}

#[tokio::test]
async fn endless_trailers_are_too_large() {
    let (addr, _) = endless(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ",
        &[b't'; 4096],
    )
    .await;
    let mut conn = H1Conn::connect(addr)
        .await
        .expect("connect")
        .with_head_limit(8 << 10);
    assert_eq!(conn.exchange(REQUEST, false).await, Err(Outcome::TooLarge));
}

/// Interim responses count against the head bound: endless `100 Continue`s end as `TooLarge`, not at the timeout.
#[tokio::test]
async fn endless_interim_responses_are_too_large() {
    let (addr, _) = endless(b"", b"HTTP/1.1 100 Continue\r\n\r\n").await;
    let mut conn = H1Conn::connect(addr)
        .await
        .expect("connect")
        .with_head_limit(4 << 10);
    assert_eq!(conn.exchange(REQUEST, false).await, Err(Outcome::TooLarge));
}

/// Attack round 2 (issue 20): two Content-Length values that disagree waited for the larger until the timeout.
#[tokio::test]
async fn conflicting_lengths_are_an_error_at_once() {
    let addr = scripted(
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 1000000000\r\n\r\nok"],
        1000,
    )
    .await;
    let mut conn = H1Conn::connect(addr).await.expect("connect");
    let began = std::time::Instant::now();
    assert_eq!(conn.exchange(REQUEST, false).await, Err(Outcome::Other));
    assert!(began.elapsed() < std::time::Duration::from_secs(1));
}
