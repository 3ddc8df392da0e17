//! Session tests with a fake clock: no sockets, no runtime.

use std::time::{Duration, Instant};

use tern_codec::{
    PacketId, PubResponse, Publish, Subscribe, SubscriptionOptions, TopicFilter, Unsubscribe,
};

use super::*;

fn limits() -> SessionLimits {
    SessionLimits {
        max_topic_length: 64,
        max_topic_levels: 8,
        send_window: 2,
        topic_alias_maximum: 4,
        ..SessionLimits::default()
    }
}

fn session(version: ProtocolVersion, keep_alive: u16, now: Instant) -> Session {
    Session::new(
        SessionState::new("c".into(), 0),
        version,
        keep_alive,
        None,
        limits(),
        now,
    )
}

fn drain(s: &mut Session) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn publish(qos: QoS, id: u16) -> Packet {
    let mut p = Publish::new("a/b".try_into().unwrap(), "x");
    p.qos = qos;
    p.packet_id = PacketId::new(id);
    Packet::Publish(p)
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

#[test]
fn qos2_duplicate_before_pubrel_is_not_forwarded_again_4_3_3_10() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 0, now);
    s.handle_packet(now, publish(QoS::ExactlyOnce, 7));
    let first = drain(&mut s);
    assert!(matches!(first[0], Action::Publish(_)));
    assert!(matches!(&first[1], Action::Send(Packet::PubRec(r)) if r.packet_id == pid(7)));
    s.handle_packet(now, publish(QoS::ExactlyOnce, 7));
    let second = drain(&mut s);
    assert_eq!(second.len(), 1, "only PUBREC again: {second:?}");
    assert!(matches!(&second[0], Action::Send(Packet::PubRec(_))));
    s.handle_packet(now, Packet::PubRel(PubResponse::new(pid(7))));
    assert!(
        matches!(&drain(&mut s)[0], Action::Send(Packet::PubComp(c)) if c.reason_code == ReasonCode::Success)
    );
    // After PUBREL the identifier is free: the same id is a new message.
    s.handle_packet(now, publish(QoS::ExactlyOnce, 7));
    assert!(matches!(drain(&mut s)[0], Action::Publish(_)));
}

#[test]
fn pubrel_for_unknown_id_answers_not_found() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 0, now);
    s.handle_packet(now, Packet::PubRel(PubResponse::new(pid(9))));
    assert!(matches!(&drain(&mut s)[0],
        Action::Send(Packet::PubComp(c)) if c.reason_code == ReasonCode::PacketIdentifierNotFound));
}

#[test]
fn qos1_publish_is_routed_then_acknowledged() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V3_1_1, 0, now);
    s.handle_packet(now, publish(QoS::AtLeastOnce, 3));
    let actions = drain(&mut s);
    assert!(matches!(actions[0], Action::Publish(_)));
    assert!(matches!(&actions[1], Action::Send(Packet::PubAck(a)) if a.packet_id == pid(3)));
}

#[test]
fn keep_alive_expires_at_one_and_a_half_times_3_1_2_22() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 10, now);
    assert_eq!(s.next_timeout(), Some(now + Duration::from_secs(15)));
    s.handle_timeout(now + Duration::from_millis(14_999));
    assert!(drain(&mut s).is_empty());
    s.handle_packet(now + Duration::from_secs(10), Packet::PingReq);
    assert!(matches!(drain(&mut s)[0], Action::Send(Packet::PingResp)));
    s.handle_timeout(now + Duration::from_secs(24));
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(now + Duration::from_secs(25));
    let actions = drain(&mut s);
    assert!(
        matches!(&actions[0], Action::Send(Packet::Disconnect(d)) if d.reason_code == ReasonCode::KeepAliveTimeout)
    );
    assert!(matches!(
        actions[1],
        Action::Close {
            publish_will: true,
            ..
        }
    ));
}

#[test]
fn outbound_window_and_resume_with_dup_4_4_0_1() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V3_1_1, 0, now);
    s.handle_packet(now, publish(QoS::ExactlyOnce, 1));
    let message = match drain(&mut s).remove(0) {
        Action::Publish(m) => m,
        other => panic!("{other:?}"),
    };
    for (qos, id) in [(QoS::AtLeastOnce, 1), (QoS::ExactlyOnce, 2)] {
        let sent = s.deliver(
            now,
            Delivery {
                message: message.clone(),
                qos,
                retain: false,
                subscription_ids: vec![],
                shared: None,
                stored: None,
            },
        );
        assert_eq!(sent.and_then(|p| p.packet_id), Some(pid(id)));
    }
    assert_eq!(s.window_free(), 0);
    assert!(drain(&mut s).is_empty(), "a delivery queues no action");
    s.handle_packet(now, Packet::PubRec(PubResponse::new(pid(2))));
    assert!(matches!(&drain(&mut s)[0], Action::Send(Packet::PubRel(r)) if r.packet_id == pid(2)));
    // Reconnect: the QoS 1 PUBLISH again with DUP, then the PUBREL, in order.
    let mut s = Session::new(
        s.into_state(),
        ProtocolVersion::V3_1_1,
        0,
        None,
        limits(),
        now,
    );
    s.resume(now);
    let actions = drain(&mut s);
    assert!(
        matches!(&actions[0], Action::Send(Packet::Publish(p)) if p.dup && p.packet_id == Some(pid(1)))
    );
    assert!(matches!(&actions[1], Action::Send(Packet::PubRel(r)) if r.packet_id == pid(2)));
    s.handle_packet(now, Packet::PubAck(PubResponse::new(pid(1))));
    s.handle_packet(now, Packet::PubComp(PubResponse::new(pid(2))));
    assert_eq!(s.window_free(), 2);
}

#[test]
fn resume_resends_within_the_new_window_4_9_0_2() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 0, now);
    s.handle_packet(now, publish(QoS::AtLeastOnce, 1));
    let message = match drain(&mut s).remove(0) {
        Action::Publish(m) => m,
        other => panic!("{other:?}"),
    };
    let delivery = Delivery {
        message,
        qos: QoS::AtLeastOnce,
        retain: false,
        subscription_ids: vec![],
        shared: None,
        stored: None,
    };
    assert!(s.deliver(now, delivery.clone()).is_some());
    assert!(s.deliver(now, delivery).is_some());
    // The next connection allows one message in flight: the second waits for the first.
    let narrow = SessionLimits {
        send_window: 1,
        ..limits()
    };
    let mut s = Session::new(s.into_state(), ProtocolVersion::V5, 0, None, narrow, now);
    s.resume(now);
    let sent = |actions: Vec<Action>| -> Vec<u16> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(Packet::Publish(p)) if p.dup => p.packet_id.map(PacketId::get),
                _ => None,
            })
            .collect()
    };
    assert_eq!(sent(drain(&mut s)), [1]);
    assert_eq!(s.window_free(), 0);
    s.handle_packet(now, Packet::PubAck(PubResponse::new(pid(1))));
    assert_eq!(sent(drain(&mut s)), [2]);
    s.handle_packet(now, Packet::PubAck(PubResponse::new(pid(2))));
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.window_free(), 1);
}

#[test]
fn second_connect_is_a_protocol_error_3_1_0_2() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 0, now);
    s.handle_packet(now, Packet::Connect(Box::default()));
    let actions = drain(&mut s);
    assert!(
        matches!(&actions[0], Action::Send(Packet::Disconnect(d)) if d.reason_code == ReasonCode::ProtocolError)
    );
    assert!(s.is_closed());
}

#[test]
fn subscribe_acks_then_asks_for_the_subscription_and_unsubscribe_reports_missing_ones() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 0, now);
    let filter = TopicFilter::try_from("a/#").unwrap();
    s.handle_packet(
        now,
        Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            properties: Default::default(),
            filters: vec![
                (
                    filter.clone(),
                    SubscriptionOptions::with_qos(QoS::AtLeastOnce),
                ),
                (
                    TopicFilter::try_from("1/2/3/4/5/6/7/8/9").unwrap(),
                    SubscriptionOptions::default(),
                ),
            ],
        }),
    );
    let actions = drain(&mut s);
    assert!(matches!(&actions[0], Action::Send(Packet::SubAck(a))
        if a.reason_codes == [ReasonCode::GrantedQoS1, ReasonCode::TopicFilterInvalid]));
    assert!(matches!(
        &actions[1],
        Action::Subscribe { existed: false, .. }
    ));
    s.handle_packet(
        now,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(2),
            properties: Default::default(),
            filters: vec![filter, TopicFilter::try_from("b").unwrap()],
        }),
    );
    let actions = drain(&mut s);
    assert!(matches!(&actions[0], Action::Unsubscribe(_)));
    assert!(matches!(&actions[1], Action::Send(Packet::UnsubAck(a))
        if a.reason_codes == [ReasonCode::Success, ReasonCode::NoSubscriptionExisted]));
}

#[test]
fn disconnect_cannot_extend_a_session_that_ends_with_the_connection_3_14_2_2() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 0, now);
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(60);
    s.handle_packet(now, Packet::Disconnect(d));
    assert!(
        matches!(&drain(&mut s)[0], Action::Send(Packet::Disconnect(d)) if d.reason_code == ReasonCode::ProtocolError)
    );
}

#[test]
fn normal_disconnect_discards_the_will_and_0x04_keeps_it_3_1_2_10() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 0, now);
    s.handle_packet(now, Packet::Disconnect(Disconnect::default()));
    assert!(matches!(
        drain(&mut s)[0],
        Action::Close {
            publish_will: false,
            ..
        }
    ));
    let mut s = session(ProtocolVersion::V5, 0, now);
    s.handle_packet(
        now,
        Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWill)),
    );
    assert!(matches!(
        drain(&mut s)[0],
        Action::Close {
            publish_will: true,
            ..
        }
    ));
}

fn aliased(topic: &str, alias: u16, qos: QoS, id: u16) -> Packet {
    let mut p = Publish::new(TopicName::default(), "x");
    if !topic.is_empty() {
        p.topic = topic.try_into().unwrap();
    }
    p.properties.topic_alias = NonZeroU16::new(alias);
    p.qos = qos;
    p.packet_id = PacketId::new(id);
    Packet::Publish(p)
}

fn published_topic(actions: &[Action]) -> String {
    match &actions[0] {
        Action::Publish(m) => m.topic.to_string(),
        other => panic!("expected a publish, got {other:?}"),
    }
}

#[test]
fn inbound_topic_alias_sets_then_stands_for_the_topic_3_3_2_10() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 0, now);
    s.handle_packet(now, aliased("a/b", 1, QoS::AtMostOnce, 0));
    assert_eq!(published_topic(&drain(&mut s)), "a/b");
    s.handle_packet(now, aliased("", 1, QoS::AtMostOnce, 0));
    let actions = drain(&mut s);
    assert_eq!(published_topic(&actions), "a/b");
    assert!(matches!(&actions[0], Action::Publish(m) if m.properties.topic_alias.is_none()));
}

#[test]
fn unknown_or_too_large_topic_alias_is_a_violation_3_3_2_9() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 0, now);
    s.handle_packet(now, aliased("a", 5, QoS::AtMostOnce, 0));
    assert!(matches!(&drain(&mut s)[0],
        Action::Send(Packet::Disconnect(d)) if d.reason_code == ReasonCode::TopicAliasInvalid));
    let mut s = session(ProtocolVersion::V5, 0, now);
    s.handle_packet(now, aliased("", 2, QoS::AtMostOnce, 0));
    assert!(matches!(&drain(&mut s)[0],
        Action::Send(Packet::Disconnect(d)) if d.reason_code == ReasonCode::ProtocolError));
}

#[test]
fn receive_maximum_exceeded_by_unreleased_qos2_3_3_4_7() {
    let now = Instant::now();
    let mut s = Session::new(
        SessionState::new("c".into(), 0),
        ProtocolVersion::V5,
        0,
        None,
        SessionLimits {
            receive_maximum: 2,
            ..limits()
        },
        now,
    );
    s.handle_packet(now, publish(QoS::ExactlyOnce, 1));
    s.handle_packet(now, publish(QoS::ExactlyOnce, 2));
    drain(&mut s);
    s.handle_packet(now, publish(QoS::ExactlyOnce, 3));
    assert!(matches!(&drain(&mut s)[0],
        Action::Send(Packet::Disconnect(d)) if d.reason_code == ReasonCode::ReceiveMaximumExceeded));
}

#[test]
fn qos_above_maximum_qos_is_refused_3_2_2_11() {
    let now = Instant::now();
    let mut s = Session::new(
        SessionState::new("c".into(), 0),
        ProtocolVersion::V5,
        0,
        None,
        SessionLimits {
            maximum_qos: QoS::AtLeastOnce,
            ..limits()
        },
        now,
    );
    s.handle_packet(now, publish(QoS::ExactlyOnce, 1));
    assert!(matches!(&drain(&mut s)[0],
        Action::Send(Packet::Disconnect(d)) if d.reason_code == ReasonCode::QoSNotSupported));
}

#[test]
fn payload_marked_utf8_that_is_not_is_refused_with_0x99() {
    let now = Instant::now();
    let mut s = Session::new(
        SessionState::new("c".into(), 0),
        ProtocolVersion::V5,
        0,
        None,
        SessionLimits {
            check_payload_format: true,
            ..limits()
        },
        now,
    );
    let mut p = Publish::new("a".try_into().unwrap(), vec![0xFFu8, 0xFE]);
    p.properties.payload_format_indicator = Some(true);
    p.qos = QoS::AtLeastOnce;
    p.packet_id = PacketId::new(4);
    s.handle_packet(now, Packet::Publish(p));
    let actions = drain(&mut s);
    assert_eq!(actions.len(), 1, "not routed: {actions:?}");
    assert!(matches!(&actions[0],
        Action::Send(Packet::PubAck(a)) if a.reason_code == ReasonCode::PayloadFormatInvalid));
}

fn routed_message(s: &mut Session, now: Instant, expiry: Option<u32>) -> std::sync::Arc<Message> {
    let mut p = Publish::new("a/b".try_into().unwrap(), "payload");
    p.properties.message_expiry_interval = expiry;
    s.handle_packet(now, Packet::Publish(p));
    match drain(s).remove(0) {
        Action::Publish(m) => m,
        other => panic!("{other:?}"),
    }
}

fn delivery(message: std::sync::Arc<Message>) -> Delivery {
    Delivery {
        message,
        qos: QoS::AtMostOnce,
        retain: false,
        subscription_ids: vec![],
        shared: None,
        stored: None,
    }
}

#[test]
fn message_expiry_counts_down_and_expired_messages_are_dropped_3_3_2_5() {
    let now = Instant::now();
    let mut s = session(ProtocolVersion::V5, 0, now);
    let message = routed_message(&mut s, now, Some(10));
    let sent = s.deliver(now + Duration::from_secs(3), delivery(message.clone()));
    assert_eq!(sent.unwrap().properties.message_expiry_interval, Some(7));
    assert!(s
        .deliver(now + Duration::from_secs(10), delivery(message))
        .is_none());
    assert!(drain(&mut s).is_empty());
}

#[test]
fn outbound_topic_alias_when_the_client_allows_3_3_2_12() {
    let now = Instant::now();
    let mut s = Session::new(
        SessionState::new("c".into(), 0),
        ProtocolVersion::V5,
        0,
        None,
        SessionLimits {
            client_topic_alias_maximum: 1,
            ..limits()
        },
        now,
    );
    let message = routed_message(&mut s, now, None);
    let first = s.deliver(now, delivery(message.clone())).unwrap();
    let second = s.deliver(now, delivery(message)).unwrap();
    assert_eq!(first.topic.as_str(), "a/b");
    assert_eq!(first.properties.topic_alias, NonZeroU16::new(1));
    assert!(second.topic.is_empty());
    assert_eq!(second.properties.topic_alias, NonZeroU16::new(1));
}

#[test]
fn packets_over_the_clients_maximum_packet_size_are_not_sent_3_1_2_24() {
    let now = Instant::now();
    let mut s = Session::new(
        SessionState::new("c".into(), 0),
        ProtocolVersion::V5,
        0,
        None,
        SessionLimits {
            client_maximum_packet_size: Some(12),
            ..limits()
        },
        now,
    );
    let message = routed_message(&mut s, now, None);
    let mut qos1 = delivery(message);
    qos1.qos = QoS::AtLeastOnce;
    assert!(s.deliver(now, qos1).is_none());
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.window_free(), 2, "no packet id or window place taken");
}

/// Sessions whose limits are the same share one copy of them (an idle connection should be
/// small); sessions with other limits get their own, each with the window clamped.
#[test]
fn sessions_with_the_same_limits_share_them() {
    let now = Instant::now();
    let a = session(ProtocolVersion::V5, 0, now);
    let b = session(ProtocolVersion::V5, 0, now);
    assert!(Arc::ptr_eq(&a.limits, &b.limits), "same limits, one copy");
    let other = Session::new(
        SessionState::new("d".into(), 0),
        ProtocolVersion::V5,
        0,
        None,
        SessionLimits {
            send_window: 0,
            ..limits()
        },
        now,
    );
    assert!(
        !Arc::ptr_eq(&a.limits, &other.limits),
        "other limits, own copy"
    );
    assert_eq!(other.limits.send_window, 1, "the window is at least 1");
}
