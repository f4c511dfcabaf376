//! The coordinator's TLS: its certificate and key, and the CA whose certificates agents must present (mutual TLS).
//! An agent's identity is its certificate: the name it registers with must be one the certificate is valid for.

use rustls_pki_types::{CertificateDer, ServerName};
use std::path::Path;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// PEM files of the coordinator's TLS, read once at start.
#[derive(Clone)]
pub struct ServerTls {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Vec<u8>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls(..)")
    }
}

pub use loadgrade_agent::identity::TlsFileError;
use loadgrade_agent::identity::read_pem;

impl ServerTls {
    /// Reads the coordinator's certificate and key, and the CA that signs agent certificates.
    pub fn read(cert: &Path, key: &Path, client_ca: &Path) -> Result<Self, TlsFileError> {
        Ok(ServerTls {
            cert: read_pem("certificate", cert)?,
            key: read_pem("key", key)?,
            client_ca: read_pem("CA certificate", client_ca)?,
        })
    }

    /// TLS for the listener: client certificates are verified against the CA when presented, and optional at the
    /// TLS layer so CI callers may come with a token only; the agent service demands one ([`agent_identity`]).
    pub fn config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert, &self.key))
            .client_ca_root(Certificate::from_pem(&self.client_ca))
            .client_auth_optional(true)
            .timeout(std::time::Duration::from_secs(10))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("an agent must present a client certificate signed by this coordinator's CA")]
    NoCertificate,
    #[error("agent name {name:?} is not a DNS name, so no certificate can be for it")]
    NotADnsName { name: String },
    #[error("the client certificate is not for agent {name:?} ({reason})")]
    NotThisName { name: String, reason: String },
}

/// Checks the name an agent registers with against its verified client certificate (the TLS layer checked the
/// chain to the CA): the name must be one of the certificate's DNS names.
pub fn agent_identity(
    peer_certs: Option<&[CertificateDer<'static>]>,
    name: &str,
) -> Result<(), IdentityError> {
    let Some(leaf) = peer_certs.and_then(<[_]>::first) else {
        return Err(IdentityError::NoCertificate);
    };
    let server_name = ServerName::try_from(name).map_err(|_| IdentityError::NotADnsName {
        name: name.to_owned(),
    })?;
    if !matches!(server_name, ServerName::DnsName(_)) {
        return Err(IdentityError::NotADnsName {
            name: name.to_owned(),
        });
    }
    let not_this = |reason: String| IdentityError::NotThisName {
        name: name.to_owned(),
        reason,
    };
    let cert =
        webpki::EndEntityCert::try_from(leaf).map_err(|e| not_this(format!("unreadable: {e}")))?;
    cert.verify_is_valid_for_subject_name(&server_name)
        .map_err(|e| not_this(format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_for(names: &[&str]) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        params.self_signed(&key).expect("cert").der().clone()
    }

    #[test]
    fn the_name_must_be_one_of_the_certificate() {
        let box1 = [cert_for(&["box-1"])];
        assert_eq!(agent_identity(Some(&box1), "box-1"), Ok(()));
        assert!(matches!(
            agent_identity(Some(&box1), "box-2"),
            Err(IdentityError::NotThisName { .. })
        ));
        assert_eq!(
            agent_identity(None, "box-1"),
            Err(IdentityError::NoCertificate)
        );
        assert_eq!(
            agent_identity(Some(&[]), "box-1"),
            Err(IdentityError::NoCertificate)
        );
        assert!(matches!(
            agent_identity(Some(&box1), "not a name"),
            Err(IdentityError::NotADnsName { .. })
        ));
        // An address is not an agent name, even if the certificate holds it.
        let by_ip = [cert_for(&["10.0.0.1"])];
        assert!(matches!(
            agent_identity(Some(&by_ip), "10.0.0.1"),
            Err(IdentityError::NotADnsName { .. })
        ));
    }
}
