//! The core's side of "nothing acknowledged is dropped" (acknowledgements held until the
//! connection task has placed the message) and of the in-flight store (restore, journal).

use super::*;

#[test]
fn held_acks_go_only_on_their_own_connection_and_in_order_4_6_0_2() {
    let (mut p, t0) = connected(ProtocolVersion::V5, ConnAck::default());
    for n in [5, 6] {
        let mut m = publish("nobody/listens", QoS::AtLeastOnce);
        m.packet_id = Some(id(n));
        p.handle_packet(t0, Packet::Publish(m)).unwrap();
    }
    let mut repeat = publish("nobody/listens", QoS::ExactlyOnce);
    repeat.packet_id = Some(id(7));
    p.handle_packet(t0, Packet::Publish(repeat.clone()))
        .unwrap();
    repeat.dup = true;
    p.handle_packet(t0, Packet::Publish(repeat)).unwrap();
    let first = events(&mut p);
    // Unsubscribed-to QoS 1/2 messages are kept (for a later subscribe), with no target.
    assert_eq!(
        targets(&first),
        [vec![], vec![], vec![]],
        "the repeat is not"
    );
    release_acks(&mut p, first);
    assert_eq!(
        drain(&mut p, t0),
        [
            Packet::PubAck(PubResponse::new(id(5))),
            Packet::PubAck(PubResponse::new(id(6))),
            Packet::PubRec(PubResponse::new(id(7))),
            Packet::PubRec(PubResponse::new(id(7))),
        ]
    );

    let mut m = publish("nobody/listens", QoS::AtLeastOnce);
    m.packet_id = Some(id(8));
    p.handle_packet(t0, Packet::Publish(m)).unwrap();
    let held = events(&mut p);
    p.connection_lost();
    reconnect(&mut p, t0, true);
    release_acks(&mut p, held);
    assert!(
        drain(&mut p, t0).is_empty(),
        "an acknowledgement from a lost connection is not sent"
    );

    // QoS 0 with no subscription is not kept.
    p.handle_packet(
        t0,
        Packet::Publish(publish("nobody/listens", QoS::AtMostOnce)),
    )
    .unwrap();
    assert!(targets(&events(&mut p)).is_empty());
}

#[test]
fn a_restored_store_resends_in_order_and_journals_completion_4_4_0_1() {
    use crate::store::{Outgoing, OutgoingState, Restored, StoreOp};
    let t0 = Instant::now();
    let mut cfg = config(ProtocolVersion::V5);
    cfg.persist = true;
    let mut p = Protocol::new(cfg, t0);
    let record = |state, payload: &str, qos| {
        let mut publish = publish("r", qos);
        publish.payload = payload.to_owned().into();
        Outgoing { state, publish }
    };
    p.restore(Restored {
        outgoing: vec![
            (4, record(OutgoingState::Sent(id(3)), "a", QoS::AtLeastOnce)),
            (
                5,
                record(OutgoingState::Released(id(4)), "b", QoS::ExactlyOnce),
            ),
            (6, record(OutgoingState::Queued, "c", QoS::AtLeastOnce)),
        ],
        incoming: vec![id(9)],
    });
    p.start_connection(t0);
    drain(&mut p, t0);
    let ack = ConnAck {
        session_present: true,
        ..Default::default()
    };
    p.handle_packet(t0, Packet::ConnAck(ack)).unwrap();
    let sent = drain(&mut p, t0);
    let [Packet::Publish(a), Packet::PubRel(b), Packet::Publish(c)] = sent.as_slice() else {
        panic!("PUBLISH, PUBREL, PUBLISH expected: {sent:?}");
    };
    assert_eq!((a.dup, a.packet_id), (true, Some(id(3))));
    assert_eq!(b.packet_id, id(4));
    assert!(!c.dup, "never sent before");
    assert!(
        c.packet_id.is_some_and(|i| i != id(3) && i != id(4)),
        "restored identifiers stay taken"
    );
    let c_id = c.packet_id.unwrap();
    let ops = p.take_store_ops();
    assert!(
        matches!(ops.as_slice(), [StoreOp::PutOutgoing(6, o)] if o.state == OutgoingState::Sent(c_id)),
        "{ops:?}"
    );
    p.handle_packet(t0, Packet::PubAck(PubResponse::new(id(3))))
        .unwrap();
    p.handle_packet(t0, Packet::PubComp(PubResponse::new(id(4))))
        .unwrap();
    p.handle_packet(t0, Packet::PubRel(PubResponse::new(id(9))))
        .unwrap();
    assert_eq!(
        p.take_store_ops(),
        [
            StoreOp::RemoveOutgoing(4),
            StoreOp::RemoveOutgoing(5),
            StoreOp::RemoveIncoming(id(9))
        ]
    );
    assert_eq!(
        drain(&mut p, t0),
        [Packet::PubComp(PubResponse::new(id(9)))],
        "the restored identifier is known"
    );
}
