//! The wire side of R4 Subscriptions (the rules and the feed consumer are `smr-app`'s
//! `subscriptions`):
//!
//! - [`RestHooks`]: the rest-hook POSTs (`reqwest` over rustls; no redirects, so an endpoint
//!   on the allow-list cannot bounce SMR to a host that is not; 10 s per attempt; any 2xx is
//!   delivered).
//! - [`websocket`]: the R4 websocket binding at `/fhir/websocket` (advertised in the
//!   CapabilityStatement). The client sends `bind {id}`; SMR answers `bound {id}` when the
//!   caller may read that subscription (and `error {id} {reason}` otherwise), then sends
//!   `ping {id}` for each notification. WebSocket pings every 15 s keep the connection from
//!   the idle timeout. The connection acts with the token of its upgrade request.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use smr_access::RequestContext;
use smr_app::App;
use smr_app::subscriptions::{HookRequest, HookSender};
use tokio::sync::broadcast::error::RecvError;

use crate::app::AppState;
use crate::auth::Ctx;

/// How often an open websocket is pinged (below the server's idle timeout).
const HEARTBEAT: Duration = Duration::from_secs(15);
/// The longest `bind` text read (an id is at most 64 characters).
const MAX_COMMAND: usize = 200;

/// Sends rest-hook notifications.
pub struct RestHooks {
    client: reqwest::Client,
}

impl RestHooks {
    pub fn new() -> Result<RestHooks, String> {
        // Plain http is allowed exactly when the operator's allow-list names an http:// prefix.
        let tls = smr_auth::client_tls(false).map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("smr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(RestHooks { client })
    }
}

impl HookSender for RestHooks {
    fn send<'a>(
        &'a self,
        request: &'a HookRequest,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let mut post = self.client.post(&request.endpoint);
            for (name, value) in &request.headers {
                post = post.header(name, value);
            }
            post = match &request.body {
                Some(body) => post
                    .header("content-type", "application/fhir+json")
                    .body(body.clone()),
                None => post.header("content-length", "0"),
            };
            let response = post
                .send()
                .await
                .map_err(|e| smr_auth::fetch::describe(&e))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("the endpoint answered HTTP {status}"))
            }
        })
    }
}

/// `GET /fhir/websocket`: upgrades to the R4 websocket binding.
pub async fn websocket(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    upgrade: WebSocketUpgrade,
) -> Response {
    let app = state.app.clone();
    upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| run(app, ctx, socket))
}

async fn run(app: App, ctx: RequestContext, mut socket: WebSocket) {
    let mut pings = app.subscription_pings();
    let mut bound: HashSet<String> = HashSet::new();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        let reply = tokio::select! {
            received = socket.recv() => match received {
                Some(Ok(Message::Text(text))) => Some(command(&app, &ctx, &mut bound, text.as_str()).await),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => None,
            },
            ping = pings.recv() => match ping {
                Ok(p) if bound.contains(&p.subscription) => Some(format!("ping {}", p.subscription)),
                Ok(_) => None,
                Err(RecvError::Lagged(n)) => {
                    // Too slow a reader: say so rather than silently miss notifications.
                    tracing::warn!(missed = n, "websocket subscriber lagged");
                    Some(format!("error lagged {n} notifications missed"))
                }
                Err(RecvError::Closed) => return,
            },
            _ = heartbeat.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
                None
            }
        };
        if let Some(text) = reply
            && socket.send(Message::Text(text.into())).await.is_err()
        {
            return;
        }
    }
}

/// One client command: `bind {id}` (R4); anything else is answered with an error line.
async fn command(
    app: &App,
    ctx: &RequestContext,
    bound: &mut HashSet<String>,
    text: &str,
) -> String {
    let text = text.trim();
    if text.len() > MAX_COMMAND {
        return "error command too long".into();
    }
    let Some(id) = text.strip_prefix("bind ").map(str::trim) else {
        return format!("error unknown command '{text}': send 'bind {{id}}'");
    };
    match app.subscription_bind(ctx, id).await {
        Ok(()) => {
            bound.insert(id.to_owned());
            format!("bound {id}")
        }
        Err(e) => format!("error {id} {e}"),
    }
}
