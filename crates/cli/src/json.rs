//! JSON output of `tern sub`: `-F %j` and `-F %J` as mosquitto_sub prints them (cJSON's
//! layout, compact or `--pretty`), and `--json`, the same fields as valid JSON for scripts.
//!
//! Rules (mosquitto_sub 2.0 built with cJSON):
//! - Fields in order: `tst` (local time, microseconds, then `Z` and the UTC offset, as
//!   mosquitto writes it), `topic`, `qos`, `retain` (0/1), `payloadlen`, `properties` (only
//!   when the message has any), `payload`; `mid`, the packet identifier, after `payloadlen`
//!   for QoS 1/2 messages.
//! - Properties in the order the tern codec encodes them, named as mosquitto names them;
//!   user properties as one object, repeated names repeated.
//! - `%j`: the payload as a string, bytes above 0x7F copied as they are, `null` when empty.
//!   `%J`: the payload must itself be JSON; it is parsed and printed again in the same layout.
//! - `--pretty`: one member per line, indented by tabs, `"name":\tvalue`.
//! - `--json`: `retain` is true/false, and a payload that is not UTF-8 is given as
//!   `payload_base64`, so the output is always valid UTF-8 JSON.

use tern_client::Message;

/// A JSON value, with object members in order (repeated names allowed, as cJSON allows).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Bytes of a string, not necessarily UTF-8 (mosquitto copies the payload as it is).
    Str(Vec<u8>),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    fn str(s: impl AsRef<[u8]>) -> Value {
        Value::Str(s.as_ref().to_vec())
    }

    /// Appends the value, compact or in cJSON's pretty layout.
    pub(crate) fn write(&self, out: &mut Vec<u8>, pretty: bool) {
        self.write_at(out, pretty, 1);
    }

    fn write_at(&self, out: &mut Vec<u8>, pretty: bool, depth: usize) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Value::Float(f) => out.extend_from_slice(number(*f).as_bytes()),
            Value::Str(s) => write_string(out, s),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(if pretty { b", " } else { b"," });
                    }
                    item.write_at(out, pretty, depth + 1);
                }
                out.push(b']');
            }
            Value::Object(members) => {
                out.push(b'{');
                if pretty {
                    out.push(b'\n');
                }
                for (i, (name, value)) in members.iter().enumerate() {
                    if pretty {
                        out.extend(std::iter::repeat_n(b'\t', depth));
                    }
                    write_string(out, name.as_bytes());
                    out.push(b':');
                    if pretty {
                        out.push(b'\t');
                    }
                    value.write_at(out, pretty, depth + 1);
                    if i + 1 < members.len() {
                        out.push(b',');
                    }
                    if pretty {
                        out.push(b'\n');
                    }
                }
                if pretty {
                    out.extend(std::iter::repeat_n(b'\t', depth - 1));
                }
                out.push(b'}');
            }
        }
    }
}

/// A number as cJSON prints it: whole numbers without a fraction.
fn number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// A quoted string with cJSON's escapes; bytes from 0x7F up are copied.
fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1F => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// How the payload goes into the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payload {
    /// `%j`: a string of the payload's bytes.
    Escaped,
    /// `%J`: the payload parsed as JSON.
    Parsed,
    /// `--json`: a UTF-8 string, or `payload_base64`.
    Strict,
}

/// The message as a JSON object; `tst` is the receive time as mosquitto formats it.
/// Fails (with `%J` only) when the payload is not JSON.
pub(crate) fn message(message: &Message, tst: String, payload: Payload) -> Result<Value, ()> {
    let mut members = vec![
        ("tst".to_owned(), Value::Str(tst.into_bytes())),
        ("topic".to_owned(), Value::str(message.topic.as_str())),
        ("qos".to_owned(), Value::Int(u8::from(message.qos).into())),
        (
            "retain".to_owned(),
            match payload {
                Payload::Strict => Value::Bool(message.retain),
                _ => Value::Int(message.retain.into()),
            },
        ),
        (
            "payloadlen".to_owned(),
            Value::Int(message.payload.len() as i64),
        ),
    ];
    if let Some(id) = message.packet_id {
        members.push(("mid".to_owned(), Value::Int(id.get().into())));
    }
    let properties = properties(message);
    if !properties.is_empty() {
        members.push(("properties".to_owned(), Value::Object(properties)));
    }
    let bytes = &message.payload[..];
    match payload {
        Payload::Escaped if bytes.is_empty() => members.push(("payload".into(), Value::Null)),
        Payload::Escaped => members.push(("payload".into(), Value::str(bytes))),
        Payload::Parsed if bytes.is_empty() => members.push(("payload".into(), Value::Null)),
        Payload::Parsed => members.push(("payload".into(), parse(bytes).ok_or(())?)),
        Payload::Strict => match std::str::from_utf8(bytes) {
            Ok(text) => members.push(("payload".into(), Value::str(text))),
            Err(_) => members.push(("payload_base64".into(), Value::str(base64(bytes)))),
        },
    }
    Ok(Value::Object(members))
}

/// The MQTT 5.0 properties of a message, in the order the tern codec encodes them.
fn properties(message: &Message) -> Vec<(String, Value)> {
    let p = &message.properties;
    let mut out = Vec::new();
    let mut push = |name: &str, value| out.push((name.to_owned(), value));
    if let Some(pfi) = p.payload_format_indicator {
        push("payload-format-indicator", Value::Int(pfi.into()));
    }
    if let Some(expiry) = p.message_expiry_interval {
        push("message-expiry-interval", Value::Int(expiry.into()));
    }
    if let Some(alias) = p.topic_alias {
        push("topic-alias", Value::Int(alias.get().into()));
    }
    if let Some(topic) = &p.response_topic {
        push("response-topic", Value::str(topic.as_str()));
    }
    if let Some(data) = &p.correlation_data {
        push("correlation-data", Value::str(data));
    }
    if let Some(content_type) = &p.content_type {
        push("content-type", Value::str(content_type.as_str()));
    }
    for id in &p.subscription_identifiers {
        push("subscription-identifier", Value::Int(id.get().into()));
    }
    if !p.user_properties.is_empty() {
        let pairs = p
            .user_properties
            .iter()
            .map(|u| (u.name.as_str().to_owned(), Value::str(u.value.as_str())))
            .collect();
        push("user-properties", Value::Object(pairs));
    }
    out
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3F) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Parses a whole JSON text (whitespace around allowed); `None` if it is not JSON.
pub(crate) fn parse(text: &[u8]) -> Option<Value> {
    let mut parser = Parser { text, pos: 0 };
    let value = parser.value(0)?;
    parser.skip_ws();
    (parser.pos == text.len()).then_some(value)
}

/// Nesting deeper than this is refused (cJSON's limit).
const MAX_DEPTH: usize = 1000;

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Option<Value> {
        let end = self.pos + word.len();
        (self.text.get(self.pos..end) == Some(word)).then(|| {
            self.pos = end;
            value
        })
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            b'n' => self.literal(b"null", Value::Null),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'"' => self.string().map(Value::Str),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Some(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b']' => {
                            self.pos += 1;
                            return Some(Value::Array(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Some(Value::Object(members));
                }
                loop {
                    self.skip_ws();
                    let name = String::from_utf8(self.string()?).ok()?;
                    self.skip_ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.pos += 1;
                    members.push((name, self.value(depth + 1)?));
                    self.skip_ws();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b'}' => {
                            self.pos += 1;
                            return Some(Value::Object(members));
                        }
                        _ => return None,
                    }
                }
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.text[start..self.pos]).ok()?;
        let f: f64 = text.parse().ok()?;
        Some(match text.parse::<i64>() {
            Ok(n) => Value::Int(n),
            Err(_) => Value::Float(f),
        })
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0C),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let c = self.unicode_escape()?;
                            let mut buf = [0; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return None,
                    }
                }
                0..=0x1F => return None,
                _ => out.push(b),
            }
        }
    }

    /// The character of `\uXXXX` (the `\u` read), joining a surrogate pair.
    fn unicode_escape(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if (0xD800..0xDC00).contains(&high) {
            if self.text.get(self.pos..self.pos + 2) != Some(b"\\u") {
                return None;
            }
            self.pos += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return None;
            }
            return char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        }
        char::from_u32(high)
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.text.get(self.pos..self.pos + 4)?).ok()?;
        let n = u32::from_str_radix(digits, 16).ok()?;
        self.pos += 4;
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(v: &Value) -> String {
        let mut out = Vec::new();
        v.write(&mut out, false);
        String::from_utf8(out).expect("UTF-8")
    }

    fn pretty(v: &Value) -> String {
        let mut out = Vec::new();
        v.write(&mut out, true);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn parses_and_prints_like_cjson() {
        let v =
            parse(br#" {"a": [1, 2.5, -3e2], "b": {"c": null}, "d": "\u00e9\"\n", "e": true} "#)
                .expect("JSON");
        assert_eq!(
            compact(&v),
            r#"{"a":[1,2.5,-300],"b":{"c":null},"d":"é\"\n","e":true}"#
        );
        assert_eq!(
            pretty(&v),
            "{\n\t\"a\":\t[1, 2.5, -300],\n\t\"b\":\t{\n\t\t\"c\":\tnull\n\t},\n\t\"d\":\t\"é\\\"\\n\",\n\t\"e\":\ttrue\n}"
        );
    }

    #[test]
    fn refuses_what_is_not_json() {
        for text in [
            &b"hello"[..],
            b"{\"a\":}",
            b"[1,]",
            b"\"open",
            b"1 2",
            b"",
            b"{\"a\" 1}",
        ] {
            assert_eq!(parse(text), None, "{:?}", String::from_utf8_lossy(text));
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(deep.as_bytes()), None);
    }

    #[test]
    fn strings_escape_control_characters_only() {
        let v = Value::str(b"tab\t\x01\x7f\xc3\xa9");
        assert_eq!(compact(&v), "\"tab\\t\\u0001\u{7f}é\"");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x01]), "//4AAQ==");
    }
}
