//! The agent's own list of networks it may send load to. Default: loopback only (127.0.0.0/8 and ::1).
//! A shard whose target resolves outside it is refused before any request is sent.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone)]
pub struct Allowlist {
    nets: Vec<IpNet>,
}

impl Default for Allowlist {
    fn default() -> Self {
        Allowlist::loopback()
    }
}

impl Allowlist {
    /// 127.0.0.0/8 and ::1/128.
    pub fn loopback() -> Self {
        Allowlist {
            nets: vec![
                "127.0.0.0/8".parse().expect("static network"),
                "::1/128".parse().expect("static network"),
            ],
        }
    }

    /// Loopback plus `extra` networks ("10.200.0.0/24", "fd00::/64"; a bare address is one host).
    pub fn with_extra(extra: &[String]) -> Result<Self, InvalidNetwork> {
        let mut list = Allowlist::loopback();
        for text in extra {
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| InvalidNetwork(text.clone()))?;
            list.nets.push(net);
        }
        Ok(list)
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Checks every resolved address; the error names the first one outside the list.
    pub fn check(&self, addrs: &[SocketAddr]) -> Result<(), OutsideAllowlist> {
        match addrs.iter().find(|a| !self.allows(a.ip())) {
            None => Ok(()),
            Some(a) => Err(OutsideAllowlist {
                addr: a.ip(),
                allowed: self
                    .nets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// An `--allow` value that is neither a network nor an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {0:?}: expected CIDR such as 10.0.0.0/24 or an address")]
pub struct InvalidNetwork(pub String);

/// A target address the allowlist does not cover.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "target address {addr} is outside this agent's allowlist ({allowed}); start the agent with --allow to permit it"
)]
pub struct OutsideAllowlist {
    pub addr: IpAddr,
    pub allowed: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_by_default() {
        let list = Allowlist::default();
        assert!(list.allows("127.0.0.1".parse().expect("ip")));
        assert!(list.allows("127.5.6.7".parse().expect("ip")));
        assert!(list.allows("::1".parse().expect("ip")));
        assert!(list.allows("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!list.allows("10.0.0.1".parse().expect("ip")));
        assert!(!list.allows("8.8.8.8".parse().expect("ip")));
    }

    #[test]
    fn extra_networks_extend_it() {
        let list =
            Allowlist::with_extra(&["10.200.0.0/24".into(), "fd00::5".into()]).expect("valid");
        assert!(list.allows("10.200.0.9".parse().expect("ip")));
        assert!(!list.allows("10.200.1.9".parse().expect("ip")));
        assert!(list.allows("fd00::5".parse().expect("ip")));
        assert!(Allowlist::with_extra(&["nonsense".into()]).is_err());
    }
}
