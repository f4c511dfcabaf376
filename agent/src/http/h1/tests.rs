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
