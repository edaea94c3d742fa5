//! SMR on NATS JetStream (`smr serve --nats-url`, issue 9).
//!
//! Three tasks per node, started by [`start`]:
//! - **publish**: the durable change-feed consumer `nats-publish` sends every committed change
//!   to the stream, on the subject `{prefix}.{Type}.{patient}` (a shared resource's key is
//!   `Type/id`), as JSON carrying identifiers only — type, id, version, patient id, action,
//!   time, feed position — never clinical content. Each message's `Nats-Msg-Id` is its feed
//!   position, so nodes sharing a database (and so the consumer's position) that publish the
//!   same change store it once (JetStream's duplicate window, 2 minutes).
//! - **websockets**: an ordered consumer from the stream's end: every change, from every node,
//!   is matched against this node's Subscriptions and pings the websockets bound here. This
//!   is how a client connected to node A hears of a write made on node B.
//! - **rest-hooks**: one durable consumer shared by every node (a work queue: each change goes
//!   to one node), acknowledged after its deliveries finished, so a rest-hook is sent by one
//!   node, at least once.
//!
//! With the bus on, the node's own feed loop no longer runs Subscriptions
//! ([`smr_app::App::set_subscriptions_from_bus`]): they run from the stream only.

mod message;

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use smr_app::App;
use smr_app::subscriptions::BusDelivery;
use smr_store::FeedPosition;

pub use message::{decode, encode, subject};

/// The durable change-feed consumer that publishes to NATS.
pub const PUBLISHER: &str = "nats-publish";
const BATCH: u32 = 500;
/// How often the publisher looks for other nodes' commits (this node's wake it at once).
const POLL: Duration = Duration::from_millis(500);
/// Longest the publisher keeps an unsaved position (a crash re-publishes at most this much,
/// which the duplicate window absorbs).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Where the bus is and what it is called.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The JetStream stream (created when missing).
    pub stream: String,
    /// Subjects are `{subject_prefix}.{Type}.{patient}`.
    pub subject_prefix: String,
}

impl BusConfig {
    pub fn new(url: impl Into<String>) -> Self {
        BusConfig {
            url: url.into(),
            stream: "SMR_CHANGES".into(),
            subject_prefix: "smr.changes".into(),
        }
    }

    /// The durable rest-hook consumer's name (one per stream).
    fn hooks_consumer(&self) -> String {
        format!("{}_REST_HOOKS", self.stream)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("JetStream: {0}")]
    JetStream(String),
}

/// The running tasks; they stop when this is dropped.
#[derive(Debug)]
pub struct Bus {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Bus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Connects, makes sure the stream exists, switches the app's Subscriptions to the bus and
/// starts the three tasks. The consumers exist when this returns, so every change committed
/// after it is seen.
pub async fn start(app: App, config: BusConfig) -> Result<Bus, BusError> {
    let client = async_nats::connect(&config.url)
        .await
        .map_err(|e| BusError::Connect {
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
    let js = jetstream::new(client);
    let js_error = |e: &dyn std::fmt::Display| BusError::JetStream(e.to_string());
    let stream = js
        .get_or_create_stream(stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            // Enough for a node that was down for a while to catch up; the store's feed is
            // the record, the stream only carries it.
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| js_error(&e))?;
    let everything = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| js_error(&e))?;
    let durable = config.hooks_consumer();
    let hooks = stream
        .get_or_create_consumer(
            &durable,
            consumer::pull::Config {
                durable_name: Some(durable.clone()),
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::Explicit,
                // A delivery with all its retries takes about 31 s.
                ack_wait: Duration::from_secs(120),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| js_error(&e))?;
    app.set_subscriptions_from_bus(true);

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(publish(app.clone(), js, config.clone())));
    let node = app.clone();
    tasks.push(tokio::spawn(async move {
        let mut messages = match everything.messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "NATS: the change stream cannot be read; websockets get no notifications");
                return;
            }
        };
        while let Some(next) = messages.next().await {
            match next {
                Ok(message) => match decode(&message.payload) {
                    Some(change) => {
                        if let Err(e) = node.notify_from_bus(&[change], BusDelivery::Websockets).await {
                            tracing::warn!(error = %e, "NATS: websocket notifications of a change failed");
                        }
                    }
                    None => tracing::warn!(subject = %message.subject, "NATS: unreadable change message skipped"),
                },
                Err(e) => tracing::warn!(error = %e, "NATS: reading the change stream"),
            }
        }
    }));
    let node = app;
    tasks.push(tokio::spawn(async move {
        loop {
            let mut messages = match hooks.messages().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "NATS: rest-hook consumer unavailable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(next) = messages.next().await {
                let message = match next {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "NATS: reading the rest-hook consumer");
                        continue;
                    }
                };
                let delivered = match decode(&message.payload) {
                    Some(change) => node
                        .notify_from_bus(&[change], BusDelivery::RestHooks)
                        .await
                        .map(|_| ()),
                    None => Ok(()),
                };
                match delivered {
                    Ok(()) => {
                        if let Err(e) = message.ack().await {
                            tracing::warn!(error = %e, "NATS: ack failed; the change will be redelivered");
                        }
                    }
                    // Not acknowledged: JetStream redelivers after the ack wait.
                    Err(e) => tracing::warn!(error = %e, "NATS: rest-hook notifications failed; will be redelivered"),
                }
            }
        }
    }));
    Ok(Bus { tasks })
}

/// The publishing consumer: the feed after its saved position, to the stream.
async fn publish(app: App, js: jetstream::Context, config: BusConfig) {
    let mut commits = app.feed_commits();
    let mut position: Option<FeedPosition> = None;
    let mut unsaved: Option<FeedPosition> = None;
    let mut saved_at = std::time::Instant::now();
    loop {
        let step = async {
            let at = match position {
                Some(p) => p,
                None => app.feed_start(PUBLISHER).await?,
            };
            let changes = app.feed_after(at, BATCH).await?;
            let mut acks = Vec::with_capacity(changes.len());
            for change in &changes {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(
                    "Nats-Msg-Id",
                    format!("{}-{}", change.position.tx, change.position.seq).as_str(),
                );
                let ack = js
                    .publish_with_headers(
                        subject(&config.subject_prefix, change),
                        headers,
                        encode(change).into(),
                    )
                    .await
                    .map_err(|e| StepError(e.to_string()))?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await.map_err(|e| StepError(e.to_string()))?;
            }
            Ok::<_, StepError>((at, changes.last().map(|c| c.position)))
        }
        .await;
        match step {
            Ok((at, Some(last))) => {
                position = Some(last);
                unsaved = Some(last);
                let _ = at;
            }
            Ok((at, None)) => {
                position = Some(at);
                tokio::select! {
                    changed = commits.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(POLL) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e.0, "NATS: publishing the change feed failed; will retry");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if let Some(last) = unsaved
            && saved_at.elapsed() >= SAVE_EVERY
        {
            match app.save_feed_position(PUBLISHER, last).await {
                Ok(()) => {
                    unsaved = None;
                    saved_at = std::time::Instant::now();
                }
                Err(e) => tracing::warn!(error = %e, "NATS: publisher position not saved"),
            }
        }
    }
}

#[derive(Debug)]
struct StepError(String);

impl From<smr_app::AppError> for StepError {
    fn from(e: smr_app::AppError) -> Self {
        StepError(e.to_string())
    }
}
