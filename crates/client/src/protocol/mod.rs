//! The sans-IO protocol core: everything the client knows about MQTT, with no sockets, no
//! clock reads and no tasks.
//!
//! [`Protocol`] is driven by the connection task ([`crate::connection`]) and by tests alike:
//! commands go in ([`Protocol::publish`], [`Protocol::subscribe`], ...), packets from the
//! server go in with [`Protocol::handle_packet`], time goes in with
//! [`Protocol::handle_timeout`]; packets to write come out of [`Protocol::poll_transmit`],
//! outcomes and messages out of [`Protocol::poll_event`], and the next deadline out of
//! [`Protocol::poll_timeout`]. The current time is always passed in.
//!
//! The phases of a connection: `Offline` → [`Protocol::start_connection`] queues CONNECT →
//! `AwaitingConnAck` (nothing else is written; the connect timeout runs) → CONNACK →
//! `Connected` → [`Protocol::connection_lost`] → `Offline`, or [`Protocol::disconnect`] →
//! `Closed`.
//!
//! The jobs are split by flow: [`outbound`] (the offline buffer and QoS 1/2 in flight),
//! [`inbound`] (QoS 2 deduplication, topic aliases), [`subscriptions`] (what is subscribed
//! and routing), [`topic_alias`] (outgoing aliases), [`keep_alive`], [`packet_ids`].

pub(crate) mod inbound;
pub(crate) mod keep_alive;
pub(crate) mod outbound;
pub(crate) mod packet_ids;
pub(crate) mod subscriptions;
#[cfg(test)]
mod tests;
pub(crate) mod topic_alias;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tern_codec::{
    ConnAck, Connect, DecodeError, Disconnect, Packet, ProtocolVersion, Publish, QoS, ReasonCode,
    SubscriptionOptions, TopicFilter,
};

use self::inbound::Inbound;
use self::keep_alive::{KeepAlive, KeepAliveAction};
use self::outbound::{Completion, Outbound, Step};
use self::packet_ids::PacketIds;
use self::subscriptions::{SubCompletion, Subscriptions};
use self::topic_alias::OutboundAliases;
use crate::error::{LinkError, PublishErrorKind};
use crate::message::Message;

/// Names the caller waiting for a publish or subscribe outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Token(pub(crate) u64);

impl Token {
    /// The token of messages restored from an in-flight store: nobody waits for them.
    pub(crate) const RESTORED: Token = Token(0);
}

/// Names one subscription stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SubKey(pub(crate) u64);

/// What the core needs from the connect options.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The CONNECT to send; `clean_start` is the first connection's.
    pub(crate) connect: Connect,
    /// Keep alive interval (whole seconds), unless the server imposes one.
    pub(crate) keep_alive: Duration,
    /// How long a PINGREQ may go unanswered; `None`: the keep alive interval.
    pub(crate) ping_timeout: Option<Duration>,
    /// How long CONNACK may take.
    pub(crate) connect_timeout: Duration,
    /// Capacity of the offline buffer.
    pub(crate) offline_buffer: usize,
    /// Use Topic Aliases on outgoing messages when the server accepts them (5.0).
    pub(crate) topic_aliases: bool,
    /// Record changes for an in-flight store.
    pub(crate) persist: bool,
}

/// The server's limits, from CONNACK (defaults for MQTT 3.x).
#[derive(Debug, Clone)]
pub(crate) struct ServerLimits {
    pub(crate) version: ProtocolVersion,
    pub(crate) receive_maximum: u16,
    pub(crate) maximum_qos: QoS,
    pub(crate) retain_available: bool,
    pub(crate) maximum_packet_size: u32,
    pub(crate) subscription_identifiers: bool,
}

impl ServerLimits {
    fn new(version: ProtocolVersion) -> Self {
        ServerLimits {
            version,
            receive_maximum: u16::MAX,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            maximum_packet_size: u32::MAX,
            subscription_identifiers: version.is_v5(),
        }
    }

    fn from_connack(version: ProtocolVersion, ack: &ConnAck) -> Self {
        let mut limits = ServerLimits::new(version);
        let p = &ack.properties;
        if let Some(max) = p.receive_maximum {
            limits.receive_maximum = max.get();
        }
        limits.maximum_qos = p.maximum_qos.unwrap_or(QoS::ExactlyOnce);
        limits.retain_available = p.retain_available.unwrap_or(true);
        if let Some(max) = p.maximum_packet_size {
            limits.maximum_packet_size = max.get();
        }
        limits.subscription_identifiers =
            version.is_v5() && p.subscription_identifiers_available.unwrap_or(true);
        limits
    }

    /// Whether the server accepts this publish.
    pub(crate) fn check(&self, publish: &Publish) -> Result<(), PublishErrorKind> {
        if publish.qos > self.maximum_qos {
            return Err(PublishErrorKind::QoSNotSupported);
        }
        if publish.retain && !self.retain_available {
            return Err(PublishErrorKind::RetainNotSupported);
        }
        let size = publish.encoded_len(self.version);
        if u32::try_from(size).map_or(true, |size| size > self.maximum_packet_size) {
            return Err(PublishErrorKind::PacketTooLarge);
        }
        Ok(())
    }
}

/// An outcome or a message for the connection task to hand on.
#[derive(Debug)]
pub(crate) enum Event {
    /// CONNACK accepted the connection.
    Connected {
        /// The server kept the session.
        session_present: bool,
    },
    /// A publish is done.
    Published(Completion),
    /// A subscribe is done.
    Subscribed(SubCompletion),
    /// An incoming PUBLISH, for the connection task to place and then acknowledge.
    Message {
        /// The streams it goes to; empty when no stream wants it yet (a resumed session
        /// delivering before the application subscribed): it is kept for a later subscribe.
        targets: Vec<SubKey>,
        /// The message (boxed: it is much larger than the other events); `None` when there
        /// is nothing to deliver: a QoS 2 repeat, or a message for a filter the application
        /// dropped.
        message: Option<Box<Message>>,
        /// PUBACK or PUBREC, to hand back with [`Protocol::release_ack`] once the message is
        /// placed, so that nothing is acknowledged that the client could still drop.
        ack: Option<HeldAck>,
    },
}

/// An acknowledgement of an incoming PUBLISH, held until the message is placed. It is sent
/// only on the connection it belongs to: after a reconnect the server sends the message
/// again (QoS 1) or the client answers the repeat (QoS 2).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct HeldAck {
    packet: Box<Packet>,
    connection: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Offline,
    AwaitingConnAck { deadline: Instant },
    Connected,
    Closed,
}

/// The client's protocol state across connections.
#[derive(Debug)]
pub(crate) struct Protocol {
    config: Config,
    version: ProtocolVersion,
    phase: Phase,
    connected_once: bool,
    limits: ServerLimits,
    ids: PacketIds,
    outbound: Outbound,
    inbound: Inbound,
    subscriptions: Subscriptions,
    keep_alive: KeepAlive,
    aliases: OutboundAliases,
    transmits: VecDeque<Packet>,
    events: VecDeque<Event>,
    /// Counts network connections, to tell held acknowledgements of old ones.
    connection: u64,
}

impl Protocol {
    pub(crate) fn new(config: Config, now: Instant) -> Self {
        let version = config.connect.protocol;
        let properties = &config.connect.properties;
        let (alias_maximum, receive_maximum) = if version.is_v5() {
            (
                properties.topic_alias_maximum.unwrap_or(0),
                properties.receive_maximum.map_or(u16::MAX, |m| m.get()),
            )
        } else {
            (0, u16::MAX)
        };
        let mut inbound = Inbound::new(alias_maximum, receive_maximum);
        if config.persist {
            inbound.persist(Vec::new());
        }
        Protocol {
            version,
            phase: Phase::Offline,
            connected_once: false,
            limits: ServerLimits::new(version),
            ids: PacketIds::new(),
            outbound: Outbound::new(config.offline_buffer, config.persist),
            inbound,
            subscriptions: Subscriptions::new(version.is_v5()),
            keep_alive: KeepAlive::new(now),
            aliases: OutboundAliases::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            connection: 0,
            config,
        }
    }

    /// Takes back what an in-flight store held (right after [`Protocol::new`], with
    /// `persist` set).
    pub(crate) fn restore(&mut self, restored: crate::store::Restored) {
        self.outbound.restore(&mut self.ids, restored.outgoing);
        self.inbound.persist(restored.incoming);
    }

    /// The changes for the in-flight store recorded since the last call; they must be
    /// committed before the packets polled since are written.
    pub(crate) fn take_store_ops(&mut self) -> Vec<crate::store::StoreOp> {
        let mut ops = self.outbound.take_journal();
        ops.extend(self.inbound.take_journal());
        ops
    }

    /// The protocol version of every connection.
    pub(crate) fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// True after [`Protocol::disconnect`].
    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Publishes waiting in the offline buffer.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.outbound.buffered()
    }

    /// A new network connection is open: queue CONNECT and start the connect timeout.
    pub(crate) fn start_connection(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        let mut connect = self.config.connect.clone();
        if self.connected_once && self.version.is_v5() {
            connect.clean_start = false;
        }
        self.connection += 1;
        self.transmits.clear();
        self.transmits.push_back(Packet::Connect(Box::new(connect)));
        self.phase = Phase::AwaitingConnAck {
            deadline: now + self.config.connect_timeout,
        };
    }

    /// The network connection is gone; the session state stays for the next one.
    pub(crate) fn connection_lost(&mut self) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Offline;
        }
        self.transmits.clear();
        self.keep_alive.stop();
        self.outbound.on_disconnected();
        self.subscriptions.on_disconnected(&mut self.ids);
    }

    /// Closes the client: DISCONNECT if connected, and every waiting operation fails.
    pub(crate) fn disconnect(&mut self) {
        self.transmits.clear();
        if self.phase == Phase::Connected {
            self.transmits
                .push_back(Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
        }
        self.phase = Phase::Closed;
        for done in self.outbound.fail_all(&mut self.ids) {
            self.events.push_back(Event::Published(done));
        }
        for done in self.subscriptions.fail_all() {
            self.events.push_back(Event::Subscribed(done));
        }
    }

    /// Queues a publish; its outcome comes as [`Event::Published`] with `token`.
    pub(crate) fn publish(&mut self, token: Token, publish: Publish) {
        if self.phase == Phase::Closed {
            let err = crate::PublishError::new(PublishErrorKind::Closed);
            self.events.push_back(Event::Published((token, Err(err))));
            return;
        }
        if let Err(done) = self.outbound.enqueue(token, publish) {
            self.events.push_back(Event::Published(done));
        }
    }

    /// Adds stream `key` on `filter`; the outcome comes as [`Event::Subscribed`].
    pub(crate) fn subscribe(
        &mut self,
        token: Token,
        key: SubKey,
        filter: TopicFilter,
        options: SubscriptionOptions,
    ) {
        self.subscriptions.add(token, key, filter, options);
    }

    /// Stream `key` is gone (dropped).
    pub(crate) fn unsubscribe(&mut self, key: SubKey) {
        self.subscriptions.remove(key);
    }

    /// Handles a packet from the server. An error means the connection must be closed
    /// (after writing what [`Protocol::poll_transmit`] still gives: with MQTT 5.0, a
    /// DISCONNECT that says why).
    pub(crate) fn handle_packet(&mut self, now: Instant, packet: Packet) -> Result<(), LinkError> {
        let result = self.dispatch(now, packet);
        if let Err(LinkError::Protocol(_)) = &result {
            self.say_why(ReasonCode::ProtocolError);
        }
        result
    }

    /// The server sent bytes that are not a valid packet.
    pub(crate) fn malformed(&mut self, err: DecodeError) -> LinkError {
        self.say_why(err.reason_code());
        LinkError::Decode(err)
    }

    /// MQTT 5.0: tells the server why the client closes the connection, unless a
    /// DISCONNECT is already queued.
    fn say_why(&mut self, reason: ReasonCode) {
        let queued = self
            .transmits
            .iter()
            .any(|p| matches!(p, Packet::Disconnect(_)));
        if self.version.is_v5() && self.phase == Phase::Connected && !queued {
            self.transmits
                .push_back(Packet::Disconnect(Disconnect::new(reason)));
        }
    }

    fn dispatch(&mut self, now: Instant, packet: Packet) -> Result<(), LinkError> {
        self.keep_alive.on_received();
        if let Phase::AwaitingConnAck { .. } = self.phase {
            return match packet {
                Packet::ConnAck(ack) => self.on_connack(now, ack),
                _ => Err(LinkError::Protocol(
                    "first packet from the server is not CONNACK",
                )),
            };
        }
        if self.phase != Phase::Connected {
            return Ok(());
        }
        match packet {
            Packet::Publish(publish) => self.on_publish(publish)?,
            Packet::PubAck(ack) => {
                if let Some(done) = self.outbound.on_puback(&mut self.ids, &ack) {
                    self.events.push_back(Event::Published(done));
                }
            }
            Packet::PubRec(ack) => {
                let (rel, done) = self.outbound.on_pubrec(&mut self.ids, &ack);
                self.transmits.extend(rel);
                if let Some(done) = done {
                    self.events.push_back(Event::Published(done));
                }
            }
            Packet::PubRel(rel) => {
                let comp = self.inbound.on_pubrel(&rel);
                self.transmits.push_back(comp);
            }
            Packet::PubComp(ack) => {
                if let Some(done) = self.outbound.on_pubcomp(&mut self.ids, &ack) {
                    self.events.push_back(Event::Published(done));
                }
            }
            Packet::SubAck(ack) => {
                for done in self.subscriptions.on_suback(&mut self.ids, &ack) {
                    self.events.push_back(Event::Subscribed(done));
                }
            }
            Packet::UnsubAck(ack) => self.subscriptions.on_unsuback(&mut self.ids, ack.packet_id),
            Packet::PingResp => {}
            Packet::Disconnect(d) => return Err(LinkError::ServerDisconnect(d.reason_code)),
            Packet::ConnAck(_) => return Err(LinkError::Protocol("a second CONNACK")),
            Packet::Auth(_) => {
                return Err(LinkError::Protocol("AUTH without an authentication method"))
            }
            Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq => {
                return Err(LinkError::Protocol(
                    "the server sent a packet only clients send",
                ))
            }
        }
        Ok(())
    }

    fn on_connack(&mut self, now: Instant, ack: ConnAck) -> Result<(), LinkError> {
        if ack.reason_code.is_error() {
            self.phase = Phase::Offline;
            return Err(LinkError::Refused(ack.reason_code));
        }
        let session_present = ack.session_present;
        self.limits = ServerLimits::from_connack(self.version, &ack);
        let alias_maximum = match ack.properties.topic_alias_maximum {
            Some(max) if self.config.topic_aliases && self.version.is_v5() => max,
            _ => 0,
        };
        self.aliases.reset(alias_maximum);
        if let Some(id) = &ack.properties.assigned_client_identifier {
            self.config.connect.client_id = tern_codec::ClientId::new(id.detached());
        }
        let keep_alive = match ack.properties.server_keep_alive {
            Some(secs) => Duration::from_secs(u64::from(secs)),
            None => self.config.keep_alive,
        };
        let ping_timeout = self.config.ping_timeout.unwrap_or(keep_alive);
        self.keep_alive.start(now, keep_alive, ping_timeout);
        self.phase = Phase::Connected;
        self.connected_once = true;
        for done in self.outbound.on_connected(&mut self.ids, session_present) {
            self.events.push_back(Event::Published(done));
        }
        self.inbound.on_connected(session_present);
        self.subscriptions.on_connected(session_present);
        self.events.push_back(Event::Connected { session_present });
        Ok(())
    }

    fn on_publish(&mut self, publish: Publish) -> Result<(), LinkError> {
        let accepted = match self.inbound.on_publish(publish) {
            Ok(accepted) => accepted,
            Err(err) => {
                self.say_why(err.reason_code());
                return Err(LinkError::Protocol(err.rule()));
            }
        };
        let connection = self.connection;
        let ack = accepted.ack.map(|packet| HeldAck {
            packet: Box::new(packet),
            connection,
        });
        let Some(publish) = accepted.deliver else {
            self.events.push_back(Event::Message {
                targets: Vec::new(),
                message: None,
                ack,
            });
            return Ok(());
        };
        let targets = self
            .subscriptions
            .route(&publish.topic, &publish.properties.subscription_identifiers);
        let keep = !targets.is_empty()
            || (publish.qos != QoS::AtMostOnce && !self.subscriptions.is_retired(&publish.topic));
        if !keep {
            tracing::trace!(topic = %publish.topic, "message matches no subscription: dropped");
        }
        let message = keep.then(|| Box::new(Message::from_publish(publish)));
        self.events.push_back(Event::Message {
            targets,
            message,
            ack,
        });
        Ok(())
    }

    /// Sends an acknowledgement held by [`Event::Message`], if its connection is still the
    /// current one.
    pub(crate) fn release_ack(&mut self, ack: HeldAck) {
        if ack.connection == self.connection && self.phase == Phase::Connected {
            self.transmits.push_back(*ack.packet);
        }
    }

    /// The connection task stopped reading (too many messages wait for room in full
    /// streams); an unanswered PINGREQ then does not mean the connection is dead.
    pub(crate) fn set_reading_paused(&mut self, paused: bool) {
        self.keep_alive.set_paused(paused);
    }

    /// Whether CONNACK has arrived on the current connection.
    pub(crate) fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// Handles the deadlines due at `now`. An error means the connection must be closed.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), LinkError> {
        match self.phase {
            Phase::AwaitingConnAck { deadline } if now >= deadline => {
                self.phase = Phase::Offline;
                Err(LinkError::ConnectTimeout)
            }
            Phase::Connected => match self.keep_alive.handle_timeout(now) {
                KeepAliveAction::Ping => {
                    self.transmits.push_back(Packet::PingReq);
                    Ok(())
                }
                KeepAliveAction::Dead => Err(LinkError::KeepAliveTimeout),
                KeepAliveAction::None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// The next deadline, if any.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::AwaitingConnAck { deadline } => Some(deadline),
            Phase::Connected => self.keep_alive.poll_timeout(),
            Phase::Offline | Phase::Closed => None,
        }
    }

    /// The next packet to write at `now`, if any.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Packet> {
        let packet = match self.phase {
            Phase::Offline => None,
            Phase::AwaitingConnAck { .. } | Phase::Closed => self.transmits.pop_front(),
            Phase::Connected => match self.next_connected_packet() {
                Some(Packet::Publish(mut publish)) => {
                    self.aliases.apply(&mut publish);
                    Some(Packet::Publish(publish))
                }
                other => other,
            },
        };
        if packet.is_some() {
            self.keep_alive.on_sent(now);
        }
        packet
    }

    fn next_connected_packet(&mut self) -> Option<Packet> {
        if let Some(packet) = self.transmits.pop_front() {
            return Some(packet);
        }
        let ids_available = self.limits.subscription_identifiers;
        if let Some(packet) = self.subscriptions.next_packet(&mut self.ids, ids_available) {
            return Some(packet);
        }
        loop {
            match self.outbound.next_step(&mut self.ids, &self.limits)? {
                Step::Send(packet) => return Some(packet),
                Step::SendAndComplete(packet, token) => {
                    let done = (token, Ok(ReasonCode::Success));
                    self.events.push_back(Event::Published(done));
                    return Some(packet);
                }
                Step::Fail(token, err) => {
                    self.events.push_back(Event::Published((token, Err(err))))
                }
            }
        }
    }

    /// The next outcome or message, if any.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
