//! The bytes an HTTP/2 connection may read between sending a request and its final response head. hyper reads
//! interim (1xx) responses without limit and keeps what it reads of them, so a target answering every request with
//! endless `103` HEADERS frames grew an agent past 2 GB. Each of our HTTP/2 connections carries one request at a
//! time, so the bytes read while it waits for its head are that head's: past `max_head`, the connection fails and
//! the request is `response_too_large`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The budget one connection shares with its stream: armed from a request's send to its head.
#[derive(Debug, Clone)]
pub struct HeadBudget {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    max: usize,
    armed: AtomicBool,
    read: AtomicUsize,
    tripped: AtomicBool,
}

impl HeadBudget {
    pub fn new(max: usize) -> Self {
        HeadBudget {
            state: Arc::new(State {
                max,
                armed: AtomicBool::new(false),
                read: AtomicUsize::new(0),
                tripped: AtomicBool::new(false),
            }),
        }
    }

    /// `io`, its reads counted against this budget.
    pub fn wrap<S>(&self, io: S) -> Budgeted<S> {
        Budgeted {
            inner: io,
            state: self.state.clone(),
        }
    }

    /// A request was sent: count what arrives until its head.
    pub fn arm(&self) {
        self.state.read.store(0, Ordering::Relaxed);
        self.state.armed.store(true, Ordering::Relaxed);
    }

    /// Its head arrived (or it failed).
    pub fn disarm(&self) {
        self.state.armed.store(false, Ordering::Relaxed);
    }

    /// Whether the budget was spent: the connection failed because of it.
    pub fn tripped(&self) -> bool {
        self.state.tripped.load(Ordering::Relaxed)
    }
}

/// An I/O stream whose reads are counted against a [`HeadBudget`].
pub struct Budgeted<S> {
    inner: S,
    state: Arc<State>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Budgeted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled
            && self.state.armed.load(Ordering::Relaxed)
        {
            let read = self
                .state
                .read
                .fetch_add(buf.filled().len() - before, Ordering::Relaxed)
                + (buf.filled().len() - before);
            if read > self.state.max {
                self.state.tripped.store(true, Ordering::Relaxed);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a response head passed its bound",
                )));
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Budgeted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
