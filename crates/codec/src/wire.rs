//! The data representations of MQTT §1.5: integers, variable byte integers, UTF-8 strings,
//! binary data and string pairs, read from a frame and written to a buffer.
//!
//! Reading works on a [`Bytes`] holding exactly one packet body, so strings and binary data are
//! cut from it without a copy. Running past the end is [`DecodeError::UnexpectedEnd`].

use bytes::{Buf, BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::packet::PacketType;
use crate::string::{MqttString, MAX_STRING_LEN};

/// The largest value a variable byte integer holds: 268,435,455.
pub const MAX_VARIABLE_INTEGER: u32 = 268_435_455;

/// Number of bytes the variable byte integer encoding of `value` takes (1 to 4).
pub fn variable_integer_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `value` as a variable byte integer. `value` must not exceed
/// [`MAX_VARIABLE_INTEGER`]; callers check this before encoding.
pub fn put_variable_integer(buf: &mut impl BufMut, mut value: usize) {
    loop {
        let mut byte = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if value == 0 {
            return;
        }
    }
}

/// Parses a variable byte integer from the start of `bytes` without consuming anything.
///
/// `Ok(None)` means `bytes` ends before the integer does; otherwise the value and the number
/// of bytes it took.
pub fn parse_variable_integer(bytes: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value = 0usize;
    for (i, &byte) in bytes.iter().enumerate().take(4) {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 4 {
        Err(DecodeError::MalformedVariableInteger)
    } else {
        Ok(None)
    }
}

/// A cursor over one packet body, remembering which packet it reads for error messages.
pub(crate) struct Reader {
    buf: Bytes,
    packet: PacketType,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, packet: PacketType) -> Self {
        Reader { buf, packet }
    }

    pub(crate) fn packet(&self) -> PacketType {
        self.packet
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::UnexpectedEnd(self.packet))
        } else {
            Ok(())
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    pub(crate) fn variable_integer(&mut self) -> Result<u32, DecodeError> {
        match parse_variable_integer(&self.buf)? {
            Some((value, len)) => {
                self.buf.advance(len);
                Ok(value as u32)
            }
            None => Err(DecodeError::UnexpectedEnd(self.packet)),
        }
    }

    /// Takes the next `n` bytes as their own reader.
    pub(crate) fn split(&mut self, n: usize) -> Result<Reader, DecodeError> {
        self.need(n)?;
        Ok(Reader::new(self.buf.split_to(n), self.packet))
    }

    /// Binary Data (§1.5.6): a two byte length, then that many bytes.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        self.need(len)?;
        Ok(self.buf.split_to(len))
    }

    /// UTF-8 Encoded String (§1.5.4).
    pub(crate) fn string(&mut self) -> Result<MqttString, DecodeError> {
        MqttString::from_bytes(self.binary()?)
    }

    /// Everything left, without a length prefix (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Fails unless every byte has been read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.packet))
        }
    }
}

/// Checks that `data` fits Binary Data's two byte length. Strings are checked when they are
/// built ([`MqttString`]); `Bytes` fields are checked by [`crate::Packet::encode`] with this.
pub(crate) fn check_binary(data: &[u8]) -> Result<(), EncodeError> {
    if data.len() > MAX_STRING_LEN {
        return Err(EncodeError::BinaryTooLong(data.len()));
    }
    Ok(())
}

/// Writes Binary Data: a two byte length, then the bytes. The length was checked before
/// encoding started (see [`check_binary`]), so the cast cannot truncate.
pub(crate) fn put_binary(buf: &mut impl BufMut, data: &[u8]) {
    buf.put_u16(data.len() as u16);
    buf.put_slice(data);
}

/// Encoded length of Binary Data or a UTF-8 string: the two length bytes and the data.
pub(crate) fn binary_len(data: &[u8]) -> usize {
    2 + data.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_integer_examples_from_the_standard() {
        // MQTT 5.0 table 1-1: the edges of each encoded size.
        let cases: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for &(value, bytes) in cases {
            let mut buf = Vec::new();
            put_variable_integer(&mut buf, value);
            assert_eq!(buf, bytes, "encode {value}");
            assert_eq!(variable_integer_len(value), bytes.len());
            assert_eq!(
                parse_variable_integer(bytes),
                Ok(Some((value, bytes.len())))
            );
            assert_eq!(parse_variable_integer(&bytes[..bytes.len() - 1]), Ok(None));
        }
    }

    #[test]
    fn variable_integer_of_five_bytes_is_malformed() {
        assert_eq!(
            parse_variable_integer(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(DecodeError::MalformedVariableInteger)
        );
        assert_eq!(
            parse_variable_integer(&[0x80, 0x80, 0x80, 0x80]),
            Err(DecodeError::MalformedVariableInteger)
        );
    }
}
