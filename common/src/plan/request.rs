//! The request part shared by every kind that sends HTTP requests (`http`, `ramp`): where, how and with what.

use super::ScenarioInput;
use super::errors::Issues;
use super::fields::{self, Field};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
pub(crate) struct RawRequest {
    pub url: Field<String>,
    pub method: Field<String>,
    pub headers: Field<BTreeMap<String, String>>,
    pub body: Field<String>,
    pub timeout: Field<String>,
    pub http: Field<String>,
    pub ca_file: Field<String>,
    pub idempotent: Field<bool>,
    pub max_response_header_bytes: Field<String>,
    /// More header names whose values are secret (beside the credential headers found by name): kept out of the
    /// results store. Read by [`super::redact`].
    #[allow(dead_code)]
    pub secret_headers: Field<Vec<String>>,
}

/// One HTTP request as every connection sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub url: String,
    /// Default: GET.
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// HTTP/2 (`http = "2"`): prior knowledge on http://, ALPN h2 on https://. Default: HTTP/1.1.
    pub http2: bool,
    /// A file of CA certificates (PEM) trusted for https:// besides the system roots. Each agent reads it on its
    /// own host when its shard starts (the coordinator never reads it); a relative path is taken from the plan
    /// file's folder.
    pub ca_file: Option<String>,
    /// Per request. Default: 10 s.
    pub timeout: Duration,
    /// Sending the request twice is harmless: a request on a kept-alive connection that fails before any response
    /// byte is resent once (and counted). Default: by method (GET, HEAD, OPTIONS, PUT, DELETE, TRACE are
    /// idempotent); `idempotent = true` in the plan vouches for others.
    pub idempotent: bool,
    /// Most bytes a response's status line and headers (and a chunked body's trailers) may take; a response over it
    /// is a `response_too_large` error and its connection is closed. Default: 64 KiB; at most 1 MiB.
    pub max_response_header_bytes: u32,
}

/// Reads and validates a scenario's request fields.
pub(crate) fn validate(
    input: &ScenarioInput<'_, '_>,
    issues: &mut Issues<'_>,
) -> Option<HttpRequest> {
    validate_with_url(input, issues, None, false)
}

/// Reads and validates a scenario's request fields, its URL from `url`, or from another field when `url_from` names
/// one (`origin` in a cache scenario: then `url` itself is refused). With `key_template`, the URL is a cache
/// scenario's, whose `{key}` agents replace before they parse it (and so does this check).
pub(crate) fn validate_with_url(
    input: &ScenarioInput<'_, '_>,
    issues: &mut Issues<'_>,
    url_from: Option<(&'static str, Option<&toml::Spanned<String>>)>,
    key_template: bool,
) -> Option<HttpRequest> {
    let raw: RawRequest = input.table.part(issues)?;
    let (name, kind_span, base_dir) = (input.name, &input.kind_span, input.base_dir);
    let (field, given) = match url_from {
        Some((field, given)) => {
            if let Some(u) = &raw.url {
                issues.at(
                    u.span(),
                    format!("this scenario takes its URL from `{field}`, not `url`"),
                );
            }
            (field, given)
        }
        None => ("url", raw.url.as_ref()),
    };
    let url = match given {
        None => {
            issues.at(
                kind_span.clone(),
                format!("scenario {name:?}: `{field}` is required"),
            );
            None
        }
        Some(u) => match fields::check_url(&if key_template {
            u.get_ref().replace(super::cache::KEY_PLACEHOLDER, "KEY")
        } else {
            u.get_ref().clone()
        }) {
            Ok(()) => Some(u.get_ref().clone()),
            Err(e) => {
                issues.at(u.span(), e);
                None
            }
        },
    };
    let method = match &raw.method {
        None => "GET".to_owned(),
        Some(m)
            if !m.get_ref().is_empty() && m.get_ref().chars().all(|c| c.is_ascii_uppercase()) =>
        {
            m.get_ref().clone()
        }
        Some(m) => {
            issues.at(
                m.span(),
                format!(
                    "invalid method {:?}: expected an upper-case token such as GET or POST",
                    m.get_ref()
                ),
            );
            "GET".to_owned()
        }
    };
    let timeout = fields::duration(issues, raw.timeout.as_ref()).unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        issues.at(
            fields::span_or(raw.timeout.as_ref(), kind_span),
            "timeout must be longer than 0",
        );
    }
    let http2 = match &raw.http {
        None => false,
        Some(v) => match v.get_ref().as_str() {
            "1.1" => false,
            "2" => true,
            other => {
                issues.at(
                    v.span(),
                    format!("invalid http {other:?}: expected \"1.1\" or \"2\""),
                );
                false
            }
        },
    };
    let ca_file = raw.ca_file.as_ref().and_then(|f| {
        if f.get_ref().trim().is_empty() {
            issues.at(f.span(), "ca_file is empty");
            return None;
        }
        Some(base_dir.join(f.get_ref()).display().to_string())
    });
    let headers: Vec<(String, String)> = raw
        .headers
        .as_ref()
        .map(|h| h.get_ref().clone().into_iter().collect())
        .unwrap_or_default();
    if let Some(field) = &raw.headers {
        if headers.len() > MAX_HEADERS {
            issues.at(
                field.span(),
                format!(
                    "scenario {name:?}: {} headers; a request may carry at most {MAX_HEADERS}",
                    headers.len(),
                    name = input.name
                ),
            );
        } else {
            for (name, value) in &headers {
                if let Some(why) = header_problem(name, value, http2) {
                    issues.at(
                        field.span(),
                        format!("scenario {name:?}: {why}", name = input.name),
                    );
                }
            }
        }
    }
    let max_response_header_bytes = match &raw.max_response_header_bytes {
        None => DEFAULT_RESPONSE_HEADER_BYTES,
        Some(f) => match crate::units::parse_size(f.get_ref()) {
            Ok(n) if (MIN_RESPONSE_HEADER_BYTES..=MAX_RESPONSE_HEADER_BYTES).contains(&n) => {
                u32::try_from(n).unwrap_or(DEFAULT_RESPONSE_HEADER_BYTES)
            }
            Ok(_) => {
                issues.at(
                    f.span(),
                    format!(
                        "max_response_header_bytes must be between {} KiB and {} KiB",
                        MIN_RESPONSE_HEADER_BYTES >> 10,
                        MAX_RESPONSE_HEADER_BYTES >> 10
                    ),
                );
                DEFAULT_RESPONSE_HEADER_BYTES
            }
            Err(e) => {
                issues.at(f.span(), e);
                DEFAULT_RESPONSE_HEADER_BYTES
            }
        },
    };
    let body = raw
        .body
        .as_ref()
        .map(|b| b.get_ref().clone().into_bytes())
        .unwrap_or_default();
    let idempotent = raw
        .idempotent
        .as_ref()
        .map_or_else(|| idempotent_method(&method), |i| *i.get_ref());
    Some(HttpRequest {
        url: url?,
        idempotent,
        method,
        headers,
        body,
        http2,
        ca_file,
        timeout,
        max_response_header_bytes,
    })
}

/// Most headers a plan's request may carry.
pub const MAX_HEADERS: usize = 100;
/// Longest header (name, ": " and value) a plan's request may carry.
pub const MAX_HEADER_BYTES: usize = 8 << 10;
/// Response head bound when the plan sets none: 64 KiB (nginx's largest default header buffers hold 32 KiB).
pub const DEFAULT_RESPONSE_HEADER_BYTES: u32 = 64 << 10;
/// Smallest and largest `max_response_header_bytes` a plan may set.
pub const MIN_RESPONSE_HEADER_BYTES: u64 = 1 << 10;
pub const MAX_RESPONSE_HEADER_BYTES: u64 = 1 << 20;

/// Headers the engine writes itself: the Host header comes from the URL, and the request's framing (its length and
/// transfer coding, a protocol switch) is the engine's, so a plan cannot desynchronise it from the body it sends.
const ENGINE_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "upgrade"];
/// Connection-specific headers HTTP/2 forbids (RFC 9113, 8.2.2).
const HTTP1_ONLY_HEADERS: [&str; 4] = ["connection", "keep-alive", "proxy-connection", "te"];

/// What is wrong with a request header, if anything: the same rules agents apply when they build the request
/// (hyper's `HeaderName` and `HeaderValue`), so `validate` refuses what an agent would. The value is never echoed:
/// it may be a secret.
pub fn header_problem(name: &str, value: &str, http2: bool) -> Option<String> {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Some(format!(
            "header name {name:?} is not a valid HTTP field name"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if ENGINE_HEADERS.contains(&lower.as_str()) {
        return Some(format!(
            "header {name:?} is written by the engine (the Host header from the url, the framing from the body): \
             remove it"
        ));
    }
    if http2 && HTTP1_ONLY_HEADERS.contains(&lower.as_str()) {
        return Some(format!(
            "header {name:?} is connection-specific and HTTP/2 forbids it: remove it"
        ));
    }
    if name.len() + 2 + value.len() > MAX_HEADER_BYTES {
        return Some(format!(
            "header {name:?} is longer than {} KiB",
            MAX_HEADER_BYTES >> 10
        ));
    }
    if http::HeaderValue::from_str(value).is_err()
        || value.chars().any(|c| c.is_control() && c != '\t')
    {
        return Some(format!(
            "the value of header {name:?} has a control character, which a header cannot carry"
        ));
    }
    None
}

/// Methods RFC 9110 (9.2.2) defines as idempotent.
fn idempotent_method(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
    )
}
