//! Connection time limits over a real socket: a client that sends half a request line, stalls
//! its body, or keeps an idle keep-alive connection is disconnected; ordinary requests and
//! graceful shutdown still work. Timeouts are short here; the only time assertion is
//! "disconnected within a generous bound".

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use smr_access::Role;
use smr_auth::TokenRequest;
use smr_server::ConnectionTimeouts;

/// Far longer than the timeouts under test: a connection still open then was not dropped.
const BOUND: Duration = Duration::from_secs(20);

/// Sends `request`, then reads until the server closes the connection. Returns what was read,
/// or `None` when the connection was still open after [`BOUND`].
fn read_until_closed(addr: SocketAddr, request: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(request).expect("send");
    stream.set_read_timeout(Some(BOUND)).expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            // Reset by the server: disconnected too.
            Err(_) => return Some(String::from_utf8_lossy(&got).into_owned()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_dropped() {
    let app = support::sqlite_app().await;
    let token = support::issue(
        &app.issuer,
        TokenRequest {
            org: Some(support::SYSTEM_ORG.to_owned()),
            ..TokenRequest::new("timeouts-test", Role::System)
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let timeouts = ConnectionTimeouts {
        header: Duration::from_secs(1),
        idle: Duration::from_secs(2),
    };
    let server = tokio::spawn(smr_server::serve(
        listener,
        app.router.clone(),
        timeouts,
        async move {
            let _ = stopped.await;
        },
    ));

    let run =
        |request: Vec<u8>| tokio::task::spawn_blocking(move || read_until_closed(addr, &request));

    // Half a request line, then nothing.
    let half = run(b"GET /fhir/meta".to_vec()).await.expect("client");
    assert!(
        half.is_some(),
        "half a request line kept the connection open"
    );

    // Nothing at all.
    let silent = run(Vec::new()).await.expect("client");
    assert!(silent.is_some(), "a silent connection was kept open");

    // A whole request is answered; the keep-alive connection is closed once idle.
    let answered = run(b"GET /healthz HTTP/1.1\r\nHost: smr.test\r\n\r\n".to_vec())
        .await
        .expect("client")
        .expect("an idle keep-alive connection was kept open");
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

    // Headers complete, the body announced but stalled after a few bytes.
    let stalled = format!(
        "POST /fhir/Patient HTTP/1.1\r\nHost: smr.test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{{\"resour"
    );
    let stalled = run(stalled.into_bytes()).await.expect("client");
    assert!(stalled.is_some(), "a stalled body kept the connection open");

    // Graceful shutdown still ends the server.
    let _ = stop.send(());
    tokio::time::timeout(BOUND, server)
        .await
        .expect("server stopped")
        .expect("server task")
        .expect("serve");
    app.finish().await;
}
