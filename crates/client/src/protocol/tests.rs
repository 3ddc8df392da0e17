//! The protocol core driven by hand, with a fake clock: time is whatever the test passes in.

use std::num::{NonZeroU16, NonZeroU32};
use std::time::{Duration, Instant};

use tern_codec::{
    ClientId, ConnAck, Connect, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QoS,
    ReasonCode, SubAck, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
};

use super::{Config, Event, Protocol, SubKey, Token};
use crate::error::{LinkError, PublishErrorKind};

const SEC: Duration = Duration::from_secs(1);

/// Held acknowledgements and the in-flight store.
mod persistence;
/// Subscriptions, and the messages they bring in.
mod subscribing;

fn config(version: ProtocolVersion) -> Config {
    Config {
        connect: Connect {
            protocol: version,
            clean_start: true,
            keep_alive: 10,
            client_id: ClientId::try_from("test").unwrap(),
            ..Default::default()
        },
        keep_alive: 10 * SEC,
        ping_timeout: Some(5 * SEC),
        connect_timeout: 3 * SEC,
        offline_buffer: 3,
        topic_aliases: true,
        persist: false,
    }
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn publish(topic: &str, qos: QoS) -> Publish {
    let mut p = Publish::new(TopicName::try_from(topic).unwrap(), "payload");
    p.qos = qos;
    p
}

fn drain(p: &mut Protocol, now: Instant) -> Vec<Packet> {
    std::iter::from_fn(|| p.poll_transmit(now)).collect()
}

fn events(p: &mut Protocol) -> Vec<Event> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

fn published(events: &[Event]) -> Vec<(u64, Result<ReasonCode, PublishErrorKind>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Published((token, result)) => {
                Some((token.0, result.as_ref().map(|r| *r).map_err(|e| e.kind())))
            }
            _ => None,
        })
        .collect()
}

/// A protocol through CONNECT and an accepting CONNACK.
fn connected(version: ProtocolVersion, ack: ConnAck) -> (Protocol, Instant) {
    let t0 = Instant::now();
    let mut p = Protocol::new(config(version), t0);
    p.start_connection(t0);
    let sent = drain(&mut p, t0);
    assert!(matches!(sent.as_slice(), [Packet::Connect(_)]));
    p.handle_packet(t0, Packet::ConnAck(ack)).unwrap();
    assert!(matches!(
        events(&mut p).as_slice(),
        [Event::Connected { .. }]
    ));
    (p, t0)
}

/// Hands every held acknowledgement back, as the connection task does once placed.
fn release_acks(p: &mut Protocol, events: Vec<Event>) {
    for event in events {
        if let Event::Message { ack: Some(ack), .. } = event {
            p.release_ack(ack);
        }
    }
}

fn reconnect(p: &mut Protocol, now: Instant, session_present: bool) -> Vec<Packet> {
    p.connection_lost();
    p.start_connection(now);
    let connect = drain(p, now);
    match connect.as_slice() {
        [Packet::Connect(c)] if c.protocol.is_v5() => assert!(!c.clean_start, "5.0 resumes"),
        [Packet::Connect(_)] => {}
        other => panic!("CONNECT expected, got {other:?}"),
    }
    let ack = ConnAck {
        session_present,
        ..Default::default()
    };
    p.handle_packet(now, Packet::ConnAck(ack)).unwrap();
    drain(p, now)
}

#[test]
fn nothing_but_connect_before_connack() {
    let t0 = Instant::now();
    let mut p = Protocol::new(config(ProtocolVersion::V5), t0);
    p.publish(Token(1), publish("a", QoS::AtMostOnce));
    assert!(drain(&mut p, t0).is_empty(), "offline: nothing is written");
    p.start_connection(t0);
    let sent = drain(&mut p, t0);
    assert_eq!(sent.len(), 1, "only CONNECT before CONNACK: {sent:?}");
    p.handle_packet(t0, Packet::ConnAck(ConnAck::default()))
        .unwrap();
    assert!(matches!(
        events(&mut p).as_slice(),
        [Event::Connected {
            session_present: false
        }]
    ));
    let sent = drain(&mut p, t0);
    assert!(matches!(sent.as_slice(), [Packet::Publish(_)]));
    assert_eq!(published(&events(&mut p)), [(1, Ok(ReasonCode::Success))]);
}

#[test]
fn connack_timeout_and_refusal() {
    let t0 = Instant::now();
    let mut p = Protocol::new(config(ProtocolVersion::V3_1_1), t0);
    p.start_connection(t0);
    drain(&mut p, t0);
    assert_eq!(p.poll_timeout(), Some(t0 + 3 * SEC));
    assert!(p.handle_timeout(t0 + 2 * SEC).is_ok());
    assert!(matches!(
        p.handle_timeout(t0 + 3 * SEC),
        Err(LinkError::ConnectTimeout)
    ));

    p.start_connection(t0);
    drain(&mut p, t0);
    let refused = ConnAck {
        reason_code: ReasonCode::NotAuthorized,
        ..Default::default()
    };
    let err = p.handle_packet(t0, Packet::ConnAck(refused)).unwrap_err();
    assert!(matches!(err, LinkError::Refused(ReasonCode::NotAuthorized)));
    assert_eq!(p.poll_timeout(), None, "offline: no deadline");
}

#[test]
fn receive_maximum_bounds_messages_in_flight_4_9_0_2() {
    let mut ack = ConnAck::default();
    ack.properties.receive_maximum = NonZeroU16::new(2);
    let (mut p, t0) = connected(ProtocolVersion::V5, ack);
    for token in 1..=3 {
        p.publish(Token(token), publish("a", QoS::AtLeastOnce));
    }
    let sent = drain(&mut p, t0);
    assert_eq!(sent.len(), 2, "the window holds two");
    p.handle_packet(t0, Packet::PubAck(PubResponse::new(id(1))))
        .unwrap();
    assert_eq!(published(&events(&mut p)), [(1, Ok(ReasonCode::Success))]);
    let sent = drain(&mut p, t0);
    let [Packet::Publish(third)] = sent.as_slice() else {
        panic!("the third PUBLISH, got {sent:?}");
    };
    assert_eq!(third.packet_id, Some(id(3)));
}

#[test]
fn qos2_handshake_and_rejections() {
    let (mut p, t0) = connected(ProtocolVersion::V5, ConnAck::default());
    p.publish(Token(1), publish("a", QoS::ExactlyOnce));
    p.publish(Token(2), publish("a", QoS::ExactlyOnce));
    assert_eq!(drain(&mut p, t0).len(), 2);
    p.handle_packet(t0, Packet::PubRec(PubResponse::new(id(1))))
        .unwrap();
    assert_eq!(drain(&mut p, t0), [Packet::PubRel(PubResponse::new(id(1)))]);
    assert!(
        published(&events(&mut p)).is_empty(),
        "not done before PUBCOMP"
    );
    p.handle_packet(t0, Packet::PubComp(PubResponse::new(id(1))))
        .unwrap();
    assert_eq!(published(&events(&mut p)), [(1, Ok(ReasonCode::Success))]);

    let mut refused = PubResponse::new(id(2));
    refused.reason_code = ReasonCode::QuotaExceeded;
    p.handle_packet(t0, Packet::PubRec(refused)).unwrap();
    assert!(
        drain(&mut p, t0).is_empty(),
        "no PUBREL after a failed PUBREC"
    );
    assert_eq!(
        published(&events(&mut p)),
        [(
            2,
            Err(PublishErrorKind::Rejected(ReasonCode::QuotaExceeded))
        )]
    );
}

#[test]
fn in_flight_is_resent_with_dup_when_the_session_is_kept_4_4_0_1() {
    let (mut p, t0) = connected(ProtocolVersion::V5, ConnAck::default());
    p.publish(Token(1), publish("a", QoS::AtLeastOnce));
    p.publish(Token(2), publish("b", QoS::ExactlyOnce));
    p.publish(Token(3), publish("c", QoS::ExactlyOnce));
    drain(&mut p, t0);
    p.handle_packet(t0, Packet::PubRec(PubResponse::new(id(3))))
        .unwrap();
    drain(&mut p, t0);

    let resent = reconnect(&mut p, t0 + SEC, true);
    assert_eq!(resent.len(), 3, "{resent:?}");
    for (packet, (n, topic)) in resent.iter().take(2).zip([(1, "a"), (2, "b")]) {
        let Packet::Publish(publish) = packet else {
            panic!("PUBLISH expected, got {packet:?}");
        };
        assert!(publish.dup, "resent with DUP");
        assert_eq!(
            (publish.packet_id, publish.topic.as_str()),
            (Some(id(n)), topic)
        );
    }
    assert_eq!(resent[2], Packet::PubRel(PubResponse::new(id(3))));
}

#[test]
fn a_lost_session_finishes_released_qos2_and_resends_the_rest() {
    let (mut p, t0) = connected(ProtocolVersion::V3_1_1, ConnAck::default());
    p.publish(Token(1), publish("a", QoS::AtLeastOnce));
    p.publish(Token(2), publish("b", QoS::ExactlyOnce));
    drain(&mut p, t0);
    p.handle_packet(t0, Packet::PubRec(PubResponse::new(id(2))))
        .unwrap();
    drain(&mut p, t0);
    let resent = reconnect(&mut p, t0 + SEC, false);
    assert!(
        matches!(resent.as_slice(), [Packet::Publish(p)] if p.dup && p.packet_id == Some(id(1)))
    );
    assert_eq!(published(&events(&mut p)), [(2, Ok(ReasonCode::Success))]);
}

#[test]
fn offline_buffer_fills_then_drains_on_connect() {
    let t0 = Instant::now();
    let mut p = Protocol::new(config(ProtocolVersion::V5), t0);
    for token in 1..=4 {
        p.publish(Token(token), publish("a", QoS::AtLeastOnce));
    }
    assert_eq!(
        published(&events(&mut p)),
        [(4, Err(PublishErrorKind::BufferFull))]
    );
    assert_eq!(p.buffered(), 3);
    p.start_connection(t0);
    drain(&mut p, t0);
    p.handle_packet(t0, Packet::ConnAck(ConnAck::default()))
        .unwrap();
    assert_eq!(drain(&mut p, t0).len(), 3);
    assert_eq!(p.buffered(), 0);
}

#[test]
fn server_limits_are_respected_3_2_2_11() {
    let mut ack = ConnAck::default();
    ack.properties.maximum_qos = Some(QoS::AtLeastOnce);
    ack.properties.retain_available = Some(false);
    ack.properties.maximum_packet_size = NonZeroU32::new(20);
    let (mut p, t0) = connected(ProtocolVersion::V5, ack);
    p.publish(Token(1), publish("a", QoS::ExactlyOnce));
    let mut retained = publish("a", QoS::AtMostOnce);
    retained.retain = true;
    p.publish(Token(2), retained);
    let mut big = publish("a", QoS::AtMostOnce);
    big.payload = vec![0; 100].into();
    p.publish(Token(3), big);
    assert!(drain(&mut p, t0).is_empty());
    assert_eq!(
        published(&events(&mut p)),
        [
            (1, Err(PublishErrorKind::QoSNotSupported)),
            (2, Err(PublishErrorKind::RetainNotSupported)),
            (3, Err(PublishErrorKind::PacketTooLarge)),
        ]
    );
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).unwrap()
}

fn suback(n: u16, code: ReasonCode) -> Packet {
    Packet::SubAck(SubAck {
        packet_id: id(n),
        reason_codes: vec![code],
        ..Default::default()
    })
}

fn targets(events: &[Event]) -> Vec<Vec<u64>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message {
                targets,
                message: Some(_),
                ..
            } => Some(targets.iter().map(|k| k.0).collect()),
            _ => None,
        })
        .collect()
}

#[test]
fn keep_alive_pings_and_detects_a_dead_connection() {
    let (mut p, t0) = connected(ProtocolVersion::V3_1_1, ConnAck::default());
    assert_eq!(p.poll_timeout(), Some(t0 + 10 * SEC));
    p.handle_timeout(t0 + 10 * SEC).unwrap();
    assert_eq!(drain(&mut p, t0 + 10 * SEC), [Packet::PingReq]);
    assert_eq!(p.poll_timeout(), Some(t0 + 15 * SEC));
    p.handle_packet(t0 + 11 * SEC, Packet::PingResp).unwrap();
    assert_eq!(p.poll_timeout(), Some(t0 + 20 * SEC));
    p.handle_timeout(t0 + 20 * SEC).unwrap();
    drain(&mut p, t0 + 20 * SEC);
    assert!(matches!(
        p.handle_timeout(t0 + 25 * SEC),
        Err(LinkError::KeepAliveTimeout)
    ));
}

#[test]
fn server_keep_alive_replaces_the_clients_3_2_2_3_14() {
    let mut ack = ConnAck::default();
    ack.properties.server_keep_alive = Some(2);
    let (p, t0) = connected(ProtocolVersion::V5, ack);
    assert_eq!(p.poll_timeout(), Some(t0 + 2 * SEC));
}

#[test]
fn disconnect_sends_disconnect_and_fails_what_waits() {
    let (mut p, t0) = connected(ProtocolVersion::V5, ConnAck::default());
    p.publish(Token(1), publish("a", QoS::AtLeastOnce));
    drain(&mut p, t0);
    p.publish(Token(2), publish("a", QoS::AtLeastOnce));
    p.disconnect();
    assert!(matches!(
        drain(&mut p, t0).as_slice(),
        [Packet::Disconnect(_)]
    ));
    let mut outcomes = published(&events(&mut p));
    outcomes.sort_by_key(|o| o.0);
    assert_eq!(
        outcomes,
        [
            (1, Err(PublishErrorKind::Closed)),
            (2, Err(PublishErrorKind::Closed))
        ]
    );
    assert!(p.is_closed());
}

#[test]
fn outgoing_topic_aliases_on_the_wire_only() {
    let mut ack = ConnAck::default();
    ack.properties.topic_alias_maximum = Some(1);
    let (mut p, t0) = connected(ProtocolVersion::V5, ack);
    p.publish(Token(1), publish("t/1", QoS::AtLeastOnce));
    p.publish(Token(2), publish("t/1", QoS::AtLeastOnce));
    let sent = drain(&mut p, t0);
    let topics: Vec<_> = sent
        .iter()
        .map(|s| match s {
            Packet::Publish(p) => (p.topic.as_str().to_owned(), p.properties.topic_alias),
            other => panic!("PUBLISH expected, got {other:?}"),
        })
        .collect();
    assert_eq!(
        topics,
        [
            ("t/1".into(), NonZeroU16::new(1)),
            (String::new(), NonZeroU16::new(1))
        ]
    );
    // Resent after a reconnect: the alias is set up again from the full topic.
    let resent = reconnect(&mut p, t0, true);
    assert!(
        matches!(&resent[0], Packet::Publish(p) if p.topic.as_str() == "t/1"),
        "{resent:?}"
    );
}

#[test]
fn v5_says_why_before_closing_on_a_protocol_error() {
    let (mut p, t0) = connected(ProtocolVersion::V5, ConnAck::default());
    let err = p
        .handle_packet(t0, Packet::ConnAck(ConnAck::default()))
        .unwrap_err();
    assert!(matches!(err, LinkError::Protocol(_)));
    let sent = drain(&mut p, t0);
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::ProtocolError),
        "{sent:?}"
    );
    let err = p.malformed(tern_codec::DecodeError::PacketTooLarge { size: 10, max: 5 });
    assert!(matches!(err, LinkError::Decode(_)));
    let sent = drain(&mut p, t0);
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PacketTooLarge),
        "{sent:?}"
    );
}
