//! Multi-host runs in network namespaces this test makes (skipped with a message where that is not permitted):
//! agents on hosts of their own dial a coordinator over mutual TLS and load a target on a fourth host, whose
//! per-source counts must equal what each agent reported; and an agent cut off from its coordinator (silently, its
//! link to the target still up) stops its load by itself, and once the link is back its kept intervals arrive,
//! none twice, and the report states the gap.

mod support;

#[path = "support/netns.rs"]
mod netns;

use loadgrade_common::grade::Verdict;
use loadgrade_common::report::{FindingKind, Report};
use loadgrade_coordinator::server::ServerSecurity;
use loadgrade_coordinator::server::auth::Tokens;
use loadgrade_coordinator::server::tls::ServerTls;
use loadgrade_coordinator::store::Store;
use loadgrade_coordinator::{Coordinator, spawn_secure_server};
use netns::{Lab, Net};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

const TESTBED_HOST: u8 = 10;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgrade-network-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A CA, the coordinator's certificate for `coordinator_ip` and one per agent, by `loadgrade certs`.
fn certs(dir: &Path, coordinator_ip: &str, agents: &[String]) {
    let mut args = vec![
        "certs".to_owned(),
        "--out".to_owned(),
        dir.display().to_string(),
        "--coordinator-name".to_owned(),
        coordinator_ip.to_owned(),
    ];
    for a in agents {
        args.extend(["--agent".to_owned(), a.clone()]);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args(&args)
        .output()
        .expect("loadgrade certs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The testbed as a process in namespace `ns`, listening on `ip`; returns it and its address.
async fn testbed_in(ns: &str, ip: &str) -> (Child, String) {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            env!("CARGO_BIN_EXE_loadgrade"),
            "testbed-process",
            "--listen",
        ])
        .arg(format!("{ip}:0"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("testbed process");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("the testbed says where it listens")
    .expect("read")
    .expect("a line");
    let addr = line
        .rsplit("http://")
        .next()
        .expect("an address")
        .trim()
        .to_owned();
    (child, addr)
}

/// An agent process named `name` in namespace `ns`, over mutual TLS, allowed to load `target_ip` only.
fn agent_in(
    ns: &str,
    name: &str,
    coordinator: &str,
    pki: &Path,
    target_ip: &str,
    home: &Path,
) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(support::agent_binary())
        .args([
            "--coordinator",
            coordinator,
            "--name",
            name,
            "--allow",
            &format!("{target_ip}/32"),
        ])
        .arg("--tls-cert")
        .arg(pki.join(format!("agent-{name}.pem")))
        .arg("--tls-key")
        .arg(pki.join(format!("agent-{name}.key")))
        .arg("--tls-ca")
        .arg(pki.join("ca.pem"))
        .env("HOME", home.join(name))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("agent process")
}

/// The testbed's counted requests by source address (`GET /_testbed/sources`).
async fn sources(testbed: &str) -> BTreeMap<String, u64> {
    let mut stream = tokio::net::TcpStream::connect(testbed)
        .await
        .expect("reach the testbed");
    stream
        .write_all(
            format!(
                "GET /_testbed/sources HTTP/1.1\r\nHost: {testbed}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    let body = response.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("sources JSON")
}

struct Setup {
    lab: Lab,
    coordinator: Arc<Coordinator>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    testbed: Child,
    testbed_addr: String,
    agents: Vec<Child>,
    dir: PathBuf,
}

/// A lab with the coordinator in this process (host 1), the testbed on host 10 and `n` agents `box-1`.. on hosts
/// 11.., all connected over mutual TLS.
async fn setup(index: u8, n: u8) -> Option<Setup> {
    let mut lab = Lab::new(index)?;
    lab.join_root().expect("root joins the lab");
    let tb_ns = lab.host(TESTBED_HOST, &[Net::Data]).expect("testbed host");
    let names: Vec<String> = (1..=n).map(|i| format!("box-{i}")).collect();
    let dir = temp_dir(&format!("lab{index}"));
    let control_ip = lab.address(Net::Control, 1);
    certs(&dir, &control_ip, &names);
    let tls = ServerTls::read(
        &dir.join("coordinator.pem"),
        &dir.join("coordinator.key"),
        &dir.join("ca.pem"),
        false,
    )
    .expect("TLS files");
    let coordinator = Coordinator::new(Store::in_memory().await.expect("store"));
    let shutdown = CancellationToken::new();
    let listen = format!("{control_ip}:0").parse().expect("address");
    let security = ServerSecurity {
        tls: Some(tls),
        tokens: Tokens::parse("submit a-submit-token-for-the-lab\n").expect("tokens"),
    };
    let (addr, server) =
        spawn_secure_server(coordinator.clone(), listen, security, shutdown.clone())
            .await
            .expect("coordinator listens on the control network");
    let url = format!("https://{addr}");
    let target_ip = lab.address(Net::Data, TESTBED_HOST);
    let (testbed, testbed_addr) = testbed_in(&tb_ns, &target_ip).await;
    let mut agents = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let ns = lab
            .host(11 + i as u8, &[Net::Control, Net::Data])
            .expect("agent host");
        agents.push(agent_in(&ns, name, &url, &dir, &target_ip, &dir));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while coordinator.registry.agents().len() < usize::from(n) {
        assert!(
            Instant::now() < deadline,
            "agents connect over mutual TLS in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(Setup {
        lab,
        coordinator,
        shutdown,
        server,
        testbed,
        testbed_addr,
        agents,
        dir,
    })
}

impl Setup {
    fn agent_ip(&self, agent: &str) -> String {
        let i: u8 = agent.trim_start_matches("box-").parse().expect("box-N");
        self.lab.address(Net::Data, 10 + i)
    }

    async fn teardown(mut self) {
        for agent in &mut self.agents {
            let _ = agent.kill().await;
        }
        drop(self.testbed.stdin.take());
        let _ = self.testbed.kill().await;
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        let _ = std::fs::remove_dir_all(&self.dir);
        drop(self.lab);
    }
}

async fn finish(started: loadgrade_coordinator::StartedRun) -> (Report, String) {
    let finished = tokio::time::timeout(Duration::from_secs(120), started.finished)
        .await
        .expect("the run ends in time")
        .expect("run task")
        .expect("run");
    (finished.report, finished.json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_on_three_hosts_over_mutual_tls_account_for_every_request_by_source() {
    let Some(setup) = setup(0, 3).await else {
        return;
    };
    let plan = format!(
        "name = \"three-hosts\"\nmin_agents = 3\n[[scenario]]\nname = \"items\"\nkind = \"http\"\n\
         url = \"http://{}/api/items?limit=5\"\nconnections = 6\nrequests = 3000\n",
        setup.testbed_addr
    );
    let started = setup
        .coordinator
        .start_run("hosts.toml", &plan)
        .await
        .expect("plan");
    let (report, json) = finish(started).await;
    support::assert_schema_valid(&json);
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.findings);
    let by_source = sources(&setup.testbed_addr).await;
    assert_eq!(report.agents.len(), 3);
    for agent in &report.agents {
        let ip = setup.agent_ip(&agent.name);
        assert!(agent.requests > 0, "{} took part", agent.name);
        assert_eq!(
            by_source.get(&ip).copied().unwrap_or(0),
            agent.requests,
            "the target's count from {ip} equals what {} reported ({by_source:?})",
            agent.name
        );
    }
    assert_eq!(by_source.values().sum::<u64>(), 3000, "{by_source:?}");
    setup.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cut_off_from_its_coordinator_stops_its_load_and_its_kept_intervals_arrive_later()
{
    let Some(setup) = setup(1, 2).await else {
        return;
    };
    let orphan = Duration::from_secs(2);
    let plan = format!(
        "name = \"partition\"\nmin_agents = 2\norphan_timeout = \"2s\"\n[[scenario]]\nname = \"delay\"\n\
         kind = \"http\"\nurl = \"http://{}/delay?ms=5\"\nconnections = 2\nduration = \"16s\"\n",
        setup.testbed_addr
    );
    let started = setup
        .coordinator
        .start_run("partition.toml", &plan)
        .await
        .expect("plan");
    let victim_ip = setup.agent_ip("box-1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while sources(&setup.testbed_addr)
        .await
        .get(&victim_ip)
        .copied()
        .unwrap_or(0)
        == 0
    {
        assert!(Instant::now() < deadline, "box-1's load reaches the target");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Cut box-1 from the coordinator only: it can still reach the target.
    setup.lab.set_link(Net::Control, 11, false).expect("cut");
    let cut_at = Instant::now();
    let mut last = sources(&setup.testbed_addr)
        .await
        .get(&victim_ip)
        .copied()
        .unwrap_or(0);
    let mut last_change = cut_at;
    while cut_at.elapsed() < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sources(&setup.testbed_addr)
            .await
            .get(&victim_ip)
            .copied()
            .unwrap_or(0);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
    let went_on = last_change.duration_since(cut_at);
    assert!(
        went_on <= orphan + Duration::from_millis(1500),
        "box-1's load went on {went_on:?} after it was cut off (orphan_timeout {orphan:?})"
    );
    setup.lab.set_link(Net::Control, 11, true).expect("restore");

    let (report, json) = finish(started).await;
    support::assert_schema_valid(&json);
    assert_eq!(report.verdict, Verdict::Degraded, "{:?}", report.findings);
    let lost = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::AgentLost)
        .expect("box-1 is reported lost");
    assert!(
        lost.message.contains("box-1") && lost.message.contains("cover the first"),
        "{}",
        lost.message
    );
    assert!(
        lost.message.contains("arrived after it was taken as lost"),
        "the intervals it kept during the cut arrived later: {}",
        lost.message
    );
    let by_source = sources(&setup.testbed_addr).await;
    for agent in &report.agents {
        assert_eq!(
            by_source
                .get(&setup.agent_ip(&agent.name))
                .copied()
                .unwrap_or(0),
            agent.requests,
            "every request of {} is in the report once ({by_source:?})",
            agent.name
        );
    }
    let m = support::http_metrics(&report, "delay");
    assert_eq!(m.requests, by_source.values().sum::<u64>());
    setup.teardown().await;
}
