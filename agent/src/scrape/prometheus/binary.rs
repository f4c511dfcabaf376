//! Which Prometheus an agent may run: the binary its operator named (`--prometheus`), checked to be a trusted file
//! (absolute, named `prometheus`, owned by root or the agent's user, writable by no one else, symlinks resolved),
//! then asked its `--version`, read bounded in size and time.

use super::{child_command, kill_group};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A Prometheus binary that said it is one.
#[derive(Debug, Clone)]
pub struct Binary {
    pub path: PathBuf,
    /// The first line of its `--version`.
    pub version: String,
}

/// The most bytes of `--version` output read.
const MAX_VERSION_OUTPUT: u64 = 4096;

/// Why no Prometheus is run: none is named or allowed, the file is not one the agent may trust, or it does not
/// say it is Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("the plan names no prometheus binary")]
    NotNamed,
    /// The plan's `prometheus` is not a name an agent runs (the plan's own check says why).
    #[error("{0}")]
    PlanName(String),
    #[error(
        "this agent runs no Prometheus (start it with --prometheus /usr/bin/prometheus to allow one)"
    )]
    NoneAllowed,
    #[error("this agent runs only the Prometheus at {} (its --prometheus), not {name}", allowed.display())]
    NotTheAllowed { allowed: PathBuf, name: String },
    #[error("must be an absolute path to a file named prometheus")]
    NotAbsolute,
    #[error("{}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a file", path.display())]
    NotAFile { path: PathBuf },
    /// `what` is "the file" or "its folder".
    #[error("{what} {}: {source}", path.display())]
    Unchecked {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {} is owned by another user", path.display())]
    OtherOwner { what: &'static str, path: PathBuf },
    #[error("{what} {} is writable by other users: anyone could replace it", path.display())]
    Writable { what: &'static str, path: PathBuf },
    #[error("{} cannot be run: {source}", path.display())]
    NotRunnable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no output of --version")]
    NoVersionOutput,
    #[error("{} --version did not answer", path.display())]
    VersionTimeout { path: PathBuf },
    #[error("{} --version does not say it is Prometheus", path.display())]
    NotPrometheus { path: PathBuf },
}

/// Checks `path` is a file the agent may run: absolute, a regular file named `prometheus`, owned by root or this
/// agent's user, and neither it nor its folder writable by anyone else.
pub fn trusted_binary(path: &Path) -> Result<(), BinaryError> {
    use std::os::unix::fs::MetadataExt as _;
    if !path.is_absolute() || path.file_name().is_none_or(|n| n != "prometheus") {
        return Err(BinaryError::NotAbsolute);
    }
    let me = rustix::process::getuid().as_raw();
    let safe = |p: &Path, what: &'static str| -> Result<(), BinaryError> {
        let path = p.to_path_buf();
        let m = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(source) => return Err(BinaryError::Unchecked { what, path, source }),
        };
        if m.uid() != 0 && m.uid() != me {
            return Err(BinaryError::OtherOwner { what, path });
        }
        if m.mode() & 0o022 != 0 {
            return Err(BinaryError::Writable { what, path });
        }
        Ok(())
    };
    let unreadable = |source| BinaryError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(BinaryError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    // The path as named and the file it resolves to (through any symlink): each, and each one's folder.
    let real = std::fs::canonicalize(path).map_err(unreadable)?;
    for p in [path, real.as_path()] {
        safe(p, "the file")?;
        if let Some(dir) = p.parent() {
            safe(dir, "its folder")?;
        }
    }
    Ok(())
}

/// The trusted `prometheus` on this process's PATH (absolute entries only), for in-process agents.
pub fn prometheus_on_path() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file() && trusted_binary(p).is_ok())
}

/// The binary to run for a plan's `prometheus`: the one this agent's operator named (`--prometheus`), which the
/// plan must name as `prometheus` or by the same path; checked, then asked its version. The error says why the
/// Prometheus side is not measured.
pub async fn locate(name: &str, allowed: Option<&Path>) -> Result<Binary, BinaryError> {
    if let Some(problem) = loadgrade_common::plan::scrape::prometheus_problem(name) {
        return Err(BinaryError::PlanName(problem));
    }
    let Some(allowed) = allowed else {
        return Err(BinaryError::NoneAllowed);
    };
    if name != "prometheus" && Path::new(name) != allowed {
        return Err(BinaryError::NotTheAllowed {
            allowed: allowed.to_path_buf(),
            name: name.to_owned(),
        });
    }
    trusted_binary(allowed)?;
    // Run the file checked, not whatever a symlink points to later.
    let allowed = &std::fs::canonicalize(allowed).map_err(|source| BinaryError::Unreadable {
        path: allowed.to_path_buf(),
        source,
    })?;
    let version = version_line(allowed).await?;
    if !version.starts_with("prometheus, version ") {
        return Err(BinaryError::NotPrometheus {
            path: allowed.clone(),
        });
    }
    Ok(Binary {
        path: allowed.to_path_buf(),
        version: version.chars().take(120).collect(),
    })
}

/// The first line `binary --version` prints (stdout, or stderr for older releases), reading at most
/// [`MAX_VERSION_OUTPUT`] bytes and at most [`VERSION_TIMEOUT`]; the program and anything it started are killed.
async fn version_line(binary: &Path) -> Result<String, BinaryError> {
    use tokio::io::AsyncReadExt as _;
    let mut child = child_command(binary)
        .arg("--version")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BinaryError::NotRunnable {
            path: binary.to_path_buf(),
            source,
        })?;
    let group = child.id();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill_group(group);
        return Err(BinaryError::NoVersionOutput);
    };
    let read = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (mut stdout, mut stderr) = (
            stdout.take(MAX_VERSION_OUTPUT),
            stderr.take(MAX_VERSION_OUTPUT),
        );
        let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        [out, err].concat()
    };
    let output = tokio::time::timeout(VERSION_TIMEOUT, read).await;
    kill_group(group);
    let _ = child.wait().await;
    let output = output.map_err(|_| BinaryError::VersionTimeout {
        path: binary.to_path_buf(),
    })?;
    let text = String::from_utf8_lossy(&output);
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}
