//! The agent ↔ coordinator protocol in domain terms: what each side sends on the session. `loadgrade-proto`
//! converts these to and from the wire; nothing else sees protobuf.

use crate::interval::IntervalReport;
use crate::plan::LocalTarget;
use crate::shard::{Assignment, PartId};

/// The longest agent name: one DNS label's worth.
pub const MAX_AGENT_NAME: usize = 63;
/// The longest agent version text in a hello.
pub const MAX_AGENT_VERSION: usize = 64;

/// An agent name or label that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "agent name {0:?} must be 1 to {MAX_AGENT_NAME} lower-case letters, digits, '-', '_' or '.', starting and \
         ending with a letter or digit"
    )]
    AgentName(String),
    #[error(
        "label {key:?}={value:?}: key and value must each be 1 to 63 lower-case letters, digits, '-', '_' or '.'"
    )]
    Label { key: String, value: String },
    #[error("label {0:?} is not key=value")]
    NotKeyValue(String),
}

/// Checks an agent name: 1 to 63 lower-case letters, digits, `-`, `_` and `.`, starting and ending with a letter or
/// digit. One spelling per agent, so two names never differ only in case or a trailing dot (both of which a
/// certificate's DNS names ignore), and a name is safe to print and log as it is.
pub fn check_agent_name(name: &str) -> Result<(), NameError> {
    let bad = || NameError::AgentName(name.to_owned());
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > MAX_AGENT_NAME || !name.chars().all(allowed) {
        return Err(bad());
    }
    if !edge(name.chars().next()) || !edge(name.chars().last()) || name.contains("..") {
        return Err(bad());
    }
    Ok(())
}

/// Most labels one agent may carry.
pub const MAX_LABELS: usize = 16;

/// Checks an agent label (`--label zone=a`, and a plan's `agents = { zone = "a" }`): key and value each 1 to 63
/// lower-case letters, digits, `-`, `_` or `.`.
pub fn check_label(key: &str, value: &str) -> Result<(), NameError> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            })
    };
    if ok(key) && ok(value) {
        Ok(())
    } else {
        Err(NameError::Label {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// Parses `key=value` as given to `--label`.
pub fn parse_label(text: &str) -> Result<(String, String), NameError> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| NameError::NotKeyValue(text.to_owned()))?;
    check_label(key, value)?;
    Ok((key.to_owned(), value.to_owned()))
}

/// First message of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub name: String,
    /// Agent build version (semver).
    pub version: String,
    /// Logical CPU cores on the load box; the default sharding weight.
    pub cores: u32,
    /// Random per process start; (name, epoch) identifies one agent incarnation.
    pub epoch: u64,
    /// Protocol revision the agent speaks.
    pub protocol: u32,
    /// A probe agent on a target host: answers probe requests, never runs load.
    pub probe_only: bool,
    /// The operator's labels (`--label zone=a`); a plan's `agents = { .. }` selects agents by them.
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welcome {
    /// Coordinator wall clock when Welcome was sent, Unix epoch milliseconds.
    pub server_time_unix_ms: i64,
    pub heartbeat_interval_ms: u32,
    pub protocol: u32,
}

/// An agent's heartbeat, carrying its current clock offset estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heartbeat {
    /// Agent wall clock, Unix epoch milliseconds.
    pub sent_at_unix_ms: i64,
    /// The agent's clock minus the coordinator's, from its last heartbeat round trip.
    pub clock: Option<ClockEstimate>,
}

/// Agent clock minus coordinator clock from one round trip: the midpoint method, error at most `rtt_ms / 2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockEstimate {
    pub offset_ms: f64,
    pub rtt_ms: f64,
}

impl ClockEstimate {
    /// The estimate from a message sent at `sent_ms` (agent clock), answered by a server stamp `server_ms`, and
    /// received at `received_ms` (agent clock).
    pub fn from_round_trip(sent_ms: i64, server_ms: i64, received_ms: i64) -> Self {
        let rtt_ms = received_ms.saturating_sub(sent_ms).max(0) as f64;
        let midpoint = sent_ms as f64 + rtt_ms / 2.0;
        ClockEstimate {
            offset_ms: midpoint - server_ms as f64,
            rtt_ms,
        }
    }
}

/// The coordinator's answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatAck {
    pub agent_sent_at_unix_ms: i64,
    pub server_time_unix_ms: i64,
}

/// How a shard ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardOutcome {
    /// Ran to its planned end.
    Completed,
    /// Stopped by the coordinator (or the session ended).
    Stopped,
    /// Failed; its figures are incomplete. Why, for people.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardDone {
    pub run_id: String,
    pub part: PartId,
    /// Interval reports sent for this shard.
    pub intervals: u64,
    pub outcome: ShardOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRefused {
    pub run_id: String,
    pub part: PartId,
    pub reason: String,
}

/// Read a target's memory (and CPU) on the agent's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    pub request_id: u64,
    pub target: LocalTarget,
}

/// One reading of a target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeReading {
    pub memory_bytes: u64,
    /// Cumulative CPU seconds, where the target has them.
    pub cpu_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReply {
    pub request_id: u64,
    pub outcome: ProbeOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeOutcome {
    Reading(ProbeReading),
    /// The reading failed, and why.
    Failed(String),
}

/// What an agent sends on its session.
#[derive(Debug, Clone, PartialEq)]
pub enum FromAgent {
    Hello(Hello),
    Heartbeat(Heartbeat),
    Interval(Box<IntervalReport>),
    ShardDone(ShardDone),
    ShardRefused(ShardRefused),
    ProbeReply(ProbeReply),
    PreflightReply(PreflightReply),
}

/// What the coordinator sends on an agent's session.
#[derive(Debug, Clone, PartialEq)]
pub enum ToAgent {
    Welcome(Welcome),
    Assign(Box<Assignment>),
    Stop {
        run_id: String,
        reason: String,
    },
    /// The interval (run, epoch, seq) is stored.
    Ack {
        run_id: String,
        epoch: u64,
        seq: u64,
    },
    Probe(ProbeRequest),
    HeartbeatAck(HeartbeatAck),
    Preflight(Preflight),
}

/// Check, without load, that the agent could run each assignment: its allowlist, the target answering one probe,
/// its limits against the connections its share needs, free disk for its spool.
#[derive(Debug, Clone, PartialEq)]
pub struct Preflight {
    pub request_id: u64,
    pub items: Vec<Assignment>,
}

/// An agent's preflight rows.
#[derive(Debug, Clone, PartialEq)]
pub struct PreflightReply {
    pub request_id: u64,
    pub rows: Vec<crate::preflight::CheckRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_have_one_spelling() {
        for good in ["box-1", "a", "load.box_2", "x9"] {
            assert_eq!(check_agent_name(good), Ok(()), "{good}");
        }
        for bad in [
            "", "BOX-1", "Box-1", "box-1.", ".box", "-box", "box..1", "box 1", "box\n1", "bøx",
            "*.box",
        ] {
            assert!(check_agent_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_agent_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn the_midpoint_estimate_has_half_the_round_trip_as_error_bound() {
        // Agent clock 500 ms ahead; 20 ms each way.
        let e = ClockEstimate::from_round_trip(1_000, 520, 1_040);
        assert_eq!(e.rtt_ms, 40.0);
        assert_eq!(e.offset_ms, 500.0);
    }
}
