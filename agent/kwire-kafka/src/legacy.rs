//! Wire formats that kafka-protocol 0.18 (like Kafka 4.x) no longer knows but 0.10+ clients and brokers
//! still put on the wire: legacy message sets (magic 0 and 1) and the API versions below the crate's
//! minimum (Produce v0-2, Fetch v0-3, ListOffsets v0, OffsetCommit v0-1, OffsetFetch v0, CreateTopics v0-1,
//! DeleteTopics v0, the removed inter-broker APIs 4-7). The body decoders in `body/` handle every version
//! of the APIs they summarise in one place (see `body/mod.rs` for why not the crate); this module holds the
//! legacy message-set header (`fill_message_header`, called by `records`).
//!
//! Easy to get wrong about magic 0/1 message sets:
//! - each top-level message is `offset i64, message_size i32, crc u32, magic i8, attributes i8,
//!   [timestamp i64 if magic 1], key bytes, value bytes`; one `BatchInfo` per top-level message;
//! - a compressed "wrapper" message stands for a whole inner message set that we do not decompress: it is
//!   recorded as ONE batch with `record_count: 1` and its compression set. Its offset is the offset of the
//!   LAST inner message (absolute in magic 1 and in magic 0), not the first: consumers of `BatchInfo` must not
//!   read `base_offset` of a legacy compressed wrapper as the first offset;
//! - there is no producer id / epoch / sequence / transactional / control bit before magic 2 (-1 / false).

use crate::records::{BatchInfo, Compression};
use crate::wire::Reader;

/// Fill a legacy (magic 0/1) message's fields. `r` is positioned right after `offset` and `message_size`;
/// `info` already has `base_offset`, `batch_length`, `magic` and `truncated`.
pub fn fill_message_header(r: &mut Reader<'_>, info: &mut BatchInfo) {
    info.record_count = 1;
    info.last_offset_delta = 0;
    // crc u32, magic i8, attributes i8, then (magic 1) timestamp i64
    let Ok(crc) = r.i32() else {
        return;
    };
    info.crc = crc as u32;
    if r.skip(1).is_err() {
        return;
    }
    if let Ok(attributes) = r.i8() {
        info.compression = Compression::from_attributes(i16::from(attributes as u8));
    }
    if info.magic == 1 {
        if let Ok(ts) = r.i64() {
            info.first_timestamp = ts;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::records::{scan_record_set, Compression};

    /// One legacy message. `magic` 0 or 1; `attrs` low bits = codec.
    pub(crate) fn message(
        offset: i64,
        magic: u8,
        attrs: u8,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&0xDEADBEEFu32.to_be_bytes()); // crc (not checked)
        m.push(magic); // magic
        m.push(attrs); // attributes
        if magic == 1 {
            m.extend_from_slice(&1_500_000_000_000i64.to_be_bytes()); // timestamp
        }
        match key {
            None => m.extend_from_slice(&(-1i32).to_be_bytes()), // key: null
            Some(k) => {
                m.extend_from_slice(&(k.len() as i32).to_be_bytes()); // key length
                m.extend_from_slice(k); // key
            }
        }
        m.extend_from_slice(&(value.len() as i32).to_be_bytes()); // value length
        m.extend_from_slice(value); // value
        let mut v = Vec::new();
        v.extend_from_slice(&offset.to_be_bytes()); // offset
        v.extend_from_slice(&(m.len() as i32).to_be_bytes()); // message_size
        v.extend(m);
        v
    }

    #[test]
    fn magic0_and_magic1_message_sets() {
        let mut set = message(10, 0, 0, Some(b"k"), b"hello");
        set.extend(message(11, 0, 0, None, b"world"));
        let s = scan_record_set(&set);
        assert_eq!(s.batches.len(), 2);
        assert_eq!(s.batches[0].base_offset, 10);
        assert_eq!(s.batches[0].magic, 0);
        assert_eq!(s.batches[0].record_count, 1);
        assert_eq!(s.batches[0].producer_id, -1);
        assert_eq!(s.batches[0].batch_length, 4 + 1 + 1 + 4 + 1 + 4 + 5);
        assert_eq!(s.batches[1].base_offset, 11);
        assert!(!s.batches[1].truncated && !s.malformed);

        let set = message(5, 1, 0, None, b"v");
        let s = scan_record_set(&set);
        assert_eq!(s.batches[0].magic, 1);
        assert_eq!(s.batches[0].compression, Compression::None);
    }

    #[test]
    fn gzip_wrapper_is_one_batch_with_last_inner_offset() {
        // A magic 1 gzip wrapper for 3 inner messages (offsets 20..=22): wrapper offset = 22 (the last),
        // the value is the compressed inner set (opaque bytes here: we never decompress).
        let wrapper = message(22, 1, 1, None, &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
        let s = scan_record_set(&wrapper);
        assert_eq!(s.batches.len(), 1);
        let b = &s.batches[0];
        assert_eq!(b.base_offset, 22);
        assert_eq!(b.record_count, 1);
        assert_eq!(b.compression, Compression::Gzip);
        assert_eq!(b.magic, 1);
        // truncated legacy message at the end of a fetch
        let mut set = message(1, 0, 0, None, b"a");
        let second = message(2, 0, 2, None, b"abcdef");
        set.extend_from_slice(&second[..20]);
        let s = scan_record_set(&set);
        assert_eq!(s.batches.len(), 2);
        assert!(s.batches[1].truncated);
        assert_eq!(s.batches[1].compression, Compression::Snappy);
    }
}
