//! MQTT 5.0 byte literals from PUBACK to AUTH (§3.4-§3.15).

use super::*;

#[test]
fn puback_short_and_long_forms_3_4_2_1() {
    // Success without properties: Remaining Length 2.
    both_ways(
        &[0x40, 0x02, 0x00, 0x01],
        Packet::PubAck(PubResponse::new(pid(1))),
    );
    // The same, spelled out: a Success reason code, then an empty property list. If the
    // Remaining Length is less than 4 there is no property length (§3.4.2.2.1).
    decodes_to(
        &[0x40, 0x03, 0x00, 0x01, 0x00],
        Packet::PubAck(PubResponse::new(pid(1))),
    );
    decodes_to(
        &[0x40, 0x04, 0x00, 0x01, 0x00, 0x00],
        Packet::PubAck(PubResponse::new(pid(1))),
    );
    // A reason code without properties.
    both_ways(
        &[0x40, 0x03, 0x00, 0x01, 0x10],
        Packet::PubAck(ack(1, 0x10)),
    );
    decodes_to(
        &[0x40, 0x04, 0x00, 0x01, 0x10, 0x00],
        Packet::PubAck(ack(1, 0x10)),
    );
}

#[test]
fn puback_properties_3_4_2_2() {
    let bytes = [
        0x40, 0x12, 0x00, 0x01, 0x87, // Not authorized
        0x0E, // property length 14
        0x1F, 0x00, 0x04, b'd', b'e', b'n', b'y', // reason string
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
    ];
    let mut packet = ack(1, 0x87);
    packet.properties.reason_string = Some(s("deny"));
    packet.properties.user_properties = vec![user("k", "v")];
    both_ways(&bytes, Packet::PubAck(packet));
    // Success with a property must write the reason code before the property length.
    let mut packet = PubResponse::new(pid(1));
    packet.properties.reason_string = Some(s("x"));
    let bytes = [0x40, 0x08, 0x00, 0x01, 0x00, 0x04, 0x1F, 0x00, 0x01, b'x'];
    both_ways(&bytes, Packet::PubAck(packet));
}

#[test]
fn puback_reason_codes_3_4_2_1() {
    for byte in [0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99] {
        both_ways(
            &[0x40, 0x03, 0x00, 0x02, byte],
            Packet::PubAck(ack(2, byte)),
        );
    }
}

#[test]
fn pubrec_pubrel_pubcomp_3_5_to_3_7() {
    // PUBREC and PUBCOMP have flags 0000, PUBREL 0010 [MQTT-3.6.1-1]. Each in its short form,
    // with a reason code alone, and with a reason code and properties.
    let kinds: [(u8, u8, MakePacket); 3] = [
        (0x50, 0x97, Packet::PubRec),  // Quota exceeded
        (0x62, 0x92, Packet::PubRel),  // Packet Identifier not found
        (0x70, 0x92, Packet::PubComp), // Packet Identifier not found
    ];
    for (first, code, make) in kinds {
        both_ways(&[first, 0x02, 0x00, 0x07], make(PubResponse::new(pid(7))));
        both_ways(&[first, 0x03, 0x00, 0x07, code], make(ack(7, code)));
        let mut with_properties = ack(7, code);
        with_properties.properties.reason_string = Some(s("r"));
        with_properties.properties.user_properties = vec![user("k", "v")];
        let bytes = [
            first, 0x0F, 0x00, 0x07, code, // remaining length 15
            0x0B, // property length 11
            0x1F, 0x00, 0x01, b'r', // reason string
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        ];
        both_ways(&bytes, make(with_properties));
    }
}

#[test]
fn subscribe_minimal_3_8() {
    let bytes = [
        0x82, 0x09, 0x00, 0x01, 0x00, 0x00, 0x03, b'a', b'/', b'b', 0x00,
    ];
    let packet = Subscribe {
        packet_id: pid(1),
        properties: Default::default(),
        filters: vec![(filter("a/b"), SubscriptionOptions::default())],
    };
    both_ways(&bytes, Packet::Subscribe(packet));
}

#[test]
fn subscribe_properties_and_options_3_8_2_1_and_3_8_3_1() {
    let bytes = [
        0x82, 0x21, 0x00, 0x0A, // SUBSCRIBE, remaining length 33, packet identifier 10
        0x09, // property length 9
        0x0B, 0x0A, // subscription identifier 10
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        0x00, 0x03, b'a', b'/', b'b', // "a/b"
        0x2D, // retain handling 2, retain as published, no local, QoS 1: 0010 1101
        0x00, 0x0C, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'c', b'/', b'#',
        0x12, // retain handling 1, QoS 2: 0001 0010
    ];
    let mut packet = Subscribe {
        packet_id: pid(10),
        properties: Default::default(),
        filters: vec![
            (
                filter("a/b"),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
            (
                filter("$share/g/c/#"),
                SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    retain_handling: RetainHandling::SendIfNew,
                    ..Default::default()
                },
            ),
        ],
    };
    packet.properties.subscription_identifier = Some(nz32(10));
    packet.properties.user_properties = vec![user("k", "v")];
    both_ways(&bytes, Packet::Subscribe(packet));
}

#[test]
fn subscribe_largest_subscription_identifier_3_8_2_1_2() {
    // 1 to 268,435,455: the largest variable byte integer.
    let bytes = [
        0x82, 0x0C, 0x00, 0x02, 0x05, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, b'#', 0x01,
    ];
    let mut packet = Subscribe {
        packet_id: pid(2),
        properties: Default::default(),
        filters: vec![(filter("#"), SubscriptionOptions::with_qos(QoS::AtLeastOnce))],
    };
    packet.properties.subscription_identifier = Some(nz32(268_435_455));
    both_ways(&bytes, Packet::Subscribe(packet));
}

#[test]
fn suback_reason_codes_and_properties_3_9() {
    let bytes = [
        0x90, 0x14, 0x00, 0x0A, // SUBACK, remaining length 20, packet identifier 10
        0x05, 0x1F, 0x00, 0x02, b'o', b'k', // reason string
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2, // table 3-9
    ];
    let mut packet = SubAck {
        packet_id: pid(10),
        properties: Default::default(),
        reason_codes: codes(&bytes[10..]),
    };
    packet.properties.reason_string = Some(s("ok"));
    both_ways(&bytes, Packet::SubAck(packet));
}

#[test]
fn unsubscribe_3_10() {
    let bytes = [
        0xA2, 0x1B, 0x00, 0x0A, // UNSUBSCRIBE, remaining length 27, packet identifier 10
        0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        0x00, 0x03, b'a', b'/', b'b', // "a/b"
        0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'#',
    ];
    let mut packet = Unsubscribe {
        packet_id: pid(10),
        properties: Default::default(),
        filters: vec![filter("a/b"), filter("$share/g/#")],
    };
    packet.properties.user_properties = vec![user("k", "v")];
    both_ways(&bytes, Packet::Unsubscribe(packet));
}

#[test]
fn unsuback_3_11() {
    let bytes = [
        0xB0, 0x0A, 0x00, 0x0A, 0x00, // no properties
        0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91, // table 3-10
    ];
    let packet = UnsubAck {
        packet_id: pid(10),
        properties: Default::default(),
        reason_codes: codes(&bytes[5..]),
    };
    both_ways(&bytes, Packet::UnsubAck(packet));
    let bytes = [
        0xB0, 0x09, 0x00, 0x0A, 0x05, 0x1F, 0x00, 0x02, b'o', b'k', 0x11,
    ];
    let mut packet = UnsubAck {
        packet_id: pid(10),
        properties: Default::default(),
        reason_codes: vec![ReasonCode::NoSubscriptionExisted],
    };
    packet.properties.reason_string = Some(s("ok"));
    both_ways(&bytes, Packet::UnsubAck(packet));
}

#[test]
fn pingreq_and_pingresp_3_12_and_3_13() {
    both_ways(&[0xC0, 0x00], Packet::PingReq);
    both_ways(&[0xD0, 0x00], Packet::PingResp);
}

#[test]
fn disconnect_short_forms_3_14_2_1() {
    // Normal disconnection without properties: Remaining Length 0.
    both_ways(&[0xE0, 0x00], Packet::Disconnect(Disconnect::default()));
    decodes_to(
        &[0xE0, 0x01, 0x00],
        Packet::Disconnect(Disconnect::default()),
    );
    decodes_to(
        &[0xE0, 0x02, 0x00, 0x00],
        Packet::Disconnect(Disconnect::default()),
    );
    // Every other valid reason code, alone.
    for &code in ReasonCode::ALL {
        if code == ReasonCode::Success || !code.is_valid_for(PacketType::Disconnect) {
            continue;
        }
        both_ways(
            &[0xE0, 0x01, u8::from(code)],
            Packet::Disconnect(Disconnect::new(code)),
        );
    }
}

#[test]
fn disconnect_properties_3_14_2_2() {
    let bytes = [
        0xE0, 0x24, 0x9C, // DISCONNECT, remaining length 36, Use another server
        0x22, // property length 34
        0x11, 0x00, 0x00, 0x00, 0x00, // session expiry interval 0
        0x1F, 0x00, 0x06, b'm', b'o', b'v', b'i', b'n', b'g', // reason string
        0x1C, 0x00, 0x0A, b'o', b't', b'h', b'e', b'r', b':', b'1', b'8', b'8',
        b'3', // reference
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
    ];
    let mut packet = Disconnect::new(ReasonCode::UseAnotherServer);
    packet.properties.session_expiry_interval = Some(0);
    packet.properties.reason_string = Some(s("moving"));
    packet.properties.server_reference = Some(s("other:1883"));
    packet.properties.user_properties = vec![user("k", "v")];
    both_ways(&bytes, Packet::Disconnect(packet));
}

#[test]
fn auth_short_forms_3_15_2_1() {
    both_ways(&[0xF0, 0x00], Packet::Auth(Auth::default()));
    decodes_to(&[0xF0, 0x01, 0x00], Packet::Auth(Auth::default()));
    decodes_to(&[0xF0, 0x02, 0x00, 0x00], Packet::Auth(Auth::default()));
    let reauth = Auth {
        reason_code: ReasonCode::ReAuthenticate,
        ..Default::default()
    };
    both_ways(&[0xF0, 0x01, 0x19], Packet::Auth(reauth));
}

#[test]
fn auth_properties_3_15_2_2() {
    let bytes = [
        0xF0, 0x1E, 0x18, // AUTH, remaining length 30, Continue authentication
        0x1C, // property length 28
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // authentication method
        0x16, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, // authentication data
        0x1F, 0x00, 0x03, b'c', b'n', b't', // reason string
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
    ];
    let mut packet = Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        ..Default::default()
    };
    packet.properties.authentication_method = Some(s("SCRAM"));
    packet.properties.authentication_data = Some(Bytes::from_static(&[0xDE, 0xAD, 0xBE, 0xEF]));
    packet.properties.reason_string = Some(s("cnt"));
    packet.properties.user_properties = vec![user("k", "v")];
    both_ways(&bytes, Packet::Auth(packet));
}
