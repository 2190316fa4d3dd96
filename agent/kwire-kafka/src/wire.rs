//! Bounds-checked reader for the Kafka wire primitives (ints, varints, strings, bytes, arrays, UUIDs and
//! KIP-482 tagged fields) over one message body. Every body decoder in this crate is written on top of it.
//!
//! Why our own and not kafka-protocol's `Decodable`: the crate pre-allocates `Vec::with_capacity(n)` with
//! `n` straight from the wire for every array, so four garbled bytes can ask for hundreds of gigabytes and
//! abort the process. Here an array count is checked against the bytes left (every element takes at least
//! one byte) before anything is allocated, and callers cap what they keep.
//!
//! Easy to get wrong:
//! - positions in errors are absolute offsets in the body, also inside tagged-field sub-readers;
//! - flexible versions (KIP-482) use "compact" lengths: unsigned varint of `len + 1`, 0 meaning null;
//!   classic versions use i16 (strings) / i32 (bytes, arrays) lengths with -1 meaning null;
//! - an unsigned varint is at most 5 bytes (32 bits); a 6th continuation byte is malformed, not a panic;
//! - names that are not UTF-8 are kept lossily (we observe, we do not validate);
//! - an all-zero UUID means "no topic id" (older versions, or a name-based topic) and becomes `None`.

use serde::Serialize;

/// Result of a wire read.
pub type WireResult<T> = Result<T, BodyError>;

/// Bytes as an owned `String`, invalid UTF-8 replaced (U+FFFD). Valid UTF-8, which is every real
/// client's, is checked by `from_utf8` (vectorised) rather than `from_utf8_lossy`'s chunk walk: two
/// strings per exchange (client id, topic) at least.
pub(crate) fn lossy_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// A topic name as Produce and Fetch bodies carry it: a string kept inline up to 24 bytes (most topic
/// names), so decoding one allocates nothing; serialises as a string.
pub type TopicName = compact_str::CompactString;

/// A Kafka UUID (topic id). Serialises as the lowercase "8-4-4-4-12" string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// True for the all-zero UUID, which Kafka uses for "no id".
    pub fn is_nil(&self) -> bool {
        self.0 == [0u8; 16]
    }
}

impl Uuid {
    /// `8-4-4-4-12` lowercase hex as ASCII bytes (what `Display` and the JSON encoder write: one per
    /// topic per exchange, without the formatting machinery).
    pub fn hex(&self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 36];
        let mut j = 0;
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out[j] = b'-';
                j += 1;
            }
            out[j] = HEX[usize::from(b >> 4)];
            out[j + 1] = HEX[usize::from(b & 0xf)];
            j += 2;
        }
        out
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.hex()).unwrap_or_default())
    }
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uuid({self})")
    }
}

impl serde::Serialize for Uuid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&self.hex()).unwrap_or_default())
    }
}

/// Why a body did not decode. Positions are byte offsets in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BodyError {
    /// The body ended before the structure did.
    Truncated { at: usize },
    /// A value that cannot be right (negative length, overlong varint, array longer than the body...).
    Malformed { at: usize, what: &'static str },
    /// A version of a summarised API that we do not know.
    UnsupportedVersion,
    /// The structure parsed but bytes were left over (only from the `*_strict` entry points).
    Trailing { bytes: usize },
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Truncated { at } => write!(f, "body truncated at byte {at}"),
            BodyError::Malformed { at, what } => write!(f, "malformed body at byte {at}: {what}"),
            BodyError::UnsupportedVersion => f.write_str("unsupported api version"),
            BodyError::Trailing { bytes } => write!(f, "{bytes} trailing bytes after the body"),
        }
    }
}

impl std::error::Error for BodyError {}

/// A cursor over `buf[pos..end]`; `pos` is absolute in the body so errors point at the right byte.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole body.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    /// Absolute position of the next byte.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left before the end of this reader.
    pub fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Error at the current position.
    pub fn malformed(&self, what: &'static str) -> BodyError {
        BodyError::Malformed { at: self.pos, what }
    }

    /// Take the next `n` bytes as a slice.
    pub fn take(&mut self, n: usize) -> WireResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(BodyError::Truncated { at: self.pos });
        }
        let start = self.pos;
        self.pos += n;
        // `start + n <= end <= buf.len()` was checked above; `get` keeps it panic-free regardless.
        self.buf
            .get(start..self.pos)
            .ok_or(BodyError::Truncated { at: start })
    }

    /// Skip `n` bytes.
    pub fn skip(&mut self, n: usize) -> WireResult<()> {
        self.take(n).map(|_| ())
    }

    /// A sub-reader over the next `n` bytes; this reader moves past them.
    pub fn sub(&mut self, n: usize) -> WireResult<Reader<'a>> {
        let start = self.pos;
        self.take(n)?;
        Ok(Reader {
            buf: self.buf,
            pos: start,
            end: self.pos,
        })
    }

    fn array_n<const N: usize>(&mut self) -> WireResult<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u8(&mut self) -> WireResult<u8> {
        Ok(self.array_n::<1>()?[0])
    }
    pub fn i8(&mut self) -> WireResult<i8> {
        Ok(self.u8()? as i8)
    }
    pub fn bool(&mut self) -> WireResult<bool> {
        Ok(self.u8()? != 0)
    }
    pub fn i16(&mut self) -> WireResult<i16> {
        Ok(i16::from_be_bytes(self.array_n()?))
    }
    pub fn i32(&mut self) -> WireResult<i32> {
        Ok(i32::from_be_bytes(self.array_n()?))
    }
    pub fn i64(&mut self) -> WireResult<i64> {
        Ok(i64::from_be_bytes(self.array_n()?))
    }

    /// A UUID; the all-zero UUID becomes `None`.
    pub fn uuid(&mut self) -> WireResult<Option<Uuid>> {
        let u = Uuid(self.array_n()?);
        Ok(if u.is_nil() { None } else { Some(u) })
    }

    /// Unsigned varint (at most 5 bytes, 32 bits). One byte is the usual case (every empty tagged-field
    /// section, every short compact length of a flexible version): inlined, the rest is not.
    #[inline]
    pub fn uvarint(&mut self) -> WireResult<u32> {
        if self.pos < self.end {
            if let Some(&b) = self.buf.get(self.pos) {
                if b & 0x80 == 0 {
                    self.pos += 1;
                    return Ok(u32::from(b));
                }
            }
        }
        self.uvarint_long()
    }

    #[inline(never)]
    fn uvarint_long(&mut self) -> WireResult<u32> {
        let start = self.pos;
        let mut v: u32 = 0;
        for i in 0..5u32 {
            let b = self.u8()?;
            if i == 4 && b > 0x0f {
                return Err(BodyError::Malformed {
                    at: start,
                    what: "varint longer than 32 bits",
                });
            }
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BodyError::Malformed {
            at: start,
            what: "varint longer than 32 bits",
        })
    }

    /// Unsigned varlong (at most 10 bytes, 64 bits).
    pub fn uvarlong(&mut self) -> WireResult<u64> {
        let start = self.pos;
        let mut v: u64 = 0;
        for i in 0..10u32 {
            let b = self.u8()?;
            if i == 9 && b > 0x01 {
                return Err(BodyError::Malformed {
                    at: start,
                    what: "varlong longer than 64 bits",
                });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BodyError::Malformed {
            at: start,
            what: "varlong longer than 64 bits",
        })
    }

    /// Zigzag signed varint (record format v2).
    pub fn varint(&mut self) -> WireResult<i32> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }

    /// Zigzag signed varlong (record format v2).
    pub fn varlong(&mut self) -> WireResult<i64> {
        let u = self.uvarlong()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// Length of a nullable string / bytes field (`None` = null). Classic: i16 (strings) or i32 (bytes).
    fn len_prefix(&mut self, flex: bool, wide: bool) -> WireResult<Option<usize>> {
        let at = self.pos;
        let n: i64 = if flex {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(BodyError::Malformed {
                at,
                what: "negative length",
            });
        }
        let n = n as usize;
        if n > self.remaining() {
            return Err(BodyError::Truncated { at });
        }
        Ok(Some(n))
    }

    /// A nullable string as a borrowed slice (`None` = null).
    pub fn str_bytes(&mut self, flex: bool) -> WireResult<Option<&'a [u8]>> {
        match self.len_prefix(flex, false)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// A nullable string, owned (lossy UTF-8).
    pub fn opt_string(&mut self, flex: bool) -> WireResult<Option<String>> {
        Ok(self.str_bytes(flex)?.map(lossy_string))
    }

    /// A topic name of the hot APIs (Produce, Fetch): inline up to 24 bytes, lossy UTF-8; null becomes
    /// the empty name.
    pub fn name(&mut self, flex: bool) -> WireResult<TopicName> {
        Ok(match self.str_bytes(flex)? {
            None => TopicName::default(),
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => TopicName::new(s),
                Err(_) => TopicName::from_utf8_lossy(b),
            },
        })
    }

    /// A string; null becomes the empty string (we observe, we do not validate).
    pub fn string(&mut self, flex: bool) -> WireResult<String> {
        Ok(self.opt_string(flex)?.unwrap_or_default())
    }

    /// Skip a string without allocating.
    pub fn skip_string(&mut self, flex: bool) -> WireResult<()> {
        self.str_bytes(flex).map(|_| ())
    }

    /// Nullable bytes as a borrowed slice.
    pub fn bytes(&mut self, flex: bool) -> WireResult<Option<&'a [u8]>> {
        match self.len_prefix(flex, true)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// Array element count (`None` = null array). The count is checked against the bytes left, so a
    /// loop over it is bounded by the body size.
    #[inline]
    pub fn opt_array_len(&mut self, flex: bool) -> WireResult<Option<usize>> {
        let at = self.pos;
        let n: i64 = if flex {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(BodyError::Malformed {
                at,
                what: "negative array length",
            });
        }
        let n = n as usize;
        if n > self.remaining() {
            return Err(BodyError::Malformed {
                at,
                what: "array longer than the body",
            });
        }
        Ok(Some(n))
    }

    /// Array element count; a null array counts as empty.
    #[inline]
    pub fn array_len(&mut self, flex: bool) -> WireResult<usize> {
        Ok(self.opt_array_len(flex)?.unwrap_or(0))
    }

    /// An array of i32 (partition ids, node ids), keeping at most `cap` values.
    pub fn i32_array(&mut self, flex: bool, cap: usize) -> WireResult<Vec<i32>> {
        let n = self.array_len(flex)?;
        let mut v = Vec::with_capacity(n.min(cap));
        for _ in 0..n {
            let x = self.i32()?;
            if v.len() < cap {
                v.push(x);
            }
        }
        Ok(v)
    }

    /// An array of strings, keeping at most `cap` values.
    pub fn string_array(&mut self, flex: bool, cap: usize) -> WireResult<Vec<String>> {
        let n = self.array_len(flex)?;
        let mut v = Vec::with_capacity(n.min(cap));
        for _ in 0..n {
            if v.len() < cap {
                v.push(self.string(flex)?);
            } else {
                self.skip_string(flex)?;
            }
        }
        Ok(v)
    }

    /// Walk a tagged-field section (flexible versions): `f(tag, reader over the field's bytes)`.
    /// Does nothing when `flex` is false.
    pub fn tagged_fields(
        &mut self,
        flex: bool,
        mut f: impl FnMut(u32, &mut Reader<'a>) -> WireResult<()>,
    ) -> WireResult<()> {
        if !flex {
            return Ok(());
        }
        let n = self.uvarint()?;
        for _ in 0..n {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let mut sub = self.sub(size)?;
            f(tag, &mut sub)?;
        }
        Ok(())
    }

    /// Skip a tagged-field section (no-op when `flex` is false). Inline for the usual empty section
    /// (one zero byte: nearly every topic and partition of a flexible Produce or Fetch).
    #[inline]
    pub fn skip_tagged(&mut self, flex: bool) -> WireResult<()> {
        if !flex {
            return Ok(());
        }
        if self.pos < self.end && self.buf.get(self.pos) == Some(&0) {
            self.pos += 1;
            return Ok(());
        }
        self.skip_tagged_slow()
    }

    #[inline(never)]
    fn skip_tagged_slow(&mut self) -> WireResult<()> {
        self.tagged_fields(true, |_, _| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(Reader::new(&[0x00]).uvarint(), Ok(0));
        assert_eq!(Reader::new(&[0x96, 0x01]).uvarint(), Ok(150));
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).uvarint(),
            Ok(u32::MAX)
        );
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f])
            .uvarint()
            .is_err());
        assert!(Reader::new(&[0xff, 0xff]).uvarint().is_err());
        assert_eq!(Reader::new(&[0x01]).varint(), Ok(-1));
        assert_eq!(Reader::new(&[0x02]).varint(), Ok(1));
        assert_eq!(Reader::new(&[0x03]).varlong(), Ok(-2));
    }

    #[test]
    fn skip_tagged_sections() {
        // Empty section (the inline path), then the byte after it.
        let mut r = Reader::new(&[0x00, 0x07]);
        assert_eq!(r.skip_tagged(true), Ok(()));
        assert_eq!(r.u8(), Ok(7));
        // One field: tag 0, 2 bytes; skipped whole.
        let mut r = Reader::new(&[0x01, 0x00, 0x02, 0xaa, 0xbb, 0x07]);
        assert_eq!(r.skip_tagged(true), Ok(()));
        assert_eq!(r.u8(), Ok(7));
        // A field claiming more bytes than there are.
        assert!(Reader::new(&[0x01, 0x00, 0x05, 0x01])
            .skip_tagged(true)
            .is_err());
        // Nothing left, and a non-flexible version reads nothing.
        assert!(Reader::new(&[]).skip_tagged(true).is_err());
        let mut r = Reader::new(&[0x07]);
        assert_eq!(r.skip_tagged(false), Ok(()));
        assert_eq!(r.u8(), Ok(7));
    }

    #[test]
    fn strings_and_arrays() {
        // classic string "ab", compact string "c", null classic string
        let b = [0, 2, b'a', b'b', 2, b'c', 0xff, 0xff];
        let mut r = Reader::new(&b);
        assert_eq!(r.string(false).unwrap(), "ab");
        assert_eq!(r.string(true).unwrap(), "c");
        assert_eq!(r.opt_string(false).unwrap(), None);
        assert!(r.is_empty());
        // array claims 1000 elements in a 4-byte body: rejected before any allocation
        let b = [0, 0, 3, 0xe8];
        assert!(matches!(
            Reader::new(&b).array_len(false),
            Err(BodyError::Malformed { .. })
        ));
    }

    #[test]
    fn uuid_format() {
        let u = Uuid([
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8,
        ]);
        assert_eq!(u.to_string(), "12345678-9abc-def0-0102-030405060708");
    }
}
