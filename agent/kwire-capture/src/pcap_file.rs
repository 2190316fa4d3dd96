//! pcap / pcapng file reader: [`PcapFile::next_packet`] yields [`RawPacket`]s borrowed either from one
//! reusable buffer (256 KiB, grown up to 256 MiB for huge records) filled with plain `File::read`, or,
//! for big files of big packets (below), from a read-only memory map of the file.
//!
//! Why a map only for files of big packets: with `read` the kernel copies every byte from the page
//! cache into our buffer, and that copy was 28% of a whole `kwire replay` profile once; a map hands out
//! the page cache itself. But since the reassembler keeps the last bytes of every stream for its
//! retransmission-overlap check, it copies every payload byte of an MTU-sized packet anyway, and it is
//! the first to touch them: from a map each first touch goes to memory (after page faults and their
//! `madvise` work), from a 256 KiB read buffer the bytes the kernel just copied are still in L2. Measured
//! (2026-12-07, whole `kwire replay` pinned to one core, median of 9-11 alternating runs): files of
//! 1500-byte packets (0.9 KB a record) and of loopback-sized ones with small batches (1.7 KB) took 9%
//! and 4% less CPU read than mapped, and ~11 MB of RSS instead of ~33 MB; a file of 64 KB loopback
//! packets carrying 1 MB batches (40 KB a record), where the ring copies 4 KiB of each and the rest is
//! skipped unread, took 28% less CPU mapped. So [`ReadMode::Auto`] reads every file, and maps a
//! regular file of at least [`MMAP_MIN_LEN`] from the point [`MMAP_DECIDE_AT`] on when the records read
//! so far average at least [`MMAP_MIN_MEAN_RECORD`] (the start of a capture, handshakes and metadata,
//! says little: measuring the first records alone kept a file of 40 KB records read). Resident memory
//! stays bounded either way: mapped pages behind the cursor are released with `madvise(MADV_DONTNEED)`
//! every [`MMAP_RELEASE_STEP`] (they stay in the page cache). Caveat of maps: a file *truncated* by
//! another process while we read it would raise SIGBUS; appending is harmless. Use `ReadMode::Read`
//! (CLI `--no-mmap`, env `KWIRE_NO_MMAP`) for files something may truncate. The read buffer: 256 KiB (next_packet alone, 1 GiB of 1500-byte packets
//! from the page cache, one core: 256 KiB 9.2 GB/s, 1 MiB 8.6-8.9 GB/s, 4 MiB 7.9-8.1 GB/s, 16 MiB 7.0
//! GB/s; whole replays 1-2% less CPU than with 1 MiB).
//!
//! Why our own reader instead of libpcap's offline reader: libpcap caps at about 4.4 GB/s, stops for good
//! at the first damaged record, and cannot read a pcapng file whose interfaces have different link types.
//! `pcap-parser` was considered: it parses well, but its streaming reader makes the caller drive buffer
//! refills and `Incomplete` handling, and yields block enums that we would still have to turn into
//! per-interface timestamps (if_tsresol / if_tsoffset), link types and damage reports with file offsets;
//! the format part is ~300 lines, so owning it (and its error messages and counters) was simpler.
//!
//! Formats: pcap (magic a1b2c3d4 µs and a1b23c4d ns, both byte orders); pcapng (sections of either byte
//! order, each Section Header Block resets the interface list; IDB with link type, `if_tsresol` (power of
//! 10 or 2, default µs) and `if_tsoffset`; EPB, SPB (no timestamp: the last one seen is used), obsolete
//! PB; every other block (NRB, ISB, DSB, custom, unknown) is skipped by its length and counted).
//!
//! Why this file is long: pcap and pcapng (headers, blocks, interfaces, timestamp units) are read by one
//! `PcapFile` over one buffer (map or read) with one damage report; apart, each half would need the other's
//! state and the buffer code twice.
//!
//! What is easy to get wrong:
//! * Damage: a pcap record with an absurd caplen (> 256 MiB) or a pcapng block whose length is not a
//!   multiple of 4, < 12, > 256 MiB, or whose trailing copy differs, gives `Err(Damaged{offset})`; so does
//!   a file that ends inside a record ("truncated at byte N"). Everything returned before stays valid.
//!   After a `Damaged` error the reader is finished: further calls return `Ok(None)` (no resync yet).
//! * Tolerated and counted, not errors: caplen > orig_len (real files do this), caplen > snaplen, an EPB
//!   naming an unknown interface or claiming more data than its block holds (`bad_records`, skipped).
//! * Timestamps: pcap µs vs ns by magic; pcapng per interface, 64-bit units of `if_tsresol`; converted with
//!   saturating arithmetic so absurd values cannot overflow.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use kwire_flow::{LinkType, Timestamp};

/// Largest record / block we accept (and the largest the buffer grows to, plus headers).
pub const MAX_RECORD: usize = 256 << 20;
/// Initial read buffer size (see the module doc for the measurement behind it).
pub const DEFAULT_BUFFER: usize = 256 << 10;

/// One captured packet, borrowing the reader's buffer until the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPacket<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: &'a [u8],
    /// Length on the wire (may be larger than `data.len()` when the snaplen cut it).
    pub orig_len: u32,
    /// pcapng interface id within the current section (0 for pcap).
    pub interface: u32,
}

/// Why a capture file cannot be read (further).
#[derive(Debug)]
pub enum CaptureError {
    Io {
        path: PathBuf,
        err: io::Error,
    },
    /// Not a pcap/pcapng file; `magic` is the first (up to) 4 bytes, `what` says what it looks like.
    NotACapture {
        path: PathBuf,
        magic: [u8; 4],
        what: String,
    },
    /// The file is damaged at byte `offset`; what was read before is valid.
    Damaged {
        path: PathBuf,
        offset: u64,
        what: String,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io { path, err } => write!(f, "{}: {err}", path.display()),
            CaptureError::NotACapture { path, what, .. } => {
                write!(f, "{}: not a pcap or pcapng file: {what}", path.display())
            }
            CaptureError::Damaged { path, offset, what } => {
                write!(f, "{}: damaged at byte {offset}: {what}", path.display())
            }
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CaptureError::Io { err, .. } => Some(err),
            _ => None,
        }
    }
}

/// Counters (monotonic).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Packets returned.
    pub packets: u64,
    /// Captured bytes of the packets returned.
    pub bytes: u64,
    /// Packets whose caplen < orig_len (snaplen cut them).
    pub truncated_packets: u64,
    /// Packets whose caplen > orig_len (tolerated).
    pub caplen_exceeds_origlen: u64,
    /// Records skipped because their content was inconsistent but the framing was intact.
    pub bad_records: u64,
    /// pcapng blocks skipped (NRB, ISB, DSB, custom, unknown).
    pub unsupported_blocks: u64,
    /// pcapng sections (Section Header Blocks) seen.
    pub sections: u64,
    /// Bytes read from the file.
    pub bytes_read: u64,
}

/// Timestamp unit conversion of one pcapng interface.
#[derive(Clone, Copy, Debug)]
enum TsUnit {
    /// ns = units * k
    Mul(u64),
    /// ns = units / k
    Div(u64),
    /// ns = units * 1e9 / 2^k
    Pow2(u32),
}

impl TsUnit {
    fn from_tsresol(v: u8) -> TsUnit {
        if v & 0x80 == 0 {
            let e = u32::from(v);
            if e <= 9 {
                TsUnit::Mul(10u64.pow(9 - e))
            } else if e <= 9 + 19 {
                TsUnit::Div(10u64.pow(e - 9))
            } else {
                TsUnit::Div(u64::MAX)
            }
        } else {
            TsUnit::Pow2(u32::from(v & 0x7F))
        }
    }

    fn to_ns(self, units: u64) -> i64 {
        let ns: u128 = match self {
            TsUnit::Mul(k) => u128::from(units) * u128::from(k),
            TsUnit::Div(k) => u128::from(units / k),
            TsUnit::Pow2(k) => {
                let x = u128::from(units) * 1_000_000_000u128;
                if k >= 128 {
                    0
                } else {
                    x >> k
                }
            }
        };
        i64::try_from(ns).unwrap_or(i64::MAX)
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    unit: TsUnit,
    offset_ns: i64,
}

#[derive(Debug)]
enum Format {
    Pcap {
        swap: bool,
        nanos: bool,
        link: LinkType,
    },
    Pcapng {
        swap: bool,
    },
}

/// How to read the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// `read`, and a memory map from [`MMAP_DECIDE_AT`] on for regular files of at least
    /// [`MMAP_MIN_LEN`] whose records are big (see [`MMAP_MIN_MEAN_RECORD`]).
    #[default]
    Auto,
    /// Always `read` into a buffer (safe when another process may truncate the file).
    Read,
}

/// Files at least this large may be mapped in [`ReadMode::Auto`] (64 MiB).
pub const MMAP_MIN_LEN: u64 = 64 << 20;
/// ... when its records (or pcapng blocks) up to [`MMAP_DECIDE_AT`] average at least this many bytes
/// (16 KiB): then the reassembler's overlap ring copies a small part of each packet (at most 4 KiB of a
/// segment) and most bytes are skipped unread, which a map serves best. Measured on both sides of it:
/// see the module doc.
pub const MMAP_MIN_MEAN_RECORD: u64 = 16 << 10;
/// Where a file that may be mapped is measured: after its first 16 MiB, read (the handshakes and
/// metadata at a capture's start say little about the packets that follow).
pub const MMAP_DECIDE_AT: u64 = 16 << 20;
/// Mapped pages are populated this far ahead of the cursor, in one call each (8 MiB).
pub const MMAP_POPULATE_STEP: usize = 8 << 20;
/// Mapped pages further than this behind the cursor are released (16 MiB).
pub const MMAP_RELEASE_STEP: usize = 16 << 20;

/// The bytes the reader parses: a heap buffer refilled by `read`, or the whole file mapped.
#[derive(Debug)]
enum Buf {
    Heap(Vec<u8>),
    Map(memmap2::Mmap),
}

impl std::ops::Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Buf::Heap(v) => v,
            Buf::Map(m) => m,
        }
    }
}

/// Reader of one pcap or pcapng file.
#[derive(Debug)]
pub struct PcapFile {
    path: PathBuf,
    file: File,
    buf: Buf,
    /// With a map: offset up to which pages were released.
    released: usize,
    /// With a map: offset up to which pages were populated ahead of the cursor.
    populated: usize,
    /// Still read, but may be mapped when [`MMAP_DECIDE_AT`] is reached ([`ReadMode::Auto`]).
    may_map: bool,
    /// Offset in `buf` of the next unread byte.
    start: usize,
    /// End of valid data in `buf`.
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    len: Option<u64>,
    format: Format,
    interfaces: Vec<Interface>,
    last_ts: Timestamp,
    done: bool,
    stats: FileStats,
}

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;

#[inline]
fn rd32(b: &[u8], at: usize, swap: bool) -> u32 {
    let v = match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    };
    if swap {
        v.swap_bytes()
    } else {
        v
    }
}

#[inline]
fn rd16(b: &[u8], at: usize, swap: bool) -> u16 {
    let v = match b.get(at..at + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    };
    if swap {
        v.swap_bytes()
    } else {
        v
    }
}

fn describe_magic(head: &[u8]) -> String {
    let starts = |m: &[u8]| head.starts_with(m);
    if head.is_empty() {
        "the file is empty (0 bytes)".into()
    } else if starts(&[0x1f, 0x8b]) {
        "looks like a gzip file: gunzip it first".into()
    } else if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "looks like a zstd file: unzstd it first".into()
    } else if starts(b"BZh") {
        "looks like a bzip2 file: bunzip2 it first".into()
    } else if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "looks like an xz file: unxz it first".into()
    } else if starts(&[0x04, 0x22, 0x4d, 0x18]) {
        "looks like an lz4 file: unlz4 it first".into()
    } else if starts(b"PK\x03\x04") {
        "looks like a zip archive: unzip it first".into()
    } else if head.len() >= 262 && head.get(257..262) == Some(b"ustar") {
        "looks like a tar archive: extract it first".into()
    } else if starts(&[0xa1, 0xb2, 0xcd, 0x34]) || starts(&[0x34, 0xcd, 0xb2, 0xa1]) {
        "modified (Kuznetzov) pcap format is not supported: convert it with editcap".into()
    } else if head.len() < 4 {
        format!(
            "only {} bytes long: pcapng/pcap magic not found",
            head.len()
        )
    } else if head
        .iter()
        .take(64)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "looks like text: pcapng/pcap magic not found".into()
    } else {
        "pcapng/pcap magic not found".into()
    }
}

impl PcapFile {
    /// Opens a capture file and reads its header.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        Self::open_with(path, ReadMode::Auto)
    }

    /// Opens a capture file with the given read mode and reads its header.
    pub fn open_with(path: &Path, mode: ReadMode) -> Result<Self, CaptureError> {
        let io_err = |err| CaptureError::Io {
            path: path.to_path_buf(),
            err,
        };
        let file = File::open(path).map_err(io_err)?;
        let len = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        let may_map = mode == ReadMode::Auto
            && len.is_some_and(|l| l >= MMAP_MIN_LEN && usize::try_from(l).is_ok());
        let mut r = PcapFile {
            path: path.to_path_buf(),
            file,
            released: 0,
            populated: 0,
            buf: Buf::Heap(vec![0; DEFAULT_BUFFER]),
            may_map,
            start: 0,
            end: 0,
            base: 0,
            len,
            format: Format::Pcap {
                swap: false,
                nanos: false,
                link: LinkType::Ethernet,
            },
            interfaces: Vec::new(),
            last_ts: Timestamp(0),
            done: false,
            stats: FileStats::default(),
        };
        r.fill(512.min(DEFAULT_BUFFER)).map_err(io_err)?;
        let head = r.buf.get(..r.end).unwrap_or(&[]);
        let magic_le = rd32(head, 0, false);
        let mut magic4 = [0u8; 4];
        for (d, s) in magic4.iter_mut().zip(head.iter()) {
            *d = *s;
        }
        let (swap, nanos) = match (head.len() >= 4).then_some(magic_le) {
            Some(0xa1b2_c3d4) => (false, false),
            Some(0xd4c3_b2a1) => (true, false),
            Some(0xa1b2_3c4d) => (false, true),
            Some(0x4d3c_b2a1) => (true, true),
            Some(PCAPNG_SHB) => {
                r.format = Format::Pcapng { swap: false };
                // The first block must be a complete SHB; check its framing now so that a
                // wrong file fails at open time.
                if r.end < 12 {
                    return Err(
                        r.damaged(0, "file ends inside the first Section Header Block".into())
                    );
                }
                let bom = rd32(head, 8, false);
                if bom != PCAPNG_BOM && bom.swap_bytes() != PCAPNG_BOM {
                    return Err(CaptureError::NotACapture {
                        path: path.to_path_buf(),
                        magic: magic4,
                        what: "pcapng section header without a valid byte-order magic".into(),
                    });
                }
                return Ok(r);
            }
            _ => {
                return Err(CaptureError::NotACapture {
                    path: path.to_path_buf(),
                    magic: magic4,
                    what: describe_magic(head),
                })
            }
        };
        if r.end < 24 {
            return Err(r.damaged(0, format!("pcap file header truncated at byte {}", r.end)));
        }
        let network = rd32(head, 20, swap);
        r.format = Format::Pcap {
            swap,
            nanos,
            link: LinkType::from_dlt(network),
        };
        r.start = 24;
        Ok(r)
    }

    pub fn stats(&self) -> &FileStats {
        &self.stats
    }
    /// Whether the file is read through a memory map (see [`ReadMode::Auto`]).
    pub fn is_mapped(&self) -> bool {
        matches!(self.buf, Buf::Map(_))
    }
    /// Byte offset in the file of the next unread record.
    pub fn position(&self) -> u64 {
        self.base + self.start as u64
    }
    /// File size when known (regular files).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Option<u64> {
        self.len
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn damaged(&mut self, offset: u64, what: String) -> CaptureError {
        self.done = true;
        CaptureError::Damaged {
            path: self.path.clone(),
            offset,
            what,
        }
    }

    /// Makes at least `need` bytes available at `buf[start..]`. Ok(false) if the file ends first.
    #[inline]
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.end - self.start >= need {
            return Ok(true);
        }
        self.fill_slow(need)
    }

    #[cold]
    fn fill_slow(&mut self, need: usize) -> io::Result<bool> {
        if self.may_map && self.position() >= MMAP_DECIDE_AT {
            self.may_map = false;
            let mean = self.position() / self.stats.packets.max(1);
            if mean >= MMAP_MIN_MEAN_RECORD && self.switch_to_map() {
                return Ok(self.end - self.start >= need);
            }
        }
        let buf = match &mut self.buf {
            // The whole file is there: not enough bytes means the file ends. Release what is far behind.
            Buf::Map(_) => return Ok(false),
            Buf::Heap(v) => v,
        };
        if self.start + need > buf.len() {
            buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
            if need > buf.len() {
                let new_len = need
                    .next_power_of_two()
                    .clamp(DEFAULT_BUFFER, MAX_RECORD + 64);
                buf.resize(new_len.max(need), 0);
            }
        }
        while self.end - self.start < need {
            let dst = match buf.get_mut(self.end..) {
                Some(d) if !d.is_empty() => d,
                _ => return Ok(false),
            };
            match self.file.read(dst) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end += n;
                    self.stats.bytes_read += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn fill_or_err(&mut self, need: usize, what: &str) -> Result<bool, CaptureError> {
        match self.fill(need) {
            Ok(true) => Ok(true),
            Ok(false) => {
                if self.end == self.start {
                    // Clean end of file at a record boundary.
                    self.done = true;
                    Ok(false)
                } else {
                    let at = self.position();
                    let file_end = self.base + self.end as u64;
                    Err(self.damaged(
                        at,
                        format!("{what} at byte {at} needs {need} bytes, file truncated at byte {file_end}"),
                    ))
                }
            }
            Err(err) => {
                self.done = true;
                Err(CaptureError::Io {
                    path: self.path.clone(),
                    err,
                })
            }
        }
    }

    /// Maps the whole file and goes on reading from the current position (no `RawPacket` is alive: they
    /// borrow `self`). False, and nothing changed, when the file cannot be mapped.
    #[cold]
    fn switch_to_map(&mut self) -> bool {
        let Ok(pos) = usize::try_from(self.position()) else {
            return false;
        };
        // SAFETY: the map is read-only and private to this reader. The one hazard is another process
        // truncating the file while it is mapped (SIGBUS); the module doc says so and ReadMode::Read
        // avoids it.
        let Ok(m) = (unsafe { memmap2::Mmap::map(&self.file) }) else {
            return false;
        };
        if m.len() < pos {
            return false;
        }
        let _ = m.advise(memmap2::Advice::Sequential);
        self.buf = Buf::Map(m);
        self.base = 0;
        self.start = pos;
        self.end = self.buf.len();
        self.released = pos & !0xfff;
        self.populated = pos & !0xfff;
        self.stats.bytes_read = self.end as u64;
        true
    }

    /// With a map: releases the pages more than 1 MiB behind the cursor, every [`MMAP_RELEASE_STEP`].
    #[cold]
    fn release_behind(&mut self) {
        if let Buf::Map(m) = &self.buf {
            let upto = self.start.saturating_sub(1 << 20) & !0xfff;
            if upto > self.released {
                // SAFETY: the range lies wholly before `start`: no slice we handed out that may still be
                // alive points there (a RawPacket borrows `self` and ends before the next call). The
                // mapping is private and read-only, so a later access would simply re-read the file.
                let _ = unsafe {
                    m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        self.released,
                        upto - self.released,
                    )
                };
                self.released = upto;
            }
        }
    }

    /// With a map: maps the next [`MMAP_POPULATE_STEP`] bytes in one call (`MADV_POPULATE_READ`,
    /// Linux 5.14+), so reading them takes no page fault per 4 KiB page: faults were a fifth of a
    /// replay's time. Older kernels refuse the advice; the pages then fault in as before.
    fn populate_ahead(&mut self) {
        let Buf::Map(m) = &self.buf else {
            self.populated = usize::MAX;
            return;
        };
        let from = self.populated.max(self.start & !0xfff);
        if from >= m.len() {
            self.populated = usize::MAX;
            return;
        }
        let len = MMAP_POPULATE_STEP.min(m.len() - from);
        if m.advise_range(memmap2::Advice::PopulateRead, from, len)
            .is_err()
        {
            self.populated = usize::MAX; // not supported here: stop asking
            return;
        }
        self.populated = from + len;
    }

    /// Next packet, `Ok(None)` at a clean end of file (and after any error).
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        if self.start + MMAP_POPULATE_STEP / 2 > self.populated {
            self.populate_ahead();
        }
        if self.start > self.released + MMAP_RELEASE_STEP + (1 << 20)
            && matches!(self.buf, Buf::Map(_))
        {
            self.release_behind();
        }
        match self.format {
            Format::Pcap { swap, nanos, link } => self.next_pcap(swap, nanos, link),
            Format::Pcapng { .. } => self.next_pcapng(),
        }
    }

    #[inline]
    fn next_pcap(
        &mut self,
        swap: bool,
        nanos: bool,
        link: LinkType,
    ) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if !self.fill_or_err(16, "record header")? {
            return Ok(None);
        }
        let h = self.buf.get(self.start..self.start + 16).unwrap_or(&[]);
        let sec = rd32(h, 0, swap);
        let frac = rd32(h, 4, swap);
        let caplen = rd32(h, 8, swap);
        let orig_len = rd32(h, 12, swap);
        if caplen as usize > MAX_RECORD {
            let at = self.position();
            return Err(self.damaged(
                at,
                format!("record header claims caplen {caplen} (> 256 MiB): not a record boundary"),
            ));
        }
        let total = 16 + caplen as usize;
        if let Some(file_len) = self.len {
            let at = self.position();
            if at + total as u64 > file_len {
                return Err(self.damaged(
                    at,
                    format!(
                        "record at byte {at} claims caplen {caplen} but the file ends at byte {file_len} (truncated at byte {file_len})"
                    ),
                ));
            }
        }
        if !self.fill_or_err(total, "record")? {
            return Ok(None);
        }
        let ns_frac = if nanos {
            i64::from(frac)
        } else {
            i64::from(frac) * 1000
        };
        let ts = Timestamp(i64::from(sec) * Timestamp::NANOS_PER_SEC + ns_frac);
        self.account(caplen, orig_len);
        self.last_ts = ts;
        let s = self.start + 16;
        self.start += total;
        let data = self.buf.get(s..s + caplen as usize).unwrap_or(&[]);
        Ok(Some(RawPacket {
            ts,
            link,
            data,
            orig_len,
            interface: 0,
        }))
    }

    #[inline]
    fn account(&mut self, caplen: u32, orig_len: u32) {
        self.stats.packets += 1;
        self.stats.bytes += u64::from(caplen);
        if caplen < orig_len {
            self.stats.truncated_packets += 1;
        } else if caplen > orig_len {
            self.stats.caplen_exceeds_origlen += 1;
        }
    }

    fn next_pcapng(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        loop {
            if !self.fill_or_err(12, "block header")? {
                return Ok(None);
            }
            let at = self.position();
            let swap = match self.format {
                Format::Pcapng { swap } => swap,
                Format::Pcap { .. } => false,
            };
            let h = self.buf.get(self.start..self.start + 12).unwrap_or(&[]);
            let raw_type = rd32(h, 0, false);
            let mut swap = swap;
            if raw_type == PCAPNG_SHB {
                // New section: its byte order magic decides the byte order from here on.
                let bom = rd32(h, 8, false);
                if bom == PCAPNG_BOM {
                    swap = false;
                } else if bom.swap_bytes() == PCAPNG_BOM {
                    swap = true;
                } else {
                    return Err(self.damaged(
                        at,
                        "Section Header Block with a bad byte-order magic".into(),
                    ));
                }
                self.format = Format::Pcapng { swap };
            }
            let btype = rd32(h, 0, swap);
            let blen = rd32(h, 4, swap) as usize;
            if blen < 12 || !blen.is_multiple_of(4) || blen > MAX_RECORD {
                return Err(self.damaged(
                    at,
                    format!("pcapng block type {btype:#x} has an impossible length {blen}"),
                ));
            }
            if let Some(file_len) = self.len {
                if at + blen as u64 > file_len {
                    return Err(self.damaged(
                        at,
                        format!(
                            "pcapng block type {btype:#x} of {blen} bytes at byte {at} does not fit: file truncated at byte {file_len}"
                        ),
                    ));
                }
            }
            if !self.fill_or_err(blen, "pcapng block")? {
                return Ok(None);
            }
            let s = self.start;
            let block = self.buf.get(s..s + blen).unwrap_or(&[]);
            if rd32(block, blen - 4, swap) as usize != blen {
                return Err(self.damaged(
                    at,
                    format!("pcapng block type {btype:#x} at byte {at}: trailing length differs from {blen}"),
                ));
            }
            // Block body without the 8-byte header and 4-byte trailer.
            let body_start = s + 8;
            let body_len = blen - 12;
            self.start += blen;
            match btype {
                PCAPNG_SHB => {
                    self.stats.sections += 1;
                    self.interfaces.clear();
                }
                1 => {
                    let body = self
                        .buf
                        .get(body_start..body_start + body_len)
                        .unwrap_or(&[]);
                    if body.len() < 8 {
                        self.stats.bad_records += 1;
                        // Keep interface numbering aligned.
                        self.interfaces.push(Interface {
                            link: LinkType::Unsupported(u32::MAX),
                            unit: TsUnit::Mul(1000),
                            offset_ns: 0,
                        });
                        continue;
                    }
                    let link = LinkType::from_dlt(u32::from(rd16(body, 0, swap)));
                    let mut unit = TsUnit::Mul(1000);
                    let mut offset_ns = 0i64;
                    // Options: code(2) len(2) value padded to 4.
                    let mut o = 8usize;
                    while o + 4 <= body.len() {
                        let code = rd16(body, o, swap);
                        let olen = rd16(body, o + 2, swap) as usize;
                        let v = o + 4;
                        if code == 0 || v + olen > body.len() {
                            break;
                        }
                        match (code, olen) {
                            (9, 1) => {
                                unit = TsUnit::from_tsresol(body.get(v).copied().unwrap_or(6))
                            }
                            (14, 8) => {
                                let lo = rd32(body, v, swap);
                                let hi = rd32(body, v + 4, swap);
                                let secs = if swap {
                                    // 64-bit value in the section's byte order
                                    ((u64::from(lo) << 32) | u64::from(hi)) as i64
                                } else {
                                    ((u64::from(hi) << 32) | u64::from(lo)) as i64
                                };
                                offset_ns = secs.saturating_mul(Timestamp::NANOS_PER_SEC);
                            }
                            _ => {}
                        }
                        o = v + ((olen + 3) & !3);
                    }
                    self.interfaces.push(Interface {
                        link,
                        unit,
                        offset_ns,
                    });
                }
                6 | 2 => {
                    // EPB: if_id(4) ts_hi(4) ts_lo(4) caplen(4) origlen(4) data
                    // PB:  if_id(2) drops(2) ts_hi(4) ts_lo(4) caplen(4) len(4) data
                    let body = self
                        .buf
                        .get(body_start..body_start + body_len)
                        .unwrap_or(&[]);
                    if body.len() < 20 {
                        self.stats.bad_records += 1;
                        continue;
                    }
                    let if_id = if btype == 6 {
                        rd32(body, 0, swap)
                    } else {
                        u32::from(rd16(body, 0, swap))
                    };
                    let ts_hi = rd32(body, 4, swap);
                    let ts_lo = rd32(body, 8, swap);
                    let caplen = rd32(body, 12, swap);
                    let orig_len = rd32(body, 16, swap);
                    let Some(iface) = self.interfaces.get(if_id as usize).copied() else {
                        self.stats.bad_records += 1;
                        continue;
                    };
                    if caplen as usize > body.len() - 20 {
                        self.stats.bad_records += 1;
                        continue;
                    }
                    let units = (u64::from(ts_hi) << 32) | u64::from(ts_lo);
                    let ts = Timestamp(iface.unit.to_ns(units).saturating_add(iface.offset_ns));
                    self.last_ts = ts;
                    self.account(caplen, orig_len);
                    let d = body_start + 20;
                    let data = self.buf.get(d..d + caplen as usize).unwrap_or(&[]);
                    return Ok(Some(RawPacket {
                        ts,
                        link: iface.link,
                        data,
                        orig_len,
                        interface: if_id,
                    }));
                }
                3 => {
                    // SPB: origlen(4) data; caplen is what the block holds (at most origlen).
                    let body = self
                        .buf
                        .get(body_start..body_start + body_len)
                        .unwrap_or(&[]);
                    if body.len() < 4 {
                        self.stats.bad_records += 1;
                        continue;
                    }
                    let Some(iface) = self.interfaces.first().copied() else {
                        self.stats.bad_records += 1;
                        continue;
                    };
                    let orig_len = rd32(body, 0, swap);
                    let caplen = (body.len() - 4).min(orig_len as usize) as u32;
                    let ts = self.last_ts;
                    self.account(caplen, orig_len);
                    let d = body_start + 4;
                    let data = self.buf.get(d..d + caplen as usize).unwrap_or(&[]);
                    return Ok(Some(RawPacket {
                        ts,
                        link: iface.link,
                        data,
                        orig_len,
                        interface: 0,
                    }));
                }
                _ => {
                    self.stats.unsupported_blocks += 1;
                }
            }
        }
    }
}
