//! The listener's accept loop, on a thread of its own: every connection is accepted and admitted (or closed) there,
//! whatever the server's runtime is busy with, so a flood that outpaces a busy server does not fill the kernel's
//! accept queue and drop the SYN of a health check. Admitted connections are handed to the server through a bounded
//! queue; when it is full, a new connection is closed like one over a cap.

use super::connections::{Admission, Gate, GuardedConn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Pause after an accept error that is not about one connection (EMFILE, ENFILE, ENOBUFS).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Admitted connections waiting for the server to take them.
const HANDED_OVER: usize = 1024;

/// Accepted connections, admitted by the gate: a stream for `serve_with_incoming`. Dropping it stops the accept
/// loop and closes the listening socket.
pub struct Incoming {
    admitted: mpsc::Receiver<(std::net::TcpStream, Admission)>,
    gate: Gate,
    stop: CancellationToken,
}

impl Incoming {
    /// Moves `listener` to an accept thread of its own.
    pub fn new(listener: TcpListener, gate: Gate) -> io::Result<Self> {
        let listener = listener.into_std()?;
        let (tx, admitted) = mpsc::channel(HANDED_OVER);
        let stop = CancellationToken::new();
        let (thread_gate, thread_stop) = (gate.clone(), stop.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("loadgrade-accept".to_owned())
            .spawn(move || runtime.block_on(accept_loop(listener, thread_gate, tx, thread_stop)))?;
        Ok(Incoming {
            admitted,
            gate,
            stop,
        })
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl tokio_stream::Stream for Incoming {
    type Item = io::Result<GuardedConn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match std::task::ready!(self.admitted.poll_recv(cx)) {
            // The accept thread ended (it never does by itself): so does the server, which says so.
            None => Poll::Ready(None),
            Some((stream, admission)) => {
                Poll::Ready(Some(TcpStream::from_std(stream).map(|stream| {
                    GuardedConn {
                        stream,
                        admission,
                        deadline: Some(Box::pin(tokio::time::sleep(self.gate.limits.first_call))),
                    }
                })))
            }
        }
    }
}

/// Accepts until `stop`: admitted connections go to `tx`, the others are closed at once.
async fn accept_loop(
    listener: std::net::TcpListener,
    gate: Gate,
    tx: mpsc::Sender<(std::net::TcpStream, Admission)>,
    stop: CancellationToken,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("the listener cannot be polled: {e}");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let handed = gate.admit(peer).and_then(|admission| {
                    let _ = stream.set_nodelay(true);
                    let stream = stream.into_std().ok()?;
                    Some(tx.try_send((stream, admission)))
                });
                match handed {
                    Some(Ok(())) => {}
                    Some(Err(mpsc::error::TrySendError::Closed(_))) => return,
                    // Over a cap, or the server is behind: closed at once (its admission, if any, given back).
                    Some(Err(mpsc::error::TrySendError::Full(_))) | None => {
                        gate.counters.refused.inc();
                    }
                }
            }
            // Out of descriptors or buffers: nothing to gain from trying again at once.
            Err(e) if matches!(e.raw_os_error(), Some(23 | 24 | 105)) => {
                tracing::warn!("accepting connections: {e}; pausing {ACCEPT_BACKOFF:?}");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
            // One connection's own failure (reset before accept, and the like).
            Err(e) => tracing::debug!("accepting a connection: {e}"),
        }
    }
}
