//! The MLLP listener (`smr serve --mllp ADDR`): HL7 v2 messages over TCP, each answered with
//! its ACK on the same connection, in order.
//!
//! One task per connection. Bytes go through `smr_hl7v2::mllp::Deframer` (frames out of a
//! stream, a maximum message size); each whole message goes to `App::hl7v2_message`, which
//! stores it as its sender and builds the ACK; the ACK is framed and written back before the
//! next message is read (HL7's original acknowledgement mode: a sender waits for each ACK).
//!
//! Limits: a message over `max_message_bytes` is answered `AR` and its bytes dropped up to its
//! end block; a connection that sends nothing for `read_timeout` (between messages or in the
//! middle of one) is closed, as is one whose ACK cannot be written within it.
//!
//! Graceful shutdown (as `serve`): when `shutdown` completes no connection is accepted; each
//! connection finishes the message it is storing, sends its ACK and closes; a connection
//! waiting for its next message closes at once (nothing of it is lost: what was not
//! acknowledged is the sender's to send again).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use smr_app::App;
use smr_hl7v2::Senders;
use smr_hl7v2::mllp::{Deframer, Frame, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Limits of the MLLP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MllpConfig {
    /// The largest message accepted (bytes, framing excluded).
    pub max_message_bytes: usize,
    /// A connection silent for this long is closed.
    pub read_timeout: Duration,
}

impl Default for MllpConfig {
    fn default() -> Self {
        MllpConfig {
            max_message_bytes: 1024 * 1024,
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves MLLP on `listener` until `shutdown` completes, then lets each connection finish
/// the message in hand.
pub async fn serve_mllp(
    listener: TcpListener,
    app: App,
    senders: Arc<Senders>,
    config: MllpConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an MLLP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            // Finished connections are reaped as they end, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let app = app.clone();
        let senders = Arc::clone(&senders);
        let stopped = stopped.clone();
        connections.spawn(async move {
            let peer = peer.to_string();
            if let Err(e) = connection(stream, &peer, &app, &senders, config, stopped).await {
                tracing::debug!(%peer, error = %e, "MLLP connection ended");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn connection(
    mut stream: TcpStream,
    peer: &str,
    app: &App,
    senders: &Senders,
    config: MllpConfig,
    mut stopped: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut deframer = Deframer::new(config.max_message_bytes);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Every whole message already received is answered before reading more.
        while let Some(frame_found) = deframer.next_frame() {
            let ack = match frame_found {
                Frame::Message(bytes) => app.hl7v2_message(senders, &bytes, peer).await.ack,
                Frame::TooLarge => too_large(config.max_message_bytes),
            };
            let framed = frame(ack.as_bytes());
            match tokio::time::timeout(config.read_timeout, stream.write_all(&framed)).await {
                Ok(result) => result?,
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "ACK not taken")),
            }
        }
        if *stopped.borrow() {
            return Ok(());
        }
        let read = tokio::select! {
            read = tokio::time::timeout(config.read_timeout, stream.read(&mut buf)) => read,
            _ = stopped.changed() => return Ok(()),
        };
        match read {
            Ok(Ok(0)) => {
                if deframer.is_mid_frame() {
                    tracing::debug!(%peer, "MLLP connection closed in the middle of a message");
                }
                return Ok(());
            }
            Ok(Ok(n)) => deframer.push(&buf[..n]),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nothing received within the read timeout",
                ));
            }
        }
    }
}

/// The `AR` for a message over the size limit (it was not read, so nothing of it is echoed).
fn too_large(max: usize) -> String {
    let error = smr_hl7v2::Hl7Error::reject(
        None,
        smr_hl7v2::Condition::InternalError,
        format!("the message is larger than {max} bytes"),
    );
    let id = uuid::Uuid::now_v7().simple().to_string();
    smr_hl7v2::ack::build(
        None,
        smr_hl7v2::AckCode::Reject,
        Some(&error),
        &id,
        time::OffsetDateTime::now_utc(),
    )
}
