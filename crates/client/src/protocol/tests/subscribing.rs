//! Subscriptions (identifiers, resubscribing, unsubscribing when the last stream goes,
//! refusals) and the messages they bring in.

use super::*;

#[test]
fn subscriptions_route_by_identifier_in_v5() {
    let (mut p, t0) = connected(ProtocolVersion::V5, ConnAck::default());
    p.subscribe(
        Token(1),
        SubKey(10),
        filter("a/+"),
        SubscriptionOptions::with_qos(QoS::AtLeastOnce),
    );
    p.subscribe(
        Token(2),
        SubKey(20),
        filter("a/#"),
        SubscriptionOptions::default(),
    );
    let sent = drain(&mut p, t0);
    let ids: Vec<_> = sent
        .iter()
        .map(|s| match s {
            Packet::Subscribe(s) => s.properties.subscription_identifier.map(NonZeroU32::get),
            other => panic!("SUBSCRIBE expected, got {other:?}"),
        })
        .collect();
    assert_eq!(ids, [Some(1), Some(2)]);
    p.handle_packet(t0, suback(1, ReasonCode::GrantedQoS1))
        .unwrap();
    p.handle_packet(t0, suback(2, ReasonCode::Success)).unwrap();
    let outcomes: Vec<_> = events(&mut p)
        .into_iter()
        .filter_map(|e| match e {
            Event::Subscribed((t, r)) => Some((t.0, r.ok())),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes,
        [(1, Some(QoS::AtLeastOnce)), (2, Some(QoS::AtMostOnce))]
    );

    // The server says which subscription matched: only that stream gets it.
    let mut m = publish("a/b", QoS::AtMostOnce);
    m.properties.subscription_identifiers = vec![NonZeroU32::new(2).unwrap()];
    p.handle_packet(t0, Packet::Publish(m)).unwrap();
    // No identifier: every matching filter.
    p.handle_packet(t0, Packet::Publish(publish("a/b", QoS::AtMostOnce)))
        .unwrap();
    p.handle_packet(t0, Packet::Publish(publish("a/b/c", QoS::AtMostOnce)))
        .unwrap();
    assert_eq!(targets(&events(&mut p)), [vec![20], vec![10, 20], vec![20]]);
}

#[test]
fn incoming_qos1_is_acknowledged_and_delivered() {
    let (mut p, t0) = connected(ProtocolVersion::V3_1_1, ConnAck::default());
    p.subscribe(
        Token(1),
        SubKey(1),
        filter("t"),
        SubscriptionOptions::with_qos(QoS::AtLeastOnce),
    );
    let sent = drain(&mut p, t0);
    let [Packet::Subscribe(s)] = sent.as_slice() else {
        panic!("SUBSCRIBE expected");
    };
    assert_eq!(
        s.properties.subscription_identifier, None,
        "3.1.1 has no identifiers"
    );
    p.handle_packet(t0, suback(1, ReasonCode::GrantedQoS1))
        .unwrap();
    let mut m = publish("t", QoS::AtLeastOnce);
    m.packet_id = Some(id(77));
    p.handle_packet(t0, Packet::Publish(m)).unwrap();
    assert!(
        drain(&mut p, t0).is_empty(),
        "PUBACK waits until the message is placed"
    );
    let delivered = events(&mut p);
    assert_eq!(targets(&delivered), [vec![1]]);
    release_acks(&mut p, delivered);
    assert_eq!(
        drain(&mut p, t0),
        [Packet::PubAck(PubResponse::new(id(77)))]
    );
}

#[test]
fn resubscribe_only_when_the_session_was_not_kept() {
    let (mut p, t0) = connected(ProtocolVersion::V5, ConnAck::default());
    p.subscribe(
        Token(1),
        SubKey(1),
        filter("x/#"),
        SubscriptionOptions::default(),
    );
    drain(&mut p, t0);
    p.handle_packet(t0, suback(1, ReasonCode::Success)).unwrap();
    events(&mut p);
    assert!(
        reconnect(&mut p, t0, true).is_empty(),
        "kept session: nothing to resend"
    );
    let again = reconnect(&mut p, t0, false);
    assert!(
        matches!(again.as_slice(), [Packet::Subscribe(s)] if s.filters[0].0.as_str() == "x/#"),
        "{again:?}"
    );
}

#[test]
fn a_subscribe_made_offline_waits_for_the_connection() {
    let (mut p, t0) = connected(ProtocolVersion::V5, ConnAck::default());
    p.connection_lost();
    p.subscribe(
        Token(5),
        SubKey(5),
        filter("late"),
        SubscriptionOptions::default(),
    );
    assert!(drain(&mut p, t0).is_empty());
    let sent = reconnect(&mut p, t0, true);
    assert!(matches!(sent.as_slice(), [Packet::Subscribe(_)]));
}

#[test]
fn dropping_the_last_stream_unsubscribes() {
    let (mut p, t0) = connected(ProtocolVersion::V5, ConnAck::default());
    p.subscribe(
        Token(1),
        SubKey(1),
        filter("s"),
        SubscriptionOptions::default(),
    );
    p.subscribe(
        Token(2),
        SubKey(2),
        filter("s"),
        SubscriptionOptions::default(),
    );
    assert_eq!(drain(&mut p, t0).len(), 1, "one SUBSCRIBE for both streams");
    p.handle_packet(t0, suback(1, ReasonCode::Success)).unwrap();
    assert_eq!(events(&mut p).len(), 2);
    p.unsubscribe(SubKey(1));
    assert!(drain(&mut p, t0).is_empty(), "a stream is left");
    p.unsubscribe(SubKey(2));
    let sent = drain(&mut p, t0);
    let [Packet::Unsubscribe(u)] = sent.as_slice() else {
        panic!("UNSUBSCRIBE expected, got {sent:?}");
    };
    assert_eq!(u.filters[0].as_str(), "s");
    let ack = UnsubAck {
        packet_id: u.packet_id,
        ..Default::default()
    };
    p.handle_packet(t0, Packet::UnsubAck(ack)).unwrap();
    p.handle_packet(t0, Packet::Publish(publish("s", QoS::AtMostOnce)))
        .unwrap();
    let mut late = publish("s", QoS::AtLeastOnce);
    late.packet_id = Some(id(9));
    p.handle_packet(t0, Packet::Publish(late)).unwrap();
    let late = events(&mut p);
    assert!(
        targets(&late).is_empty(),
        "a late message for a dropped filter is not kept"
    );
    release_acks(&mut p, late);
    assert_eq!(
        drain(&mut p, t0),
        [Packet::PubAck(PubResponse::new(id(9)))],
        "but it is acknowledged"
    );
}

#[test]
fn a_refused_subscription_fails_its_caller() {
    let (mut p, t0) = connected(ProtocolVersion::V5, ConnAck::default());
    p.subscribe(
        Token(1),
        SubKey(1),
        filter("deny"),
        SubscriptionOptions::default(),
    );
    drain(&mut p, t0);
    p.handle_packet(t0, suback(1, ReasonCode::NotAuthorized))
        .unwrap();
    let events = events(&mut p);
    let [Event::Subscribed((Token(1), Err(e)))] = events.as_slice() else {
        panic!("a refusal expected");
    };
    assert_eq!(
        e.kind(),
        crate::SubscribeErrorKind::Rejected(ReasonCode::NotAuthorized)
    );
}
