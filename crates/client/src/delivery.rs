//! Placing incoming messages into subscription streams, in order, and acknowledging each
//! only once placed.
//!
//! Rules:
//! - Messages are placed in the order they arrived, and their PUBACK/PUBREC are released in
//!   that order [MQTT-4.6.0-2, MQTT-4.6.0-3].
//! - QoS 1 and 2 messages are never dropped once acknowledged. When a target stream is full,
//!   the message waits, unacknowledged, at the head of the queue and those after it wait
//!   behind it; the server's in-flight window (the client's Receive Maximum) then holds back
//!   further messages. The connection goes on reading meanwhile, so acknowledgements of the
//!   client's own publishes still arrive (an application that publishes before it reads its
//!   full stream does not deadlock); only when [`MAX_WAITING`] messages wait (a server
//!   ignoring its window) does it stop reading.
//! - QoS 0 messages never wait for a full stream: placed at once (after the messages before
//!   them, unless those wait for a full stream), or dropped when their stream is full and
//!   counted in [`Subscription::dropped`](crate::Subscription::dropped).
//! - A QoS 1/2 message that no stream wants yet (a resumed session delivering what it
//!   queued before the application subscribed again) waits in the *unrouted* buffer; a new
//!   subscription takes the messages its filter matches from there. When the buffer is full
//!   the queue stops, as for a full stream, until a subscription takes some.
//! - A new stream receives nothing until its SUBACK: messages for it wait (one round trip).
//!   Refused, or dropped before its SUBACK, it gives its messages back to the unrouted
//!   buffer; a stream dropped later takes its waiting messages with it (they are
//!   acknowledged: the application asked for them to end).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::Ordering;

use tern_codec::{QoS, TopicFilter};
use tokio::sync::mpsc::error::TrySendError;

use crate::message::Message;
use crate::protocol::{HeldAck, SubKey};
use crate::subscription::Sink;

/// Messages waiting for room at which the connection task stops reading from the server.
pub(crate) const MAX_WAITING: usize = 4096;

/// One incoming message on its way to its streams.
#[derive(Debug)]
struct Pending {
    /// Streams still to receive it; empty: unrouted.
    targets: Vec<SubKey>,
    /// `None`: nothing to place, only the acknowledgement to release in order.
    message: Option<Message>,
    ack: Option<HeldAck>,
}

/// The streams and the queue of messages on their way to them.
#[derive(Debug)]
pub(crate) struct Deliveries {
    sinks: HashMap<SubKey, Sink>,
    /// Streams whose SUBACK has not come yet.
    unconfirmed: HashSet<SubKey>,
    queue: VecDeque<Pending>,
    unrouted: VecDeque<Message>,
    unrouted_capacity: usize,
    /// Acknowledgements of messages placed, to hand out in order.
    acks: Vec<HeldAck>,
}

impl Deliveries {
    /// No streams yet; at most `unrouted_capacity` messages wait for a subscription.
    pub(crate) fn new(unrouted_capacity: usize) -> Self {
        Deliveries {
            sinks: HashMap::new(),
            unconfirmed: HashSet::new(),
            queue: VecDeque::new(),
            unrouted: VecDeque::new(),
            unrouted_capacity,
            acks: Vec::new(),
        }
    }

    /// A new stream on `filter`: it takes the unrouted messages its filter matches, those
    /// in the buffer ahead of anything queued, and those still queued in their place.
    pub(crate) fn add_stream(&mut self, key: SubKey, filter: &TopicFilter, sink: Sink) {
        self.sinks.insert(key, sink);
        self.unconfirmed.insert(key);
        for pending in &mut self.queue {
            let unrouted = pending.targets.is_empty();
            if unrouted
                && pending
                    .message
                    .as_ref()
                    .is_some_and(|m| filter.matches(&m.topic))
            {
                pending.targets.push(key);
            }
        }
        let mut taken = Vec::new();
        self.unrouted.retain(|message| {
            let matches = filter.matches(&message.topic);
            if matches {
                taken.push(message.clone());
            }
            !matches
        });
        for message in taken.into_iter().rev() {
            self.queue.push_front(Pending {
                targets: vec![key],
                message: Some(message),
                ack: None,
            });
        }
    }

    /// The server acknowledged stream `key`: its messages go to it.
    pub(crate) fn confirm(&mut self, key: SubKey) {
        self.unconfirmed.remove(&key);
    }

    /// Stream `key` is gone: dropped, or its subscribe failed (see the module rules).
    pub(crate) fn remove_stream(&mut self, key: SubKey) {
        let give_back = self.unconfirmed.remove(&key);
        self.sinks.remove(&key);
        for pending in &mut self.queue {
            if !pending.targets.contains(&key) {
                continue;
            }
            pending.targets.retain(|&k| k != key);
            if pending.targets.is_empty() && !give_back {
                pending.message = None;
            }
        }
    }

    /// Queues an incoming message (see [`crate::protocol::Event::Message`]).
    pub(crate) fn push(
        &mut self,
        targets: Vec<SubKey>,
        message: Option<Message>,
        ack: Option<HeldAck>,
    ) {
        let mut pending = Pending {
            targets,
            message,
            ack,
        };
        let qos0 = pending.ack.is_none()
            && pending
                .message
                .as_ref()
                .is_some_and(|m| m.qos == QoS::AtMostOnce);
        if qos0 {
            // Never waits for a full stream: placed now (or dropped and counted), after what
            // can go before it, overtaking only messages that wait for a full stream. It
            // does wait for a stream's SUBACK, in order.
            self.advance();
            let head_waits_for_suback = self
                .queue
                .front()
                .and_then(|head| head.targets.first())
                .is_some_and(|key| self.unconfirmed.contains(key));
            if head_waits_for_suback
                || place(
                    &mut pending,
                    &self.sinks,
                    &self.unconfirmed,
                    &mut self.unrouted,
                    self.unrouted_capacity,
                )
            {
                self.queue.push_back(pending);
            }
            return;
        }
        self.queue.push_back(pending);
    }

    /// Whether messages wait for room.
    pub(crate) fn is_waiting(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether so many wait that the connection task should stop reading.
    pub(crate) fn should_pause(&self) -> bool {
        self.queue.len() >= MAX_WAITING
    }

    /// Messages waiting for a subscription.
    #[cfg(test)]
    pub(crate) fn unrouted(&self) -> usize {
        self.unrouted.len()
    }

    /// Places as many queued messages as there is room for; returns the acknowledgements
    /// to send, in order.
    pub(crate) fn pump(&mut self) -> Vec<HeldAck> {
        self.advance();
        std::mem::take(&mut self.acks)
    }

    /// Places what it can, keeping the acknowledgements for [`Deliveries::pump`].
    fn advance(&mut self) {
        while let Some(head) = self.queue.front_mut() {
            if place(
                head,
                &self.sinks,
                &self.unconfirmed,
                &mut self.unrouted,
                self.unrouted_capacity,
            ) {
                break;
            }
            if let Some(ack) = self.queue.pop_front().and_then(|p| p.ack) {
                self.acks.push(ack);
            }
        }
    }

    /// Resolves when the head of the queue may be placed: at once when its stream has a
    /// free slot (or is gone), else when one frees. Pending forever when nothing waits or
    /// the head waits for room in the unrouted buffer (a new subscription, a command, wakes
    /// the task then).
    pub(crate) fn room(&self) -> impl Future<Output = ()> + Send + 'static {
        let target = self.queue.front().and_then(|head| {
            head.message.as_ref()?;
            head.targets.first().copied()
        });
        // A stream waiting for its SUBACK: the SUBACK wakes the task.
        let target = target.filter(|key| !self.unconfirmed.contains(key));
        let sender = target.map(|key| self.sinks.get(&key).map(|s| s.messages.clone()));
        async move {
            match sender {
                // The permit is given back at once: only this task sends, so the slot stays.
                Some(Some(sender)) => drop(sender.reserve_owned().await),
                Some(None) => {}
                None => std::future::pending().await,
            }
        }
    }

    /// The client is closing: streams end (their receivers see the end once drained).
    pub(crate) fn close(&mut self) {
        self.sinks.clear();
        self.queue.clear();
        self.unrouted.clear();
    }
}

/// Places `head` as far as possible; true when it still waits for room (in a full stream,
/// or in the unrouted buffer).
fn place(
    head: &mut Pending,
    sinks: &HashMap<SubKey, Sink>,
    unconfirmed: &HashSet<SubKey>,
    unrouted: &mut VecDeque<Message>,
    unrouted_capacity: usize,
) -> bool {
    let Some(message) = &head.message else {
        return false;
    };
    if head.targets.is_empty() {
        if unrouted.len() >= unrouted_capacity {
            return true;
        }
        tracing::debug!(topic = %message.topic, "no subscription for this message yet: kept for one");
        unrouted.push_back(message.clone());
        return false;
    }
    while let Some(&key) = head.targets.first() {
        if unconfirmed.contains(&key) {
            return true;
        }
        if let Some(sink) = sinks.get(&key) {
            match sink.messages.try_send(message.clone()) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(_)) if message.qos == QoS::AtMostOnce => {
                    sink.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(topic = %message.topic, "subscription full: QoS 0 message dropped");
                }
                Err(TrySendError::Full(_)) => return true,
            }
        }
        head.targets.remove(0);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use tern_codec::{Publish, TopicName};
    use tokio::sync::mpsc;

    fn message(topic: &str, qos: QoS) -> Message {
        let mut publish = Publish::new(TopicName::try_from(topic).unwrap(), "x");
        publish.qos = qos;
        Message::from_publish(publish)
    }

    fn sink(capacity: usize) -> (Sink, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(capacity);
        let sink = Sink {
            messages: tx,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (sink, rx)
    }

    #[test]
    fn a_full_stream_holds_qos1_and_drops_qos0() {
        let mut d = Deliveries::new(10);
        let (s, mut rx) = sink(1);
        let dropped = s.dropped.clone();
        d.add_stream(SubKey(1), &TopicFilter::try_from("a").unwrap(), s);
        d.confirm(SubKey(1));
        d.push(vec![SubKey(1)], Some(message("a", QoS::AtLeastOnce)), None);
        d.pump();
        d.push(vec![SubKey(1)], Some(message("a", QoS::AtMostOnce)), None);
        assert_eq!(dropped.load(Ordering::Relaxed), 1, "QoS 0 dropped at once");
        d.push(vec![SubKey(1)], Some(message("a", QoS::AtLeastOnce)), None);
        d.pump();
        assert!(d.is_waiting(), "the second QoS 1 message waits");
        assert!(rx.try_recv().is_ok());
        d.pump();
        assert!(!d.is_waiting());
        assert_eq!(rx.try_recv().map(|m| m.qos), Ok(QoS::AtLeastOnce));
    }

    #[test]
    fn a_refused_stream_gives_its_messages_back() {
        let mut d = Deliveries::new(10);
        d.push(Vec::new(), Some(message("a/1", QoS::AtLeastOnce)), None);
        d.pump();
        let (s, _rx) = sink(8);
        d.add_stream(SubKey(1), &TopicFilter::try_from("a/#").unwrap(), s);
        d.push(
            vec![SubKey(1)],
            Some(message("a/2", QoS::AtLeastOnce)),
            None,
        );
        d.pump();
        assert_eq!(d.unrouted(), 0, "taken by the new stream");
        d.remove_stream(SubKey(1));
        d.pump();
        assert_eq!(d.unrouted(), 2, "both wait for the next subscription");

        let (s, mut rx) = sink(8);
        d.add_stream(SubKey(2), &TopicFilter::try_from("a/#").unwrap(), s);
        d.confirm(SubKey(2));
        d.pump();
        assert_eq!(std::iter::from_fn(|| rx.try_recv().ok()).count(), 2);
        // A confirmed stream that is dropped takes its waiting messages with it.
        d.push(
            vec![SubKey(2)],
            Some(message("a/3", QoS::AtLeastOnce)),
            None,
        );
        drop(rx);
        d.remove_stream(SubKey(2));
        d.pump();
        assert_eq!((d.unrouted(), d.is_waiting()), (0, false));
    }

    #[test]
    fn qos0_keeps_its_place_behind_messages_that_can_be_placed() {
        let mut d = Deliveries::new(10);
        let (s, mut rx) = sink(8);
        d.add_stream(SubKey(1), &TopicFilter::try_from("a").unwrap(), s);
        d.confirm(SubKey(1));
        d.push(vec![SubKey(1)], Some(message("a", QoS::AtLeastOnce)), None);
        d.push(vec![SubKey(1)], Some(message("a", QoS::AtMostOnce)), None);
        d.pump();
        let order: Vec<QoS> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| m.qos)
            .collect();
        assert_eq!(order, [QoS::AtLeastOnce, QoS::AtMostOnce]);
    }

    #[test]
    fn unrouted_messages_go_to_the_next_matching_subscription() {
        let mut d = Deliveries::new(2);
        for topic in ["a/1", "b/1", "a/2"] {
            d.push(Vec::new(), Some(message(topic, QoS::AtLeastOnce)), None);
        }
        d.pump();
        assert_eq!(d.unrouted(), 2);
        assert!(d.is_waiting(), "the third waits for room");
        let (s, mut rx) = sink(8);
        d.add_stream(SubKey(1), &TopicFilter::try_from("a/+").unwrap(), s);
        d.pump();
        assert!(rx.try_recv().is_err(), "nothing before the SUBACK");
        d.confirm(SubKey(1));
        d.pump();
        assert!(!d.is_waiting());
        let topics: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| m.topic.as_str().to_owned())
            .collect();
        assert_eq!(topics, ["a/1", "a/2"]);
        assert_eq!(d.unrouted(), 1, "b/1 waits for its subscription");
    }
}
