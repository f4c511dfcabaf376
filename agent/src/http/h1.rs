//! A lean HTTP/1.1 keep-alive client connection: the request is prebuilt bytes written as they are, the response
//! is read into one reused buffer and parsed with `httparse`, the body is counted and discarded.
//!
//! Written here rather than taken from hyper because the per-request work of a general-purpose client (request
//! and header-map allocation, body collection, a connection task and channel hop per request) costs 10-20 % of
//! throughput per core on this path (../shared/ENGINE-FACTS.md); hyper remains the tool for HTTP/2 and TLS.

use crate::recorder::Outcome;
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read buffer kept per connection. Responses larger than this are streamed through it.
const BUFFER: usize = 16 * 1024;
/// Most response header lines parsed; a response with more is `TooLarge`.
pub const MAX_HEADERS: usize = 256;
/// Longest chunk-size line (size and extensions); a longer one is `TooLarge`.
pub const MAX_CHUNK_LINE: usize = 4 << 10;
/// The head bound when none is given ([`H1Conn::with_head_limit`]).
pub const DEFAULT_MAX_HEAD: usize = 64 << 10;

/// How a failed connect is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Refused, unreachable, reset, timed out.
    Connect,
    /// EMFILE/ENFILE: the agent ran out of file descriptors (a generator fault).
    OutOfFiles,
    /// EADDRNOTAVAIL: the agent ran out of ephemeral ports (a generator fault).
    OutOfPorts,
}

impl ConnectFailure {
    pub fn of(e: &io::Error) -> Self {
        match e.raw_os_error() {
            Some(23 | 24) => ConnectFailure::OutOfFiles,
            Some(99) => ConnectFailure::OutOfPorts,
            _ => ConnectFailure::Connect,
        }
    }
}

/// An HTTP/1.1 connection over any byte stream (TCP, or TLS over TCP).
pub struct H1Conn<S> {
    stream: S,
    /// Responses read on this connection so far.
    served: u64,
    buf: Vec<u8>,
    reusable: bool,
    /// A response header (lower-case name, value) to look for: whether the last response had it is `watched`.
    pub watch: Option<Box<(Vec<u8>, Vec<u8>)>>,
    pub watched: bool,
    /// When set, the last response's body is kept here (at most [`MAX_CAPTURE`] bytes) instead of discarded.
    pub capture: Option<Vec<u8>>,
    /// Most bytes of a response's head (interim responses included) and of a chunked body's trailers: a target
    /// that sends more (an endless header) gets `TooLarge`, not the agent's memory.
    max_head: usize,
}

/// Most body bytes kept when a response is captured (a cache value).
pub const MAX_CAPTURE: usize = 1 << 20;

enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A TCP connection with Nagle off (requests go out whole).
pub async fn tcp_connect(addr: SocketAddr) -> Result<TcpStream, ConnectFailure> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| ConnectFailure::of(&e))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

impl H1Conn<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> Result<Self, ConnectFailure> {
        Ok(H1Conn::new(tcp_connect(addr).await?))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1Conn<S> {
    pub fn new(stream: S) -> Self {
        H1Conn {
            stream,
            served: 0,
            buf: Vec::with_capacity(BUFFER),
            reusable: true,
            watch: None,
            watched: false,
            capture: None,
            max_head: DEFAULT_MAX_HEAD,
        }
    }

    /// Bounds response heads (and trailers) to `max_head` bytes.
    pub fn with_head_limit(mut self, max_head: usize) -> Self {
        self.max_head = max_head;
        self
    }

    /// Whether another request may be sent (false after `Connection: close` or a body read to EOF).
    pub fn is_reusable(&self) -> bool {
        self.reusable
    }

    /// Sends `request` and reads the whole response. Returns the status and the bytes received (head and body).
    /// On `Err` the connection must be dropped.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
    ) -> Result<(u16, u64), Outcome> {
        // A kept-alive connection the peer closed while idle fails before any response byte: that is not the
        // request's failure (the target never saw it), so it is reported as Stale for a resend.
        let reused = self.served > 0;
        let stale_or = |outcome: Outcome, received: u64| {
            if reused && received == 0 {
                Outcome::Stale
            } else {
                outcome
            }
        };
        self.stream
            .write_all(request)
            .await
            .map_err(|_| stale_or(Outcome::Other, 0))?;
        self.buf.clear();
        let mut received = 0u64;
        if let Some(c) = &mut self.capture {
            c.clear();
        }
        // Kept aside while the head is read (reading borrows the connection), put back on every path.
        let watch = self.watch.take();
        // Head bytes of interim responses already parsed and let go: they count against the bound too.
        let mut interim = 0usize;
        let head = loop {
            match parse_head(&self.buf, head_request, watch.as_deref()) {
                Err(e) => break Err(e),
                Ok(Some((_, _, head_len, _, _))) if interim + head_len > self.max_head => {
                    break Err(Outcome::TooLarge);
                }
                Ok(Some((status, framing, head_len, close, watched))) => {
                    self.watched = watched;
                    if (100..200).contains(&status) && status != 101 {
                        // Interim response (100 Continue, 103 Early Hints): the real one follows.
                        self.buf.drain(..head_len);
                        interim += head_len;
                        continue;
                    }
                    break Ok((status, framing, head_len, close));
                }
                // Still no end of the head past the bound: nothing more is read.
                Ok(None) if interim + self.buf.len() > self.max_head => {
                    break Err(Outcome::TooLarge);
                }
                Ok(None) => match self.read_more().await {
                    Ok(n) => received += n,
                    Err(o) => break Err(stale_or(o, received)),
                },
            }
        };
        self.watch = watch;
        let (status, framing, head_len, close) = head?;
        if close {
            self.reusable = false;
        }
        self.served += 1;
        match framing {
            Framing::Empty => {}
            Framing::Length(n) => received += self.skip_body(head_len, n).await?,
            Framing::Chunked => received += self.skip_chunked(head_len).await?,
            Framing::UntilClose => {
                self.reusable = false;
                keep(&mut self.capture, &self.buf[head_len..]);
                loop {
                    self.buf.clear();
                    match self.read_more_or_eof().await? {
                        0 => break,
                        n => {
                            keep(&mut self.capture, &self.buf);
                            received += n as u64;
                        }
                    }
                }
            }
        }
        Ok((status, received))
    }

    /// [`Self::read_more`], keeping what it read when capturing.
    async fn read_more_kept(&mut self) -> Result<u64, Outcome> {
        let before = self.buf.len();
        let n = self.read_more().await?;
        keep(&mut self.capture, &self.buf[before..]);
        Ok(n)
    }

    /// Reads at least one byte; EOF or an I/O error before the response is complete is an error.
    async fn read_more(&mut self) -> Result<u64, Outcome> {
        match self.read_more_or_eof().await? {
            0 => Err(Outcome::Other),
            n => Ok(n as u64),
        }
    }

    async fn read_more_or_eof(&mut self) -> Result<usize, Outcome> {
        if self.buf.capacity() - self.buf.len() < BUFFER / 4 {
            self.buf.reserve(BUFFER);
        }
        self.stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|_| Outcome::Other)
    }

    /// Consumes `length` body bytes that start at `start` in the buffer (keeping them when capturing).
    async fn skip_body(&mut self, start: usize, length: u64) -> Result<u64, Outcome> {
        let first = &self.buf[start..];
        let first = &first[..first
            .len()
            .min(usize::try_from(length).unwrap_or(usize::MAX))];
        keep(&mut self.capture, first);
        let mut remaining = length.saturating_sub((self.buf.len() - start) as u64);
        let mut received = 0;
        while remaining > 0 {
            self.buf.clear();
            let n = self.read_more().await?;
            let body = &self.buf[..self
                .buf
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX))];
            keep(&mut self.capture, body);
            received += n;
            remaining = remaining.saturating_sub(n);
        }
        Ok(received)
    }

    /// Consumes a chunked body that starts at `start` in the buffer.
    async fn skip_chunked(&mut self, start: usize) -> Result<u64, Outcome> {
        let mut pos = start;
        let mut received = 0;
        // A capture keeps the chunked body as it came (chunk sizes included).
        keep(&mut self.capture, &self.buf[start..]);
        // Bytes of chunk data (plus its CRLF) still to skip.
        let mut skip: u64 = 0;
        loop {
            if skip > 0 {
                let available = (self.buf.len() - pos) as u64;
                if available >= skip {
                    pos += skip as usize;
                    skip = 0;
                } else {
                    skip -= available;
                    self.buf.clear();
                    pos = 0;
                    received += self.read_more_kept().await?;
                    continue;
                }
            }
            match httparse::parse_chunk_size(&self.buf[pos..]) {
                Ok(httparse::Status::Complete((consumed, 0))) => {
                    pos += consumed;
                    // Trailer section: ends at the first empty line, within the head bound.
                    loop {
                        let rest = &self.buf[pos..];
                        if rest.starts_with(b"\r\n") {
                            return Ok(received);
                        }
                        if rest.windows(4).any(|w| w == b"\r\n\r\n") {
                            return Ok(received);
                        }
                        if rest.len() > self.max_head {
                            return Err(Outcome::TooLarge);
                        }
                        received += self.read_more_kept().await?;
                    }
                }
                Ok(httparse::Status::Complete((consumed, size))) => {
                    pos += consumed;
                    skip = size.checked_add(2).ok_or(Outcome::Other)?;
                }
                // An endless chunk-size line (`1;eeee...`) is not buffered past its bound.
                Ok(httparse::Status::Partial) if self.buf.len() - pos > MAX_CHUNK_LINE => {
                    return Err(Outcome::TooLarge);
                }
                Ok(httparse::Status::Partial) => {
                    self.buf.drain(..pos);
                    pos = 0;
                    received += self.read_more_kept().await?;
                }
                Err(_) => return Err(Outcome::Other),
            }
        }
    }
}

/// Appends body bytes to a capture, up to [`MAX_CAPTURE`].
fn keep(capture: &mut Option<Vec<u8>>, bytes: &[u8]) {
    if let Some(c) = capture {
        let room = MAX_CAPTURE.saturating_sub(c.len());
        c.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// Parses a response head: status, body framing, head length, whether the server closes the connection after it
/// (`Connection: close`, or HTTP/1.0 without `Connection: keep-alive`), and whether the `watch`ed header has its
/// value. `None` when more bytes are needed.
#[allow(clippy::type_complexity)]
fn parse_head(
    buf: &[u8],
    head_request: bool,
    watch: Option<&(Vec<u8>, Vec<u8>)>,
) -> Result<Option<(u16, Framing, usize, bool, bool)>, Outcome> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Outcome::TooLarge),
        Err(_) => return Err(Outcome::Other),
    };
    let status = response.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    let mut close = response.version == Some(0);
    let mut watched = false;
    for h in response.headers.iter() {
        if let Some((name, value)) = watch
            && h.name.as_bytes().eq_ignore_ascii_case(name)
            && h.value.trim_ascii() == value.as_slice()
        {
            watched = true;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).map_err(|_| Outcome::Other)?;
            let this = text.trim().parse::<u64>().map_err(|_| Outcome::Other)?;
            // Two lengths that disagree: the framing is unknowable (RFC 9112, 6.3), an error at once rather than a
            // wait for bytes that never come.
            if length.is_some_and(|l| l != this) {
                return Err(Outcome::Other);
            }
            length = Some(this);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.windows(5).any(|w| w.eq_ignore_ascii_case(b"close")) {
                close = true;
            } else if h
                .value
                .windows(10)
                .any(|w| w.eq_ignore_ascii_case(b"keep-alive"))
            {
                close = false;
            }
        }
    }
    let framing = if head_request || status == 204 || status == 304 || (100..200).contains(&status)
    {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some((status, framing, head_len, close, watched)))
}

#[cfg(test)]
mod tests;
