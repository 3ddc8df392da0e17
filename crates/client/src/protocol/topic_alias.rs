//! Topic Aliases for outgoing PUBLISH (§3.3.2.3.4).
//!
//! Rules: the client may use aliases from 1 to the Topic Alias Maximum of the server's
//! CONNACK, and none when it sent none [MQTT-3.3.2-7, MQTT-3.3.2-8]; aliases last one
//! connection [MQTT-3.3.2-10]. Policy: the first distinct topics of a connection, up to the
//! maximum, get an alias each, in order of first use; the first PUBLISH of a topic carries
//! the topic and its alias, later ones only the alias (and an empty topic). Aliases are
//! never reassigned, so a message in flight that is resent stays correct. Only the packet on
//! the wire is rewritten; the message kept for resending keeps its topic.

use std::collections::HashMap;
use std::num::NonZeroU16;

use tern_codec::{Publish, TopicName};

/// The aliases given on this connection.
#[derive(Debug, Default)]
pub(crate) struct OutboundAliases {
    maximum: u16,
    assigned: HashMap<TopicName, NonZeroU16>,
}

impl OutboundAliases {
    /// A new connection whose server accepts aliases up to `maximum` (0: none).
    pub(crate) fn reset(&mut self, maximum: u16) {
        self.maximum = maximum;
        self.assigned.clear();
    }

    /// Rewrites an outgoing PUBLISH to use an alias where one is, or can be, assigned.
    pub(crate) fn apply(&mut self, publish: &mut Publish) {
        if let Some(&alias) = self.assigned.get(&publish.topic) {
            publish.topic = TopicName::default();
            publish.properties.topic_alias = Some(alias);
            return;
        }
        let next = u16::try_from(self.assigned.len() + 1).unwrap_or(u16::MAX);
        if next > self.maximum {
            return;
        }
        if let Some(alias) = NonZeroU16::new(next) {
            self.assigned.insert(publish.topic.clone(), alias);
            publish.properties.topic_alias = Some(alias);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str) -> Publish {
        Publish::new(TopicName::try_from(topic).unwrap(), "x")
    }

    fn sent(aliases: &mut OutboundAliases, topic: &str) -> (String, Option<u16>) {
        let mut p = publish(topic);
        aliases.apply(&mut p);
        (
            p.topic.as_str().to_owned(),
            p.properties.topic_alias.map(NonZeroU16::get),
        )
    }

    #[test]
    fn first_use_sets_the_alias_later_uses_send_only_it() {
        let mut aliases = OutboundAliases::default();
        aliases.reset(2);
        assert_eq!(
            sent(&mut aliases, "a/long/topic"),
            ("a/long/topic".into(), Some(1))
        );
        assert_eq!(sent(&mut aliases, "a/long/topic"), (String::new(), Some(1)));
        assert_eq!(sent(&mut aliases, "b"), ("b".into(), Some(2)));
        assert_eq!(
            sent(&mut aliases, "c"),
            ("c".into(), None),
            "maximum reached"
        );
        assert_eq!(sent(&mut aliases, "b"), (String::new(), Some(2)));
    }

    #[test]
    fn none_without_a_server_maximum_and_none_kept_across_connections_3_3_2_10() {
        let mut aliases = OutboundAliases::default();
        assert_eq!(sent(&mut aliases, "a"), ("a".into(), None));
        aliases.reset(5);
        sent(&mut aliases, "a");
        aliases.reset(5);
        assert_eq!(sent(&mut aliases, "a"), ("a".into(), Some(1)));
    }
}
