//! How `tern sub` prints a message: the payload alone, `-v` (topic, space, payload), or a
//! `-F` format string, byte for byte as mosquitto_sub 2.0 prints them.
//!
//! Format strings (mosquitto_sub(1), OUTPUT FORMAT):
//! - `%` sequences: `%%`, `%t` topic, `%p` payload, `%x`/`%X` payload in hex, `%l` payload
//!   length, `%q` QoS, `%r` retain flag, `%j`/`%J` JSON (see [`crate::json`]), `%I` ISO 8601
//!   local time, `%U` Unix time with nanoseconds, and the MQTT 5.0 properties `%A` topic
//!   alias, `%C` content type, `%D` correlation data, `%E` message expiry, `%F` payload
//!   format indicator, `%P` user properties (`name:value`, space separated), `%R` response
//!   topic, `%S` subscription identifier, `%m` the message id (the packet identifier, 0 for
//!   QoS 0).
//! - Flags after `%`: `-` left-aligns, `0` pads with zeros; then a field width and a
//!   `.precision` (maximum width, for strings). As in mosquitto, a width shorter than the
//!   payload cuts `%p`, `%x` and `%X`; `%q` and `%r` take no width.
//! - `@X` is strftime's `%X` on the local time, `@N` the nanoseconds, `@@` an `@`.
//! - `\\ \0 \a \e \n \r \t \v` are escapes.
//! - A newline follows each message unless `-N`.

use chrono::{DateTime, Local};
use tern_client::Message;

use crate::json::{self, Payload};

/// One part of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Bytes printed as they are.
    Literal(Vec<u8>),
    /// A `%` conversion.
    Field(Spec),
    /// `@X`: strftime `%X`.
    Time(char),
    /// `@N`: nanoseconds of the current second.
    Nanos,
}

/// A `%` conversion with its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spec {
    conversion: char,
    left: bool,
    pad: u8,
    width: usize,
    precision: Option<usize>,
}

/// A parsed `-F` format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Format {
    pieces: Vec<Piece>,
}

const CONVERSIONS: &str = "%ACDEFIjJlmPpqRrStUxX";

impl Format {
    /// Parses and checks a format string; the error is mosquitto's message or says why a
    /// specifier is not available.
    pub(crate) fn parse(format: &str) -> Result<Format, String> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let mut spec = Spec {
                        conversion: '%',
                        left: false,
                        pad: b' ',
                        width: 0,
                        precision: None,
                    };
                    if chars.next_if_eq(&'-').is_some() {
                        spec.left = true;
                    }
                    if chars.next_if_eq(&'0').is_some() {
                        spec.pad = b'0';
                    }
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        spec.width = spec.width.saturating_mul(10).saturating_add(digit(d));
                    }
                    if chars.next_if_eq(&'.').is_some() {
                        let mut precision = 0usize;
                        while let Some(d) = chars.next_if(char::is_ascii_digit) {
                            precision = precision.saturating_mul(10).saturating_add(digit(d));
                        }
                        spec.precision = Some(precision);
                    }
                    let Some(conversion) = chars.next() else {
                        return Err("Incomplete format specifier.".into());
                    };
                    if !CONVERSIONS.contains(conversion) {
                        return Err(format!("Invalid format specifier '{conversion}'."));
                    }
                    spec.conversion = conversion;
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Field(spec));
                }
                '@' => match chars.next() {
                    None => return Err("Incomplete format specifier.".into()),
                    Some('@') => literal.push(b'@'),
                    Some(c) => {
                        flush(&mut literal, &mut pieces);
                        pieces.push(if c == 'N' {
                            Piece::Nanos
                        } else {
                            Piece::Time(c)
                        });
                    }
                },
                '\\' => {
                    let byte = match chars.next() {
                        None => return Err("Incomplete escape specifier.".into()),
                        Some('\\') => b'\\',
                        Some('0') => 0,
                        Some('a') => 0x07,
                        Some('e') => 0x1B,
                        Some('n') => b'\n',
                        Some('r') => b'\r',
                        Some('t') => b'\t',
                        Some('v') => 0x0B,
                        Some(other) => return Err(format!("Invalid escape specifier '{other}'.")),
                    };
                    literal.push(byte);
                }
                c => {
                    let mut buf = [0; 4];
                    literal.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        flush(&mut literal, &mut pieces);
        Ok(Format { pieces })
    }
}

fn digit(c: char) -> usize {
    c.to_digit(10).map_or(0, |d| d as usize)
}

fn flush(literal: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
    if !literal.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(literal)));
    }
}

/// How messages are printed.
#[derive(Debug, Clone)]
pub(crate) enum Style {
    /// The payload alone (nothing at all for an empty payload).
    Payload,
    /// `-v`: topic, a space, the payload (`(null)` when empty).
    Verbose,
    /// `-F`.
    Format(Format),
    /// `--json`.
    Json,
}

/// A printer: the style plus `-N` and `--pretty`.
#[derive(Debug, Clone)]
pub(crate) struct Printer {
    /// The style.
    pub(crate) style: Style,
    /// Append a newline to each message (not with `-N`).
    pub(crate) eol: bool,
    /// Pretty JSON for `%j`, `%J` and `--json`.
    pub(crate) pretty: bool,
}

impl Printer {
    /// The bytes to print for `message` received at `now`; problems that do not stop the
    /// output (a `%J` payload that is not JSON) are pushed to `warnings`.
    pub(crate) fn render(
        &self,
        message: &Message,
        now: &DateTime<Local>,
        warnings: &mut Vec<String>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let payload = &message.payload[..];
        match &self.style {
            Style::Payload => {
                if payload.is_empty() {
                    return out;
                }
                out.extend_from_slice(payload);
            }
            Style::Verbose => {
                out.extend_from_slice(message.topic.as_bytes());
                if payload.is_empty() {
                    if !self.eol {
                        return Vec::new();
                    }
                    out.extend_from_slice(b" (null)");
                } else {
                    out.push(b' ');
                    out.extend_from_slice(payload);
                }
            }
            Style::Json => {
                if let Ok(value) = json::message(message, tst(now), Payload::Strict) {
                    value.write(&mut out, self.pretty);
                }
            }
            Style::Format(format) => {
                for piece in &format.pieces {
                    match piece {
                        Piece::Literal(bytes) => out.extend_from_slice(bytes),
                        Piece::Field(spec) => self.field(&mut out, spec, message, now, warnings),
                        Piece::Time(c) => {
                            out.extend_from_slice(strftime(now, &format!("%{c}")).as_bytes())
                        }
                        Piece::Nanos => out.extend_from_slice(
                            format!("{:09}", now.timestamp_subsec_nanos()).as_bytes(),
                        ),
                    }
                }
            }
        }
        if self.eol {
            out.push(b'\n');
        }
        out
    }

    fn field(
        &self,
        out: &mut Vec<u8>,
        spec: &Spec,
        message: &Message,
        now: &DateTime<Local>,
        warnings: &mut Vec<String>,
    ) {
        let p = &message.properties;
        let blank = |out: &mut Vec<u8>, pad: u8| out.extend(std::iter::repeat_n(pad, spec.width));
        match spec.conversion {
            '%' => out.push(b'%'),
            'A' => match p.topic_alias {
                Some(alias) => int(out, spec, alias.get().into()),
                None => blank(out, spec.pad),
            },
            'C' => match &p.content_type {
                Some(ct) => string(out, spec, ct.as_bytes()),
                None => blank(out, b' '),
            },
            'D' => {
                if let Some(data) = &p.correlation_data {
                    out.extend_from_slice(data);
                }
            }
            'E' => match p.message_expiry_interval {
                Some(expiry) => int(out, spec, expiry.into()),
                None => blank(out, spec.pad),
            },
            'F' => match p.payload_format_indicator {
                Some(pfi) => int(out, spec, pfi.into()),
                None => blank(out, spec.pad),
            },
            'I' => string(out, spec, strftime(now, "%FT%T%z").as_bytes()),
            'j' | 'J' => {
                let mode = if spec.conversion == 'j' {
                    Payload::Escaped
                } else {
                    Payload::Parsed
                };
                match json::message(message, tst(now), mode) {
                    Ok(value) => value.write(out, self.pretty),
                    Err(()) => warnings.push(format!(
                        "Message payload is not valid JSON on topic {}.",
                        message.topic.as_str()
                    )),
                }
            }
            'l' => int(out, spec, message.payload.len() as i64),
            'm' => int(
                out,
                spec,
                message.packet_id.map_or(0, |id| i64::from(id.get())),
            ),
            'P' => {
                for (i, pair) in p.user_properties.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(pair.name.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(pair.value.as_bytes());
                }
            }
            'p' => payload(out, spec, &message.payload, None),
            'x' => payload(out, spec, &message.payload, Some(false)),
            'X' => payload(out, spec, &message.payload, Some(true)),
            'q' => out.push(b'0' + u8::from(message.qos)),
            'R' => {
                if let Some(topic) = &p.response_topic {
                    string(out, spec, topic.as_bytes());
                }
            }
            'r' => out.push(if message.retain { b'1' } else { b'0' }),
            'S' => match p.subscription_identifiers.first() {
                Some(id) => int(out, spec, id.get().into()),
                None => blank(out, spec.pad),
            },
            't' => string(out, spec, message.topic.as_bytes()),
            'U' => out.extend_from_slice(
                format!("{}.{:09}", now.timestamp(), now.timestamp_subsec_nanos()).as_bytes(),
            ),
            _ => {}
        }
    }
}

/// The `tst` member of the JSON output: `2020-05-06T21:48:00.123456Z+0100`, as mosquitto
/// writes it (a `Z` before the offset).
pub(crate) fn tst(now: &DateTime<Local>) -> String {
    format!(
        "{}.{:06}Z{}",
        strftime(now, "%Y-%m-%dT%H:%M:%S"),
        now.timestamp_subsec_micros(),
        strftime(now, "%z")
    )
}

/// strftime on the local time; an unknown specifier prints nothing.
fn strftime(now: &DateTime<Local>, spec: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if write!(s, "{}", now.format(spec)).is_err() {
        s.clear();
    }
    s
}

/// An integer: `%d`, `%-*d`, `%0*d` or `%*d`.
fn int(out: &mut Vec<u8>, spec: &Spec, value: i64) {
    let w = spec.width;
    let text = if spec.left {
        format!("{value:<w$}")
    } else if spec.pad == b'0' {
        format!("{value:0w$}")
    } else {
        format!("{value:>w$}")
    };
    out.extend_from_slice(text.as_bytes());
}

/// A string: `%*.*s`, padded with spaces, cut to the precision (in bytes, as C does).
fn string(out: &mut Vec<u8>, spec: &Spec, value: &[u8]) {
    let value = match spec.precision {
        Some(max) if max < value.len() => &value[..max],
        _ => value,
    };
    let pad = spec.width.saturating_sub(value.len());
    if !spec.left {
        out.extend(std::iter::repeat_n(b' ', pad));
    }
    out.extend_from_slice(value);
    if spec.left {
        out.extend(std::iter::repeat_n(b' ', pad));
    }
}

/// The payload raw (`hex` None) or in hex, as mosquitto's `write_payload`: a width shorter
/// than the payload cuts it (to half as many bytes in hex).
fn payload(out: &mut Vec<u8>, spec: &Spec, payload: &[u8], hex: Option<bool>) {
    let mut len = payload.len();
    let printed_width = |len: usize| if hex.is_some() { len * 2 } else { len };
    if spec.width > 0 {
        len = len.min(spec.width);
        if hex.is_some() {
            len /= 2;
        }
    }
    let pad = spec.width.saturating_sub(printed_width(len));
    if !spec.left {
        out.extend(std::iter::repeat_n(spec.pad, pad));
    }
    let bytes = &payload[..len];
    match hex {
        None => out.extend_from_slice(bytes),
        Some(upper) => {
            for b in bytes {
                let text = if upper {
                    format!("{b:02X}")
                } else {
                    format!("{b:02x}")
                };
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    if spec.left {
        out.extend(std::iter::repeat_n(b' ', pad));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use chrono::TimeZone;
    use tern_client::{PublishProperties, QoS, TopicName, UserProperty};

    fn message() -> Message {
        let properties = PublishProperties {
            content_type: Some("ct".try_into().unwrap()),
            response_topic: Some(TopicName::try_from("rt").unwrap()),
            correlation_data: Some(Bytes::from_static(b"cd")),
            user_properties: vec![UserProperty::new("a", "b").unwrap()],
            ..Default::default()
        };
        Message {
            topic: TopicName::try_from("w/1").unwrap(),
            payload: Bytes::from_static(b"hello world"),
            qos: QoS::AtMostOnce,
            packet_id: None,
            retain: false,
            properties,
        }
    }

    fn render(format: &str) -> String {
        let printer = Printer {
            style: Style::Format(Format::parse(format).expect("valid format")),
            eol: false,
            pretty: false,
        };
        let now = Local.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        let out = printer.render(&message(), &now, &mut Vec::new());
        String::from_utf8(out).expect("UTF-8")
    }

    // The expected strings are what mosquitto_sub 2.0.11 printed for the same message.
    #[test]
    fn widths_and_flags_as_mosquitto() {
        assert_eq!(
            render("[%5p][%20p][%-20p][%020p][%020x][%5x][%5X][%.3p][%10.3t][%-10.3t]"),
            "[hello][         hello world][hello world         ][000000000hello world]\
             [000000000068656c6c6f][ 6865][ 6865][hello world][       w/1][w/1       ]"
        );
        assert_eq!(
            render("[%5l][%-5l|][%05q][%5r][%5C][%05E][%-5F|][%5S][%5A][%5R][%5D][%5P]"),
            "[   11][11   |][0][0][   ct][00000][     |][     ][     ][   rt][cd][a:b]"
        );
        assert_eq!(render("@@ \\t\\\\ %%"), "@ \t\\ %");
        assert_eq!(render("[%m][%3m]"), "[0][  0]", "QoS 0 has no identifier");
        assert_eq!(render("@N"), "123456789");
        assert_eq!(render("%U"), "1700000000.123456789");
    }

    #[test]
    fn format_errors_are_mosquittos() {
        assert_eq!(
            Format::parse("%z"),
            Err("Invalid format specifier 'z'.".into())
        );
        assert_eq!(
            Format::parse("abc%"),
            Err("Incomplete format specifier.".into())
        );
        assert_eq!(
            Format::parse("%-5"),
            Err("Incomplete format specifier.".into())
        );
        assert_eq!(
            Format::parse("x@"),
            Err("Incomplete format specifier.".into())
        );
        assert_eq!(
            Format::parse("\\q"),
            Err("Invalid escape specifier 'q'.".into())
        );
        assert_eq!(
            Format::parse("\\"),
            Err("Incomplete escape specifier.".into())
        );
    }

    #[test]
    fn payload_and_verbose_styles() {
        let now = Local::now();
        let mut empty = message();
        empty.payload = Bytes::new();
        let printer = |style, eol| Printer {
            style,
            eol,
            pretty: false,
        };
        let render = |p: &Printer, m: &Message| p.render(m, &now, &mut Vec::new());
        assert_eq!(
            render(&printer(Style::Payload, true), &message()),
            b"hello world\n"
        );
        assert_eq!(render(&printer(Style::Payload, true), &empty), b"");
        assert_eq!(
            render(&printer(Style::Verbose, true), &message()),
            b"w/1 hello world\n"
        );
        assert_eq!(
            render(&printer(Style::Verbose, true), &empty),
            b"w/1 (null)\n"
        );
        assert_eq!(render(&printer(Style::Verbose, false), &empty), b"");
    }
}
