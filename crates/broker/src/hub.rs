//! [`Hub`]: the state every connection shares (router, retained messages, sessions,
//! counters, configuration) and the one publish path through it.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use tern_codec::{PublishProperties, QoS, RetainHandling, Will};

use crate::auth::Authenticators;
use crate::config::Config;
use crate::mailbox::{Mailbox, Pushed, QueueLimits};
use crate::message::{Delivery, Message};
use crate::metrics::Metrics;
use crate::parking::Parking;
use crate::registry::Registry;
use crate::retain::RetainStore;
use crate::router::{Router, Subscriber};
use crate::session::{SessionState, Subscription};
use crate::store::{Op, Store};

/// A delivery waiting for room in its subscriber's queue.
pub type Waiting = (Arc<Mailbox>, Delivery);

/// Shared broker state.
#[derive(Debug)]
pub struct Hub {
    /// The configuration the broker started with.
    pub config: Config,
    /// Subscriptions.
    pub router: Router,
    /// Retained messages.
    pub retained: RetainStore,
    /// Sessions.
    pub registry: Registry,
    /// Counters.
    pub metrics: Metrics,
    /// When the broker started.
    pub started: Instant,
    /// The durable store, unless the broker runs in memory.
    pub store: Option<Store>,
    /// Enhanced authentication methods offered (none unless configured).
    pub auth: Authenticators,
    /// Where idle connections park, when the broker parks them (`limits.park_idle_ms`).
    pub parking: Option<Arc<Parking>>,
    next_connection: AtomicU64,
}

impl Hub {
    /// Shared state for a broker with this configuration.
    pub fn new(config: Config) -> Self {
        Hub::with_store(config, None)
    }

    /// Shared state for a broker that writes its durable state to `store`.
    pub fn with_store(config: Config, store: Option<Store>) -> Self {
        Hub {
            router: Router::with_strategy(config.mqtt.shared_strategy),
            config,
            retained: RetainStore::new(),
            registry: Registry::with_store(store.clone()),
            store,
            auth: Authenticators::default(),
            parking: None,
            metrics: Metrics::default(),
            started: crate::clock::now(),
            next_connection: AtomicU64::new(1),
        }
    }

    /// A fresh connection number, for logs and session ownership.
    pub fn next_connection_id(&self) -> u64 {
        self.next_connection
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Per-session queue bounds from the configuration.
    pub fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            max_messages: self.config.limits.max_queued_messages,
            max_bytes: self.config.limits.max_queued_bytes,
        }
    }

    /// Routes a message without waiting: a delivery that finds an online subscriber's queue
    /// full is dropped and counted. For the broker's own messages (wills, `$SYS`). Returns
    /// whether the store was given something to make durable, as [`Hub::route`].
    pub fn publish(&self, message: Arc<Message>) -> bool {
        let mut waiting = VecDeque::new();
        let durable = self.route(message, &mut waiting);
        let limits = self.queue_limits();
        for (mailbox, delivery) in waiting {
            self.count(mailbox.push(delivery, limits), false);
        }
        durable
    }

    /// Routes a message: stores it if retained, then queues one delivery for every
    /// matching session. A QoS 1/2 delivery that finds an online subscriber's queue full,
    /// and every delivery after it, is left in `waiting`, in order, for the publisher's
    /// connection to queue with [`Hub::retry`] once there is room (its acknowledgement waits
    /// for that). Returns whether the store was given something that the publisher's
    /// acknowledgement promises (a QoS 1/2 message retained or queued for a persistent
    /// session): the acknowledgement then waits for a store barrier too.
    ///
    /// Delivered QoS is the lower of published and granted [MQTT-3.8.4-8]; the retain flag
    /// is cleared unless the subscription asked for Retain As Published [MQTT-3.3.1-12,
    /// MQTT-3.3.1-13]; No Local subscriptions skip their own client's messages [MQTT-3.8.3-3].
    pub fn route(&self, message: Arc<Message>, waiting: &mut VecDeque<Waiting>) -> bool {
        let mut durable = false;
        if message.retain {
            self.retained.set(message.clone());
            // `$SYS` topics are the broker's own, rewritten after every start.
            let own = message.origin.is_none() && message.topic.as_str().starts_with("$SYS");
            if let (Some(store), false) = (&self.store, own) {
                store.log(Op::Retain(message.clone()));
                durable = message.qos != QoS::AtMostOnce;
            }
        }
        let limits = self.queue_limits();
        // Under the router's read lock: a push takes only its mailbox's lock.
        self.router
            .for_each_match(message.topic.as_str(), |target| {
                if target.no_local && message.origin.as_deref() == Some(&**target.client) {
                    return;
                }
                let delivery = Delivery {
                    message: message.clone(),
                    qos: message.qos.min(target.qos),
                    retain: message.retain && target.retain_as_published,
                    subscription_ids: target.subscription_ids,
                    shared: target.shared.cloned(),
                    stored: None,
                };
                if !waiting.is_empty() {
                    waiting.push_back((target.mailbox.clone(), delivery));
                    return;
                }
                let stored = target.mailbox.is_persistent() && delivery.qos != QoS::AtMostOnce;
                match target.mailbox.try_push(delivery, limits) {
                    Ok(pushed) => durable |= self.count(pushed, stored),
                    Err(delivery) => waiting.push_back((target.mailbox.clone(), delivery)),
                }
            });
        durable
    }

    /// Queues the waiting deliveries of [`Hub::route`] in order while there is room.
    /// Returns whether one went to a persistent session's store.
    pub fn retry(&self, waiting: &mut VecDeque<Waiting>) -> bool {
        let limits = self.queue_limits();
        let mut durable = false;
        while let Some((mailbox, delivery)) = waiting.pop_front() {
            let stored = mailbox.is_persistent() && delivery.qos != QoS::AtMostOnce;
            match mailbox.try_push(delivery, limits) {
                Ok(pushed) => durable |= self.count(pushed, stored),
                Err(delivery) => {
                    waiting.push_front((mailbox, delivery));
                    break;
                }
            }
        }
        durable
    }

    /// Drops the first waiting delivery (its publisher waited `limits.publish_wait` in
    /// vain), counting it, and marks its subscriber stalled so that the next deliveries to
    /// its full queue are dropped at once rather than waiting again.
    pub fn give_up(&self, waiting: &mut VecDeque<Waiting>) {
        if let Some((mailbox, _)) = waiting.pop_front() {
            mailbox.mark_stalled();
            Metrics::add(&self.metrics.publish_dropped, 1);
        }
    }

    /// Counts a drop; returns whether a stored delivery was queued.
    fn count(&self, pushed: Pushed, stored: bool) -> bool {
        match pushed {
            Pushed::Queued => stored,
            Pushed::QueuedEvicting => {
                Metrics::add(&self.metrics.publish_dropped, 1);
                stored
            }
            Pushed::Dropped => {
                Metrics::add(&self.metrics.publish_dropped, 1);
                false
            }
        }
    }

    /// Adds a session's subscription to the router and queues the retained messages it
    /// should receive: with the retain flag set [MQTT-3.3.1-9], unless Retain Handling says
    /// otherwise [MQTT-3.3.1-10, MQTT-3.3.1-11], and never for a shared subscription
    /// [MQTT-3.8.4-?, §4.8.2].
    pub fn subscribe(&self, state: &SessionState, subscription: &Subscription, existed: bool) {
        self.router.subscribe(
            &subscription.filter,
            Subscriber {
                client: state.client_id.clone(),
                mailbox: state.mailbox.clone(),
                options: subscription.options,
                id: subscription.id,
            },
        );
        let send_retained = match subscription.options.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendIfNew => !existed,
            RetainHandling::DoNotSend => false,
        };
        if !send_retained || subscription.filter.is_shared() {
            return;
        }
        let limits = self.queue_limits();
        for message in self.retained.matching(&subscription.filter) {
            let delivery = Delivery {
                qos: message.qos.min(subscription.options.qos),
                message,
                retain: true,
                subscription_ids: subscription.id.into_iter().collect(),
                shared: None,
                stored: None,
            };
            if state.mailbox.push(delivery, limits) != Pushed::Queued {
                Metrics::add(&self.metrics.publish_dropped, 1);
            }
        }
    }

    /// Removes every subscription of a session that has ended, and hands the messages it
    /// received through shared subscriptions to other members of their groups (MQTT 5.0
    /// §4.8.2): QoS 1/2 ones still queued, and QoS 1 ones sent but unacknowledged. A QoS 2
    /// message already sent goes to no other member [MQTT-4.8.2-5].
    pub fn end_session(&self, state: SessionState) {
        state.log(|uid| Op::EndSession {
            client: state.client_id.clone(),
            uid,
        });
        for subscription in state.subscriptions.values() {
            self.router
                .unsubscribe(&subscription.filter, &state.client_id, &state.mailbox);
        }
        let unacknowledged = state
            .inflight
            .into_iter()
            .filter(|m| {
                m.stage == crate::session::Stage::Published
                    && m.delivery.qos == tern_codec::QoS::AtLeastOnce
            })
            .map(|m| m.delivery);
        let limits = self.queue_limits();
        for mut delivery in unacknowledged.chain(state.mailbox.drain()) {
            let Some(filter) = delivery.shared.take() else {
                continue;
            };
            if delivery.qos == tern_codec::QoS::AtMostOnce {
                continue;
            }
            match self.router.pick_shared(&filter) {
                Some(target) => {
                    delivery.qos = delivery.message.qos.min(target.qos);
                    delivery.shared = Some(filter);
                    if target.mailbox.push(delivery, limits) != Pushed::Queued {
                        Metrics::add(&self.metrics.publish_dropped, 1);
                    }
                }
                None => Metrics::add(&self.metrics.publish_dropped, 1),
            }
        }
    }

    /// Publishes a will message on behalf of `client_id`.
    pub fn publish_will(&self, client_id: &Arc<str>, will: Will) {
        let p = will.properties;
        let properties = PublishProperties {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
            content_type: p.content_type,
            user_properties: p.user_properties,
            ..Default::default()
        };
        let message = Message::detached(
            &will.topic,
            &will.payload,
            will.qos,
            will.retain,
            properties,
            Some(client_id.clone()),
            crate::clock::now(),
        );
        self.publish(Arc::new(message));
    }

    /// Publishes the delayed wills that are due and ends the offline sessions whose expiry
    /// has passed.
    pub fn expire_sessions(&self, now: Instant) {
        let due = self.registry.take_due(now);
        for (client_id, will) in due.wills {
            tracing::debug!(%client_id, topic = %will.topic, "publishing delayed will");
            self.publish_will(&client_id, will);
        }
        for state in due.expired {
            tracing::debug!(client_id = %state.client_id, "session expired");
            self.end_session(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use tern_codec::{QoS, SubscriptionOptions, TopicFilter};

    use super::*;
    use crate::session::{Inflight, Stage};

    fn member(hub: &Hub, client: &str) -> SessionState {
        let mut state = SessionState::new(client.into(), 0);
        let subscription = Subscription {
            filter: TopicFilter::try_from("$share/g/t").unwrap(),
            options: SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            id: None,
        };
        hub.subscribe(&state, &subscription, false);
        state
            .subscriptions
            .insert("$share/g/t".into(), subscription);
        state
    }

    fn message() -> Arc<Message> {
        Arc::new(Message::detached(
            &"t".try_into().unwrap(),
            b"m",
            QoS::AtLeastOnce,
            false,
            Default::default(),
            None,
            crate::clock::now(),
        ))
    }

    #[test]
    fn unacknowledged_shared_messages_go_to_another_member_when_a_session_ends_4_8_2() {
        let hub = Hub::new(Config::default());
        let mut a = member(&hub, "a");
        let b = member(&hub, "b");
        hub.publish(message());
        hub.publish(message());
        // One message each; a's goes in flight and is never acknowledged.
        let in_flight = a.mailbox.pop().unwrap();
        let packet_id = a.allocate_packet_id();
        a.inflight.push_back(Inflight {
            packet_id,
            delivery: in_flight,
            stage: Stage::Published,
        });
        assert_eq!(b.mailbox.len(), 1);
        hub.end_session(a);
        assert_eq!(b.mailbox.len(), 2, "a's unacknowledged message handed to b");
        assert!(hub.router.matches("t").iter().all(|t| &*t.client == "b"));
    }
}
