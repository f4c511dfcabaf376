//! An agent refused at the TLS level (issue 20: it retried forever with "transport error" where the README says
//! it exits 1): after a few identical refusals in a row it stops dialing and says why.

use loadgrade_agent::identity::AgentTls;
use loadgrade_agent::{AgentConfig, AgentError, MAX_TLS_REFUSALS};
use loadgrade_coordinator::server::ServerSecurity;
use loadgrade_coordinator::server::tls::ServerTls;
use loadgrade_coordinator::store::Store;
use loadgrade_coordinator::{Coordinator, spawn_secure_server};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn pki(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("loadgrade-agent-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args([
            "certs",
            "--out",
            &dir.display().to_string(),
            "--agent",
            "box-1",
        ])
        .output()
        .expect("loadgrade certs runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The agent with `cert`/`key` trusting `ca`, against the coordinator at `url`: how it ended, and when.
async fn agent_against(
    url: &str,
    cert: &Path,
    key: &Path,
    ca: &Path,
) -> (Result<(), AgentError>, Duration) {
    let mut config = AgentConfig::new(url.to_owned(), "box-1".to_owned());
    config.tls = Some(AgentTls::read(cert, key, ca, false).expect("agent TLS files"));
    config.reconnect = true;
    let began = Instant::now();
    let ended = tokio::time::timeout(
        Duration::from_secs(60),
        loadgrade_agent::run(config, CancellationToken::new()),
    )
    .await
    .expect("the agent gives up by itself");
    (ended, began.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_refused_at_the_tls_level_stops_dialing_and_says_why() {
    let (ours, theirs) = (pki("ours"), pki("theirs"));
    let tls = ServerTls::read(
        &ours.join("coordinator.pem"),
        &ours.join("coordinator.key"),
        &ours.join("ca.pem"),
        false,
    )
    .expect("coordinator TLS files");
    let shutdown = CancellationToken::new();
    let (addr, _server) = spawn_secure_server(
        Coordinator::new(Store::in_memory().await.expect("store")),
        ([127, 0, 0, 1], 0).into(),
        ServerSecurity {
            tls: Some(tls),
            tokens: Default::default(),
        },
        shutdown.clone(),
    )
    .await
    .expect("server");
    let url = format!("https://localhost:{}", addr.port());

    // This agent trusts another CA: the coordinator's certificate is not one it knows.
    let (ended, took) = agent_against(
        &url,
        &theirs.join("agent-box-1.pem"),
        &theirs.join("agent-box-1.key"),
        &theirs.join("ca.pem"),
    )
    .await;
    match ended {
        Err(AgentError::TlsRefused { times, why, .. }) => {
            assert_eq!(times, MAX_TLS_REFUSALS);
            assert!(why.to_lowercase().contains("certificate"), "{why}");
        }
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
    assert!(took < Duration::from_secs(30), "gave up after {took:?}");

    // This one trusts the coordinator but presents a certificate of another CA: the coordinator refuses it.
    let (ended, _) = agent_against(
        &url,
        &theirs.join("agent-box-1.pem"),
        &theirs.join("agent-box-1.key"),
        &ours.join("ca.pem"),
    )
    .await;
    assert!(
        matches!(ended, Err(AgentError::TlsRefused { .. })),
        "expected a TLS refusal, got {ended:?}"
    );
    shutdown.cancel();
    let _ = std::fs::remove_dir_all(&ours);
    let _ = std::fs::remove_dir_all(&theirs);
}
