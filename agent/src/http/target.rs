//! The request a shard sends: parsed URL, resolved addresses, method, headers and body.

use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;
use loadgrade_proto::v1::Header;
use std::net::SocketAddr;

#[derive(Debug)]
pub struct HttpTarget {
    pub url: String,
    pub addrs: Vec<SocketAddr>,
    method: Method,
    path: String,
    host: HeaderValue,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl HttpTarget {
    /// Parses and resolves. Errors are messages for `ShardRefused`.
    pub async fn resolve(
        url: &str,
        method: &str,
        headers: &[Header],
        body: &[u8],
    ) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("invalid url {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "unsupported url {url:?}: only http:// is supported by this agent"
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("invalid url {url:?}: no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let host_port = format!(
            "{}:{port}",
            host.trim_start_matches('[').trim_end_matches(']')
        );
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&host_port)
            .await
            .map_err(|e| format!("cannot resolve {host_port}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{host_port} resolves to no address"));
        }
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("invalid method {method:?}"))?;
        let headers = headers
            .iter()
            .map(|h| {
                let name = HeaderName::from_bytes(h.name.as_bytes())
                    .map_err(|_| format!("invalid header name {:?}", h.name))?;
                let value = HeaderValue::from_str(&h.value)
                    .map_err(|_| format!("invalid value for header {:?}", h.name))?;
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(HttpTarget {
            url: url.to_owned(),
            addrs,
            method,
            path: uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
            host: HeaderValue::from_str(authority)
                .map_err(|_| format!("invalid host in {url:?}"))?,
            headers,
            body: Bytes::copy_from_slice(body),
        })
    }

    /// The address connections go to (the first resolved one).
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        // The path was validated when the URL parsed; a parse failure here is impossible.
        *request.uri_mut() = self.path.parse().unwrap_or_default();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        request
    }
}
