//! Record-set walking: one `BatchInfo` per record batch (format v2, magic 2) or per top-level legacy
//! message (magic 0/1, see `legacy.rs`), read from headers only. Record keys, values and headers are never
//! read, copied or kept, and nothing is decompressed.
//!
//! Easy to get wrong:
//! - the magic byte sits at offset 16 in every format (offset i64, length i32, then partition leader epoch
//!   i32 in v2 / crc u32 in v0-1), so it is read before choosing a layout;
//! - `batch_length` counts the bytes AFTER the length field: a batch spans `12 + batch_length` bytes;
//! - a partial batch at the end of a Fetch record set is normal (brokers cut at max_bytes): it is kept
//!   with `truncated: true`, it is not an error;
//! - record_count / last_offset_delta are what the header claims; compressed batches are not opened;
//! - the number of `BatchInfo` kept per record set is capped (`MAX_BATCHES`); the rest are counted.

use crate::parse::Parse;
use crate::wire::Reader;
use serde::Serialize;

/// Most batch headers kept per partition; the rest are counted in `batches_omitted`.
pub const MAX_BATCHES: usize = 64;

/// Size of a record batch v2 header, from base_offset through records_count.
pub const BATCH_V2_HEADER: usize = 61;

/// Compression codec from the attributes (low 3 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    Unknown(u8),
}

impl Compression {
    /// From the codec bits of a batch's (or legacy message's) attributes.
    pub fn from_attributes(attributes: i16) -> Self {
        match attributes & 0x07 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            n => Compression::Unknown(n as u8),
        }
    }
    /// Lowercase name; "unknown" for codecs Kafka does not define.
    pub fn as_str(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
            Compression::Unknown(_) => "unknown",
        }
    }
}

impl Serialize for Compression {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a batch header (or a legacy message header) says. Fields a partial header did not reach keep
/// their defaults (-1 for offsets/ids, 0 for counts) and `truncated` is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchInfo {
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub record_count: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub compression: Compression,
    pub magic: i8,
    pub transactional: bool,
    pub control: bool,
    pub batch_length: i32,
    pub truncated: bool,
    /// The batch's CRC-32C (v2) or the message's CRC (magic 0/1); 0 when the header was cut before it.
    /// With `first_timestamp` and `record_count`, what tells the same batch sent again by a producer
    /// without sequence numbers (never the record bytes). Not in the JSON line.
    #[serde(skip)]
    pub crc: u32,
    /// The batch's base timestamp (v2) or the message's timestamp (magic 1); -1 when none.
    #[serde(skip)]
    pub first_timestamp: i64,
    /// The partition leader epoch the batch carries (v2; -1 in what producers send, the leader's epoch
    /// when the record was appended in what Fetch returns). Not in the JSON line.
    #[serde(skip)]
    pub partition_leader_epoch: i32,
}

impl BatchInfo {
    /// Defaults for a header of which nothing could be read yet.
    pub fn empty() -> Self {
        BatchInfo {
            base_offset: -1,
            last_offset_delta: 0,
            record_count: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            compression: Compression::None,
            magic: -1,
            transactional: false,
            control: false,
            batch_length: 0,
            truncated: true,
            crc: 0,
            first_timestamp: -1,
            partition_leader_epoch: -1,
        }
    }

    /// Offset of the last record the header claims (base + last_offset_delta), saturating.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
}

/// The batch headers of one record set, inline when there is one (what producers with a linger send,
/// and most Fetch partitions of a consumer that keeps up): one allocation fewer per partition.
pub type Batches = crate::body::Inline<BatchInfo>;

/// Summary of one record set (the `records` bytes of one partition).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecordSetSummary {
    /// Up to `MAX_BATCHES` headers, in wire order.
    pub batches: Batches,
    /// Batches seen but not kept because of the cap.
    pub batches_omitted: u32,
    /// The walk stopped on a header that cannot be right (bad length or magic); bytes after it unread.
    pub malformed: bool,
}

/// Walk a record set, reading only headers. Never fails: oddities are reported in the summary.
pub fn scan_record_set(bytes: &[u8]) -> RecordSetSummary {
    let mut out = RecordSetSummary::default();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or(&[]);
        let (info, span) = match read_one(rest) {
            Parse::Done(info, span) => (info, span),
            Parse::NeedMore(_) | Parse::Broken { .. } => {
                out.malformed = true;
                break;
            }
        };
        if out.batches.len() < MAX_BATCHES {
            out.batches.push(info);
        } else {
            out.batches_omitted = out.batches_omitted.saturating_add(1);
        }
        match pos.checked_add(span) {
            Some(p) if span > 0 => pos = p,
            _ => break,
        }
    }
    out
}

/// Summarises a record set handed over piece by piece, without ever holding it: only the first
/// [`BATCH_V2_HEADER`] bytes of each batch (or legacy message) are kept, the rest is skipped by count.
/// Gives the same summary as [`scan_record_set`] over the whole set.
#[derive(Debug, Default)]
pub struct RecordSetWalker {
    summary: RecordSetSummary,
    head: Vec<u8>,
    /// Bytes of the current batch (12 + batch_length) once its length is known.
    total: Option<u64>,
    /// Bytes of the current batch seen so far.
    seen: u64,
}

impl RecordSetWalker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next bytes of the record set.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.summary.malformed {
                return;
            }
            if self.total.is_none() {
                let want = 12usize.saturating_sub(self.head.len());
                let n = want.min(bytes.len());
                self.head.extend_from_slice(&bytes[..n]);
                self.seen += n as u64;
                bytes = &bytes[n..];
                if self.head.len() < 12 {
                    return;
                }
                let len =
                    i32::from_be_bytes([self.head[8], self.head[9], self.head[10], self.head[11]]);
                if len < 0 {
                    self.summary.malformed = true;
                    return;
                }
                self.total = Some(12 + len as u64);
            }
            let total = self.total.unwrap_or(0);
            // Keep the header part, skip the rest by count.
            if self.head.len() < BATCH_V2_HEADER && (self.head.len() as u64) < total {
                let want = (BATCH_V2_HEADER - self.head.len())
                    .min((total - self.head.len() as u64) as usize);
                let n = want.min(bytes.len());
                self.head.extend_from_slice(&bytes[..n]);
                self.seen += n as u64;
                bytes = &bytes[n..];
            }
            let skip = (total - self.seen).min(bytes.len() as u64) as usize;
            self.seen += skip as u64;
            bytes = &bytes[skip..];
            if self.seen >= total {
                self.end_batch(true);
            }
        }
    }

    fn end_batch(&mut self, complete: bool) {
        match read_one(&self.head) {
            Parse::Done(mut info, _) => {
                info.truncated = !complete;
                if self.summary.batches.len() < MAX_BATCHES {
                    self.summary.batches.push(info);
                } else {
                    self.summary.batches_omitted = self.summary.batches_omitted.saturating_add(1);
                }
            }
            Parse::NeedMore(_) | Parse::Broken { .. } => self.summary.malformed = true,
        }
        self.head.clear();
        self.total = None;
        self.seen = 0;
    }

    /// End of the record set: a batch still open was cut short (brokers cut at max_bytes).
    pub fn finish(mut self) -> RecordSetSummary {
        if !self.head.is_empty() && !self.summary.malformed {
            self.end_batch(false);
        }
        self.summary
    }
}

/// Read one batch or legacy message header at the start of `b`: `Done` with the header and the bytes it
/// spans (the rest of the set when truncated: a set cut short, as brokers cut at max_bytes, still gives its
/// last batch's header fields that fit, so this never needs more), `Broken` when it is no batch.
fn read_one(b: &[u8]) -> Parse<BatchInfo> {
    let mut info = BatchInfo::empty();
    let mut r = Reader::new(b);
    // Partial header: take whatever fields fit, mark truncated, consume the rest.
    let Ok(base_offset) = r.i64() else {
        return Parse::Done(info, b.len());
    };
    info.base_offset = base_offset;
    let Ok(len) = r.i32() else {
        return Parse::Done(info, b.len());
    };
    info.batch_length = len;
    let Some(magic) = b.get(16).map(|m| *m as i8) else {
        return Parse::Done(info, b.len());
    };
    info.magic = magic;
    let min_len = match magic {
        2 => (BATCH_V2_HEADER - 12) as i32,
        0 => 14, // crc 4, magic 1, attributes 1, key len 4, value len 4
        1 => 22, // + timestamp 8
        _ => return Parse::broken(16, "magic"),
    };
    if len < min_len {
        return Parse::broken(8, "batch length below its header");
    }
    let span = 12usize.saturating_add(len as usize);
    let complete = span <= b.len();
    info.truncated = !complete;
    if magic == 2 {
        let fill = |r: &mut Reader, info: &mut BatchInfo| -> Result<(), crate::body::BodyError> {
            info.partition_leader_epoch = r.i32()?;
            r.skip(1)?; // magic
            info.crc = r.i32()? as u32;
            let attributes = r.i16()?;
            info.compression = Compression::from_attributes(attributes);
            info.transactional = attributes & 0x10 != 0;
            info.control = attributes & 0x20 != 0;
            info.last_offset_delta = r.i32()?;
            info.first_timestamp = r.i64()?; // base_timestamp
            r.skip(8)?; // max_timestamp
            info.producer_id = r.i64()?;
            info.producer_epoch = r.i16()?;
            info.base_sequence = r.i32()?;
            info.record_count = r.i32()?;
            Ok(())
        };
        let _ = fill(&mut r, &mut info);
    } else {
        crate::legacy::fill_message_header(&mut r, &mut info);
    }
    Parse::Done(info, if complete { span } else { b.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v2 batch header with `n_body` bytes of (fake) records after it.
    pub(crate) fn v2_batch(
        base: i64,
        attrs: i16,
        lod: i32,
        pid: i64,
        count: i32,
        n_body: usize,
    ) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&base.to_be_bytes()); // base_offset
        v.extend_from_slice(&((49 + n_body) as i32).to_be_bytes()); // batch_length
        v.extend_from_slice(&7i32.to_be_bytes()); // partition_leader_epoch
        v.push(2); // magic
        v.extend_from_slice(&0u32.to_be_bytes()); // crc (not checked)
        v.extend_from_slice(&attrs.to_be_bytes()); // attributes
        v.extend_from_slice(&lod.to_be_bytes()); // last_offset_delta
        v.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // base_timestamp
        v.extend_from_slice(&1_700_000_000_001i64.to_be_bytes()); // max_timestamp
        v.extend_from_slice(&pid.to_be_bytes()); // producer_id
        v.extend_from_slice(&3i16.to_be_bytes()); // producer_epoch
        v.extend_from_slice(&11i32.to_be_bytes()); // base_sequence
        v.extend_from_slice(&count.to_be_bytes()); // records_count
        v.extend(std::iter::repeat_n(0xAAu8, n_body)); // records (never read)
        v
    }

    #[test]
    fn walker_matches_scan_in_any_chunking() {
        let mut set = v2_batch(100, 0x14, 4, 9000, 5, 300);
        set.extend(v2_batch(105, 0x01, 9, -1, 10, 1000));
        set.extend(&v2_batch(115, 0, 0, -1, 1, 500)[..200]); // cut short, as at max_bytes
        let want = scan_record_set(&set);
        for chunk in [1usize, 7, 61, 62, 500, 5000] {
            let mut w = RecordSetWalker::new();
            for c in set.chunks(chunk) {
                w.feed(c);
            }
            assert_eq!(w.finish(), want, "chunks of {chunk}");
        }
        assert_eq!(want.batches.len(), 3);
        assert!(want.batches[2].truncated && !want.batches[1].truncated);
    }

    #[test]
    fn v2_header() {
        // attributes 0x14 = zstd(4) | transactional(0x10)
        let b = v2_batch(100, 0x14, 4, 9000, 5, 20);
        let s = scan_record_set(&b);
        assert_eq!(s.batches.len(), 1);
        let i = &s.batches[0];
        assert_eq!(i.base_offset, 100);
        assert_eq!(i.last_offset_delta, 4);
        assert_eq!(i.last_offset(), 104);
        assert_eq!(i.record_count, 5);
        assert_eq!(i.producer_id, 9000);
        assert_eq!(i.producer_epoch, 3);
        assert_eq!(i.base_sequence, 11);
        assert_eq!(i.compression, Compression::Zstd);
        assert_eq!(i.magic, 2);
        assert!(i.transactional && !i.control && !i.truncated);
        assert_eq!(i.batch_length, 69);
    }

    #[test]
    fn control_and_truncated_tail() {
        let mut b = v2_batch(0, 0x30, 0, 1, 1, 10); // control | transactional
        let second = v2_batch(1, 0x01, 9, -1, 10, 100); // gzip
        b.extend_from_slice(&second[..70]); // cut inside the records
        let s = scan_record_set(&b);
        assert_eq!(s.batches.len(), 2);
        assert!(s.batches[0].control && !s.batches[0].truncated);
        assert!(s.batches[1].truncated);
        assert_eq!(s.batches[1].compression, Compression::Gzip);
        assert_eq!(s.batches[1].record_count, 10);
        // cut inside the header: fields past the cut keep their defaults
        let s = scan_record_set(&second[..20]);
        assert_eq!(s.batches.len(), 1);
        assert!(s.batches[0].truncated);
        assert_eq!(s.batches[0].base_offset, 1);
        assert_eq!(s.batches[0].record_count, 0);
        // fewer than 8 bytes: still one truncated marker
        let s = scan_record_set(&second[..5]);
        assert_eq!(s.batches.len(), 1);
        assert_eq!(s.batches[0].base_offset, -1);
    }

    #[test]
    fn cap_and_malformed() {
        let mut b = Vec::new();
        for i in 0..70 {
            b.extend(v2_batch(i, 0, 0, -1, 1, 0));
        }
        let s = scan_record_set(&b);
        assert_eq!(s.batches.len(), MAX_BATCHES);
        assert_eq!(s.batches_omitted, 6);
        let mut bad = v2_batch(0, 0, 0, -1, 1, 0);
        bad[16] = 7; // magic 7
        assert!(scan_record_set(&bad).malformed);
        let mut bad = v2_batch(0, 0, 0, -1, 1, 0);
        bad[8..12].copy_from_slice(&3i32.to_be_bytes()); // batch_length below the header size
        assert!(scan_record_set(&bad).malformed);
    }
}
