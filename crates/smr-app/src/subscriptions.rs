//! R4 Subscriptions: who may hold one, and running them from the change feed.
//!
//! - **Holding one.** A Subscription's criteria names one patient (`smr_fhir::subscription`),
//!   and reading, changing or deleting it is allowed exactly when the caller may read that
//!   patient's record; a rest-hook endpoint must be under the configured allow-list (422
//!   otherwise), so SMR cannot be made to call arbitrary hosts. SMR sets a `requested`
//!   subscription `active` when it accepts it.
//! - **Running them** (the durable feed consumer `subscriptions`): each change to a patient's
//!   record is matched against the active subscriptions on that patient and type (the
//!   criteria run as a search restricted to the changed resource), and each match is a
//!   notification: a websocket `ping` to the connections bound to it (this node's
//!   [`App::subscription_pings`]) and a rest-hook POST through the [`HookSender`] the wire
//!   installed, retried with backoff. A subscription whose endpoint still fails after the
//!   last retry goes to `error` with the reason. The position is saved after the batch's
//!   deliveries finished, so a crash re-delivers rather than loses (at least once: every
//!   notification carries `X-SMR-Event`, the change's feed position, for the receiver to
//!   de-duplicate).
//! - **Signatures.** Each subscription's secret is derived from the node's signing key and
//!   its id (HMAC-SHA256), never stored; a notification's `X-SMR-Signature` is
//!   `sha256=` + hex HMAC-SHA256(secret, body). `$secret` hands it to whoever may change the
//!   subscription (who could otherwise point it elsewhere anyway).
//!
//! Nothing here speaks HTTP: the wire implements [`HookSender`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use smr_access::RequestContext;
use smr_fhir::query::{Criterion, Test, TotalMode};
use smr_fhir::subscription::{self, Channel, Status, SubscriptionSpec};
use smr_store::{Access, Change, FeedPosition, StoreError, WriteOp};
use tokio::sync::broadcast;

use crate::audit::{AuditAction, Event};
use crate::{App, AppError, WriteKind};

/// The durable consumer that runs subscriptions.
pub const SUBSCRIPTIONS: &str = "subscriptions";
const BATCH: u32 = 500;
/// Longest the running consumer keeps an unsaved position when it delivered nothing.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// What a deployment allows (`smr serve --subscription-endpoints`).
#[derive(Clone)]
pub struct SubscriptionPolicy {
    /// URL prefixes rest-hook endpoints must be under; empty: no rest-hook is accepted.
    pub allowed_endpoints: Vec<String>,
    /// Waits before the second, third, … attempt of a rest-hook delivery.
    pub retry_delays: Vec<Duration>,
    /// The node's key the per-subscription secrets are derived from (every node of a
    /// deployment needs the same one).
    pub signing_key: Vec<u8>,
}

impl std::fmt::Debug for SubscriptionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionPolicy")
            .field("allowed_endpoints", &self.allowed_endpoints)
            .field("retry_delays", &self.retry_delays)
            .finish_non_exhaustive()
    }
}

impl Default for SubscriptionPolicy {
    fn default() -> Self {
        SubscriptionPolicy {
            allowed_endpoints: Vec::new(),
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(25),
            ],
            signing_key: uuid::Uuid::new_v4().as_bytes().to_vec(),
        }
    }
}

/// One rest-hook POST to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRequest {
    pub endpoint: String,
    /// SMR's headers (`X-SMR-Subscription`, `X-SMR-Event`, `X-SMR-Signature`) then the
    /// subscription's own `channel.header`s.
    pub headers: Vec<(String, String)>,
    /// The resource (`application/fhir+json`) or nothing.
    pub body: Option<String>,
}

/// Sends rest-hook POSTs (the wire implements it; `Err` is the reason the attempt failed).
pub trait HookSender: Send + Sync {
    fn send<'a>(
        &'a self,
        request: &'a HookRequest,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// A websocket notification: `ping {subscription}` to the connections bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    pub subscription: String,
}

/// The subscriptions' shared state (one per `App`, shared by its clones).
pub(crate) struct Subscriptions {
    policy: RwLock<SubscriptionPolicy>,
    sender: RwLock<Option<Arc<dyn HookSender>>>,
    pings: broadcast::Sender<Ping>,
    /// Active subscriptions, loaded when the consumer first runs.
    index: Mutex<Option<Index>>,
    /// Run from a message bus (`smr-bus`) instead of this node's feed loop.
    from_bus: AtomicBool,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions").finish_non_exhaustive()
    }
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions {
            policy: RwLock::default(),
            sender: RwLock::default(),
            pings: broadcast::channel(1024).0,
            index: Mutex::default(),
            from_bus: AtomicBool::new(false),
        }
    }
}

/// Active subscriptions by id, and by (resource type, patient) for matching.
#[derive(Default)]
struct Index {
    by_id: HashMap<String, Arc<SubscriptionSpec>>,
    /// When each subscription's current version was written (µs): changes before it are not
    /// its business (a consumer catching up replays them).
    since: HashMap<String, i64>,
    by_target: HashMap<(String, String), Vec<String>>,
}

impl Index {
    fn put(&mut self, id: &str, spec: SubscriptionSpec, since: i64) {
        self.remove(id);
        self.since.insert(id.to_owned(), since);
        let key = (spec.search.resource_type.clone(), spec.patient.clone());
        self.by_target.entry(key).or_default().push(id.to_owned());
        self.by_id.insert(id.to_owned(), Arc::new(spec));
    }

    fn remove(&mut self, id: &str) {
        self.since.remove(id);
        if let Some(old) = self.by_id.remove(id) {
            let key = (old.search.resource_type.clone(), old.patient.clone());
            if let Some(ids) = self.by_target.get_mut(&key) {
                ids.retain(|i| i != id);
                if ids.is_empty() {
                    self.by_target.remove(&key);
                }
            }
        }
    }

    /// The subscriptions on this type and patient written before `at` (µs).
    fn candidates(
        &self,
        res_type: &str,
        patient: &str,
        at: i64,
    ) -> Vec<(String, Arc<SubscriptionSpec>)> {
        self.by_target
            .get(&(res_type.to_owned(), patient.to_owned()))
            .into_iter()
            .flatten()
            .filter(|id| self.since.get(*id).is_some_and(|since| *since <= at))
            .filter_map(|id| self.by_id.get(id).map(|s| (id.clone(), Arc::clone(s))))
            .collect()
    }
}

/// Which notifications a change from a message bus is for (`smr-bus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusDelivery {
    /// This node's websockets (every node sees every change).
    Websockets,
    /// Rest-hooks (each change goes to one node).
    RestHooks,
}

/// Where the running consumer is.
#[derive(Debug, Default)]
pub(crate) struct SubscriptionCursor {
    position: Option<FeedPosition>,
    unsaved: Option<FeedPosition>,
    saved_at: Option<std::time::Instant>,
}

impl App {
    /// Sets what subscriptions may do and how rest-hooks are sent (before the feed
    /// consumers start).
    pub fn configure_subscriptions(
        &self,
        policy: SubscriptionPolicy,
        sender: Option<Arc<dyn HookSender>>,
    ) {
        if let Ok(mut p) = self.subscriptions.policy.write() {
            *p = policy;
        }
        if let Ok(mut s) = self.subscriptions.sender.write() {
            *s = sender;
        }
    }

    /// Websocket notifications of this node (every subscription; the wire keeps those bound
    /// on each connection).
    pub fn subscription_pings(&self) -> broadcast::Receiver<Ping> {
        self.subscriptions.pings.subscribe()
    }

    /// Subscriptions run from a message bus (`smr-bus` calls [`App::notify_from_bus`])
    /// instead of this node's feed loop.
    pub fn set_subscriptions_from_bus(&self, on: bool) {
        self.subscriptions.from_bus.store(on, Ordering::SeqCst);
    }

    pub(crate) fn subscriptions_from_bus(&self) -> bool {
        self.subscriptions.from_bus.load(Ordering::SeqCst)
    }

    /// Changes that arrived by the bus: matched and notified as `delivery` says.
    pub async fn notify_from_bus(
        &self,
        changes: &[Change],
        delivery: BusDelivery,
    ) -> Result<usize, AppError> {
        self.load_subscriptions().await?;
        self.notify(
            changes,
            delivery == BusDelivery::Websockets,
            delivery == BusDelivery::RestHooks,
        )
        .await
    }

    fn policy(&self) -> SubscriptionPolicy {
        self.subscriptions
            .policy
            .read()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// A new or changed Subscription: readable, runnable, its patient one the caller may
    /// read, its endpoint allowed. `requested` becomes `active`.
    pub(crate) async fn check_subscription_write(
        &self,
        ctx: &RequestContext,
        access: &Access,
        resource: &mut Value,
    ) -> Result<(), AppError> {
        let spec = subscription::read(resource)
            .map_err(|issue| AppError::Store(StoreError::Invalid(vec![issue])))?;
        self.patient_view(ctx, access, &spec.patient).await?;
        // Only a subscription that will run must be allowed to call its endpoint (SMR itself
        // sets one whose endpoint left the allow-list to `error`).
        let runs = matches!(spec.status, Status::Requested | Status::Active);
        if let Channel::RestHook { endpoint, .. } = &spec.channel
            && runs
            && !subscription::endpoint_allowed(endpoint, &self.policy().allowed_endpoints)
        {
            return Err(AppError::Store(StoreError::Invalid(vec![
                smr_fhir::Issue::error(
                    smr_fhir::IssueCode::BusinessRule,
                    format!(
                        "endpoint '{endpoint}' is not on this server's allow-list for \
                         rest-hook subscriptions"
                    ),
                )
                .at("Subscription.channel.endpoint"),
            ])));
        }
        if spec.status == Status::Requested
            && let Some(body) = resource.as_object_mut()
        {
            body.insert("status".into(), Value::String("active".into()));
            body.remove("error");
        }
        Ok(())
    }

    /// A stored Subscription is the business of whoever may read the patient it names.
    pub(crate) async fn check_subscription_patient(
        &self,
        ctx: &RequestContext,
        access: &Access,
        body: &str,
    ) -> Result<(), AppError> {
        let patient = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| {
                v.get("criteria")
                    .and_then(Value::as_str)
                    .and_then(|c| subscription::read_criteria(c).ok())
            })
            .map(|(_, patient)| patient);
        match patient {
            Some(p) => self.patient_view(ctx, access, &p).await.map(|_| ()),
            // Not SMR's to run (none it accepted is like that): only back-end systems.
            None if ctx.principal.role == smr_access::Role::System => Ok(()),
            None => Err(AppError::forbidden(
                "this Subscription names no patient you may read",
            )),
        }
    }

    /// `Subscription/{id}/$secret`: the key its notifications are signed with, for a caller
    /// who may change it.
    pub async fn subscription_secret(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<String, AppError> {
        let mut event = Event::new("operation", AuditAction::Read).detail("$secret");
        event.entities.push(format!("Subscription/{id}"));
        let result = async {
            crate::authorize::check_interaction(
                ctx,
                "Subscription",
                smr_access::Interaction::Update,
            )?;
            let access = self.access(ctx).await?;
            let stored = self.store.read("Subscription", id).await?;
            self.check_subscription_patient(ctx, &access, &stored.body)
                .await?;
            Ok(hex(&secret(&self.policy().signing_key, id)))
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// May the caller be sent this subscription's notifications (a websocket `bind`)? The
    /// read is audited like any read.
    pub async fn subscription_bind(&self, ctx: &RequestContext, id: &str) -> Result<(), AppError> {
        let stored = self.read(ctx, "Subscription", id).await?;
        let spec = serde_json::from_str::<Value>(&stored.body)
            .ok()
            .and_then(|v| subscription::read(&v).ok());
        match spec {
            Some(spec) if spec.channel == Channel::Websocket => Ok(()),
            _ => Err(AppError::BadRequest(format!(
                "Subscription/{id} is not a websocket subscription"
            ))),
        }
    }

    /// One step of the running consumer; the number of changes read.
    pub(crate) async fn subscriptions_step(
        &self,
        cursor: &mut SubscriptionCursor,
    ) -> Result<usize, AppError> {
        let position = match cursor.position {
            Some(p) => p,
            None => self.subscriptions_start().await?,
        };
        self.load_subscriptions().await?;
        let changes = self.store.changes_after(position, BATCH).await?;
        let Some(last) = changes.last().map(|c| c.position) else {
            cursor.position = Some(position);
            return Ok(0);
        };
        let delivered = self.notify(&changes, true, true).await?;
        cursor.position = Some(last);
        cursor.unsaved = Some(last);
        let due = cursor.saved_at.is_none_or(|at| at.elapsed() >= SAVE_EVERY);
        if delivered > 0 || due {
            self.store
                .save_consumer_position(SUBSCRIPTIONS, last)
                .await?;
            cursor.unsaved = None;
            cursor.saved_at = Some(std::time::Instant::now());
        }
        Ok(changes.len())
    }

    /// Where the consumer starts: its saved position; the first time it ever runs, the feed's
    /// end when no Subscription exists yet (a new deployment does not replay the past), else
    /// the feed's start, each subscription then skipping what was written before it. The
    /// end is read before the subscriptions, so one created in between is seen in the feed.
    async fn subscriptions_start(&self) -> Result<FeedPosition, AppError> {
        let saved = self.store.consumer_position(SUBSCRIPTIONS).await?;
        if saved != FeedPosition::default() {
            return Ok(saved);
        }
        let head = self.store.feed_head().await?;
        if let Ok(mut slot) = self.subscriptions.index.lock() {
            *slot = None;
        }
        self.load_subscriptions().await?;
        let none_yet = self
            .subscriptions
            .index
            .lock()
            .map(|i| i.as_ref().is_none_or(|i| i.by_id.is_empty()))
            .unwrap_or(true);
        let start = if none_yet {
            head
        } else {
            FeedPosition::default()
        };
        self.store
            .save_consumer_position(SUBSCRIPTIONS, start)
            .await?;
        Ok(start)
    }

    /// Reads every active Subscription into the index, once.
    async fn load_subscriptions(&self) -> Result<(), AppError> {
        if self
            .subscriptions
            .index
            .lock()
            .map(|i| i.is_some())
            .unwrap_or(true)
        {
            return Ok(());
        }
        let mut index = Index::default();
        let mut request = smr_fhir::query::SearchRequest::new("Subscription");
        request.count = 500;
        request.total = TotalMode::None;
        loop {
            let page = self.store.search(&request, &Access::unrestricted()).await?;
            for stored in &page.matches {
                if let Some(spec) = runnable(&stored.body) {
                    index.put(&stored.id, spec, stored.last_updated);
                }
            }
            match page.next_cursor {
                Some(next) => request.cursor = Some(next),
                None => break,
            }
        }
        if let Ok(mut slot) = self.subscriptions.index.lock() {
            *slot = Some(index);
        }
        Ok(())
    }

    /// Matches a batch of changes and sends its websocket pings and (then) its rest-hooks;
    /// the number of rest-hooks delivered.
    async fn notify(
        &self,
        changes: &[Change],
        websockets: bool,
        rest_hooks: bool,
    ) -> Result<usize, AppError> {
        let mut hooks: Vec<(String, Arc<SubscriptionSpec>, &Change)> = Vec::new();
        for change in changes {
            if change.res_type == "Subscription" {
                self.refresh_subscription(&change.id).await?;
                continue;
            }
            if change.action == "delete" {
                continue;
            }
            let candidates = match self.subscriptions.index.lock() {
                Ok(guard) => guard
                    .as_ref()
                    .map(|i| i.candidates(&change.res_type, &change.patient_key, change.changed_at))
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            for (id, spec) in candidates {
                if !self.matches(&spec, change).await? {
                    continue;
                }
                match &spec.channel {
                    Channel::Websocket if !websockets => {}
                    Channel::RestHook { .. } if !rest_hooks => {}
                    Channel::Websocket => {
                        // No receiver (no connection bound anywhere on this node) is fine.
                        let _ = self.subscriptions.pings.send(Ping { subscription: id });
                    }
                    Channel::RestHook { .. } => hooks.push((id, spec, change)),
                }
            }
        }
        let sender = self
            .subscriptions
            .sender
            .read()
            .ok()
            .and_then(|s| s.clone());
        let Some(sender) = sender else {
            return Ok(0);
        };
        let policy = self.policy();
        let mut tasks = tokio::task::JoinSet::new();
        let count = hooks.len();
        for (id, spec, change) in hooks {
            let request = self.hook_request(&policy, &id, &spec, change).await?;
            // The allow-list may have shrunk since the subscription was accepted.
            if !subscription::endpoint_allowed(&request.endpoint, &policy.allowed_endpoints) {
                self.subscription_failed(&id, "the endpoint is no longer on the allow-list")
                    .await;
                continue;
            }
            let sender = Arc::clone(&sender);
            let delays = policy.retry_delays.clone();
            tasks.spawn(async move {
                let outcome = deliver(sender.as_ref(), &request, &delays).await;
                (id, outcome)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok((id, Err(reason))) = joined {
                tracing::warn!(subscription = %id, %reason, "rest-hook delivery failed: subscription set to error");
                self.subscription_failed(&id, &reason).await;
            }
        }
        Ok(count)
    }

    /// Whether a change's current version matches the subscription's criteria. When the
    /// criteria is only the patient, the index (by the change's owning patient) answered.
    async fn matches(&self, spec: &SubscriptionSpec, change: &Change) -> Result<bool, AppError> {
        if spec
            .search
            .criteria
            .iter()
            .all(|c| subscription::PATIENT_PARAMS.contains(&c.param.as_str()))
        {
            return Ok(true);
        }
        let mut probe = spec.search.clone();
        probe.criteria.push(Criterion {
            param: "_id".into(),
            test: Test::Id(vec![change.id.clone()]),
        });
        probe.count = 1;
        probe.total = TotalMode::None;
        let page = self.store.search(&probe, &Access::unrestricted()).await?;
        Ok(!page.matches.is_empty())
    }

    async fn hook_request(
        &self,
        policy: &SubscriptionPolicy,
        id: &str,
        spec: &SubscriptionSpec,
        change: &Change,
    ) -> Result<HookRequest, AppError> {
        let Channel::RestHook {
            endpoint,
            full_payload,
            headers,
        } = &spec.channel
        else {
            return Err(AppError::BadRequest("not a rest-hook".into()));
        };
        let body = if *full_payload {
            match self.store.read(&change.res_type, &change.id).await {
                Ok(stored) => Some(stored.body),
                Err(StoreError::NotFound { .. } | StoreError::Gone { .. }) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let signature = sign(
            &secret(&policy.signing_key, id),
            body.as_deref().unwrap_or_default().as_bytes(),
        );
        let mut all = vec![
            ("X-SMR-Subscription".to_owned(), id.to_owned()),
            (
                "X-SMR-Event".to_owned(),
                format!("{}-{}", change.position.tx, change.position.seq),
            ),
            (
                "X-SMR-Resource".to_owned(),
                format!(
                    "{}/{}/_history/{}",
                    change.res_type, change.id, change.version
                ),
            ),
            ("X-SMR-Signature".to_owned(), format!("sha256={signature}")),
        ];
        all.extend(headers.iter().cloned());
        Ok(HookRequest {
            endpoint: endpoint.clone(),
            headers: all,
            body,
        })
    }

    /// Re-reads one Subscription into the index (created, changed or deleted).
    async fn refresh_subscription(&self, id: &str) -> Result<(), AppError> {
        let spec = match self.store.read("Subscription", id).await {
            Ok(stored) => runnable(&stored.body).map(|spec| (spec, stored.last_updated)),
            Err(StoreError::NotFound { .. } | StoreError::Gone { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if let Ok(mut guard) = self.subscriptions.index.lock()
            && let Some(index) = guard.as_mut()
        {
            match spec {
                Some((spec, since)) => index.put(id, spec, since),
                None => index.remove(id),
            }
        }
        Ok(())
    }

    /// Sets a subscription whose endpoint kept failing to `error`, with the reason. Never
    /// fails the batch: a subscription that cannot be marked is logged and tried again at its
    /// next failure.
    async fn subscription_failed(&self, id: &str, reason: &str) {
        if let Err(e) = self.mark_subscription_error(id, reason).await {
            tracing::warn!(subscription = %id, error = %e, "subscription not set to error");
        }
    }

    async fn mark_subscription_error(&self, id: &str, reason: &str) -> Result<(), AppError> {
        let ctx = crate::pgx::system_context(format!("subscription-{id}"));
        let stored = match self.store.read("Subscription", id).await {
            Ok(s) => s,
            Err(StoreError::NotFound { .. } | StoreError::Gone { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Ok(mut body) = serde_json::from_str::<Value>(&stored.body) else {
            return Ok(());
        };
        if let Some(obj) = body.as_object_mut() {
            obj.insert("status".into(), Value::String("error".into()));
            obj.insert(
                "error".into(),
                Value::String(format!("rest-hook delivery failed: {reason}")),
            );
        }
        let op = WriteOp::Update {
            resource: body,
            full_url: None,
            if_match: Some(stored.version),
            patched: false,
            condition: None,
        };
        match self.write(&ctx, vec![op], WriteKind::Update).await {
            Ok(_) => Ok(()),
            // Changed meanwhile (by its owner): theirs stands; the next failure tries again.
            Err(AppError::Entry(e)) if matches!(e.error, StoreError::PreconditionFailed(_)) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// A stored Subscription SMR runs: readable and active.
fn runnable(body: &str) -> Option<SubscriptionSpec> {
    let value = serde_json::from_str::<Value>(body).ok()?;
    let spec = subscription::read(&value).ok()?;
    (spec.status == Status::Active).then_some(spec)
}

/// Sends with retries: the first attempt at once, then after each delay.
async fn deliver(
    sender: &dyn HookSender,
    request: &HookRequest,
    delays: &[Duration],
) -> Result<(), String> {
    let mut last = match sender.send(request).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    for delay in delays {
        tokio::time::sleep(*delay).await;
        match sender.send(request).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(format!(
        "{} attempts failed; last: {last}",
        delays.len() + 1
    ))
}

type HmacSha256 = Hmac<Sha256>;

/// The per-subscription secret: HMAC-SHA256(node key, "Subscription/{id}").
fn secret(key: &[u8], id: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("Subscription/{id}").as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Hex HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes lower- or upper-case hex (for receivers checking a signature with the secret
/// `$secret` gave them).
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_body_under_the_derived_secret() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let a = secret(b"node key", "1");
        assert_ne!(a, secret(b"node key", "2"));
        assert_ne!(a, secret(b"other key", "1"));
        assert_eq!(unhex(&hex(&a)), Some(a));
    }
}
