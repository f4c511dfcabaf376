//! A small lab of network namespaces for multi-host tests: one hub namespace holding two bridges, a control network
//! (coordinator ⇄ agents) and a data network (agents ⇄ target), and one namespace per host, each joined to the
//! networks it needs by veth pairs. This process (the root namespace) joins both, as the coordinator's host and to
//! read the target's counters. Cutting a host's control link leaves its data link up: an agent partitioned from its
//! coordinator while it can still reach the target. Everything is removed on drop.

use std::process::Command;

/// Which network a link joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    Control,
    Data,
}

pub struct Lab {
    /// Short and unique per lab: namespace and interface names start with it.
    tag: String,
    /// The lab's subnets: 10.200.(2·index).0/24 control, 10.200.(2·index+1).0/24 data.
    index: u8,
    hub: String,
    namespaces: Vec<String>,
    root_links: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Lab {
    /// A new lab numbered `index` (distinct per test of one process), or `None` with a message where namespaces
    /// cannot be made (no privilege, no `ip`).
    pub fn new(index: u8) -> Option<Lab> {
        let tag = format!("lg{}{index}", std::process::id() % 100_000);
        let hub = format!("{tag}hub");
        if let Err(e) = ip(&["netns", "add", &hub]) {
            eprintln!("skipped: network namespaces are not permitted here ({e})");
            return None;
        }
        let lab = Lab {
            tag,
            index,
            hub,
            namespaces: Vec::new(),
            root_links: Vec::new(),
        };
        let setup = || -> Result<(), String> {
            for bridge in ["bctl", "bdat"] {
                ip(&["-n", &lab.hub, "link", "add", bridge, "type", "bridge"])?;
                ip(&["-n", &lab.hub, "link", "set", bridge, "up"])?;
            }
            Ok(())
        };
        // Namespaces are permitted: from here on a failure is the test's, not the machine's.
        if let Err(e) = setup() {
            panic!("cannot build the namespace lab: {e}");
        }
        Some(lab)
    }

    /// The address of host number `host` (1..=250) on `net`.
    pub fn address(&self, net: Net, host: u8) -> String {
        let subnet = 2 * self.index + u8::from(net == Net::Data);
        format!("10.200.{subnet}.{host}")
    }

    fn bridge(net: Net) -> &'static str {
        match net {
            Net::Control => "bctl",
            Net::Data => "bdat",
        }
    }

    /// The hub-side interface of host `host`'s link on `net`.
    fn hub_end(&self, net: Net, host: u8) -> String {
        format!(
            "{}{}{host}h",
            self.tag,
            if net == Net::Control { 'c' } else { 'd' }
        )
    }

    /// Joins `namespace` (None: this process's) to `net` as host number `host`.
    fn join(&mut self, namespace: Option<&str>, net: Net, host: u8) -> Result<(), String> {
        let hub_end = self.hub_end(net, host);
        let host_end = format!(
            "{}{}{host}x",
            self.tag,
            if net == Net::Control { 'c' } else { 'd' }
        );
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", &hub_end,
        ])?;
        ip(&["link", "set", &hub_end, "netns", &self.hub])?;
        ip(&[
            "-n",
            &self.hub,
            "link",
            "set",
            &hub_end,
            "master",
            Self::bridge(net),
        ])?;
        ip(&["-n", &self.hub, "link", "set", &hub_end, "up"])?;
        let cidr = format!("{}/24", self.address(net, host));
        match namespace {
            Some(ns) => {
                ip(&["link", "set", &host_end, "netns", ns])?;
                ip(&["-n", ns, "addr", "add", &cidr, "dev", &host_end])?;
                ip(&["-n", ns, "link", "set", &host_end, "up"])?;
            }
            None => {
                self.root_links.push(host_end.clone());
                ip(&["addr", "add", &cidr, "dev", &host_end])?;
                ip(&["link", "set", &host_end, "up"])?;
            }
        }
        Ok(())
    }

    /// This process joins both networks as host 1.
    pub fn join_root(&mut self) -> Result<(), String> {
        self.join(None, Net::Control, 1)?;
        self.join(None, Net::Data, 1)
    }

    /// A host namespace numbered `host`, joined to `nets`; returns its name.
    pub fn host(&mut self, host: u8, nets: &[Net]) -> Result<String, String> {
        let ns = format!("{}h{host}", self.tag);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        for net in nets {
            self.join(Some(&ns), *net, host)?;
        }
        Ok(ns)
    }

    /// Cuts (or restores) host `host`'s link to `net` at the hub: its packets go nowhere, and nothing tells either
    /// side (no reset, no error): a silent partition.
    pub fn set_link(&self, net: Net, host: u8, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        ip(&[
            "-n",
            &self.hub,
            "link",
            "set",
            &self.hub_end(net, host),
            state,
        ])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for link in &self.root_links {
            let _ = ip(&["link", "del", link]);
        }
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["netns", "del", &self.hub]);
    }
}
