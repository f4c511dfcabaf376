//! What an operator reads, from the real binaries: a coordinator certificate made for another name is said in words
//! (which names it holds, what to do), once, with no Rust debug notation, by `loadgrade` and by the agent; the
//! duplicate-name refusal gives its advice once; `serve` says when agents connect and leave and when a SIGTERM stops
//! it.

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("loadgrade-messages-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `loadgrade serve` with `extra` flags, its log (stderr) in `log`, once it says it listens.
fn serve(dir: &Path, port: u16, extra: &[String], log: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
        ])
        .arg(format!("sqlite://{}", dir.join("store.db").display()))
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("serve starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("serve says where it listens");
    assert!(first.contains("listening"), "{first}");
    child
}

fn agent(url: &str, name: &str, extra: &[String], log: &Path) -> Child {
    Command::new(support::agent_binary())
        .args(["--coordinator", url, "--name", name, "--allow-loopback"])
        .args(extra)
        .env_remove("RUST_LOG")
        .env("HOME", log.parent().expect("a folder"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("agent starts")
}

/// Waits until `log` holds `text`.
fn wait_for(log: &Path, text: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let read = std::fs::read_to_string(log).unwrap_or_default();
        if read.contains(text) {
            return read;
        }
        assert!(
            Instant::now() < deadline,
            "{text:?} never came; the log:\n{read}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_certificate_for_another_name_is_said_in_words_once() {
    let dir = temp_dir("cert");
    let pki = dir.join("pki");
    let made = Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args([
            "certs",
            "--quiet",
            "--agent",
            "box-1",
            "--coordinator-name",
            "coord.example",
            "--out",
        ])
        .arg(&pki)
        .output()
        .expect("certs runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = support::free_port();
    let tls: Vec<String> = [
        ("--tls-cert", "coordinator.pem"),
        ("--tls-key", "coordinator.key"),
        ("--tls-ca", "ca.pem"),
    ]
    .iter()
    .flat_map(|(flag, file)| [(*flag).to_owned(), pki.join(file).display().to_string()])
    .collect();
    let mut coordinator = serve(&dir, port, &tls, &dir.join("serve.log"));
    let url = format!("https://127.0.0.1:{port}");

    let listed = Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args(["runs", "--coordinator", &url, "--tls-ca"])
        .arg(pki.join("ca.pem"))
        .output()
        .expect("runs runs");
    let said = String::from_utf8_lossy(&listed.stderr).into_owned();
    assert!(!listed.status.success());
    assert!(
        said.contains("the coordinator's certificate is for coord.example, not for \"127.0.0.1\"")
            && said.contains("--coordinator-name 127.0.0.1"),
        "{said}"
    );
    assert!(!said.contains("DnsName"), "no Rust debug notation: {said}");
    assert_eq!(
        said.matches("certificate is for").count(),
        1,
        "said once: {said}"
    );

    let agent_log = dir.join("agent.log");
    let agent_tls: Vec<String> = [
        ("--tls-cert", "agent-box-1.pem"),
        ("--tls-key", "agent-box-1.key"),
        ("--tls-ca", "ca.pem"),
    ]
    .iter()
    .flat_map(|(flag, file)| [(*flag).to_owned(), pki.join(file).display().to_string()])
    .collect();
    let mut box1 = agent(&url, "box-1", &agent_tls, &agent_log);
    let log = wait_for(
        &agent_log,
        "certificate is for coord.example",
        Duration::from_secs(20),
    );
    assert!(!log.contains("DnsName"), "no Rust debug notation: {log}");
    for child in [&mut box1, &mut coordinator] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_says_who_connects_and_when_it_stops_and_a_taken_name_is_advised_once() {
    let dir = temp_dir("serve");
    let port = support::free_port();
    let serve_log = dir.join("serve.log");
    let mut coordinator = serve(&dir, port, &[], &serve_log);
    let url = format!("http://127.0.0.1:{port}");
    std::fs::create_dir_all(dir.join("a")).expect("folder");
    std::fs::create_dir_all(dir.join("b")).expect("folder");
    let mut first = agent(&url, "twin", &[], &dir.join("a").join("agent.log"));
    wait_for(&serve_log, "agent connected", Duration::from_secs(20));

    let second_log = dir.join("b").join("agent.log");
    let mut second = agent(&url, "twin", &[], &second_log);
    let log = wait_for(&second_log, "connected already", Duration::from_secs(20));
    for line in log.lines().filter(|l| l.contains("connected already")) {
        assert_eq!(
            line.matches("its own --name").count(),
            1,
            "the advice once a line: {line}"
        );
    }
    for child in [&mut second, &mut first] {
        let _ = child.kill();
        let _ = child.wait();
    }
    wait_for(&serve_log, "agent disconnected", Duration::from_secs(20));

    let term = Command::new("kill")
        .args(["-TERM", &coordinator.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while coordinator.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(&serve_log).expect("serve log");
    assert!(
        log.contains("loadgrade serve: stopping (ctrl-c or SIGTERM)")
            && log.contains("loadgrade serve: stopped"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
