//! SMR serving HTTPS itself, over a real socket: the real router answers `/healthz` and an
//! authenticated FHIR read over TLS with Strict-Transport-Security; a plain HTTP request to
//! the TLS port gets no HTTP answer; a stalled handshake, and a TLS connection that sends no
//! request head, are closed by the header timeout; graceful shutdown does not wait for a
//! handshake in progress. The certificate is self-signed and made at test time; the clients
//! trust only it. As in `connection_timeouts.rs`, the only time assertion is "disconnected
//! within a generous bound".

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use smr_server::{ConnectionTimeouts, ServerConfig, TlsConfig};

/// Far longer than the timeouts under test: a connection still open then was not dropped.
const BOUND: Duration = Duration::from_secs(20);

/// The host name the test certificate is for (each client resolves it to the test server).
const HOST: &str = "smr.test";

/// What the server says (`TlsConfig`) and what its clients trust (the certificate).
struct TestCertificate {
    tls: TlsConfig,
    cert: CertificateDer<'static>,
}

fn test_certificate() -> TestCertificate {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec![HOST.to_owned()]).expect("certificate");
    let tls = TlsConfig::from_pem(
        cert.pem().as_bytes(),
        std::path::Path::new("test-cert.pem"),
        signing_key.serialize_pem().as_bytes(),
        std::path::Path::new("test-key.pem"),
    )
    .expect("TLS configuration");
    TestCertificate {
        tls,
        cert: cert.der().clone(),
    }
}

/// A rustls client configuration trusting only `cert`, offering `alpn`.
fn client_config(cert: &CertificateDer<'static>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("trust the test certificate");
    // ring, as the server (see smr-server's tls.rs for why, and the deprecation).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A server of `router` over TLS on a fresh port; stopped by sending on the returned channel.
struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(router: axum::Router, tls: TlsConfig, timeouts: ConnectionTimeouts) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(smr_server::serve_tls(
        listener,
        router,
        timeouts,
        tls,
        async move {
            let _ = stopped.await;
        },
    ));
    Running { addr, stop, server }
}

impl Running {
    /// Graceful shutdown; panics unless the server ends within [`BOUND`].
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(BOUND, self.server)
            .await
            .expect("server stopped")
            .expect("server task")
            .expect("serve");
    }
}

/// Reads from `stream` until the server closes it. Returns what was read, or `None` when the
/// connection was still open after [`BOUND`].
fn read_until_closed(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            // Reset by the server, or a TLS connection ended without close_notify:
            // disconnected too.
            Err(_) => return Some(got),
        }
    }
}

/// A plain TCP connection sending `bytes`, then reading until closed.
fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(bytes).expect("send");
    stream.set_read_timeout(Some(BOUND)).expect("read timeout");
    read_until_closed(&mut stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_over_https() {
    let app = support::sqlite_app_with(ServerConfig {
        tls: true,
        ..ServerConfig::default()
    })
    .await;
    let certificate = test_certificate();
    // A long idle timeout: whatever closes a connection below is the header timeout (on the
    // handshake or on the request head), not the idle one.
    let timeouts = ConnectionTimeouts {
        header: Duration::from_secs(1),
        idle: Duration::from_secs(3600),
    };
    let running = start(app.router.clone(), certificate.tls.clone(), timeouts).await;
    let addr = running.addr;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(&certificate.cert, &[b"http/1.1"]))
        .resolve(HOST, addr)
        .build()
        .expect("client");
    let url = |path: &str| format!("https://{HOST}:{}{path}", addr.port());

    let health = client.get(url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000; includeSubDomains")
    );

    // An authenticated read of a stored resource; without the token, 401.
    let stored = app.create(&support::fixture("patient.json")).await;
    let id = stored["id"].as_str().expect("id");
    let token = support::issue(
        &app.issuer,
        smr_auth::TokenRequest {
            org: Some(support::SYSTEM_ORG.to_owned()),
            ..smr_auth::TokenRequest::new("tls-test", smr_access::Role::System)
        },
    );
    let read = client
        .get(url(&format!("/fhir/Patient/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("read");
    assert_eq!(read.status(), 200);
    assert!(read.headers().contains_key("strict-transport-security"));
    let body: serde_json::Value =
        serde_json::from_slice(&read.bytes().await.expect("body")).expect("JSON");
    assert_eq!(body["resourceType"], "Patient");
    assert_eq!(body["id"], id);
    let anonymous = client
        .get(url(&format!("/fhir/Patient/{id}")))
        .send()
        .await
        .expect("anonymous read");
    assert_eq!(anonymous.status(), 401);

    // Plain HTTP to the TLS port: the handshake fails, the connection is closed, and nothing
    // that reads as HTTP comes back (at most a TLS alert).
    let plain = tokio::task::spawn_blocking(move || {
        raw_exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: smr.test\r\n\r\n")
    })
    .await
    .expect("client")
    .expect("a plain HTTP request kept the TLS connection open");
    assert!(
        !String::from_utf8_lossy(&plain).contains("HTTP/"),
        "{}",
        String::from_utf8_lossy(&plain)
    );

    // TCP connected, nothing sent: the handshake's time limit closes it.
    let silent = tokio::task::spawn_blocking(move || raw_exchange(addr, b""))
        .await
        .expect("client");
    assert!(silent.is_some(), "a stalled TLS handshake was kept open");

    // Handshake done (HTTP/1.1 chosen by ALPN from what the client offers), then half a
    // request line: hyper's header timeout closes it over TLS as over plain TCP.
    let config = Arc::new(client_config(&certificate.cert, &[b"h2", b"http/1.1"]));
    let (alpn, half) = tokio::task::spawn_blocking(move || {
        let name = ServerName::try_from(HOST).expect("server name");
        let connection = rustls::ClientConnection::new(config, name).expect("TLS client");
        let socket = TcpStream::connect(addr).expect("connect");
        socket.set_read_timeout(Some(BOUND)).expect("read timeout");
        let mut tls = rustls::StreamOwned::new(connection, socket);
        tls.write_all(b"GET /fhir/meta").expect("send over TLS");
        tls.flush().expect("flush");
        let alpn = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
        (alpn, read_until_closed(&mut tls))
    })
    .await
    .expect("client");
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(
        half.is_some(),
        "half a request line over TLS kept the connection open"
    );

    // The server still serves after all that.
    let again = client.get(url("/healthz")).send().await.expect("healthz");
    assert_eq!(again.status(), 200);

    running.stop().await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_a_handshake_in_progress() {
    let app = support::sqlite_app_with(ServerConfig {
        tls: true,
        ..ServerConfig::default()
    })
    .await;
    let certificate = test_certificate();
    // Timeouts far beyond the bound: only shutdown itself can end the silent connection.
    let timeouts = ConnectionTimeouts {
        header: Duration::from_secs(3600),
        idle: Duration::from_secs(3600),
    };
    let running = start(app.router.clone(), certificate.tls.clone(), timeouts).await;
    let addr = running.addr;
    let mut silent =
        tokio::task::spawn_blocking(move || TcpStream::connect(addr).expect("connect"))
            .await
            .expect("client");
    // Served after the silent connection was accepted (the listener accepts in order), so its
    // handshake is in progress when the server is stopped; this one stays in the client's pool
    // as an idle keep-alive connection.
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(&certificate.cert, &[b"http/1.1"]))
        .resolve(HOST, addr)
        .build()
        .expect("client");
    let health = client
        .get(format!("https://{HOST}:{}/healthz", addr.port()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);

    running.stop().await;
    // The silent connection was closed by the shutdown, not left behind.
    let closed = tokio::task::spawn_blocking(move || {
        silent.set_read_timeout(Some(BOUND)).expect("read timeout");
        read_until_closed(&mut silent)
    })
    .await
    .expect("client");
    assert!(
        closed.is_some(),
        "a handshake in progress outlived shutdown"
    );
    app.finish().await;
}

#[tokio::test]
async fn no_strict_transport_security_without_tls() {
    let app = support::sqlite_app().await;
    let reply = app.get("/healthz").await;
    assert!(reply.header("strict-transport-security").is_none());
    app.finish().await;
}
