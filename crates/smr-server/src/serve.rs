//! Serving the router on a TCP listener with connection time limits.
//!
//! `axum::serve` gives hyper no timer, so a client could hold a connection open for ever by
//! sending its request a byte at a time, or by sending nothing at all; hundreds of such
//! sockets exhaust the process. Here each connection gets:
//!
//! - a **header timeout** (hyper's `header_read_timeout`): the request head must be complete
//!   within it, counted from the connection's start or the end of the previous response, so it
//!   also closes a connection that sends nothing and a keep-alive connection that sends no next
//!   request (whichever of the two timeouts is shorter closes an idle connection);
//! - an **idle timeout**: no byte received or sent for that long closes the connection
//!   whatever it is doing (a stalled body, a client that stops reading its response). The event stream sends a
//!   keep-alive comment every 15 s, so it is never idle that long. A body sent slowly but
//!   steadily is bounded by the request time limit (`hardening::time_limit`).
//!
//! Graceful shutdown: when `shutdown` completes, no connection is accepted any more, idle ones
//! are closed and those with a request in flight finish it.
//!
//! TLS ([`serve_tls`]): the handshake runs in the connection's own task, never in the accept
//! loop (a client that connects and sends nothing must not hold up the next one), under the
//! header timeout (a stalled handshake is a stalled request head), over the idle-timed stream.
//! A failed or late handshake closes that connection only (logged at debug: scanners and
//! plain-HTTP clients are routine, not faults). At shutdown, handshakes in progress are
//! abandoned: no request has been sent on them yet. Without TLS a connection costs what it did
//! before: the TLS branch is separate and allocates only for TLS connections.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use crate::tls::TlsConfig;

/// Time limits of one connection (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionTimeouts {
    pub header: Duration,
    pub idle: Duration,
}

impl Default for ConnectionTimeouts {
    fn default() -> Self {
        ConnectionTimeouts {
            header: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }
}

/// Serves `router` over plain HTTP on `listener` until `shutdown` completes, then drains the
/// connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: ConnectionTimeouts,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    accept_loop(listener, router, timeouts, None, shutdown).await
}

/// Serves `router` over HTTPS (`tls`) on `listener` until `shutdown` completes, then drains
/// the connections.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    timeouts: ConnectionTimeouts,
    tls: TlsConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    accept_loop(
        listener,
        router,
        timeouts,
        Some(tls.acceptor().clone()),
        shutdown,
    )
    .await
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    timeouts: ConnectionTimeouts,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    // Shared with the TLS connections' tasks, which build their connection after the handshake.
    let builder = Arc::new(builder);
    // Graceful shutdown, by hand rather than hyper-util's `GracefulShutdown` (which cannot
    // watch a connection that allows upgrades, as websockets need): `stop` tells every
    // connection's task to finish its request in flight and close; each task holds a clone
    // of `running`, so when the last one ends, `all_done` yields `None`. TLS handshakes in
    // progress give up at `stop` too (no request has been sent on them yet).
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (running, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // pause rather than spin, then go on serving the others.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Request/response traffic: send each response at once rather than let Nagle's
        // algorithm hold back a last partial segment (the usual setting for HTTP APIs).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let stream = IdleTimeout::new(stream, timeouts.idle);
        let service = TowerToHyperService::new(router.clone());
        let builder = Arc::clone(&builder);
        let mut stopped = stopped.clone();
        let running = running.clone();
        let Some(acceptor) = &tls else {
            tokio::spawn(async move {
                if let Err(e) = serve_connection(&builder, stream, service, stopped).await {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                drop(running);
            });
            continue;
        };
        // Everything TLS (the session's state and buffers included) is made in the task, so
        // the accept loop only hands the socket over.
        let acceptor = acceptor.clone();
        let limit = timeouts.header;
        tokio::spawn(async move {
            let stream = tokio::select! {
                finished = tokio::time::timeout(limit, acceptor.accept(stream)) => match finished {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake not finished within the header timeout");
                        return;
                    }
                },
                // Shutting down (or the loop is gone): this connection never sent a request.
                _ = stopped.changed() => return,
            };
            if let Err(e) = serve_connection(&builder, stream, service, stopped).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(running);
        });
    }
    drop(listener);
    // No connection left to tell is not an error.
    let _ = stop.send(true);
    drop(running);
    let _ = all_done.recv().await;
    Ok(())
}

/// Serves one connection (upgrades allowed: the websocket binding of Subscriptions) until it
/// ends, or, once `stopped` changes, until its request in flight is answered.
async fn serve_connection<I>(
    builder: &http1::Builder,
    io: I,
    service: TowerToHyperService<Router>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        finished = connection.as_mut() => return finished,
        _ = stopped.changed() => connection.as_mut().graceful_shutdown(),
    }
    connection.await
}

/// A TCP stream that fails with `TimedOut` once nothing has been read or written for `limit`.
/// The deadline is moved lazily (only when the timer fires), so a busy connection costs one
/// clock read per read or write, not a timer reset.
struct IdleTimeout {
    inner: TcpStream,
    limit: Duration,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
}

impl IdleTimeout {
    fn new(inner: TcpStream, limit: Duration) -> Self {
        IdleTimeout {
            inner,
            limit,
            last_activity: Instant::now(),
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }

    /// Called when the stream is pending: an error once the connection has been idle too long,
    /// otherwise arms the timer to wake the task at the current deadline.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            let deadline = self.last_activity + self.limit;
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(()) if self.last_activity + self.limit <= Instant::now() => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for longer than the idle timeout",
                    ));
                }
                Poll::Ready(()) => {}
            }
        }
    }
}

impl IdleTimeout {
    /// A write that moved bytes is activity; a pending one may have gone idle (a client that
    /// stops reading its response is idle too).
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match poll {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.last_activity = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.check_idle(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_activity = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check_idle(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, data);
        this.after_write(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
