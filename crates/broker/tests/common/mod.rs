//! The harness every integration test shares: a broker started in-process on
//! `127.0.0.1:0`, and [`Client`], a test client that speaks raw MQTT over a real TCP socket
//! and fails the test, naming what it waited for, when the broker does not answer in time.
//!
//! Each test file is its own crate and uses a different part of this module.
#![allow(dead_code, unused_macros)]

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::BytesMut;
use tern_broker::{Broker, BrokerHandle, Config};
use tern_codec::{
    ConnAck, Connect, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode,
    SubAck, Subscribe, SubscriptionOptions, TopicFilter, UnsubAck, Unsubscribe,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

mod packets;
pub(crate) use packets::*;

/// How long the client waits for something the broker must send.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(3);
/// How long "nothing arrives" is watched for.
pub(crate) const QUIET: Duration = Duration::from_millis(200);
/// Largest packet the test client accepts.
const MAX_PACKET: usize = 16 * 1024 * 1024;

/// Defines, for each `async fn case(version: ProtocolVersion)` listed, one test per protocol
/// version: `v3_1_1::case` and `v5::case`.
macro_rules! per_version {
    ($($case:ident),+ $(,)?) => {
        mod v3_1_1 {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(tern_codec::ProtocolVersion::V3_1_1).await;
                }
            )+
        }
        mod v5 {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(tern_codec::ProtocolVersion::V5).await;
                }
            )+
        }
    };
}

/// A configuration for tests: one listener on 127.0.0.1, port chosen by the system, no
/// `$SYS`, nothing on disk (`persistence.rs` gives each test its own data directory).
pub(crate) fn config() -> Config {
    let mut config = Config::default();
    config.listeners[0].bind = Ipv4Addr::LOCALHOST.into();
    config.listeners[0].port = 0;
    config.sys_interval = 0;
    config.persistence = false;
    config
}

/// Starts a broker with `config` on the current runtime.
pub(crate) async fn start(config: Config) -> BrokerHandle {
    Broker::start(config).await.expect("broker starts")
}

/// Starts a broker with the test configuration.
pub(crate) async fn broker() -> BrokerHandle {
    start(config()).await
}

/// Waits until `done` holds, checking every 10 ms for at most [`TIMEOUT`]: for broker
/// state that has no packet to wait for (a session handed back after its socket closed).
pub(crate) async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the broker holds exactly `online` connected sessions.
pub(crate) async fn wait_online(broker: &BrokerHandle, online: usize) {
    let registry = &broker.hub().registry;
    wait_until(&format!("{online} sessions are online"), || {
        registry.counts().0 == online
    })
    .await;
}

/// What a read brought. (Both enums live only between a read and its caller, so the size
/// of an unboxed packet costs nothing.)
#[allow(clippy::large_enum_variant)]
enum Event {
    Packet(Packet),
    Closed,
}

/// What a read brought, before awaited PUBRELs are filtered out.
#[allow(clippy::large_enum_variant)]
enum Raw {
    Event(Event),
    /// An awaited PUBREL, answered with PUBCOMP.
    Released,
}

/// A test client over one TCP connection. Every wait is bounded by [`TIMEOUT`].
pub(crate) struct Client {
    stream: TcpStream,
    buf: BytesMut,
    /// The protocol version packets are encoded and decoded with.
    pub(crate) version: ProtocolVersion,
    /// QoS 2 messages received and acknowledged with PUBREC, oldest first.
    awaiting_pubrel: Vec<PacketId>,
}

impl Client {
    /// Opens a TCP connection and sends nothing.
    pub(crate) async fn open(addr: SocketAddr, version: ProtocolVersion) -> Client {
        let stream = timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("TCP connect timed out")
            .expect("TCP connect");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        Client {
            stream,
            buf: BytesMut::with_capacity(4096),
            version,
            awaiting_pubrel: Vec::new(),
        }
    }

    /// Opens a TCP connection whose receive buffer is as small as the system allows, for a
    /// client that is meant to fall behind.
    pub(crate) async fn open_small(addr: SocketAddr, version: ProtocolVersion) -> Client {
        let socket = TcpSocket::new_v4().expect("TCP socket");
        socket.set_recv_buffer_size(4096).expect("set SO_RCVBUF");
        let stream = timeout(TIMEOUT, socket.connect(addr))
            .await
            .expect("TCP connect timed out")
            .expect("TCP connect");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        Client {
            stream,
            buf: BytesMut::with_capacity(4096),
            version,
            awaiting_pubrel: Vec::new(),
        }
    }

    /// Sends `connect` on a fresh connection; `None` if the broker closes it instead of
    /// answering (or before the CONNECT could be written).
    pub(crate) async fn try_connect(
        addr: SocketAddr,
        connect: Connect,
    ) -> Option<(Client, ConnAck)> {
        let mut client = Client::open(addr, connect.protocol).await;
        let bytes = encode(&Packet::Connect(Box::new(connect)), client.version);
        timeout(TIMEOUT, client.stream.write_all(&bytes))
            .await
            .expect("write timed out")
            .ok()?;
        match client.next_event(TIMEOUT).await {
            Some(Event::Packet(Packet::ConnAck(connack))) => Some((client, connack)),
            Some(Event::Closed) => None,
            Some(Event::Packet(p)) => panic!("expected CONNACK, got {p:?}"),
            None => panic!("no CONNACK and no close within {TIMEOUT:?}"),
        }
    }

    /// Connects with a clean session and expects CONNACK Success.
    pub(crate) async fn connect(addr: SocketAddr, version: ProtocolVersion, id: &str) -> Client {
        let (client, connack) = Client::connect_with(addr, connect_packet(version, id, true)).await;
        assert_eq!(
            connack.reason_code,
            ReasonCode::Success,
            "{version} CONNACK for {id}"
        );
        client
    }

    /// Sends `connect` and returns the CONNACK, whatever it says.
    pub(crate) async fn connect_with(addr: SocketAddr, connect: Connect) -> (Client, ConnAck) {
        let mut client = Client::open(addr, connect.protocol).await;
        client.send(Packet::Connect(Box::new(connect))).await;
        let connack = client.recv_connack().await;
        (client, connack)
    }

    /// Expects a CONNACK.
    pub(crate) async fn recv_connack(&mut self) -> ConnAck {
        match self.recv().await {
            Packet::ConnAck(connack) => connack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Writes raw bytes.
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        timeout(TIMEOUT, self.stream.write_all(bytes))
            .await
            .expect("write timed out")
            .expect("write to the broker");
    }

    /// Encodes and writes a packet.
    pub(crate) async fn send(&mut self, packet: Packet) {
        let bytes = encode(&packet, self.version);
        self.send_raw(&bytes).await;
    }

    /// The next packet or close within `wait`; answers awaited PUBRELs on the way.
    async fn next_event(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.next_raw_event(deadline).await {
                Some(Raw::Released) => {}
                Some(Raw::Event(event)) => return Some(event),
                None => return None,
            }
        }
    }

    async fn next_raw_event(&mut self, deadline: tokio::time::Instant) -> Option<Raw> {
        loop {
            match tern_codec::decode(&mut self.buf, self.version, MAX_PACKET) {
                Ok(Some(Packet::PubRel(rel))) if !self.awaiting_pubrel.is_empty() => {
                    let first = self.awaiting_pubrel.remove(0);
                    assert_eq!(rel.packet_id, first, "[MQTT-4.3.3-4, MQTT-4.6.0-4] PUBREL");
                    self.send(Packet::PubComp(PubResponse::new(first))).await;
                    return Some(Raw::Released);
                }
                Ok(Some(packet)) => return Some(Raw::Event(Event::Packet(packet))),
                Ok(None) => {}
                Err(e) => panic!("the broker sent a malformed packet: {e}"),
            }
            self.buf.reserve(4096);
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf));
            match read.await {
                Err(_) => return None,
                Ok(Ok(0)) => return Some(Raw::Event(Event::Closed)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) if is_reset(&e) => return Some(Raw::Event(Event::Closed)),
                Ok(Err(e)) => panic!("read from the broker: {e}"),
            }
        }
    }

    /// The next packet; fails if none arrives within [`TIMEOUT`] or the connection closes.
    pub(crate) async fn recv(&mut self) -> Packet {
        match self.next_event(TIMEOUT).await {
            Some(Event::Packet(packet)) => packet,
            Some(Event::Closed) => panic!(
                "{}: connection closed while a packet was expected",
                self.version
            ),
            None => panic!("{}: no packet within {TIMEOUT:?}", self.version),
        }
    }

    /// The next packet if one arrives within `wait`; fails if the connection closes.
    pub(crate) async fn recv_within(&mut self, wait: Duration) -> Option<Packet> {
        match self.next_event(wait).await {
            Some(Event::Packet(packet)) => Some(packet),
            Some(Event::Closed) => panic!("{}: connection closed", self.version),
            None => None,
        }
    }

    /// Exactly these bytes next (for byte-literal checks of what the broker sends).
    pub(crate) async fn expect_bytes(&mut self, expected: &[u8], rule: &str) {
        while self.buf.len() < expected.len() {
            let read = timeout(TIMEOUT, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Ok(Ok(n)) if n > 0 => {}
                other => panic!(
                    "{rule}: expected {expected:02x?}, got {:02x?} then {other:?}",
                    &self.buf[..]
                ),
            }
        }
        let got = self.buf.split_to(expected.len());
        assert_eq!(&got[..], expected, "{rule}: bytes from the broker");
    }

    /// Expects the broker to close the connection without sending anything first.
    pub(crate) async fn expect_closed(&mut self, rule: &str) {
        match self.next_event(TIMEOUT).await {
            Some(Event::Closed) => {}
            Some(Event::Packet(p)) => panic!("{rule}: expected the connection closed, got {p:?}"),
            None => panic!("{rule}: connection still open after {TIMEOUT:?}"),
        }
    }

    /// Expects the broker to end the connection: MQTT 5.0 with a DISCONNECT carrying
    /// `reason` first, MQTT 3.x by closing it.
    pub(crate) async fn expect_disconnect(&mut self, reason: ReasonCode, rule: &str) {
        if self.version.is_v5() {
            match self.next_event(TIMEOUT).await {
                Some(Event::Packet(Packet::Disconnect(d))) => {
                    assert_eq!(d.reason_code, reason, "{rule}: DISCONNECT reason code")
                }
                Some(Event::Packet(p)) => {
                    panic!("{rule}: expected DISCONNECT {reason:?}, got {p:?}")
                }
                Some(Event::Closed) => panic!("{rule}: closed without DISCONNECT {reason:?}"),
                None => panic!("{rule}: no DISCONNECT within {TIMEOUT:?}"),
            }
        }
        self.expect_closed(rule).await;
    }

    /// Expects no packet, and no close, for `wait`.
    pub(crate) async fn expect_nothing_for(&mut self, wait: Duration, rule: &str) {
        match self.next_event(wait).await {
            None => {}
            Some(Event::Packet(p)) => panic!("{rule}: expected nothing, got {p:?}"),
            Some(Event::Closed) => panic!("{rule}: expected nothing, the connection closed"),
        }
    }

    /// Expects no packet, and no close, for [`QUIET`].
    pub(crate) async fn expect_nothing(&mut self, rule: &str) {
        self.expect_nothing_for(QUIET, rule).await;
    }

    /// PINGREQ, then PINGRESP: everything sent before has been handled by the broker.
    pub(crate) async fn ping(&mut self) {
        self.send(Packet::PingReq).await;
        match self.recv().await {
            Packet::PingResp => {}
            other => panic!("expected PINGRESP, got {other:?}"),
        }
    }

    /// Connects with a clean session and subscribes to each filter at its QoS.
    pub(crate) async fn subscriber(
        addr: SocketAddr,
        version: ProtocolVersion,
        id: &str,
        filters: &[(&str, QoS)],
    ) -> Client {
        let mut client = Client::connect(addr, version, id).await;
        for (filter, qos) in filters {
            client.subscribe(filter, *qos).await;
        }
        client
    }

    /// Sends a SUBSCRIBE and returns its SUBACK, checking the packet identifier.
    pub(crate) async fn subscribe_with(&mut self, subscribe: Subscribe) -> SubAck {
        let id = subscribe.packet_id;
        self.send(Packet::Subscribe(subscribe)).await;
        match self.recv().await {
            Packet::SubAck(suback) => {
                assert_eq!(
                    suback.packet_id, id,
                    "[MQTT-3.8.4-2] SUBACK packet identifier"
                );
                suback
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Subscribes to one filter at `qos` and expects it granted.
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.subscribe_id(filter, qos, None).await;
    }

    /// Subscribes to one filter at `qos` with an MQTT 5.0 Subscription Identifier.
    pub(crate) async fn subscribe_id(&mut self, filter: &str, qos: QoS, id: Option<u32>) {
        let mut packet = subscribe_packet(1, filter, SubscriptionOptions::with_qos(qos));
        packet.properties.subscription_identifier = id.and_then(NonZeroU32::new);
        let suback = self.subscribe_with(packet).await;
        assert_eq!(suback.reason_codes, [granted(qos)], "SUBACK for {filter}");
    }

    /// Unsubscribes and returns the UNSUBACK.
    pub(crate) async fn unsubscribe(&mut self, packet_id: u16, filters: &[&str]) -> UnsubAck {
        let filters = filters
            .iter()
            .map(|f| TopicFilter::try_from(*f).expect("valid filter"))
            .collect();
        let id = pid(packet_id);
        self.send(Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            properties: Default::default(),
            filters,
        }))
        .await;
        match self.recv().await {
            Packet::UnsubAck(ack) => {
                assert_eq!(
                    ack.packet_id, id,
                    "[MQTT-3.10.4-5] UNSUBACK packet identifier"
                );
                ack
            }
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    }

    /// Publishes and completes the QoS flow as the sender: PUBACK for QoS 1; PUBREC, PUBREL,
    /// PUBCOMP for QoS 2. For QoS 0 a PINGREQ round trip makes sure it was handled.
    pub(crate) async fn publish(&mut self, publish: Publish) {
        let (qos, id) = (publish.qos, publish.packet_id);
        self.send(Packet::Publish(publish)).await;
        match (qos, id) {
            (QoS::AtMostOnce, _) => self.ping().await,
            (QoS::AtLeastOnce, Some(id)) => match self.recv().await {
                Packet::PubAck(ack) if ack.packet_id == id => {}
                other => panic!("[MQTT-4.3.2-4] expected PUBACK {id:?}, got {other:?}"),
            },
            (QoS::ExactlyOnce, Some(id)) => {
                match self.recv().await {
                    Packet::PubRec(rec) if rec.packet_id == id => {}
                    other => panic!("[MQTT-4.3.3-8] expected PUBREC {id:?}, got {other:?}"),
                }
                self.send(Packet::PubRel(PubResponse::new(id))).await;
                match self.recv().await {
                    Packet::PubComp(comp) if comp.packet_id == id => {}
                    other => panic!("[MQTT-4.3.3-11] expected PUBCOMP {id:?}, got {other:?}"),
                }
            }
            _ => panic!("QoS 1 and 2 need a packet identifier"),
        }
    }

    /// Publishes `payload` to `topic` at `qos` (packet identifier 1) and completes the flow.
    pub(crate) async fn publish_simple(&mut self, topic: &str, payload: &str, qos: QoS) {
        self.publish(publish(topic, payload, qos, 1)).await;
    }

    /// Expects a PUBLISH.
    pub(crate) async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Acknowledges a received PUBLISH as the receiver: PUBACK for QoS 1, PUBREC for QoS 2.
    /// The broker's PUBREL for a QoS 2 message is answered with PUBCOMP whenever it arrives
    /// (other PUBLISHes may come first); it must come in the order of the PUBRECs
    /// [MQTT-4.6.0-4].
    pub(crate) async fn ack(&mut self, publish: &Publish) {
        match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, None) => {}
            (QoS::AtLeastOnce, Some(id)) => self.send(Packet::PubAck(PubResponse::new(id))).await,
            (QoS::ExactlyOnce, Some(id)) => {
                self.send(Packet::PubRec(PubResponse::new(id))).await;
                self.awaiting_pubrel.push(id);
            }
            _ => panic!("[MQTT-2.2.1-2] packet identifier and QoS disagree: {publish:?}"),
        }
    }

    /// Receives `n` PUBLISHes, acknowledging each as it comes, then waits until every
    /// QoS 2 exchange is complete.
    pub(crate) async fn receive_messages(&mut self, n: usize) -> Vec<Publish> {
        let mut received = Vec::with_capacity(n);
        for _ in 0..n {
            let publish = self.recv_publish().await;
            self.ack(&publish).await;
            received.push(publish);
        }
        self.settle().await;
        received
    }

    /// Waits for the PUBREL of every QoS 2 message acknowledged with [`Client::ack`].
    pub(crate) async fn settle(&mut self) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while !self.awaiting_pubrel.is_empty() {
            match self.next_raw_event(deadline).await {
                Some(Raw::Released) => {}
                Some(Raw::Event(Event::Packet(p))) => panic!("expected PUBREL, got {p:?}"),
                Some(Raw::Event(Event::Closed)) => panic!("closed while PUBREL was expected"),
                None => panic!("[MQTT-4.3.3-4] no PUBREL for {:?}", self.awaiting_pubrel),
            }
        }
    }

    /// Expects a PUBLISH with this topic and payload, acknowledges it, and returns it.
    pub(crate) async fn expect_message(
        &mut self,
        topic: &str,
        payload: &str,
        rule: &str,
    ) -> Publish {
        let publish = self.recv_publish().await;
        assert_eq!(publish.topic.as_str(), topic, "{rule}: topic");
        assert_eq!(text(&publish), payload, "{rule}: payload on {topic}");
        self.ack(&publish).await;
        publish
    }

    /// Sends DISCONNECT (normal) and waits for the broker to close the connection.
    pub(crate) async fn disconnect(mut self) {
        self.send(Packet::Disconnect(Default::default())).await;
        self.expect_closed("the broker closes the connection after DISCONNECT")
            .await;
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}
