//! "Is this a plausible Kafka frame?" — used to detect Kafka on any port, to find which side is the client
//! of a connection joined mid-stream, and to resynchronise after a gap.
//!
//! A Kafka request starts with: length (i32, > 0), api key (known), api version (plausible for that key),
//! correlation id (>= 0 in every client we know), client id (i16 length then mostly printable bytes). That is
//! about 10 bytes of constraints: false positives on random data are rare, but a probe on a *response*
//! has only length + correlation id, so responses are only accepted when their correlation id matches a
//! request we remember (or at the very start of a direction after a mid-stream join).
//!
//! Easy to get wrong: TLS records (0x16/0x17 0x03 0x0X ...) would read as a ~370 MB Kafka frame; check TLS
//! first. A probe must never read past the slice it was given.

use crate::api;
use crate::header::{be_i16, be_i32};
use crate::parse::Parse;

/// Smallest possible request frame: api key, version, correlation id (header v0).
pub const MIN_REQUEST_LEN: i32 = 8;
/// Smallest possible response frame: correlation id alone.
pub const MIN_RESPONSE_LEN: i32 = 4;

/// What the first bytes of a direction look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guess {
    /// A plausible Kafka request header.
    KafkaRequest,
    /// A TLS record (handshake or application data): the connection is encrypted.
    Tls,
    /// Plainly something else (HTTP, SSH, ...) or impossible as Kafka.
    NotKafka,
    /// Not enough bytes to tell, or could be a response.
    Unsure,
}

/// Strength of a request probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeLimits {
    /// Frames longer than this are not considered plausible by the probe (they can still be skipped when
    /// framing is already in sync).
    pub max_frame_len: i32,
}

impl Default for ProbeLimits {
    fn default() -> Self {
        // Kafka's default socket.request.max.bytes is 100 MiB; fetch responses can exceed it, so allow more.
        ProbeLimits {
            max_frame_len: 512 * 1024 * 1024,
        }
    }
}

/// Classifies the first bytes of one direction of a connection.
pub fn guess(data: &[u8], limits: &ProbeLimits) -> Guess {
    if is_tls_record(data) {
        return Guess::Tls;
    }
    if data.len() < 4 {
        return Guess::Unsure;
    }
    match probe_request(data, limits) {
        Parse::Done(..) => Guess::KafkaRequest,
        Parse::Broken { .. } => {
            if looks_like_text_protocol(data) {
                Guess::NotKafka
            } else {
                Guess::Unsure
            }
        }
        Parse::NeedMore(_) => Guess::Unsure,
    }
}

/// Does `data` start with a plausible Kafka request frame (length prefix included)? `Done` says how many
/// bytes were looked at (a plausibility: see [`confirm_request`]).
pub fn probe_request(data: &[u8], limits: &ProbeLimits) -> Parse<()> {
    request_probe(data, limits, KeyCheck::Plausible)
}

/// Like [`probe_request`], but any API key and version is accepted (the header is then read as v1: the
/// client id follows the correlation id). For a stream known to start at a frame boundary and to go to a
/// Kafka port: a client trying an API or version the broker does not know still speaks Kafka.
pub fn probe_request_any_api(data: &[u8], limits: &ProbeLimits) -> Parse<()> {
    request_probe(data, limits, KeyCheck::Any)
}

/// Which API keys and versions a request probe accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyCheck {
    /// Only keys some Kafka release defines, at plausible versions.
    Plausible,
    /// Any non-negative key and version.
    Any,
}

fn request_probe(data: &[u8], limits: &ProbeLimits, keys: KeyCheck) -> Parse<()> {
    let Ok(len) = be_i32(data, 0) else {
        return Parse::NeedMore(Some(4 - data.len()));
    };
    if !(MIN_REQUEST_LEN..=limits.max_frame_len).contains(&len) {
        return Parse::broken(0, "request length out of range");
    }
    probe_request_header(&data[4..], len, keys).after(4)
}

/// Is this complete frame (length prefix removed) a plausible Kafka request?
pub fn probe_request_frame(frame: &[u8]) -> bool {
    frame.len() >= MIN_REQUEST_LEN as usize
        && probe_request_header(
            frame,
            frame.len().min(i32::MAX as usize) as i32,
            KeyCheck::Plausible,
        )
        .is_done()
}

/// Checks the request header at the start of `h`, for a frame of `len` bytes.
fn probe_request_header(h: &[u8], len: i32, keys: KeyCheck) -> Parse<()> {
    let (Ok(key), Ok(version)) = (be_i16(h, 0), be_i16(h, 2)) else {
        return Parse::NeedMore(Some(4 - h.len()));
    };
    let plausible = api::is_plausible(key, version);
    let any = keys == KeyCheck::Any && key >= 0 && version >= 0;
    if !(plausible || any) {
        return Parse::broken(0, "api key and version no client sends");
    }
    let Ok(corr) = be_i32(h, 4) else {
        return Parse::NeedMore(Some(8 - h.len()));
    };
    if corr < 0 {
        return Parse::broken(4, "negative correlation id");
    }
    if plausible && api::request_header_version(key, version) == 0 {
        return Parse::Done((), 8);
    }
    let Ok(id_len) = be_i16(h, 8) else {
        return Parse::NeedMore(Some(10 - h.len()));
    };
    if id_len < -1 || i32::from(id_len) > len - 10 {
        return Parse::broken(8, "client id length");
    }
    if id_len <= 0 {
        return Parse::Done((), 10);
    }
    // Look at the client id bytes we have (up to 16): they are printable in every real client.
    let end = (10 + id_len as usize).min(10 + 16);
    let have = h.len().min(end);
    if have <= 10 {
        return Parse::NeedMore(Some(1));
    }
    match h[10..have].iter().position(|&b| !(0x20..0x7f).contains(&b)) {
        Some(i) => Parse::broken(10 + i, "client id not printable"),
        None => Parse::Done((), have),
    }
}

/// Is the request frame at the start of `data` (length prefix included) complete and decodable? A probe's
/// `Done` on a header is confirmed this way whenever the whole frame is at hand: a length inside a body
/// (a timeout of 1000 ms), or a response whose correlation id reads as "Produce vN", passes the header
/// probe but not a decode. `Done` spans the whole frame; `NeedMore` when the frame runs past `data`.
pub fn confirm_request(data: &[u8]) -> Parse<()> {
    let Ok(len) = be_i32(data, 0) else {
        return Parse::NeedMore(Some(4 - data.len()));
    };
    let Ok(len) = usize::try_from(len) else {
        return Parse::broken(0, "negative length");
    };
    let Some(frame) = data.get(4..4 + len) else {
        return Parse::NeedMore(Some(4 + len - data.len()));
    };
    let Ok((hdr, at)) = crate::header::parse_request_header(frame) else {
        return Parse::broken(4, "request header does not parse");
    };
    let body = frame.get(at..).unwrap_or(&[]);
    if !api::is_known_version(hdr.api_key, hdr.api_version)
        || crate::body::decode_request(hdr.api_key, hdr.api_version, body).is_ok()
    {
        Parse::Done((), 4 + len)
    } else {
        Parse::broken(4 + at, "request body does not decode")
    }
}

/// Does `data` start with a plausible response frame whose correlation id satisfies `known`?
pub fn probe_response(data: &[u8], limits: &ProbeLimits, known: impl Fn(i32) -> bool) -> Parse<()> {
    let Ok(len) = be_i32(data, 0) else {
        return Parse::NeedMore(Some(4 - data.len()));
    };
    if !(MIN_RESPONSE_LEN..=limits.max_frame_len).contains(&len) {
        return Parse::broken(0, "response length out of range");
    }
    let Ok(corr) = be_i32(data, 4) else {
        return Parse::NeedMore(Some(8 - data.len()));
    };
    if corr >= 0 && known(corr) {
        Parse::Done((), 8)
    } else {
        Parse::broken(4, "correlation id of no request we wait for")
    }
}

/// A TLS record header: content type 20..=23, version 3.0..=3.4, length <= 2^14 + 2048.
pub fn is_tls_record(data: &[u8]) -> bool {
    if data.len() < 5 {
        return false;
    }
    let ct = data[0];
    let len = u16::from_be_bytes([data[3], data[4]]);
    (20..=23).contains(&ct) && data[1] == 3 && data[2] <= 4 && len > 0 && len <= 16384 + 2048
}

fn looks_like_text_protocol(data: &[u8]) -> bool {
    const PREFIXES: [&[u8]; 10] = [
        b"GET ", b"POST", b"PUT ", b"HEAD", b"HTTP", b"SSH-", b"PRI ", b"*", b"+OK", b"220 ",
    ];
    PREFIXES.iter().any(|p| data.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA_V2: [u8; 18] = [
        0, 0, 0, 14, // length
        0, 3, // Metadata
        0, 2, // v2
        0, 0, 0, 1, // correlation id
        0, 4, b't', b'e', b's', b't', // client id
    ];

    #[test]
    fn request_probe() {
        let l = ProbeLimits::default();
        assert_eq!(probe_request(&METADATA_V2, &l), Parse::Done((), 18));
        assert_eq!(guess(&METADATA_V2, &l), Guess::KafkaRequest);
        assert_eq!(
            probe_request(&METADATA_V2[..9], &l),
            Parse::NeedMore(Some(3))
        );
        let mut bad = METADATA_V2;
        bad[5] = 200; // api key 200
        assert_eq!(
            probe_request(&bad, &l),
            Parse::broken(4, "api key and version no client sends")
        );
        let mut bad = METADATA_V2;
        bad[14] = 0x01; // unprintable client id
        assert_eq!(
            probe_request(&bad, &l),
            Parse::broken(14, "client id not printable")
        );
    }

    #[test]
    fn tls_and_text() {
        let l = ProbeLimits::default();
        let hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
        assert_eq!(guess(&hello, &l), Guess::Tls);
        assert_eq!(guess(b"GET / HTTP/1.1\r\n", &l), Guess::NotKafka);
        assert_eq!(guess(&[0, 0], &l), Guess::Unsure);
    }

    #[test]
    fn response_probe_needs_known_correlation() {
        let l = ProbeLimits::default();
        let resp = [0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(probe_response(&resp, &l, |c| c == 1), Parse::Done((), 8));
        assert!(matches!(
            probe_response(&resp, &l, |c| c == 2),
            Parse::Broken { at: 4, .. }
        ));
    }
}
