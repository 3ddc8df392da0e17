//! `-D command property value`: MQTT 5.0 properties given on the command line, as
//! mosquitto_pub and mosquitto_sub take them, checked and typed.
//!
//! Rules:
//! - A user property takes two values (`-D publish user-property name value`); every other
//!   property takes one.
//! - A property is accepted only for a packet that may carry it (§2.2.2.2, table 2-4), and
//!   only where tern-client can send it: CONNECT, PUBLISH (tern pub) and the will. SUBSCRIBE,
//!   UNSUBSCRIBE and DISCONNECT properties, topic aliases (the client chooses its own) and
//!   extended authentication are refused with the reason.
//! - Numbers are checked against their width (one byte, two bytes, four bytes).

use std::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;
use tern_client::{ConnectProperties, PublishProperties, TopicName, UserProperty, WillProperties};

/// The packets a `-D` property may go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// CONNECT.
    Connect,
    /// Every PUBLISH of `tern pub`.
    Publish,
    /// The will message.
    Will,
}

/// The properties given with `-D`, by packet.
#[derive(Debug, Default, Clone)]
pub(crate) struct Properties {
    /// CONNECT properties.
    pub(crate) connect: ConnectProperties,
    /// PUBLISH properties (only `tern pub` accepts them).
    pub(crate) publish: PublishProperties,
    /// Will properties.
    pub(crate) will: WillProperties,
    /// Whether any `-D` was given (which selects MQTT 5.0, as mosquitto does).
    pub(crate) any: bool,
    /// Whether will properties were given (they need `--will-topic`).
    pub(crate) any_will: bool,
}

impl Properties {
    /// Parses the values of every `-D` occurrence, one after the other (clap gives them as
    /// one list): a command, a name, then two values for `user-property` and one for any
    /// other. `allow_publish` is false for `tern sub`.
    pub(crate) fn parse(values: &[String], allow_publish: bool) -> Result<Self, String> {
        let mut properties = Properties::default();
        let mut rest = values;
        while !rest.is_empty() {
            let len = match rest.get(1) {
                Some(name) if name == "user-property" => 4,
                _ => 3,
            };
            let (occurrence, after) = rest.split_at(len.min(rest.len()));
            properties.add(occurrence, allow_publish)?;
            properties.any = true;
            rest = after;
        }
        Ok(properties)
    }

    fn add(&mut self, values: &[String], allow_publish: bool) -> Result<(), String> {
        let (command, name, rest) = match values {
            [command, name, rest @ ..] if !rest.is_empty() => (command, name, rest),
            _ => return Err("-D/--property needs a command, a property and a value.".into()),
        };
        let target = match command.as_str() {
            "connect" => Target::Connect,
            "publish" if allow_publish => Target::Publish,
            "will" => Target::Will,
            "publish" => {
                return Err(
                    "-D publish is for tern pub; tern sub publishes nothing (except with \
                     --remove-retained, which sends empty messages)."
                        .into(),
                )
            }
            "subscribe" | "unsubscribe" | "disconnect" => {
                return Err(format!(
                    "-D {command}: tern cannot send {} properties yet (tern-client has no way \
                     to set them); leave this -D out.",
                    command.to_uppercase()
                ))
            }
            "auth" => return Err(unsupported_auth()),
            other => {
                return Err(format!(
                    "invalid command '{other}' in -D/--property; use connect, publish or will."
                ))
            }
        };
        if name == "user-property" {
            let [key, value] = rest else {
                return Err("-D ... user-property needs a name and a value.".into());
            };
            let pair =
                UserProperty::new(key, value).map_err(|e| format!("user-property {key:?}: {e}"))?;
            match target {
                Target::Connect => self.connect.user_properties.push(pair),
                Target::Publish => self.publish.user_properties.push(pair),
                Target::Will => {
                    self.will.user_properties.push(pair);
                    self.any_will = true;
                }
            }
            return Ok(());
        }
        let [value] = rest else {
            return Err(format!("-D {command} {name} takes one value."));
        };
        match target {
            Target::Connect => self.add_connect(name, value),
            Target::Publish => {
                add_message(&mut MessageProps::Publish(&mut self.publish), name, value)
            }
            Target::Will => {
                self.any_will = true;
                if name == "will-delay-interval" {
                    self.will.will_delay_interval = Some(number(name, value)?);
                    return Ok(());
                }
                add_message(&mut MessageProps::Will(&mut self.will), name, value)
            }
        }
        .map_err(|e| match e {
            PropError::NotAllowed => {
                format!("{name} property not allowed for {command} in -D/--property.")
            }
            PropError::Message(m) => m,
        })
    }

    fn add_connect(&mut self, name: &str, value: &str) -> Result<(), PropError> {
        let c = &mut self.connect;
        match name {
            "session-expiry-interval" => c.session_expiry_interval = Some(number(name, value)?),
            "receive-maximum" => c.receive_maximum = Some(nonzero16(name, value)?),
            "maximum-packet-size" => c.maximum_packet_size = Some(nonzero32(name, value)?),
            "topic-alias-maximum" => c.topic_alias_maximum = Some(number(name, value)?),
            "request-problem-information" => {
                c.request_problem_information = Some(flag(name, value)?)
            }
            "request-response-information" => {
                c.request_response_information = Some(flag(name, value)?)
            }
            "authentication-method" | "authentication-data" => {
                return Err(PropError::Message(unsupported_auth()))
            }
            _ => return Err(unknown(name)),
        }
        Ok(())
    }
}

/// Why a property was refused.
enum PropError {
    /// The property exists but this packet cannot carry it.
    NotAllowed,
    /// Anything else, said in full.
    Message(String),
}

impl From<String> for PropError {
    fn from(message: String) -> Self {
        PropError::Message(message)
    }
}

/// PUBLISH and will properties share most names.
enum MessageProps<'a> {
    Publish(&'a mut PublishProperties),
    Will(&'a mut WillProperties),
}

fn add_message(props: &mut MessageProps<'_>, name: &str, value: &str) -> Result<(), PropError> {
    macro_rules! set {
        ($field:ident, $value:expr) => {
            match props {
                MessageProps::Publish(p) => p.$field = Some($value),
                MessageProps::Will(w) => w.$field = Some($value),
            }
        };
    }
    match name {
        "content-type" => set!(content_type, mqtt_string(name, value)?),
        "correlation-data" => set!(correlation_data, Bytes::from(value.to_owned())),
        "message-expiry-interval" => set!(message_expiry_interval, number(name, value)?),
        "payload-format-indicator" => set!(payload_format_indicator, flag(name, value)?),
        "response-topic" => {
            let topic = TopicName::try_from(value)
                .map_err(|e| format!("invalid response-topic {value:?}: {e}"))?;
            set!(response_topic, topic)
        }
        "topic-alias" => {
            return Err(PropError::Message(
                "-D publish topic-alias: tern-client chooses topic aliases itself; leave it out."
                    .into(),
            ))
        }
        "will-delay-interval" => return Err(PropError::NotAllowed),
        _ if is_known(name) => return Err(PropError::NotAllowed),
        _ => return Err(unknown(name)),
    }
    Ok(())
}

/// Every property name mosquitto knows, so that a known one in the wrong place is told
/// apart from a typo.
fn is_known(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "payload-format-indicator",
        "message-expiry-interval",
        "content-type",
        "response-topic",
        "correlation-data",
        "subscription-identifier",
        "session-expiry-interval",
        "assigned-client-identifier",
        "server-keep-alive",
        "authentication-method",
        "authentication-data",
        "request-problem-information",
        "will-delay-interval",
        "request-response-information",
        "response-information",
        "server-reference",
        "reason-string",
        "receive-maximum",
        "topic-alias-maximum",
        "topic-alias",
        "maximum-qos",
        "retain-available",
        "user-property",
        "maximum-packet-size",
        "wildcard-subscription-available",
        "subscription-identifier-available",
        "shared-subscription-available",
    ];
    NAMES.contains(&name)
}

fn unknown(name: &str) -> PropError {
    if is_known(name) {
        PropError::NotAllowed
    } else {
        PropError::Message(format!(
            "invalid property name '{name}' in -D/--property (names are as in the MQTT 5.0 \
             standard, lower case with dashes, such as content-type)."
        ))
    }
}

fn unsupported_auth() -> String {
    "extended authentication (authentication-method, authentication-data, AUTH) is not \
     supported by tern-client yet."
        .into()
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| {
        format!("{name} needs a whole number within the property's range, not {value:?}.")
    })
}

fn nonzero16(name: &str, value: &str) -> Result<NonZeroU16, String> {
    number::<NonZeroU16>(name, value).map_err(|_| format!("{name} must be 1-65535, not {value:?}."))
}

fn nonzero32(name: &str, value: &str) -> Result<NonZeroU32, String> {
    number::<NonZeroU32>(name, value)
        .map_err(|_| format!("{name} must be 1-4294967295, not {value:?}."))
}

fn flag(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(format!("{name} must be 0 or 1, not {value:?}.")),
    }
}

fn mqtt_string(name: &str, value: &str) -> Result<tern_codec::MqttString, String> {
    tern_codec::MqttString::try_from(value).map_err(|e| format!("{name} {value:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&[&str]], allow_publish: bool) -> Result<Properties, String> {
        let values: Vec<String> = args
            .iter()
            .flat_map(|a| a.iter().map(|s| s.to_string()))
            .collect();
        Properties::parse(&values, allow_publish)
    }

    #[test]
    fn publish_and_connect_properties() {
        let p = parse(
            &[
                &["publish", "user-property", "k", "v"],
                &["publish", "content-type", "text/plain"],
                &["publish", "correlation-data", "abc"],
                &["publish", "response-topic", "r/t"],
                &["publish", "message-expiry-interval", "100"],
                &["publish", "payload-format-indicator", "1"],
                &["connect", "session-expiry-interval", "60"],
                &["connect", "receive-maximum", "5"],
                &["connect", "user-property", "a", "b"],
                &["will", "will-delay-interval", "3"],
            ],
            true,
        )
        .expect("valid");
        assert!(p.any && p.any_will);
        assert_eq!(
            p.publish.user_properties,
            [UserProperty::new("k", "v").unwrap()]
        );
        assert_eq!(
            p.publish.content_type.as_ref().map(|s| s.as_str()),
            Some("text/plain")
        );
        assert_eq!(p.publish.correlation_data.as_deref(), Some(&b"abc"[..]));
        assert_eq!(
            p.publish.response_topic.as_ref().map(|t| t.as_str()),
            Some("r/t")
        );
        assert_eq!(p.publish.message_expiry_interval, Some(100));
        assert_eq!(p.publish.payload_format_indicator, Some(true));
        assert_eq!(p.connect.session_expiry_interval, Some(60));
        assert_eq!(p.connect.receive_maximum.map(|r| r.get()), Some(5));
        assert_eq!(p.connect.user_properties.len(), 1);
        assert_eq!(p.will.will_delay_interval, Some(3));
    }

    #[test]
    fn refusals_say_why() {
        let err = |args: &[&str], publish| parse(&[args], publish).expect_err("refused");
        assert!(err(&["publish", "foo", "1"], true).contains("invalid property name 'foo'"));
        assert!(err(&["connect", "content-type", "x"], true).contains("not allowed for connect"));
        assert!(err(&["publish", "user-property", "k"], true).contains("a name and a value"));
        assert!(err(&["publish", "content-type", "x"], false).contains("tern pub"));
        assert!(err(&["subscribe", "user-property", "k", "v"], false).contains("SUBSCRIBE"));
        assert!(err(&["connect", "receive-maximum", "0"], true).contains("1-65535"));
        assert!(err(&["publish", "payload-format-indicator", "2"], true).contains("0 or 1"));
        assert!(err(&["publish", "topic-alias", "1"], true).contains("aliases itself"));
        assert!(err(&["publish", "response-topic", "a/#"], true).contains("response-topic"));
        assert!(err(&["connect", "authentication-method", "x"], true).contains("AUTH"));
    }
}
