//! Topic names, topic filters and how they match (MQTT 5.0 §4.7, shared subscriptions §4.8.2).
//!
//! The rules, as the standard states them:
//!
//! - Levels are separated by `/`; a level may be empty (`a//b`, `/a`).
//! - `#` matches the parent level and any number of child levels; it must be the last
//!   character of the filter and a whole level by itself [MQTT-4.7.1-1].
//! - `+` matches exactly one level, and must be a whole level by itself [MQTT-4.7.1-2].
//! - A topic name has no wildcards [MQTT-3.3.2-2]; names and filters are at least one
//!   character long [MQTT-4.7.3-1] and never contain U+0000 [MQTT-4.7.3-2].
//! - A filter that starts with a wildcard does not match a topic name that starts with `$`
//!   [MQTT-4.7.2-1], so `#` does not see `$SYS/...`.
//! - `$share/{ShareName}/{filter}` is a shared subscription: the share name is at least one
//!   character and has no `/`, `+` or `#` [MQTT-4.8.2-1, MQTT-4.8.2-2]; the filter after it
//!   is an ordinary filter and is what is matched.

use std::fmt;

use crate::error::DecodeError;
use crate::string::MqttString;

/// The prefix that marks a shared subscription.
pub const SHARE_PREFIX: &str = "$share/";

/// A validated topic name: no wildcards, no U+0000.
///
/// Only the empty name ([`TopicName::default`]) breaks the one-character minimum: an MQTT 5.0
/// PUBLISH whose topic is given by a Topic Alias carries it on the wire.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicName(MqttString);

impl TopicName {
    /// Validates a topic name: not empty, no `+` or `#`.
    pub fn new(name: MqttString) -> Result<Self, DecodeError> {
        if name.is_empty() {
            return Err(DecodeError::EmptyTopic);
        }
        Self::new_or_empty(name)
    }

    /// Validates a topic name that may be empty (a PUBLISH that relies on a Topic Alias).
    pub(crate) fn new_or_empty(name: MqttString) -> Result<Self, DecodeError> {
        if name.as_bytes().iter().any(|&b| b == b'+' || b == b'#') {
            return Err(DecodeError::WildcardInTopicName);
        }
        Ok(TopicName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The name as a string value.
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.0
    }

    /// The name's UTF-8 bytes, as encoded (no second validation, unlike `as_str`).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True only for the placeholder of an aliased PUBLISH.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of levels (`a/b` has 2, `/` has 2).
    pub fn levels(&self) -> usize {
        self.0.as_bytes().iter().filter(|&&b| b == b'/').count() + 1
    }

    /// A copy that owns exactly its bytes (see [`MqttString::detached`]).
    pub fn detached(&self) -> Self {
        TopicName(self.0.detached())
    }
}

impl TryFrom<&str> for TopicName {
    type Error = DecodeError;

    fn try_from(s: &str) -> Result<Self, DecodeError> {
        TopicName::new(MqttString::try_from(s)?)
    }
}

/// A validated topic filter, possibly a shared subscription `$share/{group}/{filter}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter {
    full: MqttString,
    /// For a shared subscription, the byte offset where the filter after the share name
    /// starts; 0 otherwise.
    filter_start: u16,
}

impl TopicFilter {
    /// Validates a topic filter and parses its share name, if any.
    pub fn new(full: MqttString) -> Result<Self, DecodeError> {
        let text = full.as_str();
        let filter_start = match text.strip_prefix(SHARE_PREFIX) {
            Some(rest) => {
                let slash = rest
                    .find('/')
                    .ok_or(DecodeError::InvalidSharedSubscription)?;
                let group = &rest[..slash];
                if group.is_empty() || group.contains(['+', '#']) {
                    return Err(DecodeError::InvalidSharedSubscription);
                }
                if rest.len() == slash + 1 {
                    return Err(DecodeError::InvalidSharedSubscription);
                }
                SHARE_PREFIX.len() + slash + 1
            }
            None => 0,
        };
        validate_filter(&text[filter_start..])?;
        Ok(TopicFilter {
            filter_start: filter_start as u16,
            full,
        })
    }

    /// The whole filter as sent, `$share/...` prefix included.
    pub fn as_str(&self) -> &str {
        self.full.as_str()
    }

    /// The whole filter as a string value.
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.full
    }

    /// The whole filter's UTF-8 bytes, as encoded (no second validation, unlike `as_str`).
    pub fn as_bytes(&self) -> &[u8] {
        self.full.as_bytes()
    }

    /// The part that is matched against topic names (after `$share/{group}/`).
    pub fn filter(&self) -> &str {
        &self.as_str()[usize::from(self.filter_start)..]
    }

    /// The share name of a shared subscription.
    pub fn share_name(&self) -> Option<&str> {
        if self.filter_start == 0 {
            return None;
        }
        Some(&self.as_str()[SHARE_PREFIX.len()..usize::from(self.filter_start) - 1])
    }

    /// True for `$share/...` filters.
    pub fn is_shared(&self) -> bool {
        self.filter_start != 0
    }

    /// True when the matched part has a `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.filter().contains(['+', '#'])
    }

    /// Number of levels of the matched part.
    pub fn levels(&self) -> usize {
        self.filter().bytes().filter(|&b| b == b'/').count() + 1
    }

    /// Whether this filter matches `topic` (the rules at the top of this module).
    pub fn matches(&self, topic: &TopicName) -> bool {
        matches(self.filter(), topic.as_str())
    }

    /// A copy that owns exactly its bytes (see [`MqttString::detached`]).
    pub fn detached(&self) -> Self {
        TopicFilter {
            full: self.full.detached(),
            filter_start: self.filter_start,
        }
    }
}

impl TryFrom<&str> for TopicFilter {
    type Error = DecodeError;

    fn try_from(s: &str) -> Result<Self, DecodeError> {
        TopicFilter::new(MqttString::try_from(s)?)
    }
}

fn validate_filter(filter: &str) -> Result<(), DecodeError> {
    if filter.is_empty() {
        return Err(DecodeError::EmptyTopic);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(DecodeError::MisplacedMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(DecodeError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
}

/// Whether the (non-shared, valid) `filter` matches the topic name `topic`.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(s: &str) -> Result<TopicFilter, DecodeError> {
        TopicFilter::try_from(s)
    }

    #[test]
    fn multi_level_wildcard_examples_4_7_1_2() {
        let f = filter("sport/tennis/player1/#").unwrap();
        for t in [
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player1/score/wimbledon",
        ] {
            assert!(f.matches(&TopicName::try_from(t).unwrap()), "{t}");
        }
        assert!(matches("sport/#", "sport"));
        assert!(matches("#", "a/b/c"));
        // [MQTT-4.7.1-1]
        assert_eq!(
            filter("sport/tennis#").unwrap_err(),
            DecodeError::MisplacedMultiLevelWildcard
        );
        assert_eq!(
            filter("sport/tennis/#/ranking").unwrap_err(),
            DecodeError::MisplacedMultiLevelWildcard
        );
    }

    #[test]
    fn single_level_wildcard_examples_4_7_1_3() {
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(matches("sport/tennis/+", "sport/tennis/player2"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+", "finance") && !matches("+", "/finance"));
        assert!(matches("+/+", "/finance") && matches("/+", "/finance"));
        assert!(
            filter("+").is_ok()
                && filter("+/tennis/#").is_ok()
                && filter("sport/+/player1").is_ok()
        );
        // [MQTT-4.7.1-2]
        assert_eq!(
            filter("sport+").unwrap_err(),
            DecodeError::MisplacedSingleLevelWildcard
        );
    }

    #[test]
    fn dollar_topics_are_not_matched_by_leading_wildcards_4_7_2_1() {
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    }

    #[test]
    fn topic_names_have_no_wildcards_3_3_2_2() {
        assert_eq!(
            TopicName::try_from("a/+").unwrap_err(),
            DecodeError::WildcardInTopicName
        );
        assert_eq!(
            TopicName::try_from("#").unwrap_err(),
            DecodeError::WildcardInTopicName
        );
        assert_eq!(
            TopicName::try_from("").unwrap_err(),
            DecodeError::EmptyTopic
        );
        assert_eq!(filter("").unwrap_err(), DecodeError::EmptyTopic);
        assert_eq!(TopicName::try_from("a//b").unwrap().levels(), 3);
    }

    #[test]
    fn shared_subscriptions_4_8_2() {
        let f = filter("$share/consumer1/sport/tennis/+").unwrap();
        assert!(f.is_shared());
        assert_eq!(f.share_name(), Some("consumer1"));
        assert_eq!(f.filter(), "sport/tennis/+");
        assert!(f.matches(&TopicName::try_from("sport/tennis/x").unwrap()));
        let g = filter("$share/g/#").unwrap();
        assert_eq!((g.share_name(), g.filter()), (Some("g"), "#"));
        for bad in [
            "$share/",
            "$share//a",
            "$share/g",
            "$share/g/",
            "$share/a+/b",
            "$share/#/b",
        ] {
            assert_eq!(
                filter(bad).unwrap_err(),
                DecodeError::InvalidSharedSubscription,
                "{bad}"
            );
        }
        assert_eq!(
            filter("$share/g/a#").unwrap_err(),
            DecodeError::MisplacedMultiLevelWildcard
        );
        // Not a share prefix: an ordinary filter.
        assert!(!filter("$shared/a").unwrap().is_shared());
    }
}
