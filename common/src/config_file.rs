//! `--config FILE` for the long-running binaries (`loadgrade serve`, `loadgrade-agent`): a TOML file whose keys are
//! the long flag names (`listen = "0.0.0.0:7700"`, `allow = ["10.0.0.0/24"]`). Its values become the flags'
//! defaults, so the precedence is one rule everywhere: command-line flag > environment variable > config file >
//! built-in default. Only reading lives here; each binary applies the values to its own command line.

use std::path::Path;

/// The largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// One key of the file: the flag's long name and its values (one, or several for a repeatable flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub flag: String,
    pub values: Vec<String>,
}

/// Reads a file an operator names (config, tokens, certificates): a regular file only (checked before it is
/// opened, so a FIFO does not block and /dev/zero is not read), at most `max` bytes.
pub fn read_regular_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    if !std::fs::metadata(path)?.is_file() {
        return Err(refuse("not a regular file".to_owned()));
    }
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(refuse("not a regular file".to_owned()));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(refuse(format!("larger than {} KiB", max >> 10)));
    }
    Ok(bytes)
}

/// Reads a file that holds a secret (a private key, tokens) as [`read_regular_file`] does, refusing one that its
/// group or others may read or write (as ssh refuses such keys) unless `insecure`: a token or key that every user
/// of the host can read is no secret. The message gives the `chmod` that fixes it.
pub fn read_private_file(path: &Path, max: u64, insecure: bool) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 && !insecure {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "it holds a secret and its group or others may read it (mode {mode:04o}): run `chmod 600 {}`, or \
                 pass --insecure to accept it",
                path.display()
            ),
        ));
    }
    read_regular_file(path, max)
}

/// A config file that cannot be read or is not a flat table of flag values. Messages never quote its lines: a
/// tokens file given as a config by mistake would be printed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {0} is not UTF-8 text")]
    NotText(String),
    #[error("config file {path}: {source}")]
    In {
        path: String,
        #[source]
        source: Box<ConfigError>,
    },
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("{0}")]
    SyntaxNoLine(String),
    #[error("a key is not a flag name (letters, digits and '-', at most 64)")]
    NotAFlag,
    #[error("`{0}`: a string, a number, a boolean or a list of them")]
    NotAValue(String),
}

/// Reads `path`: every top-level key with its values as text. Nested tables are refused.
pub fn read(path: &Path) -> Result<Vec<Setting>, ConfigError> {
    let shown = path.display().to_string();
    let bytes = read_regular_file(path, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::NotText(shown.clone()))?;
    parse(&text).map_err(|e| ConfigError::In {
        path: shown,
        source: Box::new(e),
    })
}

/// Parses config text.
pub fn parse(text: &str) -> Result<Vec<Setting>, ConfigError> {
    // The error's message and line only: its usual rendering quotes the line, which may hold a secret (a tokens
    // file given as a config by mistake).
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().trim().to_owned();
        match line {
            Some(line) => ConfigError::Syntax { line, message },
            None => ConfigError::SyntaxNoLine(message),
        }
    })?;
    let mut settings = Vec::new();
    for (flag, value) in table {
        if flag.len() > 64 || !flag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(ConfigError::NotAFlag);
        }
        let values = match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| scalar(&flag, item))
                .collect::<Result<Vec<_>, _>>()?,
            other => vec![scalar(&flag, other)?],
        };
        settings.push(Setting { flag, values });
    }
    Ok(settings)
}

fn scalar(flag: &str, value: toml::Value) -> Result<String, ConfigError> {
    match value {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(x) => Ok(x.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(ConfigError::NotAValue(flag.to_owned())),
    }
}

/// The config file named on the command line (`--config FILE` or `--config=FILE`) or by `env_var`, if any.
pub fn named(args: &[std::ffi::OsString], env_var: &str) -> Option<std::path::PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == "--config" {
            return iter.next().map(std::path::PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(path.into());
        }
    }
    std::env::var_os(env_var).map(std::path::PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_flag_values() {
        let settings = parse(
            "listen = \"0.0.0.0:7700\"\nreflection = true\nallow = [\"10.0.0.0/24\", \"db\"]\nmax-rate = 500\n",
        )
        .expect("parses");
        let get = |flag: &str| {
            settings
                .iter()
                .find(|s| s.flag == flag)
                .map(|s| s.values.clone())
        };
        assert_eq!(get("listen"), Some(vec!["0.0.0.0:7700".to_owned()]));
        assert_eq!(get("reflection"), Some(vec!["true".to_owned()]));
        assert_eq!(get("allow").map(|v| v.len()), Some(2));
        assert_eq!(get("max-rate"), Some(vec!["500".to_owned()]));
        assert!(parse("[table]\nx = 1\n").is_err());
        assert!(parse("listen = ").is_err());
    }

    /// Regression (issue 20): a tokens file readable by others was accepted silently.
    #[test]
    fn a_secret_others_can_read_is_refused_with_the_chmod() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("loadgrade-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("tokens");
        std::fs::write(&path, "submit s3cret\n").expect("write");
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let e = read_private_file(&path, 1024, false)
                .expect_err("refused")
                .to_string();
            let text = e.to_string();
            assert!(
                text.contains(&format!("chmod 600 {}", path.display())),
                "{text}"
            );
            assert!(text.contains(&format!("mode {mode:04o}")), "{text}");
            assert!(!text.contains("s3cret"));
            // --insecure accepts it.
            assert!(read_private_file(&path, 1024, true).is_ok());
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            assert_eq!(
                read_private_file(&path, 1024, false).expect("private"),
                b"submit s3cret\n"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_a_bounded_regular_file_is_read_and_errors_do_not_quote_it() {
        // /dev/zero never ends: refused before any read.
        let e = read(Path::new("/dev/zero"))
            .expect_err("not a regular file")
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let dir = std::env::temp_dir().join(format!("loadgrade-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        // A FIFO would block the open: refused before it.
        let fifo = dir.join("fifo.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = read(&fifo)
                .expect_err("a FIFO is not a regular file")
                .to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
        let big = dir.join("big.toml");
        std::fs::write(&big, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).expect("write");
        assert!(
            read(&big)
                .expect_err("too large")
                .to_string()
                .contains("larger than")
        );
        // A tokens file given by mistake: the error names the line, never its secret.
        let tokens = dir.join("tokens");
        std::fs::write(&tokens, "submit s3cret-token-value\n").expect("write");
        let e = read(&tokens).expect_err("not TOML").to_string();
        assert!(e.contains("line 1") && !e.contains("s3cret"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_command_line_names_the_file_first() {
        let args: Vec<std::ffi::OsString> = ["agent", "--config", "/etc/a.toml"]
            .iter()
            .map(Into::into)
            .collect();
        assert_eq!(
            named(&args, "LOADGRADE_TEST_UNSET_CONFIG"),
            Some("/etc/a.toml".into())
        );
        let args: Vec<std::ffi::OsString> = ["agent", "--config=/b.toml"]
            .iter()
            .map(Into::into)
            .collect();
        assert_eq!(
            named(&args, "LOADGRADE_TEST_UNSET_CONFIG"),
            Some("/b.toml".into())
        );
    }
}
