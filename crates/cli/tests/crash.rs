//! Crash tests of the durable store (`docs/persistence.md`): `tern broker` under QoS 1 and
//! QoS 2 load to persistent subscribers, some online and some offline, is killed with
//! SIGKILL at random moments, 20 rounds, and started again on the same data directory.
//! At the end every message whose publisher got PUBACK (QoS 1) or PUBCOMP (QoS 2) has
//! reached every subscriber: at least once for QoS 1, exactly once for QoS 2, in order per
//! publisher.
//!
//! The peers here are written on tern-codec over real sockets, each the textbook MQTT
//! client: the subscribers keep their QoS 2 receiver state (packet identifiers awaiting
//! PUBREL, [MQTT-4.3.3-10]) across the broker's deaths, as a client's session does.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::Tern;
use tern_codec::{
    ClientId, Connect, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode,
    Subscribe, SubscriptionOptions, TopicFilter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ROUNDS: usize = 20;
/// QoS 1/2 messages each publisher keeps unacknowledged at once.
const WINDOW: usize = 8;
/// Publishing pace, so offline queues stay within the configured limit.
const PACE: Duration = Duration::from_millis(2);

/// One MQTT connection speaking raw packets.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Conn {
    /// Connects; returns the connection and Session Present.
    async fn open(
        port: u16,
        version: ProtocolVersion,
        id: &str,
        persistent: bool,
    ) -> std::io::Result<(Conn, bool)> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut conn = Conn {
            stream,
            buf: BytesMut::with_capacity(8192),
            version,
        };
        let mut connect = Connect {
            protocol: version,
            clean_start: !persistent,
            keep_alive: 30,
            client_id: ClientId::try_from(id).expect("client id"),
            ..Default::default()
        };
        if persistent && version.is_v5() {
            connect.properties.session_expiry_interval = Some(3600);
        }
        conn.send(Packet::Connect(Box::new(connect))).await?;
        match conn.recv().await? {
            Packet::ConnAck(ack) if ack.reason_code == ReasonCode::Success => {
                Ok((conn, ack.session_present))
            }
            other => panic!("{id}: expected CONNACK 0, got {other:?}"),
        }
    }

    async fn send(&mut self, packet: Packet) -> std::io::Result<()> {
        let mut out = BytesMut::with_capacity(packet.encoded_len(self.version));
        packet
            .encode(self.version, &mut out)
            .expect("packets encode");
        self.stream.write_all(&out).await
    }

    async fn recv(&mut self) -> std::io::Result<Packet> {
        loop {
            match tern_codec::decode(&mut self.buf, self.version, 1 << 20) {
                Ok(Some(packet)) => return Ok(packet),
                Ok(None) => {}
                Err(e) => panic!("the broker sent a malformed packet: {e}"),
            }
            self.buf.reserve(4096);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// A publisher of numbered messages on one topic at one QoS; clean session, so packet
/// identifiers start afresh after each crash.
struct Publisher {
    id: &'static str,
    topic: &'static str,
    qos: QoS,
    next_seq: u64,
    /// Sequence numbers whose PUBACK / PUBCOMP arrived.
    acknowledged: Vec<u64>,
}

impl Publisher {
    /// Publishes until the connection fails (the broker died) or `until` passes.
    async fn run(mut self, port: u16, until: Instant) -> Publisher {
        let Ok((mut conn, _)) = Conn::open(port, ProtocolVersion::V3_1_1, self.id, false).await
        else {
            return self;
        };
        let mut in_flight: HashMap<u16, u64> = HashMap::new();
        let mut next_id: u16 = 1;
        loop {
            if in_flight.len() < WINDOW && Instant::now() < until {
                let seq = self.next_seq;
                self.next_seq += 1;
                let packet_id = next_id;
                next_id = next_id % 60_000 + 1;
                in_flight.insert(packet_id, seq);
                let publish = Publish {
                    dup: false,
                    qos: self.qos,
                    retain: false,
                    topic: self.topic.try_into().expect("topic"),
                    packet_id: PacketId::new(packet_id),
                    properties: Default::default(),
                    payload: Bytes::copy_from_slice(&seq.to_be_bytes()),
                };
                if conn.send(Packet::Publish(publish)).await.is_err() {
                    return self;
                }
                tokio::time::sleep(PACE).await;
                continue;
            }
            if in_flight.is_empty() {
                return self;
            }
            let packet = match tokio::time::timeout(Duration::from_secs(5), conn.recv()).await {
                Ok(Ok(packet)) => packet,
                _ => return self,
            };
            match packet {
                Packet::PubAck(ack) => {
                    if let Some(seq) = in_flight.remove(&ack.packet_id.get()) {
                        self.acknowledged.push(seq);
                    }
                }
                Packet::PubRec(rec) => {
                    let rel = Packet::PubRel(PubResponse::new(rec.packet_id));
                    if conn.send(rel).await.is_err() {
                        return self;
                    }
                }
                Packet::PubComp(comp) => {
                    if let Some(seq) = in_flight.remove(&comp.packet_id.get()) {
                        self.acknowledged.push(seq);
                    }
                }
                other => panic!("{}: unexpected {other:?}", self.id),
            }
        }
    }
}

/// A persistent subscriber to `crash/#` and everything it received.
struct Subscriber {
    id: &'static str,
    version: ProtocolVersion,
    qos: QoS,
    /// (topic, sequence) of every message handed to the application, in order.
    received: Vec<(String, u64)>,
    /// QoS 2 packet identifiers received and not yet released [MQTT-4.3.3-10].
    awaiting_pubrel: BTreeSet<u16>,
}

impl Subscriber {
    /// Connects (subscribing on the first connection) and receives until the connection
    /// fails or nothing arrives for `quiet`.
    async fn run(mut self, port: u16, first: bool, quiet: Duration) -> Subscriber {
        let Ok((mut conn, present)) = Conn::open(port, self.version, self.id, true).await else {
            return self;
        };
        if first {
            let subscribe = Subscribe {
                packet_id: PacketId::new(1).expect("non-zero"),
                properties: Default::default(),
                filters: vec![(
                    TopicFilter::try_from("crash/#").expect("filter"),
                    SubscriptionOptions::with_qos(self.qos),
                )],
            };
            if conn.send(Packet::Subscribe(subscribe)).await.is_err() {
                return self;
            }
        } else {
            assert!(
                present,
                "{}: [MQTT-3.2.2-2] the session survived the crash (Session Present 1)",
                self.id
            );
        }
        loop {
            let packet = match tokio::time::timeout(quiet, conn.recv()).await {
                Ok(Ok(packet)) => packet,
                _ => return self,
            };
            let answer = match packet {
                Packet::SubAck(_) => continue,
                Packet::Publish(publish) => {
                    let seq = u64::from_be_bytes(
                        publish.payload[..8].try_into().expect("8-byte payload"),
                    );
                    let message = (publish.topic.as_str().to_owned(), seq);
                    match (publish.qos, publish.packet_id) {
                        (QoS::AtLeastOnce, Some(id)) => {
                            self.received.push(message);
                            Packet::PubAck(PubResponse::new(id))
                        }
                        (QoS::ExactlyOnce, Some(id)) => {
                            if self.awaiting_pubrel.insert(id.get()) {
                                self.received.push(message);
                            }
                            Packet::PubRec(PubResponse::new(id))
                        }
                        _ => panic!("{}: unexpected {publish:?}", self.id),
                    }
                }
                Packet::PubRel(rel) => {
                    self.awaiting_pubrel.remove(&rel.packet_id.get());
                    Packet::PubComp(PubResponse::new(rel.packet_id))
                }
                other => panic!("{}: unexpected {other:?}", self.id),
            };
            if conn.send(answer).await.is_err() {
                return self;
            }
        }
    }

    /// Checks what arrived against what the publishers had acknowledged.
    fn check(&self, publishers: &[Publisher]) {
        for publisher in publishers {
            let got: Vec<u64> = self
                .received
                .iter()
                .filter(|(topic, _)| topic == publisher.topic)
                .map(|(_, seq)| *seq)
                .collect();
            let set: BTreeSet<u64> = got.iter().copied().collect();
            let missing: Vec<u64> = publisher
                .acknowledged
                .iter()
                .filter(|seq| !set.contains(seq))
                .copied()
                .collect();
            assert!(
                missing.is_empty(),
                "{}: acknowledged messages of {} lost: {missing:?} (of {})",
                self.id,
                publisher.id,
                publisher.acknowledged.len()
            );
            let exactly_once = publisher.qos == QoS::ExactlyOnce && self.qos == QoS::ExactlyOnce;
            if exactly_once {
                assert_eq!(
                    got.len(),
                    set.len(),
                    "{}: QoS 2 messages of {} duplicated",
                    self.id,
                    publisher.id
                );
            }
            let mut seen = BTreeSet::new();
            let firsts: Vec<u64> = got.iter().copied().filter(|s| seen.insert(*s)).collect();
            assert!(
                firsts.windows(2).all(|w| w[0] < w[1]),
                "{}: messages of {} out of order [MQTT-4.6.0-6]",
                self.id,
                publisher.id
            );
        }
    }
}

/// A small xorshift generator: the test prints its seed, so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn start_broker(dir: &std::path::Path, config: &std::path::Path) -> Tern {
    Tern::spawn(&[
        "broker",
        "-p",
        "0",
        "--bind",
        "127.0.0.1",
        "-c",
        config.to_str().expect("UTF-8 path"),
        "--data-dir",
        dir.to_str().expect("UTF-8 path"),
    ])
}

/// What `tern broker --check-store` says the journal holds for the next start to replay.
fn journal_operations(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["broker", "--check-store", "--data-dir"])
        .arg(dir)
        .output()
        .expect("tern broker --check-store runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--check-store failed: {out:?}");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("journal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no journal line in {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill() {
    let seed = std::env::var("TERN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    eprintln!("crash test seed {seed} (TERN_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let dir = std::env::temp_dir().join(format!("tern-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config: PathBuf = dir.join("tern.toml");
    std::fs::write(
        &config,
        // Checkpoints every 30 ms: kills land before, during and after folds, with one
        // or both journal files holding generations the database has not absorbed.
        "sys_interval = 0\ncheckpoint_interval_ms = 30\n[limits]\nmax_queued_messages = 100000\n",
    )
    .expect("config");
    let data = dir.join("data");

    let subscriber = |id, version, qos| Subscriber {
        id,
        version,
        qos,
        received: Vec::new(),
        awaiting_pubrel: BTreeSet::new(),
    };
    let mut online = vec![
        subscriber("online-q1", ProtocolVersion::V3_1_1, QoS::AtLeastOnce),
        subscriber("online-q2", ProtocolVersion::V5, QoS::ExactlyOnce),
    ];
    let mut offline = vec![
        subscriber("offline-q1", ProtocolVersion::V5, QoS::AtLeastOnce),
        subscriber("offline-q2", ProtocolVersion::V3_1_1, QoS::ExactlyOnce),
    ];
    let mut publishers = vec![
        Publisher {
            id: "pub-q1",
            topic: "crash/q1",
            qos: QoS::AtLeastOnce,
            next_seq: 0,
            acknowledged: Vec::new(),
        },
        Publisher {
            id: "pub-q2",
            topic: "crash/q2",
            qos: QoS::ExactlyOnce,
            next_seq: 0,
            acknowledged: Vec::new(),
        },
    ];

    // Every subscriber subscribes once, before anything is published.
    let broker = start_broker(&data, &config);
    for group in [&mut online, &mut offline] {
        let mut subscribed = Vec::new();
        for s in group.drain(..) {
            subscribed.push(s.run(broker.port, true, Duration::from_millis(200)).await);
        }
        *group = subscribed;
    }
    drop(broker);

    // Operations the killed brokers left in the journal for the next start to replay.
    let mut replayed = 0;
    for _ in 0..ROUNDS {
        let broker = start_broker(&data, &config);
        let port = broker.port;
        let until = Instant::now() + Duration::from_secs(2);
        let subs: Vec<_> = online
            .drain(..)
            .map(|s| tokio::spawn(s.run(port, false, Duration::from_secs(5))))
            .collect();
        let pubs: Vec<_> = publishers
            .drain(..)
            .map(|p| tokio::spawn(p.run(port, until)))
            .collect();
        let life = Duration::from_millis(50 + rng.below(350));
        tokio::time::sleep(life).await;
        broker.signal("KILL");
        drop(broker);
        replayed += journal_operations(&data);
        for task in subs {
            online.push(task.await.expect("subscriber task"));
        }
        for task in pubs {
            publishers.push(task.await.expect("publisher task"));
        }
    }

    // Everyone back; the offline subscribers collect their queues.
    let broker = start_broker(&data, &config);
    let port = broker.port;
    let all: Vec<_> = online
        .drain(..)
        .chain(offline.drain(..))
        .map(|s| tokio::spawn(s.run(port, false, Duration::from_secs(2))))
        .collect();
    let mut subscribers = Vec::new();
    for task in all {
        subscribers.push(task.await.expect("subscriber task"));
    }
    let acknowledged: Vec<usize> = publishers.iter().map(|p| p.acknowledged.len()).collect();
    eprintln!(
        "{ROUNDS} SIGKILLs; acknowledged per publisher: {acknowledged:?}; \
         {replayed} journaled operations replayed on restarts"
    );
    assert!(
        replayed > 0,
        "no kill left anything in the journal: the replay was never exercised"
    );
    assert!(
        acknowledged.iter().all(|&n| n >= ROUNDS),
        "too little load to prove anything: {acknowledged:?}"
    );
    for s in &subscribers {
        eprintln!("{}: {} messages received", s.id, s.received.len());
        s.check(&publishers);
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
