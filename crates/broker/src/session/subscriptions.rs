//! SUBSCRIBE and UNSUBSCRIBE (MQTT 5.0 §3.8-§3.11).
//!
//! Each filter gets its own reason code in the SUBACK, in order [MQTT-3.8.4-6]: the granted
//! QoS (the requested one, capped by the server's Maximum QoS [MQTT-3.2.2-9]), or a failure:
//! 0x8F over the topic limits, 0xA2 wildcards not supported, 0x9E shared subscriptions not
//! supported, 0xA1 subscription identifiers not supported. A subscription to a filter the
//! session already has replaces it [MQTT-3.8.4-3]. UNSUBACK reports 0x11 for a filter that
//! had no subscription.

use tern_codec::{Packet, QoS, ReasonCode, SubAck, Subscribe, UnsubAck, Unsubscribe};

use super::{Action, Session, Subscription};
use crate::store::Op;

impl Session {
    pub(super) fn on_subscribe(&mut self, subscribe: Subscribe) {
        let mut reason_codes = Vec::with_capacity(subscribe.filters.len());
        let mut accepted = Vec::new();
        let id = subscribe.properties.subscription_identifier;
        for (filter, mut options) in subscribe.filters {
            let refusal = if !self.topic_within_limits(filter.levels(), filter.as_str().len()) {
                Some(ReasonCode::TopicFilterInvalid)
            } else if filter.has_wildcards() && !self.limits.wildcard_subscriptions {
                Some(ReasonCode::WildcardSubscriptionsNotSupported)
            } else if filter.is_shared() && !self.limits.shared_subscriptions {
                Some(ReasonCode::SharedSubscriptionsNotSupported)
            } else if id.is_some() && !self.limits.subscription_identifiers {
                Some(ReasonCode::SubscriptionIdentifiersNotSupported)
            } else {
                None
            };
            if let Some(reason) = refusal {
                reason_codes.push(reason);
                continue;
            }
            options.qos = options.qos.min(self.limits.maximum_qos);
            reason_codes.push(match options.qos {
                QoS::AtMostOnce => ReasonCode::Success,
                QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
            });
            let subscription = Subscription {
                filter,
                options,
                id,
            };
            let key: Box<str> = subscription.filter.as_str().into();
            let value = crate::store::encode_subscription(options, id);
            let filter = key.clone();
            self.log_durable(|uid| Op::Subscribe { uid, filter, value });
            let existed = self
                .state
                .subscriptions
                .insert(key, subscription.clone())
                .is_some();
            accepted.push(Action::Subscribe {
                subscription,
                existed,
            });
        }
        // The SUBACK goes out before the retained messages the subscriptions bring.
        self.send(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: Default::default(),
            reason_codes,
        }));
        self.actions.extend(accepted);
    }

    pub(super) fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        let mut reason_codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in unsubscribe.filters {
            if self.state.subscriptions.remove(filter.as_str()).is_some() {
                let stored: Box<str> = filter.as_str().into();
                self.log_durable(|uid| Op::Unsubscribe {
                    uid,
                    filter: stored,
                });
                reason_codes.push(ReasonCode::Success);
                self.actions.push_back(Action::Unsubscribe(filter));
            } else {
                reason_codes.push(ReasonCode::NoSubscriptionExisted);
            }
        }
        self.send(Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: Default::default(),
            reason_codes,
        }));
    }
}
