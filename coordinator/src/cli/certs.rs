//! `certs`: a CA and the certificates mutual TLS needs, for a test or a small setup. The coordinator's certificate
//! is for server use with the names and addresses agents dial; each agent's is for client use with the agent's name,
//! which is the name it must register with. Run again with the same --out to add agents: the CA is reused.
//! Keys are written readable by their owner only; nothing existing is overwritten.

use super::Failure;
use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Folder for ca.pem, ca.key, coordinator.pem, coordinator.key and agent-NAME.pem/.key.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// An agent to make a certificate for (repeatable); its name must be a DNS name, e.g. box-1.
    #[arg(long = "agent", value_name = "NAME")]
    pub agents: Vec<String>,
    /// A name or address agents and CI dial the coordinator by (repeatable). Default: localhost, 127.0.0.1, ::1.
    #[arg(long = "coordinator-name", value_name = "NAME|IP")]
    pub coordinator_names: Vec<String>,
    /// Days the certificates are valid.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
}

const CA_NAME: &str = "loadgrade CA";

/// The CA's parameters: rebuilt the same each time, so a CA made earlier signs with the same issuer name.
fn ca_params(days: u32) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    validity(&mut params, days);
    Ok(params)
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
}

fn leaf(
    names: &[String],
    usage: ExtendedKeyUsagePurpose,
    days: u32,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    validity(&mut params, days);
    Ok(params)
}

pub(super) fn make(args: &CertsArgs) -> Result<i32, Failure> {
    for name in &args.agents {
        loadgrade_common::protocol::check_agent_name(name)
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let dns = rustls_pki_types::ServerName::try_from(name.as_str())
            .is_ok_and(|n| matches!(n, rustls_pki_types::ServerName::DnsName(_)));
        if !dns || name.contains('_') {
            return Err(Failure::Usage(format!(
                "agent name {name:?} is not a DNS name (letters, digits, '-' and '.'), so no certificate can be for it"
            )));
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let (ca_key, made_ca) = ca_key(&args.out)?;
    let issuer = Issuer::new(ca_params(args.days).context("CA parameters")?, ca_key);
    let mut written = Vec::new();
    if made_ca {
        written.push("ca.pem, ca.key".to_owned());
    }
    let coordinator = args.out.join("coordinator.pem");
    if !coordinator.exists() {
        let names = if args.coordinator_names.is_empty() {
            vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ]
        } else {
            args.coordinator_names.clone()
        };
        let params = leaf(&names, ExtendedKeyUsagePurpose::ServerAuth, args.days)
            .with_context(|| format!("coordinator names {names:?}"))?;
        issue(&args.out, "coordinator", &params, &issuer)?;
        written.push(format!(
            "coordinator.pem, coordinator.key (for {})",
            names.join(", ")
        ));
    } else if !args.coordinator_names.is_empty() {
        return Err(Failure::Usage(format!(
            "{} exists: remove it to make one for other names",
            coordinator.display()
        )));
    }
    for name in &args.agents {
        let params = leaf(
            std::slice::from_ref(name),
            ExtendedKeyUsagePurpose::ClientAuth,
            args.days,
        )
        .with_context(|| format!("agent {name}"))?;
        issue(&args.out, &format!("agent-{name}"), &params, &issuer)?;
        written.push(format!("agent-{name}.pem, agent-{name}.key"));
    }
    out!("in {}:", args.out.display());
    for line in written {
        out!("  {line}");
    }
    Ok(0)
}

/// The CA key in `dir`, made (with its certificate) when there is none. `true` when made now.
fn ca_key(dir: &Path) -> Result<(KeyPair, bool), Failure> {
    let key_path = dir.join("ca.key");
    if key_path.exists() {
        let pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        let key = KeyPair::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM private key", key_path.display()))?;
        return Ok((key, false));
    }
    let key = KeyPair::generate().context("making the CA key")?;
    let cert = ca_params(3650)
        .and_then(|p| p.self_signed(&key))
        .context("making the CA certificate")?;
    write_new(&dir.join("ca.pem"), cert.pem().as_bytes(), false)?;
    write_new(&key_path, key.serialize_pem().as_bytes(), true)?;
    Ok((key, true))
}

fn issue(
    dir: &Path,
    stem: &str,
    params: &CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(), Failure> {
    let key = KeyPair::generate().context("making a key")?;
    let cert = params
        .signed_by(&key, issuer)
        .with_context(|| format!("signing {stem}"))?;
    write_new(
        &dir.join(format!("{stem}.pem")),
        cert.pem().as_bytes(),
        false,
    )?;
    write_new(
        &dir.join(format!("{stem}.key")),
        key.serialize_pem().as_bytes(),
        true,
    )?;
    Ok(())
}

/// Writes a file that must not exist yet; a key is created readable by its owner only.
fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), Failure> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if secret {
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::Usage(format!("{} exists; nothing is overwritten", path.display()))
        } else {
            Failure::Runtime(anyhow::Error::from(e).context(format!("creating {}", path.display())))
        }
    })?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
