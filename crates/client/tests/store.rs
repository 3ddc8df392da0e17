//! The on-disk in-flight store: QoS 1/2 messages survive the client. Each test closes a
//! client in the middle of a flow and opens a new one on the same store file.
//!
//! The broker here is a scripted peer on a real socket (127.0.0.1:0) that speaks MQTT with
//! tern-codec and checks the exact packets the client sends after the restart (DUP, packet
//! identifiers, PUBREL), which a real broker would not show; the in-process broker takes
//! part where only the end-to-end result matters.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use bytes::BytesMut;
use common::mosquitto::test_dir;
use common::{broker, broker_on, options, within};
use tern_client::{
    Client, ConnectErrorKind, ConnectOptions, ConnectionState, ProtocolVersion, QoS,
};
use tern_codec::{ConnAck, Packet, PacketId, PubResponse, Publish, ReasonCode, SubAck, TopicName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One end of a connection, as the server.
struct Peer {
    stream: TcpStream,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Peer {
    /// Accepts one connection and its CONNECT, and answers CONNACK.
    async fn accept(listener: &TcpListener, session_present: bool) -> Peer {
        let (stream, _) = within("accept", listener.accept()).await.expect("accepted");
        let mut peer = Peer {
            stream,
            buf: BytesMut::new(),
            version: ProtocolVersion::V5,
        };
        let Packet::Connect(connect) = peer.read().await else {
            panic!("CONNECT expected");
        };
        peer.version = connect.protocol;
        peer.write(Packet::ConnAck(ConnAck {
            session_present,
            ..Default::default()
        }))
        .await;
        peer
    }

    async fn read(&mut self) -> Packet {
        within("a packet from the client", async {
            loop {
                if let Some(packet) =
                    tern_codec::decode(&mut self.buf, self.version, 1 << 20).expect("valid")
                {
                    return packet;
                }
                let n = self.stream.read_buf(&mut self.buf).await.expect("read");
                assert!(n > 0, "the client closed the connection");
            }
        })
        .await
    }

    /// The next packet other than PINGREQ.
    async fn next(&mut self) -> Packet {
        loop {
            match self.read().await {
                Packet::PingReq => continue,
                packet => return packet,
            }
        }
    }

    async fn write(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.encode(self.version, &mut out).expect("encodable");
        self.stream.write_all(&out).await.expect("write");
    }

    /// Answers a SUBSCRIBE with QoS 2 granted.
    async fn grant_subscription(&mut self) {
        let Packet::Subscribe(subscribe) = self.next().await else {
            panic!("SUBSCRIBE expected");
        };
        self.write(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            reason_codes: vec![ReasonCode::GrantedQoS2],
            ..Default::default()
        }))
        .await;
    }
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

fn store_file(name: &str) -> PathBuf {
    test_dir(name).join("inflight.redb")
}

fn peer_options(listener: &TcpListener, store: &PathBuf) -> ConnectOptions {
    let addr = listener.local_addr().expect("address");
    options(addr, ProtocolVersion::V5)
        .client_id("stored")
        .clean_start(false)
        .session_expiry(Duration::from_secs(600))
        .reconnect(None)
        .store(store)
}

async fn closed(client: &Client) {
    let mut state = client.state();
    within("closed", state.wait_for(|s| *s == ConnectionState::Closed))
        .await
        .expect("the task reports");
}

/// [MQTT-4.4.0-1] after a restart the client sends unacknowledged PUBLISH again with DUP
/// and the same packet identifier, and PUBREL for a QoS 2 message past PUBREC
/// [MQTT-4.3.3-3]; once acknowledged they are gone from the store.
#[tokio::test]
async fn outgoing_flows_resume_in_a_new_client() {
    let store = store_file("store-outgoing");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");

    let first = Client::connect(peer_options(&listener, &store));
    let (first, mut peer) = tokio::join!(first, Peer::accept(&listener, false));
    let first = first.expect("connects");
    for (payload, qos) in [("one", QoS::AtLeastOnce), ("two", QoS::ExactlyOnce)] {
        let client = first.clone();
        tokio::spawn(async move { client.publish("stored/t", payload, qos, false).await });
    }
    let mut sent = Vec::new();
    for _ in 0..2 {
        let Packet::Publish(publish) = peer.next().await else {
            panic!("PUBLISH expected");
        };
        assert!(!publish.dup);
        sent.push(publish);
    }
    let (one, two) = (
        sent[0].packet_id.expect("id"),
        sent[1].packet_id.expect("id"),
    );
    // QoS 2 goes on to PUBREL; then the "process" ends with both flows unfinished.
    peer.write(Packet::PubRec(PubResponse::new(two))).await;
    assert_eq!(peer.next().await, Packet::PubRel(PubResponse::new(two)));
    drop(peer);
    closed(&first).await;
    drop(first);

    let second = Client::connect(peer_options(&listener, &store));
    let (second, mut peer) = tokio::join!(second, Peer::accept(&listener, true));
    let second = second.expect("a new client on the same store");
    let Packet::Publish(again) = peer.next().await else {
        panic!("the QoS 1 PUBLISH again expected");
    };
    assert!(again.dup, "[MQTT-4.4.0-1] DUP is set");
    assert_eq!(again.packet_id, Some(one));
    assert_eq!(
        (again.topic.as_str(), &again.payload[..]),
        ("stored/t", &b"one"[..])
    );
    assert_eq!(
        peer.next().await,
        Packet::PubRel(PubResponse::new(two)),
        "past PUBREC only PUBREL is sent again, never the PUBLISH"
    );
    peer.write(Packet::PubAck(PubResponse::new(one))).await;
    peer.write(Packet::PubComp(PubResponse::new(two))).await;
    // A QoS 1 round trip after them proves both acknowledgements were handled.
    let marker = second.clone();
    let marker =
        tokio::spawn(async move { marker.publish("m", "m", QoS::AtLeastOnce, false).await });
    let Packet::Publish(m) = peer.next().await else {
        panic!("PUBLISH expected");
    };
    peer.write(Packet::PubAck(PubResponse::new(m.packet_id.expect("id"))))
        .await;
    within("marker", marker)
        .await
        .expect("ran")
        .expect("acknowledged");
    second.disconnect().await;
    drop(peer);

    // Done flows are gone: a third client sends nothing again.
    let third = Client::connect(peer_options(&listener, &store));
    let (third, mut peer) = tokio::join!(third, Peer::accept(&listener, true));
    let third = third.expect("connects");
    let nothing = tokio::time::timeout(Duration::from_millis(300), peer.next()).await;
    assert!(nothing.is_err(), "nothing to resend: {nothing:?}");
    third.disconnect().await;
}

/// [MQTT-4.3.3-9] an incoming QoS 2 message is delivered once even when the server sends
/// it again to a new client after a restart; PUBREL finds its identifier.
#[tokio::test]
async fn incoming_qos2_is_not_delivered_twice_after_a_restart() {
    let store = store_file("store-incoming");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let message = |dup: bool, packet_id: u16, payload: &'static str| {
        let mut p = Publish::new(TopicName::try_from("in/t").expect("topic"), payload);
        p.qos = QoS::ExactlyOnce;
        p.packet_id = Some(id(packet_id));
        p.dup = dup;
        Packet::Publish(p)
    };

    let first = Client::connect(peer_options(&listener, &store));
    let (first, mut peer) = tokio::join!(first, Peer::accept(&listener, false));
    let first = first.expect("connects");
    let subscribe = first.subscribe("in/#", QoS::ExactlyOnce);
    let (stream, ()) = tokio::join!(subscribe, peer.grant_subscription());
    let mut stream = stream.expect("subscribed");
    peer.write(message(false, 9, "once")).await;
    let got = within("message", stream.recv()).await.expect("delivered");
    assert_eq!(got.payload_str(), Some("once"));
    assert_eq!(peer.next().await, Packet::PubRec(PubResponse::new(id(9))));
    drop(peer);
    closed(&first).await;
    drop((first, stream));

    let second = Client::connect(peer_options(&listener, &store));
    let (second, mut peer) = tokio::join!(second, Peer::accept(&listener, true));
    let second = second.expect("connects");
    let subscribe = second.subscribe("in/#", QoS::ExactlyOnce);
    let (stream, ()) = tokio::join!(subscribe, peer.grant_subscription());
    let mut stream = stream.expect("subscribed");
    // The server did not see the PUBREC: it sends the message again.
    peer.write(message(true, 9, "once")).await;
    assert_eq!(peer.next().await, Packet::PubRec(PubResponse::new(id(9))));
    peer.write(Packet::PubRel(PubResponse::new(id(9)))).await;
    assert_eq!(
        peer.next().await,
        Packet::PubComp(PubResponse::new(id(9))),
        "PUBCOMP with Success: the identifier was kept"
    );
    peer.write(message(false, 10, "next")).await;
    let got = within("message", stream.recv()).await.expect("delivered");
    assert_eq!(
        got.payload_str(),
        Some("next"),
        "\"once\" was not delivered again"
    );
    second.disconnect().await;
}

/// Publishes made while the broker is down survive the client, and reach a subscriber of
/// the broker once it is back, exactly once.
#[tokio::test]
async fn the_offline_buffer_survives_the_client() {
    let store = store_file("store-offline");
    let first_broker = broker().await;
    let addr = first_broker.local_addr();
    let stored = || {
        options(addr, ProtocolVersion::V5)
            .client_id("offline-publisher")
            .store(&store)
    };
    let first = Client::connect(stored()).await.expect("connects");
    first_broker.shutdown().await;
    let mut state = first.state();
    within(
        "disconnected",
        state.wait_for(|s| *s == ConnectionState::Disconnected),
    )
    .await
    .expect("reported");
    for (payload, qos) in [("q1", QoS::AtLeastOnce), ("q2", QoS::ExactlyOnce)] {
        let pending = first.publish("offline/t", payload, qos, false);
        let waited = tokio::time::timeout(Duration::from_millis(100), pending).await;
        assert!(waited.is_err(), "buffered while the broker is down");
    }
    first.disconnect().await;
    drop(first);

    let second_broker = broker_on(addr.port()).await;
    let subscriber = Client::connect(options(addr, ProtocolVersion::V5))
        .await
        .expect("connects");
    let mut stream = subscriber
        .subscribe("offline/#", QoS::ExactlyOnce)
        .await
        .expect("subscribed");
    let second = Client::connect(stored()).await.expect("connects");
    for want in ["q1", "q2"] {
        let got = within("message", stream.recv()).await.expect("delivered");
        assert_eq!(got.payload_str(), Some(want));
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), stream.recv()).await;
    assert!(extra.is_err(), "exactly once: {extra:?}");
    second.disconnect().await;
    subscriber.disconnect().await;
    second_broker.shutdown().await;
}

#[tokio::test]
async fn a_store_belongs_to_one_client_id() {
    let store = store_file("store-owner");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let first = Client::connect(peer_options(&listener, &store));
    let (first, _peer) = tokio::join!(first, Peer::accept(&listener, false));
    let first = first.expect("connects");
    let err = Client::connect(peer_options(&listener, &store))
        .await
        .expect_err("the file is in use");
    assert_eq!(err.kind(), ConnectErrorKind::Store);
    first.disconnect().await;

    let other = peer_options(&listener, &store).client_id("someone-else");
    let err = Client::connect(other)
        .await
        .expect_err("another client's store");
    assert_eq!(err.kind(), ConnectErrorKind::Store);
    assert!(err.to_string().contains("\"stored\""), "{err}");
}
