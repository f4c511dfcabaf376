//! Why a TLS session ended before the coordinator's welcome when the error itself does not say: a refused client
//! certificate reaches the agent after its handshake, as the coordinator's alert on some tries and as a bare closed
//! connection on others (whichever layer reads first). One more connection, made with the same files, tells: the
//! coordinator's HTTP/2 settings arrive when it accepted the certificate, its alert (a typed rustls error) when it
//! did not.

use crate::identity::AgentTls;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

/// How long the coordinator's first bytes are waited for.
const WAIT: Duration = Duration::from_secs(5);

/// The coordinator's reason, when it refuses this agent's certificate; `None` when it accepts it, or when nothing
/// can be told (no answer, a URL or files that do not parse: the session's own error says enough then).
pub async fn certificate_refused(coordinator: &str, tls: &AgentTls) -> Option<String> {
    let url = loadgrade_common::plan::target_url::TargetUrl::parse(coordinator).ok()?;
    let name = rustls_pki_types::ServerName::try_from(url.host.clone()).ok()?;
    let config = Arc::new(tls.rustls_config()?);
    let check = async {
        let tcp = tokio::net::TcpStream::connect(url.host_port()).await.ok()?;
        let mut stream = match tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
        {
            Ok(stream) => stream,
            Err(e) => return rustls_reason(&e),
        };
        let mut first = [0u8; 1];
        match stream.read(&mut first).await {
            Err(e) => rustls_reason(&e),
            // Its HTTP/2 settings: the certificate was accepted. Or a close without a word: nothing to tell.
            Ok(_) => None,
        }
    };
    tokio::time::timeout(WAIT, check).await.ok().flatten()
}

/// The rustls error an I/O error carries, as text.
fn rustls_reason(e: &std::io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map(ToString::to_string)
}
