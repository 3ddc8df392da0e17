//! Fuzzes `tern_codec::decode` with arbitrary bytes, for every protocol version.
//!
//! Every packet that decodes must survive a round trip: encoding it gives exactly
//! `encoded_len` bytes, and decoding those bytes gives the same packet back. Decoding
//! itself must never panic, whatever the input.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_codec::{decode, Packet, ProtocolVersion};

/// Small enough that a forged remaining length cannot make the decoder reserve much memory,
/// large enough for anything libFuzzer generates (its inputs stay below a few KiB).
const MAX_PACKET_SIZE: usize = 64 * 1024;

fn round_trip(packet: &Packet, version: ProtocolVersion) {
    let mut encoded = BytesMut::new();
    packet
        .encode(version, &mut encoded)
        .expect("a decoded packet encodes");
    assert_eq!(
        encoded.len(),
        packet.encoded_len(version),
        "encoded_len of {packet:?}"
    );
    let again = decode(&mut encoded, version, usize::MAX).expect("re-encoded packet decodes");
    assert_eq!(again.as_ref(), Some(packet), "{version}");
    assert!(
        encoded.is_empty(),
        "bytes left after re-decoding {packet:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    for version in [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(packet)) = decode(&mut buf, version, MAX_PACKET_SIZE) {
            round_trip(&packet, version);
        }
    }
});
