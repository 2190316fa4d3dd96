//! Request and response headers.
//!
//! Request header v0: api_key i16, api_version i16, correlation_id i32. v1 adds client_id (nullable string,
//! i16 length). v2 adds tagged fields (unsigned varint count, then tag/size/bytes). Response header v0 is the
//! correlation id alone; v1 adds tagged fields. Which version applies comes from [`crate::api`].
//!
//! Easy to get wrong: the client id is a *non-flexible* nullable string even in header v2 (the only
//! non-compact string in a flexible message), and a tagged-field size is attacker-controlled: check it
//! against what is left before skipping.

use crate::api;

/// A parsed request header. `client_id` is kept as the raw bytes' lossy UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// Header version used to parse it (0, 1 or 2).
    pub header_version: i16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The frame ends inside the header.
    Truncated,
    /// A length or varint in the header is impossible.
    Malformed,
}

/// Parses a request header at the start of `frame` (the bytes after the 4-byte length prefix).
/// Returns the header and the offset at which the body starts.
pub fn parse_request_header(frame: &[u8]) -> Result<(RequestHeader, usize), HeaderError> {
    let (h, at) = parse_request_header_raw(frame)?;
    Ok((
        RequestHeader {
            api_key: h.api_key,
            api_version: h.api_version,
            correlation_id: h.correlation_id,
            client_id: h.client_id.map(crate::wire::lossy_string),
            header_version: h.header_version,
        },
        at,
    ))
}

/// A request header whose client id is still the frame's bytes (see [`parse_request_header_raw`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRequestHeader<'a> {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<&'a [u8]>,
    pub header_version: i16,
}

/// [`parse_request_header`] without making the client id a `String`: a connection sends the same id
/// on every request, and the stream keeps one shared copy of it (no allocation per request).
pub fn parse_request_header_raw(
    frame: &[u8],
) -> Result<(RawRequestHeader<'_>, usize), HeaderError> {
    let api_key = be_i16(frame, 0)?;
    let api_version = be_i16(frame, 2)?;
    let correlation_id = be_i32(frame, 4)?;
    let header_version = api::request_header_version(api_key, api_version);
    let mut pos = 8;
    let mut client_id = None;
    if header_version >= 1 {
        let len = be_i16(frame, pos)?;
        pos += 2;
        if len >= 0 {
            let len = len as usize;
            let bytes = frame.get(pos..pos + len).ok_or(HeaderError::Truncated)?;
            client_id = Some(bytes);
            pos += len;
        } else if len != -1 {
            return Err(HeaderError::Malformed);
        }
    }
    if header_version >= 2 {
        pos = skip_tagged_fields(frame, pos)?;
    }
    Ok((
        RawRequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
            header_version,
        },
        pos,
    ))
}

/// Parses a response header for a request of (`api_key`, `api_version`) at the start of `frame`.
/// Returns the correlation id and the offset at which the body starts.
pub fn parse_response_header(
    frame: &[u8],
    api_key: i16,
    api_version: i16,
) -> Result<(i32, usize), HeaderError> {
    let correlation_id = be_i32(frame, 0)?;
    let mut pos = 4;
    if api::response_header_version(api_key, api_version) >= 1 {
        pos = skip_tagged_fields(frame, pos)?;
    }
    Ok((correlation_id, pos))
}

/// Skips a tagged-field section starting at `pos`; returns the position after it.
pub fn skip_tagged_fields(buf: &[u8], mut pos: usize) -> Result<usize, HeaderError> {
    let (count, n) = read_uvarint(buf, pos)?;
    pos += n;
    for _ in 0..count {
        let (_tag, n) = read_uvarint(buf, pos)?;
        pos += n;
        let (size, n) = read_uvarint(buf, pos)?;
        pos += n;
        let size = usize::try_from(size).map_err(|_| HeaderError::Malformed)?;
        pos = pos.checked_add(size).ok_or(HeaderError::Malformed)?;
        if pos > buf.len() {
            return Err(HeaderError::Truncated);
        }
    }
    Ok(pos)
}

/// Unsigned LEB128 varint (max 5 bytes for a u32).
pub fn read_uvarint(buf: &[u8], pos: usize) -> Result<(u32, usize), HeaderError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let b = *buf.get(pos + i).ok_or(HeaderError::Truncated)?;
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(HeaderError::Malformed)
}

pub(crate) fn be_i16(buf: &[u8], pos: usize) -> Result<i16, HeaderError> {
    buf.get(pos..pos + 2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .ok_or(HeaderError::Truncated)
}

pub(crate) fn be_i32(buf: &[u8], pos: usize) -> Result<i32, HeaderError> {
    buf.get(pos..pos + 4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(HeaderError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_v1() {
        let frame = [
            0x00, 0x03, // api_key 3 = Metadata
            0x00, 0x02, // api_version 2
            0x00, 0x00, 0x00, 0x07, // correlation_id 7
            0x00, 0x04, b't', b'e', b's', b't', // client_id "test"
            0xAA, // body starts here
        ];
        let (h, pos) = parse_request_header(&frame).unwrap();
        assert_eq!((h.api_key, h.api_version, h.correlation_id), (3, 2, 7));
        assert_eq!(h.client_id.as_deref(), Some("test"));
        assert_eq!(h.header_version, 1);
        assert_eq!(pos, 14);
    }

    #[test]
    fn request_header_v2_with_tags_and_null_client() {
        let frame = [
            0x00, 0x00, // Produce
            0x00, 0x09, // v9: flexible, header v2
            0x00, 0x00, 0x01, 0x00, // correlation 256
            0xFF, 0xFF, // client_id null
            0x01, // one tagged field
            0x05, 0x02, 0x01, 0x02, // tag 5, size 2, two bytes
            0x42,
        ];
        let (h, pos) = parse_request_header(&frame).unwrap();
        assert_eq!(h.client_id, None);
        assert_eq!(h.correlation_id, 256);
        assert_eq!(pos, 15);
    }

    #[test]
    fn truncated_and_malformed() {
        assert_eq!(
            parse_request_header(&[0, 3, 0, 2, 0, 0]),
            Err(HeaderError::Truncated)
        );
        let bad = [0, 3, 0, 2, 0, 0, 0, 1, 0xFF, 0xF0];
        assert_eq!(parse_request_header(&bad), Err(HeaderError::Malformed));
        let big_tag = [
            0, 0, 0, 9, 0, 0, 0, 1, 0xFF, 0xFF, 1, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F,
        ];
        assert_eq!(parse_request_header(&big_tag), Err(HeaderError::Truncated));
    }

    #[test]
    fn response_header_api_versions_is_v0() {
        let frame = [0, 0, 0, 9, 0x00, 0x00];
        assert_eq!(parse_response_header(&frame, 18, 3), Ok((9, 4)));
        // Metadata v9 is flexible: tagged fields follow the correlation id.
        let frame = [0, 0, 0, 9, 0x00, 0x11];
        assert_eq!(parse_response_header(&frame, 3, 9), Ok((9, 5)));
    }
}
