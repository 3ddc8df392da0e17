//! Keep alive: a server that answers CONNACK and then goes silent is found dead.
//!
//! The server here is a plain TCP listener written for the test, so that it can do exactly
//! what a hung broker does: accept, read CONNECT, answer CONNACK, and never speak again.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::within;
use tern_client::{Client, ConnectOptions, ConnectionState, ProtocolVersion};
use tern_codec::{decode, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one packet from `socket`.
async fn read_packet(socket: &mut TcpStream, buf: &mut BytesMut) -> Packet {
    loop {
        if let Some(packet) = decode(buf, ProtocolVersion::V3_1_1, 1 << 16).expect("valid") {
            return packet;
        }
        let n = socket.read_buf(buf).await.expect("read");
        assert!(n > 0, "client closed early");
    }
}

#[tokio::test]
async fn a_silent_server_is_detected_dead() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = BytesMut::new();
        let Packet::Connect(connect) = read_packet(&mut socket, &mut buf).await else {
            panic!("CONNECT expected");
        };
        assert_eq!(connect.keep_alive, 1);
        socket
            .write_all(&[0x20, 0x02, 0x00, 0x00])
            .await
            .expect("CONNACK");
        // Silent from now on; the client should ping, then give up.
        let ping = read_packet(&mut socket, &mut buf).await;
        assert_eq!(ping, Packet::PingReq);
        // Hold the socket open until the client closes it.
        let mut rest = [0u8; 64];
        while socket.read(&mut rest).await.is_ok_and(|n| n > 0) {}
        Instant::now()
    });

    let options = ConnectOptions::new("127.0.0.1", addr.port())
        .protocol(ProtocolVersion::V3_1_1)
        .keep_alive(Duration::from_secs(1))
        .reconnect(None);
    let started = Instant::now();
    let client = within("connect", Client::connect(options))
        .await
        .expect("connects");
    let mut state = client.state();
    within(
        "dead connection detected",
        state.wait_for(|s| *s == ConnectionState::Closed),
    )
    .await
    .expect("task runs");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5),
        "ping after 1 s, dead 1 s later: {elapsed:?}"
    );
    let closed_seen = within("server sees the close", server)
        .await
        .expect("server task");
    assert!(closed_seen.duration_since(started) < Duration::from_secs(5));
}

#[tokio::test]
async fn an_answered_ping_keeps_the_connection() {
    let broker = common::broker().await;
    let options = common::options(broker.local_addr(), ProtocolVersion::V5)
        .keep_alive(Duration::from_secs(1))
        .reconnect(None);
    let client = Client::connect(options).await.expect("connects");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        client.state().borrow().is_connected(),
        "pings answered: still connected"
    );
    client.disconnect().await;
    broker.shutdown().await;
}
