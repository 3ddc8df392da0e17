//! Incremental framing: cut one packet at a time off a growing read buffer.
//!
//! The order of checks follows the rule "check, then buffer": the first byte (type and
//! flags) is checked as soon as it arrives, the remaining length as soon as it is complete,
//! and the packet size against the limit before a single body byte is waited for. A partial
//! packet returns `Ok(None)` and leaves the buffer untouched.

use bytes::{Buf, BytesMut};

use crate::error::DecodeError;
use crate::packet::{Packet, PacketType};
use crate::version::ProtocolVersion;
use crate::wire::parse_variable_integer;

/// The largest packet MQTT can frame: 1 type byte, 4 length bytes, 268,435,455 body bytes.
pub const MAX_PACKET_SIZE: usize = 1 + 4 + 268_435_455;

/// Decodes one packet from the front of `buf`.
///
/// - `Ok(Some(packet))`: the packet's bytes were removed from `buf`; strings and payloads
///   of the packet share the buffer's memory.
/// - `Ok(None)`: more bytes are needed; nothing was consumed (the buffer may have reserved
///   room for the rest of the packet).
/// - `Err(_)`: the stream is broken; the connection must be closed.
///
/// `version` is the connection's protocol version (a CONNECT is decoded whatever it is).
/// `max_packet_size` bounds the whole packet, fixed header included (§3.1.2.11.4).
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&header) = buf.first() else {
        return Ok(None);
    };
    PacketType::from_header(header, version)?;
    let Some((remaining, len_bytes)) = parse_variable_integer(&buf[1..])? else {
        return Ok(None);
    };
    let size = 1 + len_bytes + remaining;
    if size > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    if buf.len() < size {
        buf.reserve(size - buf.len());
        return Ok(None);
    }
    buf.advance(1 + len_bytes);
    let body = buf.split_to(remaining).freeze();
    Packet::decode_body(header, body, version).map(Some)
}
