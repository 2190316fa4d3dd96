//! The JSON-lines encoder: each [`Output`] as one JSON object (the output contract in ARCHITECTURE.md).
//! A sibling of the readable summary and timeline table (the `kwire` binary) and of OTLP
//! (`kwire-export`): the only place where findings become JSON text.
//!
//! Easy to get wrong: field names and their order are the contract (golden outputs pin them byte for
//! byte); timestamps and socket addresses are written straight into the output from stack buffers
//! (`Display` only for IPv6), never through an intermediate `String`; map-like fields serialise in a
//! deterministic order.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use kwire_flow::{Attribution, Direction, Endpoint, Timestamp};
use kwire_kafka::body::error_name;
use kwire_kafka::{api, Decoded, NoticeKind};

use crate::model::ConnCtx;
use crate::output::alert::{Alert, FieldValue};
use crate::output::json_bodies::W;
use crate::output::{ExchangeRecord, Notice, NoticeRecord, Output, TimelineRecord};

/// Writes a timestamp or an endpoint as a JSON string, with no intermediate allocation: from a
/// stack buffer in the common case (RFC 3339 of years 0-9999, IPv4), through `Display` otherwise.
struct Str<T>(T);

impl Serialize for Str<Timestamp> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.rfc3339_bytes() {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).unwrap_or_default()),
            None => s.collect_str(&self.0),
        }
    }
}

impl Serialize for Str<Endpoint> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut b = [0u8; 21];
        match self.0.write_v4(&mut b) {
            Some(n) => s.serialize_str(std::str::from_utf8(&b[..n]).unwrap_or_default()),
            None => s.collect_str(&self.0),
        }
    }
}

impl Serialize for Output {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Output::Exchange(e) => e.serialize(s),
            Output::Notice(n) => n.serialize(s),
            Output::Alert(a) => a.serialize(s),
            Output::Timeline(t) => t.serialize(s),
            Output::Group(g) => g.serialize(s),
        }
    }
}

/// Appends `o` as one JSON line (with its newline) to `buf`.
///
/// Through sonic-rs's serde serializer (SIMD string escaping): with serde_json, escaping the keys and
/// names of a Fetch exchange's partitions was half the cost of `--json` on realistic traffic. The bytes
/// are the same (golden outputs pin them); no float is ever written here.
pub fn write_line(buf: &mut Vec<u8>, o: &Output) -> Result<(), sonic_rs::Error> {
    match o {
        Output::Exchange(x) if x.conn.client_owner.is_none() && x.conn.broker_owner.is_none() => {
            write_exchange(buf, x)?
        }
        _ => sonic_rs::to_writer(&mut *buf, o)?,
    }
    buf.push(b'\n');
    Ok(())
}

/// An exchange line (the most frequent, by far) with its envelope written directly: fixed keys as
/// bytes, integers by `itoa`, strings escaped by sonic-rs; the decoded bodies of Produce and Fetch
/// are written directly too ([`json_bodies`]), the others go through serde. Byte
/// for byte what `impl Serialize for ExchangeRecord` writes: the fuzz harness (`engine_packets`, run on
/// stable by kwire-engine's `fuzz_smoke` over every fixture and public capture, damaged too) compares
/// the two for every line, and the golden outputs pin both. Connections with socket owners (live only)
/// take the serde path. On realistic traffic the envelope was about half of `--json`'s own time.
fn write_exchange(buf: &mut Vec<u8>, x: &ExchangeRecord) -> Result<(), sonic_rs::Error> {
    let e = &x.exchange;
    let mut w = W::new(buf);
    w.lit(b"{\"type\":\"exchange\",\"ts\":");
    raw_ts(w.buf, e.request_ts)?;
    w.lit(b",\"conn\":");
    w.int(x.conn.id);
    w.lit(b",\"community_id\":");
    w.str(&x.conn.community_id)?;
    w.lit(b",\"request_frame\":");
    w.int_or_null(frame_no(e.request.frame));
    w.lit(b",\"response_frame\":");
    w.int_or_null(e.response.as_ref().and_then(|r| frame_no(r.frame)));
    w.lit(b",\"client_addr\":");
    raw_addr(w.buf, x.conn.client)?;
    w.lit(b",\"broker_addr\":");
    raw_addr(w.buf, x.conn.broker)?;
    w.lit(b",\"client_id\":");
    match &e.request.client_id {
        Some(c) => w.str(c)?,
        None => w.lit(b"null"),
    }
    w.lit(b",\"api_key\":");
    w.int(e.api_key);
    w.lit(b",\"api\":");
    w.str(api::api_name(e.api_key))?;
    w.lit(b",\"api_version\":");
    w.int(e.api_version);
    w.lit(b",\"correlation_id\":");
    w.int(e.correlation_id);
    w.lit(b",\"response_ts\":");
    match &e.response {
        Some(r) => raw_ts(w.buf, r.ts)?,
        None => w.lit(b"null"),
    }
    w.lit(b",\"latency_us\":");
    w.int_or_null(x.latency_us());
    let codes = x.error_codes();
    w.lit(b",\"error_codes\":[");
    for (i, c) in codes.iter().enumerate() {
        if i > 0 {
            w.lit(b",");
        }
        w.int(*c);
    }
    w.lit(b"],\"errors\":");
    sonic_rs::to_writer(&mut *w.buf, &ErrorNames(&codes))?;
    w.lit(b",\"request_bytes\":");
    w.int(e.request.bytes);
    w.lit(b",\"response_bytes\":");
    w.int_or_null(e.response.as_ref().map(|r| r.bytes));
    if e.response_optional {
        w.lit(b",\"response_optional\":true");
    }
    w.lit(b",\"request\":");
    w.request(e.request.body.full())?;
    if let Some(st) = status(&e.request.body) {
        w.lit(b",\"request_status\":");
        w.str(&st)?;
    }
    w.lit(b",\"response\":");
    if let Some(r) = &e.response {
        w.response(r.body.full())?;
        if let Some(st) = status(&r.body) {
            w.lit(b",\"response_status\":");
            w.str(&st)?;
        }
    } else {
        w.lit(b"null");
    }
    w.lit(b"}");
    Ok(())
}

/// A timestamp as a JSON string (what `Str<Timestamp>` serialises to).
fn raw_ts(buf: &mut Vec<u8>, t: Timestamp) -> Result<(), sonic_rs::Error> {
    match t.rfc3339_bytes() {
        Some(b) => {
            buf.push(b'"');
            buf.extend_from_slice(&b);
            buf.push(b'"');
            Ok(())
        }
        None => sonic_rs::to_writer(&mut *buf, &Str(t)),
    }
}

/// An endpoint as a JSON string (what `Str<Endpoint>` serialises to): digits, dots and a colon need
/// no escaping.
fn raw_addr(buf: &mut Vec<u8>, e: Endpoint) -> Result<(), sonic_rs::Error> {
    let mut b = [0u8; 21];
    match e.write_v4(&mut b) {
        Some(n) => {
            buf.push(b'"');
            buf.extend_from_slice(&b[..n]);
            buf.push(b'"');
            Ok(())
        }
        None => sonic_rs::to_writer(&mut *buf, &Str(e)),
    }
}

/// The names of error codes, as a JSON array of strings (no list built for them).
struct ErrorNames<'a>(&'a [i16]);

impl Serialize for ErrorNames<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|&c| error_name(c)))
    }
}

/// A packet number (0 = not numbered: null).
fn frame_no(n: u64) -> Option<u64> {
    (n > 0).then_some(n)
}

fn status<T>(d: &Decoded<T>) -> Option<String> {
    match d {
        Decoded::Full(_) => None,
        Decoded::Failed(e) => Some(format!("decode_error: {e}")),
        Decoded::UnknownVersion => Some("unknown_version".to_string()),
        Decoded::Skipped(r) => Some(format!("skipped: {}", r.as_str())),
    }
}

impl Serialize for ExchangeRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = &self.exchange;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "exchange")?;
        m.serialize_entry("ts", &Str(e.request_ts))?;
        m.serialize_entry("conn", &self.conn.id)?;
        m.serialize_entry("community_id", &*self.conn.community_id)?;
        m.serialize_entry("request_frame", &frame_no(e.request.frame))?;
        m.serialize_entry(
            "response_frame",
            &e.response.as_ref().and_then(|r| frame_no(r.frame)),
        )?;
        m.serialize_entry("client_addr", &Str(self.conn.client))?;
        m.serialize_entry("broker_addr", &Str(self.conn.broker))?;
        serialize_owners(&mut m, &self.conn.client_owner, &self.conn.broker_owner)?;
        m.serialize_entry("client_id", &e.request.client_id)?;
        m.serialize_entry("api_key", &e.api_key)?;
        m.serialize_entry("api", api::api_name(e.api_key))?;
        m.serialize_entry("api_version", &e.api_version)?;
        m.serialize_entry("correlation_id", &e.correlation_id)?;
        m.serialize_entry("response_ts", &e.response.as_ref().map(|r| Str(r.ts)))?;
        m.serialize_entry("latency_us", &self.latency_us())?;
        let codes = self.error_codes();
        m.serialize_entry("error_codes", &codes)?;
        m.serialize_entry("errors", &ErrorNames(&codes))?;
        m.serialize_entry("request_bytes", &e.request.bytes)?;
        m.serialize_entry("response_bytes", &e.response.as_ref().map(|r| r.bytes))?;
        if e.response_optional {
            m.serialize_entry("response_optional", &true)?;
        }
        m.serialize_entry("request", &e.request.body.full())?;
        if let Some(st) = status(&e.request.body) {
            m.serialize_entry("request_status", &st)?;
        }
        if let Some(r) = &e.response {
            m.serialize_entry("response", &r.body.full())?;
            if let Some(st) = status(&r.body) {
                m.serialize_entry("response_status", &st)?;
            }
        } else {
            m.serialize_entry("response", &None::<()>)?;
        }
        m.end()
    }
}

/// `client_pod`, `client_container`, `client_cgroup`, ... and `broker_*` of a connection whose socket
/// owners a live source resolved (nothing for replays).
fn serialize_owners<M: SerializeMap>(
    m: &mut M,
    client: &Option<std::sync::Arc<Attribution>>,
    broker: &Option<std::sync::Arc<Attribution>>,
) -> Result<(), M::Error> {
    for (k, v) in owner_pairs(client, broker) {
        m.serialize_entry(&k, &v)?;
    }
    Ok(())
}

fn owner_pairs(
    client: &Option<std::sync::Arc<Attribution>>,
    broker: &Option<std::sync::Arc<Attribution>>,
) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for (prefix, who) in [("client", client), ("broker", broker)] {
        let Some(who) = who else { continue };
        if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(&**who) {
            for (k, v) in m {
                out.push((format!("{prefix}_{k}"), v));
            }
        }
    }
    out
}

/// The owner fields of a connection (`client_pod`, ...) as (name, value) pairs, for other encoders.
pub fn owner_fields(c: &ConnCtx) -> Vec<(String, serde_json::Value)> {
    owner_pairs(&c.client_owner, &c.broker_owner)
}

/// The one-line message of a notice, as the JSON line and the logs show it.
pub fn notice_message(n: &NoticeRecord) -> String {
    match &n.notice {
        Notice::Orphan => format!(
            "response to correlation id {} whose request was not captured",
            n.correlation_id.unwrap_or(-1)
        ),
        Notice::Stream(k) => match k {
            NoticeKind::Desync { reason } => format!(
                "lost Kafka framing ({}); scanning for the next frame",
                reason.as_str()
            ),
            NoticeKind::Resync { skipped_bytes } => {
                format!("found Kafka framing again after skipping {skipped_bytes} bytes")
            }
            NoticeKind::FrameDamaged { len } => {
                format!("capture lost {len} bytes inside a frame; that frame is not decoded")
            }
            NoticeKind::OversizedFrame { len } => {
                format!("frame of {len} bytes exceeds max_frame_bytes; decoded by header only")
            }
            NoticeKind::OverBudget { len } => format!(
                "frame of {len} bytes does not fit the memory budget (memory_budget_bytes, shared by all connections); decoded by header only"
            ),
            NoticeKind::Tls => "connection uses TLS: it cannot be decoded from packets".to_string(),
            NoticeKind::SaslRawStart => {
                "SaslHandshake v0 accepted: raw SASL tokens follow (counted, never decoded)"
                    .to_string()
            }
            NoticeKind::MalformedHeader => {
                "request header did not parse; frame skipped by length".to_string()
            }
            NoticeKind::FrameTruncated {
                have,
                missing,
                total,
            } => {
                if *total > 0 {
                    format!("connection ended {missing} bytes before the end of a {total}-byte frame ({have} bytes arrived); that frame is lost")
                } else {
                    format!("connection ended inside a frame's length prefix ({have} bytes arrived); that frame is lost")
                }
            }
        },
        Notice::Other { message, .. } => message.clone(),
    }
}

impl Serialize for NoticeRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "notice")?;
        m.serialize_entry("ts", &Str(self.ts))?;
        m.serialize_entry("notice", self.notice.name())?;
        m.serialize_entry("message", &notice_message(self))?;
        if let Some((id, client, broker)) = &self.conn {
            m.serialize_entry("conn", id)?;
            m.serialize_entry("client_addr", &Str(*client))?;
            m.serialize_entry("broker_addr", &Str(*broker))?;
        }
        if let Some(d) = self.direction {
            m.serialize_entry(
                "direction",
                match d {
                    Direction::ToServer => "to_broker",
                    Direction::ToClient => "to_client",
                },
            )?;
        }
        if let Some(c) = self.correlation_id {
            m.serialize_entry("correlation_id", &c)?;
        }
        if let Some(b) = self.bytes {
            m.serialize_entry("bytes", &b)?;
        }
        m.end()
    }
}

impl Serialize for FieldValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Null => s.serialize_unit(),
            FieldValue::Bool(b) => s.serialize_bool(*b),
            FieldValue::Int(i) => s.serialize_i64(*i),
            FieldValue::Str(n) => s.serialize_str(n),
            FieldValue::Static(n) => s.serialize_str(n),
            FieldValue::Ts(t) => s.collect_str(t),
            FieldValue::Json(v) => v.serialize(s),
        }
    }
}

impl Serialize for Alert {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "alert")?;
        m.serialize_entry("alert", self.kind.as_str())?;
        m.serialize_entry("alert_id", &self.id())?;
        m.serialize_entry("severity", self.severity.as_str())?;
        m.serialize_entry("ts", &Str(self.ts))?;
        m.serialize_entry("client_id", &self.client_id.as_deref())?;
        m.serialize_entry("client_addr", &self.client.map(Str))?;
        m.serialize_entry("broker_addr", &self.broker.map(Str))?;
        m.serialize_entry("topic", &self.topic.as_deref())?;
        m.serialize_entry("partition", &self.partition)?;
        m.serialize_entry("explanation", &self.explanation)?;
        serialize_owners(&mut m, &self.client_owner, &self.broker_owner)?;
        for (k, v) in self.fields.iter() {
            m.serialize_entry(k, v)?;
        }
        if !self.evidence.is_empty() {
            m.serialize_entry("evidence", &EvidenceList(&self.evidence))?;
        }
        m.end()
    }
}

struct EvidenceList<'a>(&'a [crate::output::alert::Evidence]);

impl Serialize for EvidenceList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            seq.serialize_element(&EvidenceItem(e))?;
        }
        seq.end()
    }
}

struct EvidenceItem<'a>(&'a crate::output::alert::Evidence);

impl Serialize for EvidenceItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("role", e.role)?;
        m.serialize_entry("conn", &e.conn)?;
        m.serialize_entry("broker_addr", &Str(e.broker))?;
        m.serialize_entry("api", api::api_name(e.xref.api_key))?;
        m.serialize_entry("correlation_id", &e.xref.correlation_id)?;
        m.serialize_entry("ts", &Str(e.xref.request_ts))?;
        m.serialize_entry("request_frame", &frame_no(e.xref.request_frame))?;
        m.serialize_entry("response_frame", &frame_no(e.xref.response_frame))?;
        if let Some(o) = e.offset {
            m.serialize_entry("offset", &o)?;
        }
        m.end()
    }
}

impl Serialize for crate::output::GroupEventRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let tps = |v: &[crate::model::Tp]| -> Vec<String> {
            v.iter()
                .map(|tp| format!("{}-{}", tp.topic, tp.partition))
                .collect()
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "group_event")?;
        m.serialize_entry("ts", &Str(self.ts))?;
        m.serialize_entry("client_id", &*self.client_id)?;
        m.serialize_entry("client_addr", &Str(self.client))?;
        m.serialize_entry("broker_addr", &Str(self.broker))?;
        m.serialize_entry("conn", &self.conn)?;
        m.serialize_entry("group", &*self.group)?;
        m.serialize_entry("what", self.what)?;
        m.serialize_entry("member_id", &self.member_id)?;
        m.serialize_entry("generation", &self.generation)?;
        if let Some(p) = &self.protocol {
            m.serialize_entry("protocol", p)?;
        }
        m.serialize_entry("assigned", &tps(&self.assigned))?;
        m.serialize_entry("revoked", &tps(&self.revoked))?;
        if let Some(e) = self.error {
            m.serialize_entry("error", e)?;
        }
        m.end()
    }
}

impl Serialize for TimelineRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "timeline")?;
        m.serialize_entry("ts", &Str(self.ts))?;
        m.serialize_entry("client_id", &*self.client_id)?;
        m.serialize_entry("client_addr", &Str(self.client))?;
        m.serialize_entry("broker_addr", &Str(self.broker))?;
        m.serialize_entry("conn", &self.conn)?;
        m.serialize_entry("topic", &*self.topic)?;
        m.serialize_entry("partition", &self.partition)?;
        m.serialize_entry("what", self.what)?;
        m.serialize_entry("offset", &self.offset)?;
        if let Some(e) = self.leader_epoch {
            m.serialize_entry("leader_epoch", &e)?;
        }
        if let Some(e) = self.error {
            m.serialize_entry("error", e)?;
        }
        if let Some(g) = &self.group {
            m.serialize_entry("group", &**g)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    /// sonic-rs escapes strings exactly as serde_json does (the golden outputs, written by serde_json
    /// first, and the fuzz harness's comparison rely on it): every ASCII character, a lone one and
    /// inside text, and non-ASCII that some encoders escape (DEL, U+2028/2029, the replacement
    /// character of lossy client ids, astral plane).
    #[test]
    fn sonic_escapes_like_serde_json() {
        let mut cases: Vec<String> = (0u8..=0x7f).map(|b| char::from(b).to_string()).collect();
        cases.extend((0u8..=0x7f).map(|b| format!("client-{}-id", char::from(b))));
        cases.extend(
            [
                "\u{2028}\u{2029}",
                "caf\u{e9}",
                "\u{fffd}x\u{fffd}",
                "\u{1f600}",
                "a\"b\\c/d",
                "",
            ]
            .map(String::from),
        );
        cases.push("x".repeat(100) + "\n" + &"y".repeat(37) + "\u{7f}");
        for s in &cases {
            let a = sonic_rs::to_string(s).unwrap();
            let b = serde_json::to_string(s).unwrap();
            assert_eq!(a, b, "{s:?}");
        }
    }
}
