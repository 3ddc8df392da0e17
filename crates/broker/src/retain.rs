//! Retained messages: the last retained message of each topic (MQTT 5.0 §3.3.1.3).
//!
//! - A PUBLISH with the retain flag replaces the topic's retained message [MQTT-3.3.1-5].
//! - A retained PUBLISH with an empty payload deletes it and is not stored [MQTT-3.3.1-6].
//! - A new subscription receives the retained messages its filter matches, with the retain
//!   flag set [MQTT-3.3.1-9].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tern_codec::{topic, TopicFilter};

use crate::message::Message;

/// The retained message store, keyed by topic name.
#[derive(Debug, Default)]
pub struct RetainStore {
    messages: RwLock<HashMap<Box<str>, Arc<Message>>>,
}

impl RetainStore {
    /// An empty store.
    pub fn new() -> Self {
        RetainStore::default()
    }

    /// Stores `message` as its topic's retained message, or deletes the topic's retained
    /// message when the payload is empty.
    pub fn set(&self, message: Arc<Message>) {
        let mut messages = self.messages.write().unwrap_or_else(|e| e.into_inner());
        if message.payload.is_empty() {
            messages.remove(message.topic.as_str());
        } else {
            messages.insert(message.topic.as_str().into(), message);
        }
    }

    /// The retained messages whose topic `filter` matches, in topic order.
    pub fn matching(&self, filter: &TopicFilter) -> Vec<Arc<Message>> {
        let messages = self.messages.read().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<Arc<Message>> = if filter.has_wildcards() {
            messages
                .iter()
                .filter(|(name, _)| topic::matches(filter.filter(), name))
                .map(|(_, m)| m.clone())
                .collect()
        } else {
            messages.get(filter.filter()).cloned().into_iter().collect()
        };
        found.sort_by(|a, b| a.topic.cmp(&b.topic));
        found
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.messages
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// True when no message is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tern_codec::QoS;

    use super::*;

    fn msg(topic: &str, payload: &str) -> Arc<Message> {
        Arc::new(Message::detached(
            &topic.try_into().unwrap(),
            payload.as_bytes(),
            QoS::AtMostOnce,
            true,
            Default::default(),
            None,
            Instant::now(),
        ))
    }

    #[test]
    fn last_one_kept_and_empty_payload_deletes_3_3_1_5_and_6() {
        let store = RetainStore::new();
        store.set(msg("a/b", "1"));
        store.set(msg("a/b", "2"));
        store.set(msg("a/c", "3"));
        let all = store.matching(&"a/+".try_into().unwrap());
        assert_eq!(
            all.iter().map(|m| &m.payload[..]).collect::<Vec<_>>(),
            [b"2", b"3"]
        );
        store.set(msg("a/b", ""));
        assert_eq!(store.len(), 1);
        assert!(store.matching(&"a/b".try_into().unwrap()).is_empty());
        assert!(store.matching(&"#".try_into().unwrap()).len() == 1);
        store.set(msg("$SYS/x", "s"));
        assert_eq!(
            store.matching(&"#".try_into().unwrap()).len(),
            1,
            "[MQTT-4.7.2-1]"
        );
    }
}
