//! Messages in flight when a connection drops are sent again on the next one: PUBLISH with
//! DUP set for those not yet acknowledged, PUBREL for QoS 2 messages past PUBREC
//! [MQTT-4.4.0-1]. The server is a TCP listener written for the test, so that it can drop
//! the connection at exactly the right moment.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::within;
use tern_client::{Backoff, Client, ConnectOptions, ProtocolVersion, QoS, ReasonCode};
use tern_codec::{decode, ConnAck, Packet, PubResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const V5: ProtocolVersion = ProtocolVersion::V5;

struct Peer {
    socket: TcpStream,
    buf: BytesMut,
}

impl Peer {
    async fn accept(listener: &TcpListener, session_present: bool) -> Peer {
        let (socket, _) = listener.accept().await.expect("accept");
        let mut peer = Peer {
            socket,
            buf: BytesMut::new(),
        };
        let Packet::Connect(connect) = peer.read().await else {
            panic!("CONNECT expected");
        };
        assert_eq!(connect.protocol, V5);
        assert_eq!(
            connect.clean_start, !session_present,
            "a reconnect asks to resume"
        );
        let ack = ConnAck {
            session_present,
            ..Default::default()
        };
        peer.write(Packet::ConnAck(ack)).await;
        peer
    }

    async fn read(&mut self) -> Packet {
        loop {
            if let Some(packet) = decode(&mut self.buf, V5, 1 << 16).expect("valid packet") {
                return packet;
            }
            let n = self.socket.read_buf(&mut self.buf).await.expect("read");
            assert!(n > 0, "client closed");
        }
    }

    async fn write(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.encode(V5, &mut out).expect("encodable");
        self.socket.write_all(&out).await.expect("write");
    }
}

#[tokio::test]
async fn in_flight_messages_are_resent_after_a_reconnect_4_4_0_1() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        // First connection: take both messages, answer only the QoS 2 one's PUBREC, and
        // drop the connection after its PUBREL.
        let mut first = Peer::accept(&listener, false).await;
        let mut qos2_id = None;
        for _ in 0..2 {
            let Packet::Publish(publish) = first.read().await else {
                panic!("PUBLISH expected");
            };
            assert!(!publish.dup);
            if publish.qos == QoS::ExactlyOnce {
                qos2_id = publish.packet_id;
            }
        }
        let qos2_id = qos2_id.expect("a QoS 2 message");
        first.write(Packet::PubRec(PubResponse::new(qos2_id))).await;
        assert_eq!(
            first.read().await,
            Packet::PubRel(PubResponse::new(qos2_id))
        );
        drop(first);

        // Second connection, session kept: the QoS 1 PUBLISH again with DUP, the PUBREL again.
        let mut second = Peer::accept(&listener, true).await;
        let Packet::Publish(again) = second.read().await else {
            panic!("the QoS 1 PUBLISH resent first");
        };
        assert!(again.dup, "resent with DUP");
        assert_eq!(
            (again.qos, again.payload.as_ref()),
            (QoS::AtLeastOnce, b"one".as_slice())
        );
        let qos1_id = again.packet_id.expect("an identifier");
        assert_eq!(
            second.read().await,
            Packet::PubRel(PubResponse::new(qos2_id))
        );
        second
            .write(Packet::PubAck(PubResponse::new(qos1_id)))
            .await;
        second
            .write(Packet::PubComp(PubResponse::new(qos2_id)))
            .await;
        // Keep the connection until the client leaves.
        let _ = second.read().await;
    });

    let options = ConnectOptions::new("127.0.0.1", port)
        .protocol(V5)
        .session_expiry(Duration::from_secs(60))
        .reconnect(Some(Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        }));
    let client = within("connect", Client::connect(options))
        .await
        .expect("connects");
    let qos1 = {
        let client = client.clone();
        tokio::spawn(async move { client.publish("r/1", "one", QoS::AtLeastOnce, false).await })
    };
    let qos2 = {
        let client = client.clone();
        tokio::spawn(async move { client.publish("r/2", "two", QoS::ExactlyOnce, false).await })
    };
    let qos1 = within("QoS 1 done", qos1).await.expect("task");
    let qos2 = within("QoS 2 done", qos2).await.expect("task");
    assert_eq!(qos1.expect("PUBACK after the resend"), ReasonCode::Success);
    assert_eq!(
        qos2.expect("PUBCOMP after the resent PUBREL"),
        ReasonCode::Success
    );
    client.disconnect().await;
    within("server done", server)
        .await
        .expect("server saw what it expected");
}
