//! Transports against hostile peers: an unusable CA file, endless HTTP/2 interim responses.

use super::*;

/// An h2c target that answers stream 1 with `103` HEADERS frames and nothing else, without end (or for 10 s).
async fn endless_interim_h2() -> SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 4096];
        let _ = socket.read(&mut buf).await;
        // SETTINGS (empty), then SETTINGS ACK.
        let _ = socket.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await;
        let _ = socket.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).await;
        // HEADERS, END_HEADERS, stream 1: `:status: 103` (literal, indexed name 8), repeated.
        let frame = [0, 0, 5, 1, 4, 0, 0, 0, 1, 0x08, 3, b'1', b'0', b'3'];
        let batch = frame.repeat(1024);
        let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::time::Instant::now() < give_up {
            if socket.write_all(&batch).await.is_err() {
                return;
            }
        }
    });
    addr
}

/// Regression (issue 20, attack round 2): endless interim (103) responses over HTTP/2 took an agent past 2 GB
/// at 512 connections (hyper keeps reading them). The bytes before the final head are bounded.
#[tokio::test]
async fn endless_interim_responses_over_http2_are_too_large() {
    let addr = endless_interim_h2().await;
    let request = loadgrade_common::plan::HttpRequest {
        url: format!("http://{addr}/"),
        method: "GET".into(),
        headers: Vec::new(),
        body: Vec::new(),
        http2: true,
        ca_file: None,
        timeout: std::time::Duration::from_secs(10),
        idempotent: true,
        max_response_header_bytes: 16 << 10,
    };
    let target = HttpTarget::resolve(&request).await.expect("target");
    let transport =
        Transport::new(false, "127.0.0.1", Version::Http2, None, 16 << 10).expect("transport");
    let mut conn = transport.connect(addr).await.expect("h2 handshake");
    let began = std::time::Instant::now();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), conn.exchange(&target))
        .await
        .expect("ends before the 5 s this test allows");
    assert_eq!(outcome, Err(Outcome::TooLarge));
    assert!(
        began.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
}

/// Whatever is wrong with a ca_file, the refusal reads the same (but for the path the plan gave), so a plan
/// cannot probe which files exist on an agent's host.
#[test]
fn every_unusable_ca_file_gets_one_text() {
    let dir = std::env::temp_dir().join(format!("loadgrade-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let not_pem = dir.join("not-pem");
    std::fs::write(&not_pem, "secret content, not a certificate").expect("write");
    // A FIFO nobody writes to: opening it for reading would block forever.
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let key_only = dir.join("key-only");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let texts: Vec<String> = [
        dir.join("missing"),
        not_pem,
        key_only,
        dir.clone(),
        "/proc/self/mem".into(),
        fifo.clone(),
        "/dev/zero".into(),
    ]
    .iter()
    .map(|p| {
        let path = p.display().to_string();
        let e = Transport::new(true, "localhost", Version::Http1, Some(&path), 1 << 16)
            .expect_err("refused");
        e.to_string().replace(&path, "PATH")
    })
    .collect();
    assert!(texts.iter().all(|t| t == &texts[0]), "{texts:#?}");
    assert_eq!(
        texts[0],
        "ca_file PATH is not a readable file of PEM CA certificates on this agent"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
