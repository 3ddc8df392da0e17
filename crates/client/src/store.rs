//! The optional on-disk in-flight store (redb): what the client must not forget when its
//! process ends, the "local persistence" of the Paho clients.
//!
//! Rules:
//! - Outgoing QoS 1/2 messages are stored from the moment `publish` accepts them until they
//!   are done (PUBACK, PUBCOMP, a refusal), with their state: waiting to be sent, PUBLISH
//!   sent with this packet identifier, or PUBREL sent. A client opened on the same store
//!   sends them again: PUBLISH with DUP [MQTT-4.4.0-1], or PUBREL, in the order first sent.
//!   Publishes that fail with `Closed` because the client closed stay stored for the next.
//! - Incoming QoS 2 packet identifiers are stored from PUBLISH until PUBREL, so that a
//!   PUBLISH the server sends again after a restart is answered without delivering the
//!   message twice [MQTT-4.3.3-9].
//! - Changes are committed (durably) before the packets that depend on them are written: a
//!   PUBLISH with a new packet identifier, a PUBREC.
//! - A store belongs to one client identifier; it records it, and a client without one
//!   takes it from the store.
//! - Commits are synchronous on the connection task (an fsync each), grouped per batch of
//!   writes: the store trades throughput for surviving a crash.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tern_codec::{Packet, PacketId, ProtocolVersion, Publish, MAX_PACKET_SIZE};

const META: TableDefinition<'_, &str, &str> = TableDefinition::new("meta");
const OUTGOING: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("outgoing");
const INCOMING: TableDefinition<'_, u16, ()> = TableDefinition::new("incoming_qos2");

/// Where an outgoing message is in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutgoingState {
    /// Not sent yet.
    Queued,
    /// PUBLISH sent with this identifier; PUBACK or PUBREC awaited.
    Sent(PacketId),
    /// PUBREL sent for this identifier; PUBCOMP awaited.
    Released(PacketId),
}

/// One stored outgoing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub(crate) state: OutgoingState,
    pub(crate) publish: Publish,
}

/// A change for the store, recorded by the protocol core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreOp {
    /// Stores (or replaces) outgoing message `seq`.
    PutOutgoing(u64, Box<Outgoing>),
    /// Outgoing message `seq` is done.
    RemoveOutgoing(u64),
    /// An incoming QoS 2 identifier awaits PUBREL.
    PutIncoming(PacketId),
    /// PUBREL arrived for it.
    RemoveIncoming(PacketId),
    /// The server did not keep the session: no incoming identifier means anything.
    ClearIncoming,
}

/// What a store held when opened.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// Outgoing messages by sequence number, oldest first.
    pub(crate) outgoing: Vec<(u64, Outgoing)>,
    /// Incoming QoS 2 identifiers awaiting PUBREL.
    pub(crate) incoming: Vec<PacketId>,
}

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("in-flight store {path}: {reason}")]
    Database { path: PathBuf, reason: String },
    #[error(
        "in-flight store {path} belongs to client id {stored:?}, not {given:?}: use that client \
         id, or another store file"
    )]
    OtherClient {
        path: PathBuf,
        stored: String,
        given: String,
    },
    #[error("in-flight store {path}: damaged record {key}: {reason}")]
    Record {
        path: PathBuf,
        key: u64,
        reason: String,
    },
}

/// An open store.
#[derive(Debug)]
pub(crate) struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the store at `path` for `client_id` (`None`: the store's, if it
    /// has one); returns it, the client id to use, and what it holds.
    pub(crate) fn open(
        path: &Path,
        client_id: Option<&str>,
    ) -> Result<(Store, Option<String>, Restored), StoreError> {
        let failed = |e: &dyn std::fmt::Display| StoreError::Database {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Database {
                path: path.to_owned(),
                reason: "already open by another client; one store serves one client".into(),
            },
            e => failed(&e),
        })?;
        let store = Store {
            db,
            path: path.to_owned(),
        };
        let stored_id = store.stored_client_id().map_err(|e| failed(&e))?;
        let client_id = match (stored_id, client_id) {
            (Some(stored), Some(given)) if stored != given => {
                return Err(StoreError::OtherClient {
                    path: path.to_owned(),
                    stored,
                    given: given.to_owned(),
                })
            }
            (stored, given) => given.map(str::to_owned).or(stored),
        };
        let restored = store.read_all()?;
        Ok((store, client_id, restored))
    }

    fn stored_client_id(&self) -> Result<Option<String>, redb::Error> {
        let txn = self.db.begin_read()?;
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(meta.get("client_id")?.map(|v| v.value().to_owned()))
    }

    /// Records the client id the store belongs to.
    pub(crate) fn set_client_id(&self, client_id: &str) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(META)?.insert("client_id", client_id)?;
            Ok(())
        })
    }

    fn read_all(&self) -> Result<Restored, StoreError> {
        let failed = |e: redb::Error| StoreError::Database {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let mut restored = Restored::default();
        let txn = self.db.begin_read().map_err(|e| failed(e.into()))?;
        match txn.open_table(OUTGOING) {
            Ok(table) => {
                for entry in table.iter().map_err(|e| failed(e.into()))? {
                    let (key, value) = entry.map_err(|e| failed(e.into()))?;
                    let key = key.value();
                    let outgoing =
                        decode_outgoing(value.value()).map_err(|reason| StoreError::Record {
                            path: self.path.clone(),
                            key,
                            reason,
                        })?;
                    restored.outgoing.push((key, outgoing));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(failed(e.into())),
        }
        match txn.open_table(INCOMING) {
            Ok(table) => {
                for entry in table.iter().map_err(|e| failed(e.into()))? {
                    let (key, _) = entry.map_err(|e| failed(e.into()))?;
                    restored.incoming.extend(PacketId::new(key.value()));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(failed(e.into())),
        }
        Ok(restored)
    }

    /// Applies `ops` in one durable transaction.
    pub(crate) fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut outgoing = txn.open_table(OUTGOING)?;
            let mut incoming = txn.open_table(INCOMING)?;
            for op in ops {
                match op {
                    StoreOp::PutOutgoing(seq, record) => {
                        outgoing.insert(*seq, encode_outgoing(record).as_slice())?;
                    }
                    StoreOp::RemoveOutgoing(seq) => {
                        outgoing.remove(*seq)?;
                    }
                    StoreOp::PutIncoming(id) => {
                        incoming.insert(id.get(), ())?;
                    }
                    StoreOp::RemoveIncoming(id) => {
                        incoming.remove(id.get())?;
                    }
                    StoreOp::ClearIncoming => {
                        incoming.retain(|_, _| false)?;
                    }
                }
            }
            Ok(())
        })
    }

    fn write(
        &self,
        body: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let result = (|| {
            let txn = self.db.begin_write()?;
            body(&txn)?;
            txn.commit()?;
            Ok::<(), redb::Error>(())
        })();
        result.map_err(|e| StoreError::Database {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }
}

/// `[state][packet id, 2 bytes][PUBLISH encoded as MQTT 5.0]`; state 0 queued, 1 sent,
/// 2 released.
fn encode_outgoing(record: &Outgoing) -> Vec<u8> {
    let (state, id) = match record.state {
        OutgoingState::Queued => (0u8, 0u16),
        OutgoingState::Sent(id) => (1, id.get()),
        OutgoingState::Released(id) => (2, id.get()),
    };
    let mut publish = record.publish.clone();
    // The wire format needs an identifier for QoS 1/2; the state above holds the real one.
    publish.packet_id = PacketId::new(id.max(1));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[state]);
    buf.extend_from_slice(&id.to_be_bytes());
    // A publish was checked to be encodable before it was accepted; should that ever fail,
    // the record holds no PUBLISH and is reported as damaged when read.
    let _ = Packet::Publish(publish).encode(ProtocolVersion::V5, &mut buf);
    buf.to_vec()
}

fn decode_outgoing(bytes: &[u8]) -> Result<Outgoing, String> {
    let [state, hi, lo, rest @ ..] = bytes else {
        return Err("too short".into());
    };
    let id = PacketId::new(u16::from_be_bytes([*hi, *lo]));
    let state = match (state, id) {
        (0, _) => OutgoingState::Queued,
        (1, Some(id)) => OutgoingState::Sent(id),
        (2, Some(id)) => OutgoingState::Released(id),
        _ => return Err(format!("unknown state {state}")),
    };
    let mut buf = BytesMut::from(rest);
    let packet = tern_codec::decode(&mut buf, ProtocolVersion::V5, MAX_PACKET_SIZE)
        .map_err(|e| e.to_string())?;
    let Some(Packet::Publish(mut publish)) = packet else {
        return Err("no PUBLISH".into());
    };
    publish.packet_id = match state {
        OutgoingState::Queued => None,
        OutgoingState::Sent(id) | OutgoingState::Released(id) => Some(id),
    };
    Ok(Outgoing { state, publish })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_codec::{QoS, TopicName};

    fn publish(payload: &str, qos: QoS) -> Publish {
        let mut p = Publish::new(TopicName::try_from("store/t").unwrap(), payload.to_owned());
        p.qos = qos;
        p.properties.content_type = Some("text/plain".try_into().unwrap());
        p
    }

    #[test]
    fn records_survive_reopening_in_order() {
        let dir = std::env::temp_dir().join(format!("tern-store-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.redb");
        let _ = std::fs::remove_file(&path);
        let id = |n| PacketId::new(n).unwrap();
        {
            let (store, client_id, restored) = Store::open(&path, None).unwrap();
            assert_eq!(client_id, None);
            assert!(restored.outgoing.is_empty());
            store.set_client_id("c1").unwrap();
            let put =
                |seq, state, p| StoreOp::PutOutgoing(seq, Box::new(Outgoing { state, publish: p }));
            store
                .apply(&[
                    put(3, OutgoingState::Queued, publish("c", QoS::AtLeastOnce)),
                    put(
                        1,
                        OutgoingState::Sent(id(7)),
                        publish("a", QoS::AtLeastOnce),
                    ),
                    put(
                        2,
                        OutgoingState::Released(id(9)),
                        publish("b", QoS::ExactlyOnce),
                    ),
                    put(4, OutgoingState::Queued, publish("gone", QoS::AtLeastOnce)),
                    StoreOp::RemoveOutgoing(4),
                    StoreOp::PutIncoming(id(5)),
                    StoreOp::PutIncoming(id(6)),
                    StoreOp::RemoveIncoming(id(6)),
                ])
                .unwrap();
        }
        let (_store, client_id, restored) = Store::open(&path, None).unwrap();
        assert_eq!(
            client_id.as_deref(),
            Some("c1"),
            "the store names its client"
        );
        let got: Vec<_> = restored
            .outgoing
            .iter()
            .map(|(seq, o)| {
                (
                    *seq,
                    o.state,
                    o.publish.payload.clone(),
                    o.publish.packet_id,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, OutgoingState::Sent(id(7)), "a".into(), Some(id(7))),
                (2, OutgoingState::Released(id(9)), "b".into(), Some(id(9))),
                (3, OutgoingState::Queued, "c".into(), None),
            ]
        );
        assert_eq!(
            restored.outgoing[0].1.publish.properties.content_type,
            Some("text/plain".try_into().unwrap()),
            "properties are kept"
        );
        assert_eq!(restored.incoming, [id(5)]);
        drop(_store);
        let err = Store::open(&path, Some("c2")).unwrap_err();
        assert!(
            err.to_string().contains("belongs to client id \"c1\""),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
