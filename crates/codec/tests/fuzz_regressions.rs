//! Inputs the `decode` fuzz target (fuzz/fuzz_targets/decode.rs) found, one named test each,
//! checked with the target's own property: for every protocol version, every packet that
//! decodes from the input re-encodes to `encoded_len` bytes that decode to the same packet.

#![allow(clippy::unwrap_used, reason = "test helpers panic on bad fixtures")]

use bytes::BytesMut;
use tern_codec::{decode, ConnAck, Packet, ProtocolVersion, ReasonCode};

/// The fuzz target's check; returns the packets decoded per version.
fn survives(data: &[u8]) -> Vec<(ProtocolVersion, Vec<Packet>)> {
    let versions = [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ];
    let mut decoded = Vec::new();
    for version in versions {
        let mut buf = BytesMut::from(data);
        let mut packets = Vec::new();
        while let Ok(Some(packet)) = decode(&mut buf, version, 64 * 1024) {
            let mut encoded = BytesMut::new();
            packet.encode(version, &mut encoded).unwrap();
            assert_eq!(encoded.len(), packet.encoded_len(version), "{packet:?}");
            let again = decode(&mut encoded, version, usize::MAX).unwrap();
            assert_eq!(again.as_ref(), Some(&packet), "{version}: {data:02X?}");
            assert!(encoded.is_empty());
            packets.push(packet);
        }
        decoded.push((version, packets));
    }
    decoded
}

#[test]
fn connack_session_present_bit_in_3_1() {
    // crash-959c41b7e2a256f5a651d7ee6f0ebf050c8f4e1f, minimized to 20 02 01 01. After the
    // encoder began writing MQTT 3.1's reserved CONNACK byte as 0, the decoder still read
    // bit 0 as Session Present, so a 3.1 CONNACK with that bit set did not survive a round
    // trip. 3.1 does not use the byte; the decoder now ignores it.
    let minimized = [0x20, 0x02, 0x01, 0x01];
    let decoded = survives(&minimized);
    let connack = |session_present| {
        Packet::ConnAck(ConnAck {
            session_present,
            reason_code: ReasonCode::UnsupportedProtocolVersion,
            ..Default::default()
        })
    };
    assert_eq!(decoded[0], (ProtocolVersion::V3_1, vec![connack(false)]));
    assert_eq!(decoded[1], (ProtocolVersion::V3_1_1, vec![connack(true)]));
    // 3.1 ignores even the bits 3.1.1 reserves.
    let decoded = survives(&[0x20, 0x02, 0xFF, 0x00]);
    let expected = Packet::ConnAck(ConnAck::default());
    assert_eq!(decoded[0], (ProtocolVersion::V3_1, vec![expected]));

    let found = [
        0x20, 0x02, 0x01, 0x01, 0x10, 0x0B, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x26, 0x04, 0xCE, 0x00,
        0x00, 0xFC, 0xF7, 0x00, 0x87, 0x03, 0x50, 0x01, 0xCF, 0x01, 0x01, 0x01, 0x01, 0x01,
    ];
    survives(&found);
}
