//! The agent's side of mutual TLS with the coordinator: its certificate and key (its identity: the coordinator
//! accepts only the names the certificate is for) and the CA it trusts for the coordinator's certificate.

use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// PEM files read once at start.
#[derive(Clone)]
pub struct AgentTls {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Vec<u8>,
}

impl std::fmt::Debug for AgentTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentTls(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path} is not PEM")]
    NotPem { what: &'static str, path: PathBuf },
}

/// Reads a PEM file (`what` names it in errors): the one reader of TLS files, the coordinator's included.
pub fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    // A regular file of at most 1 MiB: a FIFO or /dev/zero given by mistake neither blocks nor fills memory.
    let bytes =
        loadgrade_common::config_file::read_regular_file(path, 1 << 20).map_err(|source| {
            TlsFileError::Read {
                what,
                path: path.to_owned(),
                source,
            }
        })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(TlsFileError::NotPem {
            what,
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Reads a private key's PEM file: as [`read_pem`], and refused when its group or others may read it, unless
/// `insecure` (`--insecure`).
pub fn read_private_pem(path: &Path, insecure: bool) -> Result<Vec<u8>, TlsFileError> {
    loadgrade_common::config_file::read_private_file(path, 1 << 20, insecure).map_err(
        |source| TlsFileError::Read {
            what: "key",
            path: path.to_owned(),
            source,
        },
    )?;
    read_pem("key", path)
}

impl AgentTls {
    /// Reads the agent's certificate, key (private to its owner unless `insecure`) and the CA.
    pub fn read(cert: &Path, key: &Path, ca: &Path, insecure: bool) -> Result<Self, TlsFileError> {
        Ok(AgentTls {
            cert: read_pem("certificate", cert)?,
            key: read_private_pem(key, insecure)?,
            ca: read_pem("CA certificate", ca)?,
        })
    }

    /// TLS towards the coordinator: its certificate must chain to our CA; ours is presented as the agent's identity.
    pub fn client_config(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .identity(Identity::from_pem(&self.cert, &self.key))
    }

    /// The same TLS as a rustls configuration (for [`crate::session::tls_check`]); `None` when the files do not
    /// parse (then tonic's own setup says why).
    pub fn rustls_config(&self) -> Option<rustls::ClientConfig> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca) {
            roots.add(cert.ok()?).ok()?;
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<_, _>>()
            .ok()?;
        let key = PrivateKeyDer::from_pem_slice(&self.key).ok()?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .ok()?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Some(config)
    }
}
