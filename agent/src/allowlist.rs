//! The agent's own list of where it may send load: networks (CIDR), single addresses and host names. Empty by
//! default: nothing is allowed until the operator says so, and loopback only with `--allow-loopback` (a service on
//! the load box's own loopback is a target too). `loadgrade run` and `demo` start their in-process agents with
//! loopback allowed. A shard whose target resolves outside the list is refused before any request, and every
//! connection is checked again when it is made (host names in the list are resolved at that time).

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    nets: Vec<IpNet>,
    /// Host names whose addresses are allowed, resolved when a shard is checked.
    hosts: Vec<String>,
}

/// An allowlist with its host names resolved: what connections are checked against.
#[derive(Debug, Clone)]
pub struct Resolved {
    nets: Vec<IpNet>,
    shown: String,
}

impl Allowlist {
    /// 127.0.0.0/8 and ::1/128.
    pub fn loopback() -> Self {
        Allowlist {
            nets: vec![
                "127.0.0.0/8".parse().expect("static network"),
                "::1/128".parse().expect("static network"),
            ],
            hosts: Vec::new(),
        }
    }

    /// The list from `--allow` values (CIDRs, addresses or host names), with loopback when `loopback`.
    pub fn new(loopback: bool, allow: &[String]) -> Result<Self, InvalidNetwork> {
        let mut list = if loopback {
            Allowlist::loopback()
        } else {
            Allowlist::default()
        };
        for text in allow {
            if let Ok(net) = text.parse::<IpNet>() {
                list.nets.push(net);
            } else if let Ok(ip) = text.parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip));
            } else if is_host_name(text) {
                list.hosts.push(text.to_ascii_lowercase());
            } else {
                return Err(InvalidNetwork(text.clone()));
            }
        }
        Ok(list)
    }

    /// Loopback plus `extra` (kept for callers that always allow loopback, such as in-process agents).
    pub fn with_extra(extra: &[String]) -> Result<Self, InvalidNetwork> {
        Allowlist::new(true, extra)
    }

    /// The list with its host names resolved now.
    pub async fn resolve(&self) -> Resolved {
        let mut nets = self.nets.clone();
        for host in &self.hosts {
            match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addrs) => nets.extend(addrs.map(|a| IpNet::from(a.ip()))),
                Err(e) => {
                    tracing::warn!(%host, "allowed host does not resolve ({e}); it allows nothing now")
                }
            }
        }
        let mut shown: Vec<String> = self.nets.iter().map(ToString::to_string).collect();
        shown.extend(self.hosts.iter().cloned());
        Resolved {
            nets,
            shown: if shown.is_empty() {
                "empty".to_owned()
            } else {
                shown.join(", ")
            },
        }
    }
}

impl Resolved {
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Checks every address; the error names the first one outside the list.
    pub fn check(&self, addrs: &[SocketAddr]) -> Result<(), OutsideAllowlist> {
        match addrs.iter().find(|a| !self.allows(a.ip())) {
            None => Ok(()),
            Some(a) => Err(OutsideAllowlist {
                addr: a.ip(),
                allowed: self.shown.clone(),
            }),
        }
    }
}

/// Letters, digits, hyphens and dots, as DNS names are.
fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// An `--allow` value that is neither a network, an address nor a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --allow {0:?}: expected a CIDR such as 10.0.0.0/24, an address, or a host name")]
pub struct InvalidNetwork(pub String);

/// A target address the allowlist does not cover.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "target address {addr} is outside this agent's allowlist ({allowed}); start the agent with --allow (or \
     --allow-loopback) to permit it"
)]
pub struct OutsideAllowlist {
    pub addr: IpAddr,
    pub allowed: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nothing_is_allowed_by_default() {
        let list = Allowlist::new(false, &[]).expect("valid").resolve().await;
        assert!(!list.allows("127.0.0.1".parse().expect("ip")));
        assert!(!list.allows("10.0.0.1".parse().expect("ip")));
        let e = list
            .check(&["127.0.0.1:80".parse().expect("addr")])
            .expect_err("refused");
        assert!(e.to_string().contains("--allow-loopback"), "{e}");
    }

    #[tokio::test]
    async fn loopback_only_when_asked() {
        let list = Allowlist::new(true, &[]).expect("valid").resolve().await;
        assert!(list.allows("127.0.0.1".parse().expect("ip")));
        assert!(list.allows("127.5.6.7".parse().expect("ip")));
        assert!(list.allows("::1".parse().expect("ip")));
        assert!(list.allows("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!list.allows("10.0.0.1".parse().expect("ip")));
    }

    #[tokio::test]
    async fn networks_addresses_and_host_names() {
        let list = Allowlist::new(
            false,
            &["10.200.0.0/24".into(), "fd00::5".into(), "localhost".into()],
        )
        .expect("valid")
        .resolve()
        .await;
        assert!(list.allows("10.200.0.9".parse().expect("ip")));
        assert!(!list.allows("10.200.1.9".parse().expect("ip")));
        assert!(list.allows("fd00::5".parse().expect("ip")));
        assert!(
            list.allows("127.0.0.1".parse().expect("ip")),
            "localhost resolves to loopback"
        );
        assert!(Allowlist::new(false, &["not a name!".into()]).is_err());
    }
}
