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
use loadgrade_agent::identity::{read_pem, read_private_pem};

/// Why the coordinator's TLS files cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    #[error(transparent)]
    File(#[from] TlsFileError),
    #[error("certificate {cert}: {why}")]
    Certificate { cert: String, why: String },
    #[error("key {key}: {why}")]
    Key { key: String, why: String },
    #[error(
        "key {key} does not belong to certificate {cert} ({why}): give the key the certificate was made for"
    )]
    Mismatch {
        cert: String,
        key: String,
        why: String,
    },
    #[error("CA certificate {ca} holds no certificate a client could be checked against: {why}")]
    ClientCa { ca: String, why: String },
}

impl ServerTls {
    /// Reads the coordinator's certificate and key (private to its owner unless `insecure`), and the CA that signs
    /// agent certificates, and checks that they can serve: the key is the certificate's, the CA parses. A mismatch
    /// is found here, before the listener opens, not by the first client's handshake.
    pub fn read(
        cert: &Path,
        key: &Path,
        client_ca: &Path,
        insecure: bool,
    ) -> Result<Self, ServerTlsError> {
        let tls = ServerTls {
            cert: read_pem("certificate", cert)?,
            key: read_private_pem(key, insecure)?,
            client_ca: read_pem("CA certificate", client_ca)?,
        };
        tls.check(cert, key, client_ca)?;
        Ok(tls)
    }

    fn check(&self, cert: &Path, key: &Path, ca: &Path) -> Result<(), ServerTlsError> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let (cert, key, ca) = (
            cert.display().to_string(),
            key.display().to_string(),
            ca.display().to_string(),
        );
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<_, _>>()
            .map_err(|e| ServerTlsError::Certificate {
                cert: cert.clone(),
                why: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(ServerTlsError::Certificate {
                cert,
                why: "no certificate in the file".to_owned(),
            });
        }
        let private =
            PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| ServerTlsError::Key {
                key: key.clone(),
                why: e.to_string(),
            })?;
        let provider = rustls::crypto::ring::default_provider();
        let certified =
            rustls::sign::CertifiedKey::from_der(chain, private, &provider).map_err(|e| {
                ServerTlsError::Mismatch {
                    cert: cert.clone(),
                    key: key.clone(),
                    why: e.to_string(),
                }
            })?;
        certified
            .keys_match()
            .map_err(|e| ServerTlsError::Mismatch {
                cert,
                key,
                why: e.to_string(),
            })?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&self.client_ca) {
            let c = c.map_err(|e| ServerTlsError::ClientCa {
                ca: ca.clone(),
                why: e.to_string(),
            })?;
            roots.add(c).map_err(|e| ServerTlsError::ClientCa {
                ca: ca.clone(),
                why: e.to_string(),
            })?;
        }
        if roots.is_empty() {
            return Err(ServerTlsError::ClientCa {
                ca,
                why: "no certificate in the file".to_owned(),
            });
        }
        Ok(())
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
