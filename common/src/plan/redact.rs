//! Secrets in a plan: header values that carry credentials. They go to the agents that send the requests and
//! nowhere else: the plan text kept in the results store has them replaced by [`REDACTED`].
//!
//! A request `body` is always replaced (by its length). A header is secret when its name contains a credential word ([`CREDENTIAL_WORDS`]: `auth`, `token`, `key`,
//! `jwt`, `sig`, ...) or is listed in the scenario's `secret_headers`. The same words mark secret query parameters of
//! a scenario's `url`, whose values are replaced too.

/// What a secret value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Parts of header and query parameter names that mark a credential. Redacting a harmless header costs nothing;
/// missing a secret one leaks it.
pub const CREDENTIAL_WORDS: [&str; 47] = [
    "auth",
    "token",
    "tok",
    "secret",
    "pass",
    "pwd",
    "key",
    "session",
    "sid",
    "cookie",
    "cred",
    "jwt",
    "bearer",
    "sig",
    "hmac",
    "otp",
    "csrf",
    "xsrf",
    "refresh",
    "access",
    "license",
    "private",
    "dpop",
    "pin",
    "mfa",
    "2fa",
    "cvv",
    "ssn",
    "cert",
    "code",
    "assertion",
    "ticket",
    "hash",
    "sas",
    // Issue 20: `X-JFrog-Art-Api`, `Ocp-Apim-Subscription-Key`, `X-Amzn-Oidc-Data`, `X-Ms-Client-Principal`,
    // `X-Vercel-Protection-Bypass`, `X-Honeycomb-Team`, `CF-Access-Client-Id` and their kind.
    "api",
    "client",
    "oidc",
    "saml",
    "principal",
    "bypass",
    "nonce",
    "honeycomb",
    "subscription",
    "credential",
    "signature",
    // Attack round 2: `X-Jenkins-Crumb`, `X-Ovh-Consumer`.
    "crumb",
    "consumer",
];

/// Whether the header `name` carries a secret, given the scenario's own `secret_headers`.
pub fn is_secret_header(name: &str, listed: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
        || listed.iter().any(|l| l.eq_ignore_ascii_case(name))
}

/// The plan text with every secret header value replaced by [`REDACTED`]. Comments and layout are not kept. A text
/// that does not parse as TOML (it was validated first, so this does not happen) yields a placeholder, never the
/// text itself.
pub fn redact_plan_text(text: &str) -> String {
    let Ok(mut doc) = text.parse::<toml::Table>() else {
        return "# plan withheld: it could not be parsed to remove its secrets\n".to_owned();
    };
    if let Some(toml::Value::Array(scenarios)) = doc.get_mut("scenario") {
        for scenario in scenarios.iter_mut().filter_map(toml::Value::as_table_mut) {
            let listed: Vec<String> = scenario
                .get("secret_headers")
                .and_then(toml::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            // A body may carry anything (a login form): kept out of the store whole, its length said.
            if let Some(toml::Value::String(body)) = scenario.get_mut("body") {
                *body = format!("<redacted: {} bytes>", body.len());
            }
            if let Some(toml::Value::String(redis)) = scenario.get_mut("redis") {
                *redis = super::cache::redacted_url(redis);
            }
            if let Some(toml::Value::String(database)) = scenario.get_mut("database") {
                *database = super::pagination::redacted_database_url(database);
            }
            // A cache scenario's origin is a request URL like `url` (attack round 2 on issue 20: its `token=` was
            // stored in clear).
            for field in ["url", "origin"] {
                if let Some(toml::Value::String(url)) = scenario.get_mut(field) {
                    *url = redact_query(url, &listed);
                }
            }
            // A metrics target or a probe's URL has no request to replay: every query value is withheld.
            if let Some(toml::Value::String(url)) = scenario.get_mut("target") {
                *url = redact_all_query(url);
            }
            if let Some(toml::Value::String(url)) = scenario
                .get_mut("probe")
                .and_then(toml::Value::as_table_mut)
                .and_then(|p| p.get_mut("url"))
            {
                *url = redact_all_query(url);
            }
            if let Some(headers) = scenario
                .get_mut("headers")
                .and_then(toml::Value::as_table_mut)
            {
                for (name, value) in headers.iter_mut() {
                    if is_secret_header(name, &listed) {
                        *value = toml::Value::String(REDACTED.to_owned());
                    }
                }
            }
        }
    }
    toml::to_string(&doc)
        .unwrap_or_else(|_| "# plan withheld: it could not be written back\n".to_owned())
}

/// The url with the value of every query parameter replaced by `redacted`.
fn redact_all_query(url: &str) -> String {
    let Some((base, rest)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query = rest.split('#').next().unwrap_or_default();
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) => format!("{name}=redacted"),
            None => "redacted".to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// A query parameter's name as a server reads it: `%74oken` is `token`.
fn decoded_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The url with the values of secret query parameters (by their decoded name) replaced by `redacted`.
fn redact_query(url: &str, listed: &[String]) -> String {
    let Some((base, rest)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if is_secret_header(&decoded_name(name), listed) => {
                format!("{name}=redacted")
            }
            _ => param.to_owned(),
        })
        .collect();
    let mut out = format!("{base}?{}", params.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_replaced_and_the_plan_still_parses() {
        let text = r#"
name = "secrets"
# a comment
[[scenario]]
name = "api"
kind = "http"
url = "http://127.0.0.1:1/x?page=2&api_key=qq-777&sig=zz-888"
requests = 10
body = "user=ann&password=b0dy-secret"
secret_headers = ["X-Tenant"]
headers = { authorization = "Bearer abc123", "X-Api-Key" = "k-999", "x-tenant" = "acme-secret", accept = "application/json", Cookie = "sid=42", x-jwt = "j-1", x-hub-signature-256 = "h-2", passphrase = "p-3" }
"#;
        let redacted = redact_plan_text(text);
        for secret in [
            "b0dy-secret",
            "abc123",
            "k-999",
            "acme-secret",
            "sid=42",
            "qq-777",
            "zz-888",
            "j-1",
            "h-2",
            "p-3",
        ] {
            assert!(!redacted.contains(secret), "{secret} left in:\n{redacted}");
        }
        assert!(
            redacted.contains("application/json") && redacted.contains("page=2"),
            "{redacted}"
        );
        let plan = crate::plan::Plan::parse("secrets.toml", &redacted)
            .expect("the redacted plan still validates");
        assert_eq!(plan.name, "secrets");
    }

    /// Regression (issue 20): `X-JFrog-Art-Api` was stored in clear. Credential header names used by real services
    /// (their documentation's spelling), each of which must be found by name alone.
    #[test]
    fn real_world_credential_headers_are_secret() {
        let names = [
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "X-API-Key",
            "Api-Key",
            "apikey",
            "X-Auth-Token",
            "X-JFrog-Art-Api",
            "X-Amz-Security-Token",
            "X-Goog-Api-Key",
            "Ocp-Apim-Subscription-Key",
            "X-Vault-Token",
            "X-Consul-Token",
            "PRIVATE-TOKEN",
            "X-Shopify-Access-Token",
            "X-Hub-Signature-256",
            "X-Slack-Signature",
            "Stripe-Signature",
            "X-Twilio-Signature",
            "X-CSRF-Token",
            "X-XSRF-TOKEN",
            "X-Client-Secret",
            "X-SSL-Client-Cert",
            "DD-API-KEY",
            "DD-APPLICATION-KEY",
            "X-Honeycomb-Team",
            "X-Sentry-Auth",
            "X-Algolia-API-Key",
            "X-Gitlab-Token",
            "X-RapidAPI-Key",
            "X-Hasura-Admin-Secret",
            "X-Parse-Master-Key",
            "CF-Access-Client-Id",
            "CF-Access-Client-Secret",
            "X-Goog-IAP-JWT-Assertion",
            "X-Amzn-Oidc-Data",
            "X-Ms-Client-Principal",
            "X-Vercel-Protection-Bypass",
            "X-ZUMO-AUTH",
            "X-Functions-Key",
            "Circle-Token",
            "X-Figma-Token",
            "X-Octopus-ApiKey",
            "X-Nonce",
            "X-Session-Id",
            "X-Upload-Credential",
            "Jenkins-Crumb",
            "X-Ovh-Consumer",
        ];
        let missed: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !is_secret_header(n, &[]))
            .collect();
        assert!(missed.is_empty(), "stored in clear: {missed:?}");
        // Plain headers stay readable in the stored plan.
        for plain in ["Accept", "Content-Type", "User-Agent", "X-Request-Id"] {
            assert!(!is_secret_header(plain, &[]), "{plain}");
        }
    }

    /// Regression (issue 20, attack round 2): a cache origin's `token=` and a percent-encoded `%74oken=` were stored
    /// in clear.
    #[test]
    fn origins_and_encoded_names_are_redacted() {
        let text = r#"
name = "c"
[[scenario]]
name = "cache"
kind = "cache"
mode = "redis"
redis = "redis://127.0.0.1:6379/0"
origin = "http://127.0.0.1:8080/item?id={key}&token=SEC_ORIGIN_TOK"
url = "http://127.0.0.1:8080/x?%74oken=SEC_PCTNAME1&api%5Fkey=SEC2&plain=kept"
key_space = 10
requests = 10
"#;
        let stored = redact_plan_text(text);
        for secret in ["SEC_ORIGIN_TOK", "SEC_PCTNAME1", "SEC2"] {
            assert!(!stored.contains(secret), "{secret} stored: {stored}");
        }
        assert!(stored.contains("plain=kept"), "{stored}");
        assert_eq!(decoded_name("%74o%6Ben"), "token");
        assert_eq!(decoded_name("bad%zz%"), "bad%zz%");
    }

    #[test]
    fn unparsable_text_is_never_stored() {
        let out = redact_plan_text("authorization = \"Bearer abc\" [[[");
        assert!(!out.contains("abc"));
    }
}
