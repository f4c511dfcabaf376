//! The one place errors become gRPC statuses: every service returns [`ServiceError`], and its `From` impl picks the
//! code.

use crate::StartError;
use crate::store::StoreError;
use loadgrade_proto::ConvertError;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no run {0:?}")]
    UnknownRun(String),
    #[error("run {0:?} has no report (unknown or not finished)")]
    NoReport(String),
    #[error("the first message of a session must be hello")]
    NotHello,
    #[error("agent speaks protocol {agent}, this coordinator speaks {ours}")]
    Protocol { agent: u32, ours: u32 },
    #[error("{0}")]
    BadName(String),
    #[error("agent version text is longer than {0} characters or not printable")]
    BadVersion(usize),
    #[error("no hello within {0:?}")]
    NoHello(std::time::Duration),
    #[error("session closed")]
    Closed,
    #[error(transparent)]
    DuplicateName(#[from] super::registry::DuplicateName),
    #[error("message does not convert: {0}")]
    Wire(#[from] ConvertError),
    #[error(transparent)]
    Identity(#[from] super::tls::IdentityError),
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let code = match &e {
            ServiceError::Start(
                StartError::Plan(_) | StartError::BadKey | StartError::Outbound(_),
            )
            | ServiceError::NotHello
            | ServiceError::BadName(_)
            | ServiceError::BadVersion(_)
            | ServiceError::Wire(_) => Code::InvalidArgument,
            ServiceError::Start(StartError::Store(_)) | ServiceError::Store(_) => Code::Internal,
            ServiceError::UnknownRun(_) | ServiceError::NoReport(_) => Code::NotFound,
            ServiceError::Start(StartError::KeyReused { .. }) => Code::AlreadyExists,
            ServiceError::Start(StartError::QueueFull(_) | StartError::ChecksBusy) => {
                Code::ResourceExhausted
            }
            ServiceError::Start(StartError::Draining) => Code::Unavailable,
            ServiceError::Protocol { .. } => Code::FailedPrecondition,
            ServiceError::Closed => Code::Unavailable,
            ServiceError::NoHello(_) => Code::DeadlineExceeded,
            ServiceError::DuplicateName(_) => Code::AlreadyExists,
            ServiceError::Identity(super::tls::IdentityError::NoCertificate) => {
                Code::Unauthenticated
            }
            ServiceError::Identity(_) => Code::PermissionDenied,
        };
        Status::new(code, e.to_string())
    }
}
