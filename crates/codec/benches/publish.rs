//! PUBLISH decode and encode at 64 B, 1 KiB and 64 KiB payloads, MQTT 3.1.1 and 5.0.
//!
//! Throughput counts the whole encoded packet. Decoding is zero-copy (the payload is cut from
//! the read buffer), so its cost barely grows with the payload; encoding copies the payload.
//! Run with `cargo bench -p tern-codec --bench publish`; figures are in docs/PERFORMANCE.md.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tern_codec::{
    decode, Packet, PacketId, ProtocolVersion, Publish, QoS, TopicName, UserProperty,
    MAX_PACKET_SIZE,
};

const PAYLOADS: [(usize, &str); 3] = [(64, "64B"), (1024, "1KiB"), (64 * 1024, "64KiB")];
const VERSIONS: [(ProtocolVersion, &str); 2] = [
    (ProtocolVersion::V3_1_1, "v3.1.1"),
    (ProtocolVersion::V5, "v5"),
];

/// A QoS 1 PUBLISH as a sensor would send it; in 5.0 with a message expiry and one user
/// property, so that the property code is measured too.
fn publish(payload_len: usize, version: ProtocolVersion) -> Packet {
    let topic = TopicName::try_from("sensors/building-1/floor-2/temperature").expect("valid");
    let mut publish = Publish::new(topic, Bytes::from(vec![0xA5; payload_len]));
    publish.qos = QoS::AtLeastOnce;
    publish.packet_id = PacketId::new(42);
    if version.is_v5() {
        publish.properties.message_expiry_interval = Some(3600);
        let unit = UserProperty::new("unit", "celsius").expect("valid");
        publish.properties.user_properties.push(unit);
    }
    Packet::Publish(publish)
}

fn encoded(packet: &Packet, version: ProtocolVersion) -> Bytes {
    let mut buf = BytesMut::with_capacity(packet.encoded_len(version));
    packet.encode(version, &mut buf).expect("encodable");
    buf.freeze()
}

fn decode_publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish/decode");
    for (version, version_name) in VERSIONS {
        for (payload_len, size_name) in PAYLOADS {
            let bytes = encoded(&publish(payload_len, version), version);
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            let id = BenchmarkId::new(version_name, size_name);
            group.bench_with_input(id, &bytes, |b, bytes| {
                b.iter_batched(
                    || BytesMut::from(&bytes[..]),
                    |mut buf| decode(&mut buf, version, MAX_PACKET_SIZE).expect("decodes"),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

fn encode_publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish/encode");
    for (version, version_name) in VERSIONS {
        for (payload_len, size_name) in PAYLOADS {
            let packet = publish(payload_len, version);
            let len = packet.encoded_len(version);
            group.throughput(Throughput::Bytes(len as u64));
            let mut buf = BytesMut::with_capacity(len);
            let id = BenchmarkId::new(version_name, size_name);
            group.bench_with_input(id, &packet, |b, packet| {
                b.iter(|| {
                    buf.clear();
                    packet.encode(version, &mut buf).expect("encodable");
                    black_box(buf.len())
                })
            });
        }
    }
    group.finish();
}

/// The group `criterion_group!` would generate, written out so that it can carry a doc comment
/// (the workspace denies missing docs).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    decode_publish(&mut criterion);
    encode_publish(&mut criterion);
}

criterion_main!(benches);
