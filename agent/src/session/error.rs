//! Why a session ended, and which of those dialing again cannot change.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("invalid coordinator URL {url:?}: {source}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("cannot reach coordinator {url}: {source}")]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("coordinator refused the session: {}", .0.message())]
    Refused(tonic::Status),
    #[error("session closed before hello")]
    ClosedBeforeHello,
    #[error("coordinator closed the session before welcome")]
    NoWelcome,
    #[error("expected welcome, got another message first")]
    NotWelcome,
    #[error("session broken: {0}")]
    Broken(tonic::Status),
    #[error("no word from the coordinator for {0:?}: load stopped")]
    Silent(Duration),
}

impl SessionError {
    /// A refusal dialing again cannot change: a certificate not for this name, no certificate, another protocol.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SessionError::Refused(status) if matches!(
            status.code(),
            tonic::Code::Unauthenticated
                | tonic::Code::PermissionDenied
                | tonic::Code::FailedPrecondition
                | tonic::Code::InvalidArgument
        ))
    }

    /// Why the TLS handshake was refused, when that is why no session started: this agent does not trust the
    /// coordinator's certificate, or the coordinator refused this agent's (a wrong CA, an expired certificate).
    /// Dialing again changes nothing until someone changes a certificate.
    pub fn tls_refusal(&self) -> Option<String> {
        let SessionError::Connect { source, .. } = self else {
            return None;
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source);
        while let Some(e) = cause {
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                return Some(tls.to_string());
            }
            // tokio-rustls reports TLS errors as I/O errors carrying the rustls one.
            if let Some(tls) = e
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Some(tls.to_string());
            }
            cause = e.source();
        }
        None
    }

    /// Another agent holds this name (or this agent's previous session has not yet timed out).
    pub fn is_name_taken(&self) -> bool {
        matches!(self, SessionError::Refused(status) if status.code() == tonic::Code::AlreadyExists)
    }
}
