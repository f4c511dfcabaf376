//! Waiting for the signals that end a process politely: Ctrl-C (SIGINT) and SIGTERM (systemd, container runtimes,
//! `kill`). The agent and the `loadgrade` command line both wait through this.

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn terminated() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
