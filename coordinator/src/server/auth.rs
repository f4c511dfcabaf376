//! Who may call the run service: bearer tokens with a role, compared in constant time. With no token configured the
//! service is open, which `serve` allows only on a loopback listener (or with `--insecure`).

use subtle::ConstantTimeEq as _;
use tonic::Status;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Watch runs, fetch reports, list runs and agents.
    Read,
    /// Everything `Read` may, and start and cancel runs.
    Submit,
}

impl Role {
    /// Its name in a tokens file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Submit => "submit",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Role::Read),
            "submit" => Ok(Role::Submit),
            other => Err(format!("unknown role {other:?} (known: submit, read)")),
        }
    }
}

/// The tokens a coordinator accepts. Their text never appears in logs or errors.
#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Vec<(Role, Vec<u8>)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.tokens.len())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("line {line}: expected `ROLE TOKEN` (role submit or read)")]
    Shape { line: usize },
    #[error("line {line}: {reason}")]
    Role { line: usize, reason: String },
    #[error("line {line}: {reason}")]
    Token { line: usize, reason: TokenRefused },
}

/// Why a token was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum TokenRefused {
    #[error("a token must be at least {MIN_TOKEN_LEN} characters of visible ASCII")]
    Weak,
    #[error("this token is already given (one role per token)")]
    Duplicate,
}

/// Shorter tokens are refused: a guessable token is no authentication.
pub const MIN_TOKEN_LEN: usize = 16;

impl Tokens {
    /// Parses a tokens file: one `ROLE TOKEN` per line (`submit` or `read`); blank lines and `#` comments ignored.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let mut tokens = Tokens::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let mut words = content.split_whitespace();
            let (Some(role), Some(token), None) = (words.next(), words.next(), words.next()) else {
                return Err(TokenError::Shape { line });
            };
            let role = role
                .parse()
                .map_err(|reason| TokenError::Role { line, reason })?;
            tokens
                .add(role, token)
                .map_err(|reason| TokenError::Token { line, reason })?;
        }
        Ok(tokens)
    }

    /// Adds one token; refused when shorter than [`MIN_TOKEN_LEN`] or not visible ASCII (it travels in a header),
    /// or when already given (a token has one role).
    pub fn add(&mut self, role: Role, token: &str) -> Result<(), TokenRefused> {
        if token.len() < MIN_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenRefused::Weak);
        }
        if self.role_of(token.as_bytes()).is_some() {
            return Err(TokenRefused::Duplicate);
        }
        self.tokens.push((role, token.as_bytes().to_vec()));
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The role of the presented token, comparing against every configured token in constant time each.
    fn role_of(&self, presented: &[u8]) -> Option<Role> {
        let mut found = None;
        for (role, token) in &self.tokens {
            if bool::from(token.as_slice().ct_eq(presented)) {
                found = found.max(Some(*role));
            }
        }
        found
    }

    /// Checks the request's `authorization: Bearer TOKEN` for `needed`. Open when no token is configured.
    pub fn authorize<T>(&self, request: &tonic::Request<T>, needed: Role) -> Result<(), Status> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        let Some(header) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "this coordinator needs a token (`authorization: Bearer TOKEN`): give the command line --token-file \
                 FILE, a file holding the bare token on one line (not the `ROLE TOKEN` line of serve's tokens file), \
                 or LOADGRADE_TOKEN",
            ));
        };
        let presented = header.as_bytes().strip_prefix(b"Bearer ").ok_or_else(|| {
            Status::unauthenticated("the authorization header is not `Bearer TOKEN`")
        })?;
        match self.role_of(presented) {
            None => Err(Status::unauthenticated("the token is not valid here")),
            Some(role) if role < needed => Err(Status::permission_denied(format!(
                "this token may {}; this call needs a {} token (a `{}` line of serve's tokens file)",
                match role {
                    Role::Read => "only read",
                    Role::Submit => "submit",
                },
                needed.as_str(),
                needed.as_str()
            ))),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(header: Option<&str>) -> tonic::Request<()> {
        let mut r = tonic::Request::new(());
        if let Some(h) = header {
            r.metadata_mut()
                .insert("authorization", h.parse().expect("ascii header"));
        }
        r
    }

    const SUBMIT: &str = "submit-token-0123456789";
    const READ: &str = "read-token-0123456789ab";

    fn tokens() -> Tokens {
        Tokens::parse(&format!("# tokens\nsubmit {SUBMIT}\n\nread {READ}\n")).expect("parses")
    }

    #[test]
    fn roles_are_enforced() {
        let t = tokens();
        let bearer = |tok: &str| format!("Bearer {tok}");
        assert!(
            t.authorize(&request(Some(&bearer(SUBMIT))), Role::Submit)
                .is_ok()
        );
        assert!(
            t.authorize(&request(Some(&bearer(SUBMIT))), Role::Read)
                .is_ok()
        );
        assert!(
            t.authorize(&request(Some(&bearer(READ))), Role::Read)
                .is_ok()
        );
        let denied = t
            .authorize(&request(Some(&bearer(READ))), Role::Submit)
            .expect_err("read may not submit");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        for bad in [
            None,
            Some("Bearer nope-nope-nope-nope"),
            Some(SUBMIT),
            Some("Basic abc"),
        ] {
            let e = t.authorize(&request(bad), Role::Read).expect_err("refused");
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{bad:?}");
            assert!(!e.message().contains(SUBMIT) && !e.message().contains(READ));
        }
    }

    #[test]
    fn no_tokens_is_open_and_bad_files_are_located() {
        assert!(
            Tokens::default()
                .authorize(&request(None), Role::Submit)
                .is_ok()
        );
        assert_eq!(
            Tokens::parse("submit").map(|_| ()),
            Err(TokenError::Shape { line: 1 })
        );
        assert_eq!(
            Tokens::parse("\nadmin abcdefghijklmnopqrstuvwxyz").map(|_| ()),
            Err(TokenError::Role {
                line: 2,
                reason: "unknown role \"admin\" (known: submit, read)".into()
            })
        );
        assert_eq!(
            Tokens::parse("read short").map(|_| ()),
            Err(TokenError::Token {
                line: 1,
                reason: TokenRefused::Weak
            })
        );
        assert_eq!(
            Tokens::parse("read abcdefghijklmnopq\nsubmit abcdefghijklmnopq").map(|_| ()),
            Err(TokenError::Token {
                line: 2,
                reason: TokenRefused::Duplicate
            })
        );
        assert_eq!(format!("{:?}", tokens()), "Tokens(2 configured)");
    }
}
