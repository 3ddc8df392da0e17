//! Property tests: arbitrary valid packets of every type, per protocol version, survive
//! encode then decode unchanged; `encoded_len` is exact; a packet split at any byte boundary
//! decodes once its last byte arrives; packets sharing a buffer decode in order.
//!
//! The strategies generate only what each version can carry: 3.x packets keep MQTT 5.0
//! fields at their defaults, reason codes are those `ReasonCode::is_valid_for` allows (3.x:
//! CONNACK return codes 0-5, SUBACK 0x00-0x02 and 0x80), a PUBLISH has a packet identifier
//! exactly when its QoS is above 0, DUP only then, and an empty topic only with a Topic Alias.

#![allow(
    clippy::unwrap_used,
    reason = "strategies build values they know are valid"
)]

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;
use tern_codec::{
    decode, AckProperties, Auth, AuthProperties, ClientId, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, Disconnect, DisconnectProperties, MqttString, Packet, PacketId, PacketType,
    ProtocolVersion, PubResponse, Publish, PublishProperties, QoS, ReasonCode, RetainHandling,
    SubAck, Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
    Unsubscribe, UnsubscribeProperties, UserProperty, Will, WillProperties,
};

use ProtocolVersion::{V3_1, V3_1_1, V5};

/// Any text MQTT allows in a string (no U+0000), kept short.
fn text() -> impl Strategy<Value = MqttString> {
    "[^\u{0}]{0,12}".prop_map(|s| MqttString::try_from(s).unwrap())
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    "[^\u{0}+#]{1,12}".prop_map(|s| TopicName::try_from(s.as_str()).unwrap())
}

/// A valid filter: levels that are `+` or plain text, maybe a final `#`, maybe shared.
fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof![Just("+".to_owned()), "[^\u{0}+#/$]{0,5}"];
    let share = of("[^\u{0}+#/]{1,5}");
    (vec(level, 1..4), any::<bool>(), share).prop_map(|(levels, hash, share)| {
        let mut filter = levels.join("/");
        if hash {
            filter.push_str(if filter.is_empty() { "#" } else { "/#" });
        } else if filter.is_empty() {
            filter.push('x');
        }
        if let Some(group) = share {
            filter = format!("$share/{group}/{filter}");
        }
        TopicFilter::try_from(filter.as_str()).unwrap()
    })
}

fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|n| PacketId::new(n).unwrap())
}

fn nz16() -> impl Strategy<Value = NonZeroU16> {
    (1..=u16::MAX).prop_map(|n| NonZeroU16::new(n).unwrap())
}

fn nz32() -> impl Strategy<Value = NonZeroU32> {
    (1..=u32::MAX).prop_map(|n| NonZeroU32::new(n).unwrap())
}

/// 1 to 268,435,455, the range of a Subscription Identifier.
fn subscription_id() -> impl Strategy<Value = NonZeroU32> {
    (1..=268_435_455u32).prop_map(|n| NonZeroU32::new(n).unwrap())
}

fn users() -> impl Strategy<Value = Vec<UserProperty>> {
    vec((text(), text()), 0..3).prop_map(|pairs| {
        let pair = |(name, value)| UserProperty { name, value };
        pairs.into_iter().map(pair).collect()
    })
}

/// A reason code the standard allows in `packet`.
fn reason(packet: PacketType) -> impl Strategy<Value = ReasonCode> {
    let valid = ReasonCode::ALL.iter().copied();
    select(
        valid
            .filter(|code| code.is_valid_for(packet))
            .collect::<Vec<_>>(),
    )
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    let numbers = (of(any::<u32>()), of(nz16()), of(nz32()), of(any::<u16>()));
    let flags = (of(any::<bool>()), of(any::<bool>()));
    let auth = (of(text()), of(binary()), users());
    (numbers, flags, auth).prop_map(|((expiry, receive, size, alias), (rri, rpi), auth)| {
        ConnectProperties {
            session_expiry_interval: expiry,
            receive_maximum: receive,
            maximum_packet_size: size,
            topic_alias_maximum: alias,
            request_response_information: rri,
            request_problem_information: rpi,
            authentication_method: auth.0,
            authentication_data: auth.1,
            user_properties: auth.2,
        }
    })
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    let a = (of(any::<u32>()), of(any::<bool>()), of(any::<u32>()));
    let b = (of(text()), of(topic_name()), of(binary()), users());
    (a, b).prop_map(
        |((delay, format, expiry), (content, response, data, users))| WillProperties {
            will_delay_interval: delay,
            payload_format_indicator: format,
            message_expiry_interval: expiry,
            content_type: content,
            response_topic: response,
            correlation_data: data,
            user_properties: users,
        },
    )
}

fn connect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = v.is_v5();
    let will = (
        topic_name(),
        binary(),
        qos(),
        any::<bool>(),
        will_properties(),
    );
    let will = will.prop_map(move |(topic, payload, qos, retain, properties)| Will {
        topic,
        payload,
        qos,
        retain,
        properties: if v5 { properties } else { Default::default() },
    });
    let header = (any::<bool>(), any::<u16>(), connect_properties(), text());
    let payload = (of(will), of(text()), of(binary()));
    (header, payload).prop_map(
        move |((clean, keep_alive, props, id), (will, user, pass))| {
            // Before 5.0 a password needs a user name [MQTT-3.1.2-22].
            let password = if v5 || user.is_some() { pass } else { None };
            Packet::Connect(Box::new(Connect {
                protocol: v,
                clean_start: clean,
                keep_alive,
                properties: if v5 { props } else { Default::default() },
                client_id: ClientId::new(id),
                will,
                username: user,
                password,
            }))
        },
    )
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let max_qos = select(vec![QoS::AtMostOnce, QoS::AtLeastOnce]); // 0 or 1 (§3.2.2.3.4)
    let limits = (
        of(any::<u32>()),
        of(nz16()),
        of(max_qos),
        of(nz32()),
        of(any::<u16>()),
    );
    let flags = (
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
    );
    let strings = (of(text()), of(text()), of(text()), of(text()), of(text()));
    let rest = (of(any::<u16>()), of(binary()), users());
    (limits, flags, strings, rest).prop_map(|(limits, flags, strings, rest)| ConnAckProperties {
        session_expiry_interval: limits.0,
        receive_maximum: limits.1,
        maximum_qos: limits.2,
        maximum_packet_size: limits.3,
        topic_alias_maximum: limits.4,
        retain_available: flags.0,
        wildcard_subscription_available: flags.1,
        subscription_identifiers_available: flags.2,
        shared_subscription_available: flags.3,
        assigned_client_identifier: strings.0,
        reason_string: strings.1,
        response_information: strings.2,
        server_reference: strings.3,
        authentication_method: strings.4,
        server_keep_alive: rest.0,
        authentication_data: rest.1,
        user_properties: rest.2,
    })
}

fn connack(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    if v.is_v5() {
        let fields = (
            any::<bool>(),
            reason(PacketType::ConnAck),
            connack_properties(),
        );
        fields
            .prop_map(|(session_present, reason_code, properties)| {
                Packet::ConnAck(ConnAck {
                    session_present,
                    reason_code,
                    properties,
                })
            })
            .boxed()
    } else {
        (any::<bool>(), 0..=5u8)
            .prop_map(move |(session_present, code)| {
                Packet::ConnAck(ConnAck {
                    // MQTT 3.1 has no Session Present flag.
                    session_present: session_present && v != ProtocolVersion::V3_1,
                    reason_code: ReasonCode::from_v3_connack(code).unwrap(),
                    properties: Default::default(),
                })
            })
            .boxed()
    }
}

fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    let a = (
        of(any::<bool>()),
        of(any::<u32>()),
        of(nz16()),
        of(topic_name()),
    );
    let b = (
        of(binary()),
        of(text()),
        vec(subscription_id(), 0..3),
        users(),
    );
    (a, b).prop_map(
        |((format, expiry, alias, response), (data, content, ids, users))| PublishProperties {
            payload_format_indicator: format,
            message_expiry_interval: expiry,
            topic_alias: alias,
            response_topic: response,
            correlation_data: data,
            content_type: content,
            subscription_identifiers: ids,
            user_properties: users,
        },
    )
}

fn publish(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = v.is_v5();
    let flags = (any::<bool>(), qos(), any::<bool>(), packet_id());
    // Payloads past 128 bytes need a two byte remaining length.
    let payload = vec(any::<u8>(), 0..300).prop_map(Bytes::from);
    let body = (topic_name(), any::<bool>(), publish_properties(), payload);
    (flags, body).prop_map(
        move |((dup, qos, retain, id), (topic, drop_topic, props, data))| {
            let properties = if v5 { props } else { Default::default() };
            // Only a 5.0 PUBLISH with a Topic Alias may leave its topic name empty.
            let aliased = properties.topic_alias.is_some() && drop_topic;
            let exactly_once_or_more = qos != QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && exactly_once_or_more,
                qos,
                retain,
                topic: if aliased { TopicName::default() } else { topic },
                packet_id: exactly_once_or_more.then_some(id),
                properties,
                payload: data,
            })
        },
    )
}

fn ack_properties(v: ProtocolVersion) -> impl Strategy<Value = AckProperties> {
    let v5 = v.is_v5();
    (of(text()), users()).prop_map(move |(reason_string, user_properties)| match v5 {
        true => AckProperties {
            reason_string,
            user_properties,
        },
        false => AckProperties::default(),
    })
}

fn pub_response(v: ProtocolVersion, packet: PacketType) -> impl Strategy<Value = PubResponse> {
    let v5 = v.is_v5();
    (packet_id(), reason(packet), ack_properties(v)).prop_map(move |(id, code, properties)| {
        PubResponse {
            packet_id: id,
            reason_code: if v5 { code } else { ReasonCode::Success },
            properties,
        }
    })
}

fn subscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = v.is_v5();
    let handling = select(vec![
        RetainHandling::SendAtSubscribe,
        RetainHandling::SendIfNew,
        RetainHandling::DoNotSend,
    ]);
    let options = (qos(), any::<bool>(), any::<bool>(), handling);
    let filter = (topic_filter(), options).prop_map(move |(filter, (qos, nl, rap, rh))| {
        let options = SubscriptionOptions {
            qos,
            // No Local is a 5.0 option, and not allowed on shared subscriptions.
            no_local: v5 && nl && !filter.is_shared(),
            retain_as_published: v5 && rap,
            retain_handling: if v5 {
                rh
            } else {
                RetainHandling::SendAtSubscribe
            },
        };
        (filter, options)
    });
    let properties = (of(subscription_id()), users());
    let properties = properties.prop_map(move |(id, users)| match v5 {
        true => SubscribeProperties {
            subscription_identifier: id,
            user_properties: users,
        },
        false => SubscribeProperties::default(),
    });
    (packet_id(), properties, vec(filter, 1..4)).prop_map(|(packet_id, properties, filters)| {
        Packet::Subscribe(Subscribe {
            packet_id,
            properties,
            filters,
        })
    })
}

fn suback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = match v {
        V5 => reason(PacketType::SubAck).boxed(),
        _ => select(vec![
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ])
        .boxed(),
    };
    (packet_id(), ack_properties(v), vec(codes, 0..5)).prop_map(|(id, properties, codes)| {
        Packet::SubAck(SubAck {
            packet_id: id,
            properties,
            reason_codes: codes,
        })
    })
}

fn unsubscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = v.is_v5();
    let properties = users().prop_map(move |user_properties| match v5 {
        true => UnsubscribeProperties { user_properties },
        false => UnsubscribeProperties::default(),
    });
    (packet_id(), properties, vec(topic_filter(), 1..4)).prop_map(|(id, properties, filters)| {
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            properties,
            filters,
        })
    })
}

fn unsuback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    // 3.x UNSUBACK carries no reason codes.
    let count = if v.is_v5() { 0..5 } else { 0..1 };
    let codes = vec(reason(PacketType::UnsubAck), count);
    (packet_id(), ack_properties(v), codes).prop_map(|(id, properties, codes)| {
        Packet::UnsubAck(UnsubAck {
            packet_id: id,
            properties,
            reason_codes: codes,
        })
    })
}

fn disconnect(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    if !v.is_v5() {
        return Just(Packet::Disconnect(Disconnect::default())).boxed();
    }
    let properties = (of(any::<u32>()), of(text()), of(text()), users());
    let properties =
        properties.prop_map(|(expiry, reason, reference, users)| DisconnectProperties {
            session_expiry_interval: expiry,
            reason_string: reason,
            server_reference: reference,
            user_properties: users,
        });
    (reason(PacketType::Disconnect), properties)
        .prop_map(|(reason_code, properties)| {
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
        })
        .boxed()
}

fn auth() -> impl Strategy<Value = Packet> {
    let properties = (of(text()), of(binary()), of(text()), users());
    let properties = properties.prop_map(|(method, data, reason, users)| AuthProperties {
        authentication_method: method,
        authentication_data: data,
        reason_string: reason,
        user_properties: users,
    });
    (reason(PacketType::Auth), properties).prop_map(|(reason_code, properties)| {
        Packet::Auth(Auth {
            reason_code,
            properties,
        })
    })
}

/// Any valid packet of `v`, every type equally likely.
fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let mut types = vec![
        connect(v).boxed(),
        connack(v),
        publish(v).boxed(),
        pub_response(v, PacketType::PubAck)
            .prop_map(Packet::PubAck)
            .boxed(),
        pub_response(v, PacketType::PubRec)
            .prop_map(Packet::PubRec)
            .boxed(),
        pub_response(v, PacketType::PubRel)
            .prop_map(Packet::PubRel)
            .boxed(),
        pub_response(v, PacketType::PubComp)
            .prop_map(Packet::PubComp)
            .boxed(),
        subscribe(v).boxed(),
        suback(v).boxed(),
        unsubscribe(v).boxed(),
        unsuback(v).boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect(v),
    ];
    if v.is_v5() {
        types.push(auth().boxed());
    }
    proptest::strategy::Union::new(types).boxed()
}

fn version_and_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    select(vec![V3_1, V3_1_1, V5]).prop_flat_map(|v| (Just(v), packet(v)))
}

fn encode(packet: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    packet.encode(v, &mut buf).unwrap();
    buf
}

/// encode, then `encoded_len` == length, then decode (with the limit set to exactly that
/// length) == the original, with every byte consumed.
fn round_trip(packet: &Packet, v: ProtocolVersion) -> Result<(), TestCaseError> {
    let mut buf = encode(packet, v);
    prop_assert_eq!(buf.len(), packet.encoded_len(v));
    let size = buf.len();
    prop_assert_eq!(decode(&mut buf, v, size), Ok(Some(packet.clone())));
    prop_assert!(buf.is_empty());
    Ok(())
}

proptest! {
    #[test]
    fn round_trip_v3_1(packet in packet(V3_1)) {
        round_trip(&packet, V3_1)?;
    }

    #[test]
    fn round_trip_v3_1_1(packet in packet(V3_1_1)) {
        round_trip(&packet, V3_1_1)?;
    }

    #[test]
    fn round_trip_v5(packet in packet(V5)) {
        round_trip(&packet, V5)?;
    }

    #[test]
    fn split_at_every_byte_boundary((v, packet) in version_and_packet()) {
        let bytes = encode(&packet, v);
        for at in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..at]);
            prop_assert_eq!(decode(&mut buf, v, usize::MAX), Ok(None), "prefix of {}", at);
            prop_assert_eq!(&buf[..], &bytes[..at], "a partial packet stays in the buffer");
            buf.extend_from_slice(&bytes[at..]);
            prop_assert_eq!(decode(&mut buf, v, usize::MAX), Ok(Some(packet.clone())));
            prop_assert!(buf.is_empty());
        }
    }

    #[test]
    fn concatenated_packets_decode_in_order(
        (v, packets) in select(vec![V3_1, V3_1_1, V5])
            .prop_flat_map(|v| (Just(v), vec(packet(v), 1..8)))
    ) {
        let mut buf = BytesMut::new();
        for packet in &packets {
            packet.encode(v, &mut buf).unwrap();
        }
        for packet in packets {
            prop_assert_eq!(decode(&mut buf, v, usize::MAX), Ok(Some(packet)));
        }
        prop_assert_eq!(decode(&mut buf, v, usize::MAX), Ok(None));
        prop_assert!(buf.is_empty());
    }
}
