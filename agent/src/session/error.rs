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
    #[error("session broken before the coordinator's welcome: {0}")]
    BrokenBeforeWelcome(tonic::Status),
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

    /// Why TLS failed, when that is why this session ended: this agent did not trust the coordinator's certificate
    /// (a rustls error while connecting), or the coordinator refused this agent's (its alert, which reaches the
    /// agent after the handshake as an I/O error of kind `InvalidData`, whatever layer reports it). Dialing again
    /// changes nothing until someone changes a certificate.
    pub fn tls_refusal(&self) -> Option<String> {
        let first: &(dyn std::error::Error + 'static) = match self {
            SessionError::Connect { source, .. } => source,
            SessionError::Refused(status)
            | SessionError::BrokenBeforeWelcome(status)
            | SessionError::Broken(status) => status,
            _ => return None,
        };
        let mut cause = Some(first);
        while let Some(e) = cause {
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                return Some(loadgrade_common::text::tls_in_words(&tls.to_string()));
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if let Some(tls) = io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    return Some(loadgrade_common::text::tls_in_words(&tls.to_string()));
                }
                if io.kind() == std::io::ErrorKind::InvalidData {
                    return Some(io.to_string());
                }
            }
            cause = e.source();
        }
        None
    }

    /// Whether the session got as far as the coordinator's welcome before it ended this way.
    pub fn was_welcomed(&self) -> bool {
        matches!(self, SessionError::Broken(_) | SessionError::Silent(_))
    }

    /// Another agent holds this name (or this agent's previous session has not yet timed out).
    pub fn is_name_taken(&self) -> bool {
        matches!(self, SessionError::Refused(status) if status.code() == tonic::Code::AlreadyExists)
    }
}
