//! The connection loop's limits, through raw TCP: a client that sends headers or a body a
//! byte at a time, or nothing at all, loses its connection; past the connection cap new
//! clients wait instead of taking the server down.

use std::net::SocketAddr;
use std::time::Duration;

use firebreak::server::{Limits, app, serve_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serve just `/healthz` (and a route taking a body) with `limits`; the address.
async fn start(limits: Limits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = axum::Router::new().route(
        "/echo",
        axum::routing::post(|body: axum::body::Bytes| async move { body }),
    );
    tokio::spawn(serve_with(
        listener,
        app(vec![echo]),
        std::future::pending(),
        limits,
    ));
    addr
}

fn short(header: u64, request: u64, connections: usize) -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(header),
        request_timeout: Duration::from_millis(request),
        max_connections: connections,
    }
}

/// Read until the server closes the connection (a bounded wait, so a server that never
/// closes fails the test instead of hanging it); what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&seen).into_owned(),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server still holds the connection after 20 s; got {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_lose_the_connection() {
    let addr = start(short(300, 60_000, 16)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // A slowloris: a header that never ends, one byte every 100 ms, for up to 20 s.
    let writer = async {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(20), writer).await;
    assert!(
        closed.is_ok(),
        "a client trickling headers kept its connection for 20 s"
    );
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_with_408() {
    let addr = start(short(60_000, 500, 16)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..200 {
            if stream.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[tokio::test]
async fn idle_connections_are_closed_before_and_between_requests() {
    let addr = start(short(300, 60_000, 16)).await;
    // Connected, never a byte.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, "");
    // One request, then idle on keep-alive.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.ends_with("ok\n"), "{answer:?}");
}

#[tokio::test]
async fn past_the_connection_cap_new_clients_wait_and_healthz_recovers() {
    let addr = start(short(60_000, 60_000, 2)).await;
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // A complete request proves the connection was accepted, then it idles.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    // The third connects (the kernel's backlog) but is not served while both slots are held.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "served past the cap: {early:?}");
    // One idle client goes away: the waiting one is served.
    drop(held.pop());
    let answer = read_until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(
        listener,
        app(Vec::new()),
        async {
            let _ = stopped.await;
        },
        short(60_000, 60_000, 16),
    ));
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    stop.send(()).unwrap();
    // The idle keep-alive connection is closed and the server returns, well before the
    // 60 s idle timeout would have done it.
    assert_eq!(read_until_closed(&mut kept).await, "");
    let served = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap();
    assert!(served.is_ok());
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}
