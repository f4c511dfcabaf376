//! Who may reach a coordinator started by `serve`, and how `submit` proves who it is: TLS files, tokens, and the
//! rule that a listener off loopback needs both (or `--insecure`, warned on every start).

use super::Failure;
use anyhow::Context as _;
use loadgrade_coordinator::server::ServerSecurity;
use loadgrade_coordinator::server::auth::{Role, Tokens};
use loadgrade_coordinator::server::tls::ServerTls;
use loadgrade_proto::v1::run_service_client::RunServiceClient;
use std::net::SocketAddr;
use std::path::PathBuf;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Environment variables a coordinator takes tokens from, besides `--tokens`.
const SUBMIT_TOKEN_VAR: &str = "LOADGRADE_SUBMIT_TOKEN";
const READ_TOKEN_VAR: &str = "LOADGRADE_READ_TOKEN";
/// The environment variable `submit` takes its token from, unless `--token-file` is given.
const CLIENT_TOKEN_VAR: &str = "LOADGRADE_TOKEN";
/// Largest response `submit` accepts (a report with many ramp steps and their histograms).
const MAX_CLIENT_RESPONSE: usize = 64 << 20;

/// The largest tokens, token or certificate file read.
const MAX_SECRET_FILE: u64 = 1 << 20;

/// A tokens or token file as text: a regular file, bounded.
fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    let bytes = loadgrade_common::config_file::read_regular_file(path, MAX_SECRET_FILE)?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// A tokens file as text: a regular file, bounded, that its group and others cannot read unless `insecure`.
fn read_private_text(path: &std::path::Path, insecure: bool) -> std::io::Result<String> {
    let bytes = loadgrade_common::config_file::read_private_file(path, MAX_SECRET_FILE, insecure)?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// `serve`'s security options.
#[derive(Debug, clap::Args)]
pub struct ServeSecurity {
    /// Coordinator certificate (PEM) for TLS; with --tls-key and --tls-ca. See `loadgrade certs`.
    #[arg(long, env = "LOADGRADE_TLS_CERT", value_name = "PEM", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// Coordinator private key (PEM).
    #[arg(long, env = "LOADGRADE_TLS_KEY", value_name = "PEM", requires_all = ["tls_cert", "tls_ca"])]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that signs agent certificates: an agent must present one for the name it registers with.
    #[arg(long, env = "LOADGRADE_TLS_CA", value_name = "PEM", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
    /// Tokens for the run service: a file of `ROLE TOKEN` lines, role `submit` (start and cancel runs, and read)
    /// or `read`. Also taken from LOADGRADE_SUBMIT_TOKEN and LOADGRADE_READ_TOKEN.
    #[arg(long, env = "LOADGRADE_TOKENS", value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Serve a non-loopback address without TLS or tokens: anyone who reaches it can register agents and start
    /// load. Warned on every start. Also accepts a --tls-key or --tokens file that its group or others may read.
    #[arg(long, env = "LOADGRADE_INSECURE")]
    pub insecure: bool,
}

impl ServeSecurity {
    /// The server's security, refusing a listener off loopback without TLS and tokens unless `--insecure`.
    pub(super) fn load(&self, listen: SocketAddr) -> Result<ServerSecurity, Failure> {
        let tls = match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (Some(cert), Some(key), Some(ca)) => Some(
                ServerTls::read(cert, key, ca, self.insecure)
                    .map_err(|e| Failure::Usage(format!("loadgrade serve: {e}")))?,
            ),
            _ => None,
        };
        let mut tokens = match &self.tokens {
            Some(path) => {
                let text = read_private_text(path, self.insecure).map_err(|e| {
                    Failure::Usage(format!(
                        "loadgrade serve: cannot read tokens {}: {e}",
                        path.display()
                    ))
                })?;
                let tokens = Tokens::parse(&text).map_err(|e| {
                    Failure::Usage(format!("loadgrade serve: tokens {}: {e}", path.display()))
                })?;
                if tokens.is_empty() {
                    return Err(Failure::Usage(format!(
                        "loadgrade serve: tokens {} holds no token (lines `submit TOKEN` or `read TOKEN`)",
                        path.display()
                    )));
                }
                tokens
            }
            None => Tokens::default(),
        };
        for (var, role) in [
            (SUBMIT_TOKEN_VAR, Role::Submit),
            (READ_TOKEN_VAR, Role::Read),
        ] {
            if let Ok(token) = std::env::var(var) {
                tokens.add(role, token.trim()).map_err(|reason| {
                    Failure::Usage(format!("loadgrade serve: {var}: {reason}"))
                })?;
            }
        }
        let loopback = listen.ip().is_loopback();
        if !loopback {
            let missing: Vec<&str> = [
                tls.is_none()
                    .then_some("TLS (--tls-cert, --tls-key, --tls-ca)"),
                tokens
                    .is_empty()
                    .then_some("tokens (--tokens or LOADGRADE_SUBMIT_TOKEN)"),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !missing.is_empty() {
                if !self.insecure {
                    return Err(Failure::Usage(format!(
                        "loadgrade serve: {listen} is not a loopback address and this coordinator has no {}: anyone \
                         who reaches it could register agents and start load. Give them (see `loadgrade certs`), or \
                         pass --insecure on a network you trust",
                        missing.join(" and no ")
                    )));
                }
                note!(
                    "loadgrade serve: WARNING: --insecure: listening on {listen} without {}; anyone who reaches it \
                     can register agents, read results and start load",
                    missing.join(" and without ")
                );
            }
        }
        Ok(ServerSecurity { tls, tokens })
    }
}

/// How `submit` reaches a coordinator.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// Coordinator URL, e.g. https://10.0.0.5:7700
    #[arg(long)]
    pub coordinator: String,
    /// CA (PEM) to trust for an https:// coordinator, besides the system's roots.
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// File holding the run-service token. Default: LOADGRADE_TOKEN, if set.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `check`'s way to a coordinator: none (in-process agents), or [`Remote`]'s.
#[derive(Debug, Clone, clap::Args)]
pub struct OptionalRemote {
    /// Coordinator URL, e.g. https://10.0.0.5:7700
    #[arg(long)]
    pub coordinator: Option<String>,
    /// CA (PEM) to trust for an https:// coordinator, besides the system's roots.
    #[arg(long, value_name = "PEM", requires = "coordinator")]
    pub tls_ca: Option<PathBuf>,
    /// File holding the run-service token (a submit token). Default: LOADGRADE_TOKEN, if set.
    #[arg(long, value_name = "FILE", requires = "coordinator")]
    pub token_file: Option<PathBuf>,
}

impl OptionalRemote {
    pub fn get(&self) -> Option<Remote> {
        self.coordinator.clone().map(|coordinator| Remote {
            coordinator,
            tls_ca: self.tls_ca.clone(),
            token_file: self.token_file.clone(),
        })
    }
}

/// Adds `authorization: Bearer TOKEN` to every call when a token is configured.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type RunClient = RunServiceClient<InterceptedService<Channel, BearerToken>>;

impl Remote {
    fn token(&self) -> Result<BearerToken, Failure> {
        let token = match &self.token_file {
            Some(path) => Some(read_text(path).map_err(|e| {
                Failure::Usage(format!("cannot read token file {}: {e}", path.display()))
            })?),
            None => std::env::var(CLIENT_TOKEN_VAR).ok(),
        };
        let Some(token) = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else {
            return Ok(BearerToken(None));
        };
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Failure::Usage("the token must be visible ASCII".to_owned()))?;
        Ok(BearerToken(Some(value)))
    }

    fn endpoint(&self) -> Result<Endpoint, Failure> {
        let mut endpoint = Endpoint::from_shared(self.coordinator.clone())
            .map_err(|e| {
                Failure::Usage(format!("bad coordinator URL {:?}: {e}", self.coordinator))
            })?
            .connect_timeout(std::time::Duration::from_secs(10))
            // Every call has a deadline until its answer (or a stream's first headers): a coordinator that hangs fails
            // the command instead of holding CI. A stream's messages (WatchRun) are not bounded by it.
            .timeout(std::time::Duration::from_secs(90));
        if self.coordinator.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(path) = &self.tls_ca {
                let pem = loadgrade_common::config_file::read_regular_file(path, MAX_SECRET_FILE)
                    .map_err(|e| {
                    Failure::Usage(format!("cannot read --tls-ca {}: {e}", path.display()))
                })?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Failure::Usage(format!("TLS for {}: {e}", self.coordinator)))?;
        } else if self.tls_ca.is_some() {
            return Err(Failure::Usage(
                "--tls-ca is given but the coordinator URL is not https://".to_owned(),
            ));
        }
        Ok(endpoint)
    }

    /// A run-service client, connected, with the token on every call.
    pub(super) async fn connect(&self) -> Result<RunClient, Failure> {
        let channel = self
            .endpoint()?
            .connect()
            .await
            .with_context(|| format!("cannot reach coordinator {}", self.coordinator))?;
        Ok(RunServiceClient::with_interceptor(channel, self.token()?)
            .max_decoding_message_size(MAX_CLIENT_RESPONSE))
    }
}
