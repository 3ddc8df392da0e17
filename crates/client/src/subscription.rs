//! [`Subscription`]: the stream of messages for one `subscribe` call.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tern_codec::{QoS, TopicFilter};
use tokio::sync::mpsc;

use crate::message::Message;
use crate::protocol::SubKey;

/// The connection task's end of a subscription: where its messages go.
#[derive(Debug)]
pub(crate) struct Sink {
    pub(crate) messages: mpsc::Sender<Message>,
    pub(crate) dropped: Arc<AtomicU64>,
}

/// Messages matching one subscription, as a [`Stream`](futures_core::Stream).
///
/// Messages are routed to it by its filter and, with MQTT 5.0, by the Subscription
/// Identifier the client gave it; it also takes the messages that arrived, from a resumed
/// session, before any subscription wanted them. It holds at most
/// [`subscription_capacity`](crate::ConnectOptions::subscription_capacity) messages; when a
/// reader falls that far behind, newer QoS 0 messages for it are dropped and counted
/// ([`Subscription::dropped`]), and a QoS 1 or 2 message waits unacknowledged (the server's
/// in-flight window is the backpressure), so none is lost.
///
/// Dropping it unsubscribes (UNSUBSCRIBE is sent once no other stream uses the same
/// filter). The stream ends when the client is closed.
#[derive(Debug)]
pub struct Subscription {
    key: SubKey,
    filter: TopicFilter,
    granted: QoS,
    messages: mpsc::Receiver<Message>,
    dropped: Arc<AtomicU64>,
    releases: mpsc::UnboundedSender<SubKey>,
}

impl Subscription {
    /// A subscription and the sink the connection task feeds it through.
    pub(crate) fn new(
        key: SubKey,
        filter: TopicFilter,
        capacity: usize,
        releases: mpsc::UnboundedSender<SubKey>,
    ) -> (Self, Sink) {
        let (tx, rx) = mpsc::channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let sink = Sink {
            messages: tx,
            dropped: dropped.clone(),
        };
        let subscription = Subscription {
            key,
            filter,
            granted: QoS::AtMostOnce,
            messages: rx,
            dropped,
            releases,
        };
        (subscription, sink)
    }

    pub(crate) fn set_granted(&mut self, qos: QoS) {
        self.granted = qos;
    }

    /// The filter subscribed to.
    pub fn filter(&self) -> &TopicFilter {
        &self.filter
    }

    /// The QoS the server granted.
    pub fn granted_qos(&self) -> QoS {
        self.granted
    }

    /// QoS 0 messages dropped because this stream was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The next message; `None` once the client is closed.
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await
    }
}

impl futures_core::Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.messages.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // An unbounded channel, so Drop never waits and never loses the release; it holds at
        // most one entry per live subscription. If the task is gone there is nothing to undo.
        let _ = self.releases.send(self.key);
    }
}
