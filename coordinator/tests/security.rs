//! Trust on a network: agents prove their name with a certificate from the coordinator's CA, callers of the run
//! service present a token with the right role, intervals from anyone but the run's own agents change nothing, and
//! a plan's secret headers stay out of the store and away from agents outside the run. Certificates are made by
//! `loadgrade certs`, so the command is exercised too.

mod support;

use loadgrade_agent::identity::AgentTls;
use loadgrade_agent::{AgentConfig, Allowlist};
use loadgrade_common::histogram::{encode, new_histogram};
use loadgrade_common::interval::{Counters, IntervalReport};
use loadgrade_common::protocol::{FromAgent, Hello};
use loadgrade_common::report::FindingKind;
use loadgrade_common::shard::PartId;
use loadgrade_coordinator::server::ServerSecurity;
use loadgrade_coordinator::server::auth::Tokens;
use loadgrade_coordinator::server::tls::ServerTls;
use loadgrade_coordinator::store::Store;
use loadgrade_coordinator::{Coordinator, spawn_secure_server, spawn_server};
use loadgrade_proto::v1;
use loadgrade_proto::v1::agent_service_client::AgentServiceClient;
use loadgrade_proto::v1::run_service_client::RunServiceClient;
use loadgrade_testbed::{Testbed, TestbedConfig};
use prost::Message as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const SUBMIT_TOKEN: &str = "submit-token-for-the-security-test";
const READ_TOKEN: &str = "read-token-for-the-security-test";
const SECRET: &str = "Bearer s3cret-value-that-must-stay-put";

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("loadgrade-security-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `loadgrade certs --out DIR --agent NAME...`
fn certs(dir: &Path, agents: &[&str]) {
    let mut args = vec![
        "certs".to_owned(),
        "--out".to_owned(),
        dir.display().to_string(),
    ];
    for a in agents {
        args.extend(["--agent".to_owned(), (*a).to_owned()]);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args(&args)
        .output()
        .expect("loadgrade certs runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Secure {
    coordinator: Arc<Coordinator>,
    url: String,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

async fn secure_coordinator(pki: &Path, store: Store) -> Secure {
    let tls = ServerTls::read(
        &pki.join("coordinator.pem"),
        &pki.join("coordinator.key"),
        &pki.join("ca.pem"),
        false,
    )
    .expect("coordinator TLS files");
    let tokens =
        Tokens::parse(&format!("submit {SUBMIT_TOKEN}\nread {READ_TOKEN}\n")).expect("tokens");
    let coordinator = Coordinator::new(store);
    let shutdown = CancellationToken::new();
    let (addr, server) = spawn_secure_server(
        coordinator.clone(),
        ([127, 0, 0, 1], 0).into(),
        ServerSecurity {
            tls: Some(tls),
            tokens,
        },
        shutdown.clone(),
    )
    .await
    .expect("server");
    Secure {
        coordinator,
        url: format!("https://127.0.0.1:{}", addr.port()),
        shutdown,
        server,
    }
}

impl Secure {
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
    }
}

/// A TLS channel to `url` trusting `ca`, presenting `identity` (cert, key) if given.
async fn channel(
    url: &str,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca).expect("ca")));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(cert).expect("cert"),
            std::fs::read(key).expect("key"),
        ));
    }
    Endpoint::from_shared(url.to_owned())
        .expect("url")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

fn hello(name: &str, probe_only: bool) -> v1::AgentMessage {
    v1::AgentMessage::from(FromAgent::Hello(Hello {
        name: name.to_owned(),
        version: "test".to_owned(),
        cores: 1,
        epoch: 7,
        protocol: loadgrade_proto::PROTOCOL_VERSION,
        probe_only,
        labels: Default::default(),
    }))
}

/// A hand-made agent session: sends `hello`, then whatever is put into the returned sender; its inbound stream
/// is the coordinator's answer (or the refusal).
async fn raw_session(
    channel: Channel,
    name: &str,
    probe_only: bool,
) -> (
    mpsc::Sender<v1::AgentMessage>,
    Result<tonic::Streaming<v1::CoordinatorMessage>, tonic::Status>,
) {
    let (tx, rx) = mpsc::channel(64);
    tx.send(hello(name, probe_only)).await.expect("queue hello");
    let result = AgentServiceClient::new(channel)
        .session(ReceiverStream::new(rx))
        .await
        .map(tonic::Response::into_inner);
    (tx, result)
}

/// The first message of an accepted session, or the status it was refused with.
async fn session_outcome(channel: Channel, name: &str) -> Result<(), tonic::Status> {
    let (_tx, result) = raw_session(channel, name, false).await;
    let mut inbound = result?;
    match tokio::time::timeout(Duration::from_secs(5), inbound.message()).await {
        Ok(Ok(Some(_welcome))) => Ok(()),
        Ok(Ok(None)) => Err(tonic::Status::unavailable("closed")),
        Ok(Err(status)) => Err(status),
        Err(_) => Err(tonic::Status::deadline_exceeded("no answer")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_registers_only_under_a_name_its_certificate_is_for() {
    let pki = temp_dir("pki-agents");
    certs(&pki, &["box-1", "box-2"]);
    let other = temp_dir("pki-other");
    certs(&other, &["box-1"]);
    let secure = secure_coordinator(&pki, Store::in_memory().await.expect("store")).await;
    let ca = pki.join("ca.pem");
    let box1 = (pki.join("agent-box-1.pem"), pki.join("agent-box-1.key"));

    // No client certificate: the TLS layer lets it in (callers of the run service need none), the agent service
    // does not.
    let plain = channel(&secure.url, &ca, None)
        .await
        .expect("TLS without a client certificate");
    let refused = session_outcome(plain, "box-1")
        .await
        .expect_err("no certificate");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    // box-1's certificate claiming box-2; or box-1 spelled another way (a certificate's names ignore case and a
    // trailing dot, so those spellings would be one identity registered many times): refused by name.
    for (name, code) in [
        ("box-2", tonic::Code::PermissionDenied),
        ("BOX-2", tonic::Code::InvalidArgument),
        ("BOX-1", tonic::Code::InvalidArgument),
        ("Box-1", tonic::Code::InvalidArgument),
        ("box-1.", tonic::Code::InvalidArgument),
    ] {
        let ch = channel(&secure.url, &ca, Some((&box1.0, &box1.1)))
            .await
            .expect("TLS");
        let refused = session_outcome(ch, name).await.expect_err("not its name");
        assert_eq!(refused.code(), code, "{name}: {refused:?}");
    }

    // A certificate from another CA: the handshake itself fails, or the first call does.
    let foreign = (other.join("agent-box-1.pem"), other.join("agent-box-1.key"));
    match channel(&secure.url, &ca, Some((&foreign.0, &foreign.1))).await {
        Err(_) => {}
        Ok(ch) => {
            let refused = session_outcome(ch, "box-1").await.expect_err("foreign CA");
            assert_ne!(refused.code(), tonic::Code::Ok);
        }
    }
    // The coordinator's own certificate is for servers, not clients.
    let server_cert = (pki.join("coordinator.pem"), pki.join("coordinator.key"));
    if let Ok(ch) = channel(&secure.url, &ca, Some((&server_cert.0, &server_cert.1))).await {
        session_outcome(ch, "localhost")
            .await
            .expect_err("a server certificate is no agent's");
    }
    assert!(
        secure.coordinator.registry.agents().is_empty(),
        "nobody got in"
    );

    // box-1 as box-1 gets in.
    let ch = channel(&secure.url, &ca, Some((&box1.0, &box1.1)))
        .await
        .expect("TLS");
    session_outcome(ch, "box-1")
        .await
        .expect("box-1 registers as itself");
    secure.stop().await;
    let _ = std::fs::remove_dir_all(&pki);
    let _ = std::fs::remove_dir_all(&other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_service_wants_a_token_with_the_right_role_and_health_wants_none() {
    let pki = temp_dir("pki-tokens");
    certs(&pki, &["box-1"]);
    let db = pki.join("store.db");
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .expect("store");
    let secure = secure_coordinator(&pki, store).await;
    let ca = pki.join("ca.pem");
    let ch = channel(&secure.url, &ca, None).await.expect("TLS");

    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers without a token")
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let with = |token: Option<&str>| {
        let value = token.map(|t| {
            t.parse::<tonic::metadata::MetadataValue<_>>()
                .expect("ascii")
        });
        RunServiceClient::with_interceptor(ch.clone(), move |mut r: tonic::Request<()>| {
            if let Some(v) = &value {
                r.metadata_mut().insert("authorization", v.clone());
            }
            Ok(r)
        })
    };
    let list = v1::ListRunsRequest { limit: 5 };
    for (token, code) in [
        (None, tonic::Code::Unauthenticated),
        (
            Some("Bearer wrong-token-wrong-token"),
            tonic::Code::Unauthenticated,
        ),
        (Some(READ_TOKEN), tonic::Code::Unauthenticated), // no "Bearer "
    ] {
        let e = with(token).list_runs(list).await.expect_err("refused");
        assert_eq!(e.code(), code, "{token:?}: {e:?}");
    }
    let read = format!("Bearer {READ_TOKEN}");
    with(Some(&read))
        .list_runs(list)
        .await
        .expect("read may list");

    let testbed = Testbed::start(TestbedConfig::plain(([127, 0, 0, 1], 0).into()))
        .await
        .expect("testbed");
    let plan = format!(
        "name = \"over-mtls\"\nready_timeout = \"20s\"\n[[scenario]]\nname = \"items\"\nkind = \"http\"\n\
         url = \"{}\"\nconnections = 2\nrequests = 300\nheaders = {{ authorization = \"{SECRET}\" }}\n",
        testbed.url("/api/items?limit=3")
    );
    let start = v1::StartRunRequest {
        plan_toml: plan.clone(),
        plan_file: "mtls.toml".to_owned(),
        idempotency_key: String::new(),
    };
    let e = with(Some(&read))
        .start_run(start.clone())
        .await
        .expect_err("read may not submit");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let e = with(Some(&read))
        .cancel_run(v1::CancelRunRequest { run_id: "x".into() })
        .await
        .expect_err("read may not cancel");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    // A real agent over mutual TLS runs it.
    let mut config = AgentConfig::new(secure.url.clone(), "box-1");
    config.allowlist = Allowlist::loopback();
    config.tls = Some(
        AgentTls::read(
            &pki.join("agent-box-1.pem"),
            &pki.join("agent-box-1.key"),
            &ca,
            false,
        )
        .expect("agent TLS files"),
    );
    let agent_stop = CancellationToken::new();
    let agent = tokio::spawn(loadgrade_agent::run(config, agent_stop.clone()));
    let submit = format!("Bearer {SUBMIT_TOKEN}");
    let run_id = with(Some(&submit))
        .start_run(start)
        .await
        .expect("submit may start")
        .into_inner()
        .run_id;
    let mut events = with(Some(&read))
        .watch_run(v1::WatchRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .expect("read may watch")
        .into_inner();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .expect("the run ends in time")
    {
        if event.expect("event").state == v1::RunState::Finished as i32 {
            break;
        }
    }
    let report = with(Some(&read))
        .get_report(v1::GetReportRequest { run_id })
        .await
        .expect("read may fetch the report")
        .into_inner();
    let parsed: loadgrade_common::report::Report =
        serde_json::from_str(&report.report_json).expect("report");
    let m = support::http_metrics(&parsed, "items");
    assert_eq!(m.requests, 300);
    assert_eq!(
        testbed.requests(),
        300,
        "the target saw what the report says"
    );
    assert!(!report.report_json.contains("s3cret") && !report.report_md.contains("s3cret"));

    agent_stop.cancel();
    let _ = agent.await;
    secure.stop().await;
    testbed.shutdown().await;
    // Nothing of the secret in the store's files: the write-ahead log first (it may be checkpointed into the
    // database and removed as the store closes), then the database.
    let mut read = 0;
    for name in ["store.db-wal", "store.db-shm", "store.db"] {
        match std::fs::read(pki.join(name)) {
            Ok(bytes) => {
                read += 1;
                assert!(
                    !bytes.windows(6).any(|w| w == b"s3cret"),
                    "the secret header is in {name}"
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != "store.db" => {}
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert!(read >= 1);
    let _ = std::fs::remove_dir_all(&pki);
}

/// A coordinator without TLS or tokens on loopback (as `run` starts one).
struct Plain {
    coordinator: Arc<Coordinator>,
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

/// The testbed and a [`Plain`] coordinator.
async fn plain_setup() -> (Testbed, Plain) {
    let testbed = Testbed::start(TestbedConfig::plain(([127, 0, 0, 1], 0).into()))
        .await
        .expect("testbed");
    let coordinator = Coordinator::new(Store::in_memory().await.expect("store"));
    let shutdown = CancellationToken::new();
    let (addr, server) = spawn_server(
        coordinator.clone(),
        ([127, 0, 0, 1], 0).into(),
        shutdown.clone(),
    )
    .await
    .expect("server");
    let plain = Plain {
        coordinator,
        addr,
        shutdown,
        server,
    };
    (testbed, plain)
}

/// An interval as a forger would send it: huge counters, a histogram that agrees with them.
fn forged(run_id: &str, claimed_agent: &str, seq: u64) -> v1::AgentMessage {
    let mut h = new_histogram();
    h.record_n(1_000, 1_000_000).expect("record");
    v1::AgentMessage::from(FromAgent::Interval(Box::new(IntervalReport {
        run_id: run_id.to_owned(),
        agent: claimed_agent.to_owned(),
        epoch: 7,
        seq,
        part: PartId {
            scenario: "items".to_owned(),
            stage: 0,
        },
        start_unix_ms: loadgrade_common::clock::unix_ms(),
        duration_ms: 1000,
        hdr_corrected: encode(&h).expect("encode"),
        counters: Counters {
            requests: 1_000_000,
            ok: 1_000_000,
            ..Counters::default()
        },
        ..IntervalReport::default()
    })))
}

/// An agent outside the run (a probe agent, never reserved for load) sends intervals into it under the real
/// agent's name and watches everything the coordinator sends it: the report equals the target's count, and
/// neither an assignment nor the plan's secret header ever reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_outside_the_run_can_neither_forge_its_figures_nor_see_its_secrets() {
    let (testbed, plain) = plain_setup().await;
    let Plain {
        coordinator,
        addr,
        shutdown,
        server,
    } = plain;
    let url = format!("http://{addr}");
    let mut config = AgentConfig::new(url.clone(), "real");
    config.allowlist = Allowlist::loopback();
    let agent_stop = CancellationToken::new();
    let agent = tokio::spawn(loadgrade_agent::run(config, agent_stop.clone()));
    let ch = Endpoint::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let (intruder, inbound) = raw_session(ch, "intruder", true).await;
    let mut inbound = inbound.expect("the intruder registers (as a probe agent)");
    // Everything the coordinator sends the intruder, as bytes.
    let seen = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Ok(Some(m)) = inbound.message().await {
            all.push(m.encode_to_vec());
        }
        all
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while coordinator.registry.agents().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "agents connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let plan = format!(
        "name = \"forgery\"\n[[scenario]]\nname = \"items\"\nkind = \"http\"\nurl = \"{}\"\nconnections = 2\n\
         duration = \"2s\"\nheaders = {{ authorization = \"{SECRET}\" }}\n",
        testbed.url("/api/items?limit=3")
    );
    let started = coordinator
        .start_run("forgery.toml", &plan)
        .await
        .expect("plan accepted");
    for seq in 0..20 {
        let _ = intruder.send(forged(&started.id, "real", seq)).await;
        let _ = intruder
            .send(forged(&started.id, "intruder", 100 + seq))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let finished = tokio::time::timeout(Duration::from_secs(60), started.finished)
        .await
        .expect("run ends")
        .expect("task")
        .expect("run");
    let m = support::http_metrics(&finished.report, "items");
    assert!(m.requests > 0);
    assert_eq!(
        m.requests,
        testbed.requests(),
        "the report counts what the target served, nothing forged"
    );
    assert!(
        finished.report.agents.iter().all(|a| a.name == "real"),
        "{:?}",
        finished.report.agents
    );

    drop(intruder);
    agent_stop.cancel();
    let _ = agent.await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let seen = seen.await.expect("recorder");
    for bytes in &seen {
        let message = v1::CoordinatorMessage::decode(bytes.as_slice()).expect("decodes");
        assert!(
            !matches!(message.kind, Some(v1::coordinator_message::Kind::Assign(_))),
            "an assignment reached an agent outside the run"
        );
        assert!(
            !bytes.windows(6).any(|w| w == b"s3cret"),
            "the secret reached an agent outside the run"
        );
    }
    testbed.shutdown().await;
}

/// An agent in the run that floods it: hundreds of intervals for a two-second shard (each one plausible on its
/// own), and hundreds refused at intake. Its figures cannot claim more time than has passed, and the report lists
/// a bounded number of findings (the rest counted), so neither the figures nor the report grow with the flood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_in_the_run_cannot_inflate_its_figures_or_the_report() {
    use loadgrade_common::protocol::{ShardDone, ShardOutcome, ToAgent};
    let (testbed, plain) = plain_setup().await;
    let Plain {
        coordinator,
        addr,
        shutdown,
        server,
    } = plain;
    let ch = Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let (rogue, inbound) = raw_session(ch, "rogue", false).await;
    let mut inbound = inbound.expect("the rogue registers as a load agent");
    let plan = format!(
        "name = \"flood\"\n[[scenario]]\nname = \"items\"\nkind = \"http\"\nurl = \"{}\"\nconnections = 1\n\
         duration = \"2s\"\n",
        testbed.url("/api/items?limit=3")
    );
    let started = coordinator
        .start_run("flood.toml", &plan)
        .await
        .expect("plan accepted");
    let assignment = loop {
        let message = tokio::time::timeout(Duration::from_secs(20), inbound.message())
            .await
            .expect("an assignment in time")
            .expect("stream")
            .expect("a message");
        match ToAgent::try_from(message) {
            Ok(ToAgent::Assign(a)) => break a,
            // The run's preflight asks first: this rogue answers that all is well (it cannot vouch for more).
            Ok(ToAgent::Preflight(p)) => {
                let _ = rogue
                    .send(v1::AgentMessage::from(FromAgent::PreflightReply(
                        loadgrade_common::protocol::PreflightReply {
                            request_id: p.request_id,
                            rows: Vec::new(),
                        },
                    )))
                    .await;
            }
            _ => {}
        }
    };
    let mut h = new_histogram();
    h.record_n(1_000, 1_000).expect("record");
    let hdr = encode(&h).expect("encode");
    for seq in 0..600u64 {
        let mut report = IntervalReport {
            run_id: started.id.clone(),
            agent: "rogue".to_owned(),
            epoch: 7,
            seq,
            part: assignment.part.clone(),
            start_unix_ms: assignment.start_at_unix_ms,
            duration_ms: 1000,
            hdr_corrected: hdr.clone(),
            counters: Counters {
                requests: 1_000,
                ok: 1_000,
                ..Counters::default()
            },
            ..IntervalReport::default()
        };
        if seq % 2 == 1 {
            report.counters.requests = u64::MAX; // refused at intake
        }
        let _ = rogue
            .send(v1::AgentMessage::from(FromAgent::Interval(Box::new(
                report,
            ))))
            .await;
    }
    let _ = rogue
        .send(v1::AgentMessage::from(FromAgent::ShardDone(ShardDone {
            run_id: started.id.clone(),
            part: assignment.part.clone(),
            intervals: 600,
            outcome: ShardOutcome::Completed,
        })))
        .await;
    let finished = tokio::time::timeout(Duration::from_secs(60), started.finished)
        .await
        .expect("run ends")
        .expect("task")
        .expect("run");
    let rogue_figures = finished
        .report
        .agents
        .iter()
        .find(|a| a.name == "rogue")
        .expect("the rogue is in the report");
    assert!(
        rogue_figures.requests <= 20_000,
        "300 accepted-looking intervals of 1000 requests in ~3 s: {} counted",
        rogue_figures.requests
    );
    let bad = finished
        .report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::BadInterval)
        .count();
    assert!(
        (2..=21).contains(&bad),
        "{bad} bad-interval findings listed"
    );
    assert!(
        finished.json.len() < 200_000,
        "the report is {} bytes",
        finished.json.len()
    );
    assert_ne!(
        finished.report.verdict,
        loadgrade_common::grade::Verdict::Pass
    );
    drop(rogue);
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    testbed.shutdown().await;
}
