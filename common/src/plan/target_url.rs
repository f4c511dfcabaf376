//! A load target's URL, parsed once the way agents parse it: `http://` or `https://`, a host, a port in 1..=65535
//! (never wrapped, never defaulted when one is written), and a path and query made only of characters a request
//! line may carry. `validate` and every agent use this one parser, so a plan that validates is a URL the agents
//! accept, and a typo such as port 99999 is an error instead of load on port 80.

use http::Uri;

/// The parts of a target URL that a connection and a request line need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    pub https: bool,
    /// Host name or address, without the brackets of an IPv6 literal.
    pub host: String,
    /// The URL's port, or 80/443 when it names none.
    pub port: u16,
    /// `host[:port]` as written: the Host header (HTTP/1.1) or :authority (HTTP/2).
    pub authority: String,
    /// Path and query as written, `/` when empty.
    pub path_and_query: String,
    /// The whole URL as hyper takes it (HTTP/2 requests).
    pub uri: Uri,
}

/// Why a URL is not a load target. The message shows the URL without its query: it may carry a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("invalid url {0:?}: expected http(s)://HOST[:PORT]/PATH")]
    Scheme(String),
    #[error(
        "credentials in a url (user:password@) are not supported: send them in a header such as authorization, \
         whose value is kept secret"
    )]
    Credentials,
    #[error("invalid url {0:?}: no host")]
    NoHost(String),
    #[error("invalid url {url:?}: port {port:?} is not a port (1 to 65535)")]
    Port { url: String, port: String },
    #[error(
        "invalid url {0:?}: it has a character a request line cannot carry (a space, a control character, or one of \
         <>\"{{}}|\\^`); percent-encode it"
    )]
    Characters(String),
}

/// The URL without its query or fragment, for messages.
pub fn shown(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or_default()
}

impl TargetUrl {
    /// Parses `url` as agents do.
    pub fn parse(url: &str) -> Result<TargetUrl, UrlError> {
        let https = if url.starts_with("https://") {
            true
        } else if url.starts_with("http://") {
            false
        } else {
            return Err(UrlError::Scheme(shown(url).to_owned()));
        };
        let scheme_len = if https { 8 } else { 7 };
        let authority_text = url[scheme_len..]
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        // Checked before the parser sees it, so the error never echoes what precedes '@' (a password).
        if authority_text.contains('@') {
            return Err(UrlError::Credentials);
        }
        if authority_text.is_empty() {
            return Err(UrlError::NoHost(shown(url).to_owned()));
        }
        // RFC 3986's characters only (unreserved, sub-delims, ":@/?#%[]"): a space, a control character, a quote
        // or an angle bracket would be sent raw on the request line.
        let uri_char = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?#%[]".contains(&b);
        if !url.bytes().all(uri_char) {
            return Err(UrlError::Characters(shown(url).to_owned()));
        }
        let uri: Uri = url
            .parse()
            .map_err(|_| UrlError::Characters(shown(url).to_owned()))?;
        let authority = uri
            .authority()
            .ok_or_else(|| UrlError::NoHost(shown(url).to_owned()))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::NoHost(shown(url).to_owned()));
        }
        // The port as written (http's own accessor yields nothing for one past 65535, which read as "no port").
        let port_text = match authority.as_str().rsplit_once(':') {
            Some((before, after)) if !before.starts_with('[') || before.ends_with(']') => {
                Some(after)
            }
            _ => None,
        };
        let port = match port_text {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            // Digits only (u16's parser takes "+80"), at least 1.
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n >= 1 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(UrlError::Port {
                        url: shown(url).to_owned(),
                        port: p.to_owned(),
                    });
                }
            },
        };
        // The Host header as a server expects it: the port as a number (":0008080" is sent as ":8080"), and a
        // request target that starts with '/' ("http://h?x=1" asks for "/?x=1", never "?x=1").
        let authority = match port_text {
            None => authority.as_str().to_owned(),
            Some(_) if host.contains(':') => format!("[{host}]:{port}"),
            Some(_) => format!("{host}:{port}"),
        };
        let path_and_query = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") => "/".to_owned(),
            Some(p) if p.starts_with('/') => p.to_owned(),
            Some(p) => format!("/{p}"),
        };
        Ok(TargetUrl {
            https,
            host: host.to_owned(),
            port,
            authority,
            path_and_query,
            uri: uri.clone(),
        })
    }

    /// `host:port` for a resolver (an IPv6 literal without brackets).
    pub fn host_port(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_checked_never_wrapped() {
        // Regression (issue 20): port 99999 became port 80 on the agent.
        for bad in ["99999", "65536", "0", "-1", "80a", "4294967376"] {
            let url = format!("http://127.0.0.1:{bad}/");
            assert!(
                matches!(
                    TargetUrl::parse(&url),
                    Err(UrlError::Port { .. }) | Err(UrlError::Characters(_))
                ),
                "{url}: {:?}",
                TargetUrl::parse(&url)
            );
        }
        let t = TargetUrl::parse("http://127.0.0.1:65535/a?b=1").expect("valid");
        assert_eq!(
            (t.port, t.authority.as_str(), t.path_and_query.as_str()),
            (65535, "127.0.0.1:65535", "/a?b=1")
        );
        assert_eq!(
            TargetUrl::parse("https://example.test")
                .expect("valid")
                .port,
            443
        );
        assert_eq!(
            TargetUrl::parse("http://[::1]:8080").expect("valid").host,
            "::1"
        );
        assert_eq!(
            TargetUrl::parse("http://[::1]")
                .expect("valid")
                .path_and_query,
            "/"
        );
        // Attack round 2: "+80" was port 80, leading zeros went raw into the Host header, "?x=1" raw into the
        // request line.
        assert!(TargetUrl::parse("http://127.0.0.1:+80/").is_err());
        let padded = TargetUrl::parse("http://127.0.0.1:0008080/a").expect("valid");
        assert_eq!(
            (padded.port, padded.authority.as_str()),
            (8080, "127.0.0.1:8080")
        );
        assert_eq!(
            TargetUrl::parse("http://h?x=1")
                .expect("valid")
                .path_and_query,
            "/?x=1"
        );
        assert_eq!(
            TargetUrl::parse("http://[::1]:09/")
                .expect("valid")
                .authority,
            "[::1]:9"
        );
    }

    #[test]
    fn request_line_characters_are_refused() {
        for bad in [
            "http://127.0.0.1/a b",
            "http://127.0.0.1/a\r\nX-Injected: 1",
            "http://127.0.0.1/<script>",
            "http://127.0.0.1/\"q\"",
            "http://127.0.0.1/é",
            "http://127.0.0.1/\u{7f}",
        ] {
            assert!(TargetUrl::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn other_refusals_say_why_without_secrets() {
        assert!(matches!(
            TargetUrl::parse("ftp://h/"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            TargetUrl::parse("http:///x"),
            Err(UrlError::NoHost(_))
        ));
        let e = TargetUrl::parse("http://user:hunter2@h/").expect_err("refused");
        assert_eq!(e, UrlError::Credentials);
        assert!(!e.to_string().contains("hunter2"));
        let e = TargetUrl::parse("http://h:99999/?key=s3cret").expect_err("refused");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
