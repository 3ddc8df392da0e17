//! Session tests with a fake clock: no sockets, no runtime.

use std::time::{Duration, Instant};

use tern_codec::{PacketId, Subscribe, SubscriptionOptions, TopicFilter};

use super::*;

const LIMITS: SessionLimits = SessionLimits {
    max_topic_length: 64,
    max_topic_levels: 8,
    send_window: 2,
};

fn session(version: ProtocolVersion, keep_alive: u16, now: Instant) -> Session {
    Session::new(
        SessionState::new("c".into(), 0),
        version,
        keep_alive,
        None,
        LIMITS,
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
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        s.deliver(Delivery {
            message: message.clone(),
            qos,
            retain: false,
            subscription_ids: vec![],
        });
    }
    assert_eq!(s.window_free(), 0);
    drain(&mut s);
    s.handle_packet(now, Packet::PubRec(PubResponse::new(pid(2))));
    assert!(matches!(&drain(&mut s)[0], Action::Send(Packet::PubRel(r)) if r.packet_id == pid(2)));
    // Reconnect: the QoS 1 PUBLISH again with DUP, then the PUBREL, in order.
    let mut s = Session::new(
        s.into_state(),
        ProtocolVersion::V3_1_1,
        0,
        None,
        LIMITS,
        now,
    );
    s.resume();
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
