//! The request a shard sends: parsed URL, resolved addresses, and the request bytes built once.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;
use loadgrade_common::plan::HttpRequest;
use loadgrade_common::plan::request::{MAX_HEADERS, header_problem};
use loadgrade_common::plan::target_url::{TargetUrl, UrlError};
use std::net::SocketAddr;

/// Why a shard's request cannot be built or its host reached.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("cannot resolve {host_port}: {source}")]
    Resolve {
        host_port: String,
        source: std::io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("invalid method {0:?}")]
    Method(String),
    #[error("{0}")]
    Header(String),
    #[error("the shard's request has {0} headers; at most {MAX_HEADERS} are sent")]
    TooManyHeaders(usize),
}

#[derive(Debug)]
pub struct HttpTarget {
    pub url: String,
    pub addrs: Vec<SocketAddr>,
    /// The whole request (head and body) as it goes on the wire.
    pub request: Vec<u8>,
    /// HEAD requests get responses without a body whatever their headers say.
    pub head: bool,
    pub https: bool,
    /// Host name for TLS server name indication.
    pub host: String,
    /// For HTTP/2, which builds a request per send (hyper).
    uri: Uri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

impl HttpTarget {
    /// Parses, resolves and builds the request. URL and headers are checked by the rules `validate` applies
    /// ([`TargetUrl::parse`], [`header_problem`]): a shard is refused for exactly what a plan is.
    pub async fn resolve(spec: &HttpRequest) -> Result<Self, TargetError> {
        let (url, method, headers, body) = (&spec.url, &spec.method, &spec.headers, &spec.body);
        let parsed = TargetUrl::parse(url)?;
        let (host, port) = parsed.host_port();
        let host_port = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let resolved = tokio::net::lookup_host((host, port)).await;
        let addrs: Vec<SocketAddr> = match resolved {
            Ok(addrs) => addrs.collect(),
            Err(source) => return Err(TargetError::Resolve { host_port, source }),
        };
        if addrs.is_empty() {
            return Err(TargetError::NoAddress(host_port));
        }
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| TargetError::Method(method.clone()))?;
        if headers.len() > MAX_HEADERS {
            return Err(TargetError::TooManyHeaders(headers.len()));
        }
        let mut request = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\n",
            parsed.path_and_query, parsed.authority
        )
        .into_bytes();
        let mut header_map = HeaderMap::new();
        for (h_name, h_value) in headers {
            if let Some(why) = header_problem(h_name, h_value, spec.http2) {
                return Err(TargetError::Header(why));
            }
            let name = HeaderName::from_bytes(h_name.as_bytes())
                .map_err(|_| TargetError::Header(format!("invalid header name {h_name:?}")))?;
            let value = HeaderValue::from_str(h_value)
                .map_err(|_| TargetError::Header(format!("invalid value for header {h_name:?}")))?;
            header_map.append(name.clone(), value.clone());
            request.extend_from_slice(name.as_str().as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        // The framing is the engine's: a plan cannot set Content-Length or Transfer-Encoding (header_problem).
        if !body.is_empty() || matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            request.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        Ok(HttpTarget {
            url: url.clone(),
            addrs,
            request,
            head: method == Method::HEAD,
            https: parsed.https,
            host: parsed.host.clone(),
            uri: parsed.uri.clone(),
            method,
            headers: header_map,
            body: Bytes::copy_from_slice(body),
        })
    }

    /// The request as hyper sends it over HTTP/2.
    pub fn h2_request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// The address connections go to (the first resolved one).
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, method: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
        HttpRequest {
            url: url.into(),
            method: method.into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
            http2: false,
            ca_file: None,
            timeout: std::time::Duration::from_secs(1),
            idempotent: true,
            max_response_header_bytes: 1 << 16,
        }
    }

    #[tokio::test]
    async fn builds_the_request_once() {
        let t = HttpTarget::resolve(&request(
            "http://127.0.0.1:8080/a?b=1",
            "POST",
            &[("x-key", "v")],
            b"{}",
        ))
        .await
        .expect("target");
        assert_eq!(
            String::from_utf8_lossy(&t.request),
            "POST /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nx-key: v\r\nContent-Length: 2\r\n\r\n{}"
        );
        assert!(!t.head);
        let get = HttpTarget::resolve(&request("http://127.0.0.1", "GET", &[], b""))
            .await
            .expect("target");
        assert_eq!(
            String::from_utf8_lossy(&get.request),
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        );
        assert_eq!(get.addr().port(), 80);
        let tls = HttpTarget::resolve(&request("https://127.0.0.1/", "GET", &[], b""))
            .await
            .expect("target");
        assert!(tls.https);
        assert_eq!(tls.addr().port(), 443);
        assert!(
            HttpTarget::resolve(&request("ftp://127.0.0.1/", "GET", &[], b""))
                .await
                .is_err()
        );
    }
}

/// `validate` and the agent read a plan's request with one set of rules (issue 20: raw `<>"` in a URL, port 99999,
/// a Host or Content-Length header validated and were then refused by agents, or worse, sent).
#[cfg(test)]
mod same_rules_as_validate {
    use super::*;
    use loadgrade_common::plan::{Plan, ScenarioSpec};

    fn plan_accepts(url: &str, header: Option<(&str, &str)>) -> Option<HttpRequest> {
        let headers = header.map_or_else(String::new, |(n, v)| {
            format!("headers = {{ {n:?} = {v:?} }}\n")
        });
        let text = format!(
            "name = \"p\"\n[[scenario]]\nname = \"s\"\nkind = \"http\"\nurl = {url:?}\nduration = \"1s\"\n{headers}"
        );
        let plan = Plan::parse("p.toml", &text).ok()?;
        match &plan.scenarios[0].spec {
            ScenarioSpec::Http(h) => Some(h.request.clone()),
            _ => None,
        }
    }

    fn request(url: &str, header: Option<(&str, &str)>) -> HttpRequest {
        HttpRequest {
            url: url.to_owned(),
            method: "GET".into(),
            headers: header
                .map(|(n, v)| vec![(n.to_owned(), v.to_owned())])
                .unwrap_or_default(),
            body: Vec::new(),
            http2: false,
            ca_file: None,
            timeout: std::time::Duration::from_secs(1),
            idempotent: true,
            max_response_header_bytes: 1 << 16,
        }
    }

    #[tokio::test]
    async fn a_request_validates_exactly_when_an_agent_builds_it() {
        let long = "a".repeat(9000);
        let urls = [
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:65535/ok?x=1&y=%20",
            "http://127.0.0.1/a b",
            "http://127.0.0.1/<x>",
            "http://127.0.0.1/\"q\"",
            "http://127.0.0.1/{x}",
            "http://127.0.0.1/a|b",
            "http://127.0.0.1/a\r\nX-Injected: 1",
            "http://[::1]:8080/",
            "https://127.0.0.1/",
            "ftp://127.0.0.1/",
            "http://u:p@127.0.0.1/",
            "http:///nohost",
        ];
        let headers = [
            ("x-ok", "v"),
            ("content-length", "5"),
            ("Transfer-Encoding", "chunked"),
            ("host", "elsewhere"),
            ("upgrade", "h2c"),
            ("te", "trailers"),
            ("connection", "close"),
            ("bad name", "v"),
            ("x-long", long.as_str()),
            ("x-tab", "a\tb"),
        ];
        let mut cases: Vec<(String, Option<(&str, &str)>)> =
            urls.iter().map(|u| ((*u).to_owned(), None)).collect();
        cases.extend(
            headers
                .iter()
                .map(|h| ("http://127.0.0.1/".to_owned(), Some(*h))),
        );
        for (url, header) in cases {
            let validated = plan_accepts(&url, header).is_some();
            let built = HttpTarget::resolve(&request(&url, header)).await;
            assert_eq!(
                validated,
                built.is_ok(),
                "{url:?} {header:?}: validate {}, agent {:?}",
                if validated { "accepts" } else { "refuses" },
                built.err()
            );
        }
    }

    /// The agent refuses what a plan may not hold even when the shard comes from the wire (a hostile coordinator).
    #[tokio::test]
    async fn the_agent_refuses_more_than_a_hundred_headers() {
        let mut r = request("http://127.0.0.1/", None);
        r.headers = (0..101)
            .map(|i| (format!("x-{i}"), "v".to_owned()))
            .collect();
        assert!(matches!(
            HttpTarget::resolve(&r).await,
            Err(TargetError::TooManyHeaders(101))
        ));
    }
}
