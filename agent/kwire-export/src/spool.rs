//! The on-disk spool of alert batches (encoded `ExportLogsServiceRequest`s) that could not be delivered:
//! one file per batch, re-sent oldest first, kept across restarts, bounded in bytes.
//!
//! Layout: `<dir>/<seq:020>.logs.pb`, each file a 28-byte header (`KWSPOOL1`, record count u32 LE,
//! payload length u64 LE, FNV-1a 64 of the payload u64 LE) then the payload. A batch is written to
//! `<name>.tmp`, fsynced, renamed, and the directory fsynced, so a crash leaves either the whole batch or
//! a stale `.tmp` (removed by the next [`Spool::open`]).
//!
//! Easy to get wrong:
//! - The bound counts whole files (header included), and it is enforced when pushing: when a new batch
//!   would not fit, the OLDEST batches are deleted (we keep the newest alerts), and [`PushOutcome`] says
//!   how many batches and records went, so the caller counts and logs the loss. A batch larger than the
//!   whole bound is refused, never stored. A spool left larger by an earlier run with a bigger bound
//!   shrinks at the next push.
//! - A damaged file (bad header, wrong length, checksum mismatch, unreadable) is renamed to `.bad`,
//!   dropped from the index and counted, so it is never re-sent forever; at most [`MAX_BAD_FILES`] `.bad`
//!   files are kept (oldest deleted), so damage cannot fill the disk either. [`Spool::read`] therefore
//!   takes `&mut self`.
//! - At open only headers are read (a full spool can be hundreds of MB); checksums are verified by
//!   `read`.
//! - Files we do not recognise are left alone: the directory may be shared or mistyped.
//! - IO errors carry the path; nothing here panics on a damaged directory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"KWSPOOL1";
/// Size of the header in front of each payload.
pub const HEADER_LEN: u64 = 28;
const SUFFIX: &str = ".logs.pb";
const TMP_SUFFIX: &str = ".logs.pb.tmp";
const BAD_SUFFIX: &str = ".logs.pb.bad";
/// How many `.bad` files are kept for inspection.
pub const MAX_BAD_FILES: usize = 8;

/// One spooled batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number: increasing in push order, also across restarts.
    pub id: u64,
    /// Log records in the batch (as given to `push`).
    pub records: u32,
    /// Size of the file on disk (header + payload).
    pub bytes: u64,
}

/// What [`Spool::push`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Id of the stored batch; `None` when refused or when writing failed.
    pub stored: Option<u64>,
    /// Oldest batches deleted to make room.
    pub evicted_batches: u32,
    /// Records in those batches.
    pub evicted_records: u64,
    /// The batch alone is larger than the spool's bound: not stored.
    pub refused_too_big: bool,
    /// Writing (or evicting) failed: what and where. When `stored` is `None` the batch is lost.
    pub error: Option<String>,
}

/// The spool. See the module doc.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    index: BTreeMap<u64, Entry>,
    next_seq: u64,
    bytes: u64,
    records: u64,
    bad: u64,
    refused: u64,
}

fn with_path(e: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct Header {
    records: u32,
    len: u64,
    checksum: u64,
}

fn parse_header(h: &[u8]) -> Option<Header> {
    if h.len() < HEADER_LEN as usize || &h[..8] != MAGIC {
        return None;
    }
    Some(Header {
        records: u32::from_le_bytes(h[8..12].try_into().ok()?),
        len: u64::from_le_bytes(h[12..20].try_into().ok()?),
        checksum: u64::from_le_bytes(h[20..28].try_into().ok()?),
    })
}

/// `00000000000000000042.logs.pb` → 42.
fn seq_of(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Spool {
    /// Opens (creating, mode 0700) the spool directory, indexes the batches an earlier run left, and
    /// removes stale temporary files. Damaged batches are moved aside (counted in [`Spool::bad`]).
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| with_path(e, dir, "cannot create the spool directory"))?;
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            index: BTreeMap::new(),
            next_seq: 1,
            bytes: 0,
            records: 0,
            bad: 0,
            refused: 0,
        };
        let mut damaged = Vec::new();
        let listing =
            fs::read_dir(dir).map_err(|e| with_path(e, dir, "cannot read the spool directory"))?;
        for item in listing {
            let item = item.map_err(|e| with_path(e, dir, "cannot read the spool directory"))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = item.path();
            if let Some(seq) = seq_of(name, TMP_SUFFIX) {
                // A batch a crash interrupted before its rename: never complete.
                let _ = fs::remove_file(&path);
                spool.next_seq = spool.next_seq.max(seq.saturating_add(1));
            } else if let Some(seq) = seq_of(name, BAD_SUFFIX) {
                spool.next_seq = spool.next_seq.max(seq.saturating_add(1));
            } else if let Some(seq) = seq_of(name, SUFFIX) {
                spool.next_seq = spool.next_seq.max(seq.saturating_add(1));
                match read_entry_header(&path, seq) {
                    Some(entry) => {
                        spool.bytes += entry.bytes;
                        spool.records += u64::from(entry.records);
                        spool.index.insert(seq, entry);
                    }
                    None => damaged.push(seq),
                }
            }
        }
        for seq in damaged {
            spool.move_aside(seq);
        }
        spool.trim_bad_files();
        Ok(spool)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bound in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn path(&self, seq: u64, suffix: &str) -> PathBuf {
        self.dir.join(format!("{seq:020}{suffix}"))
    }

    /// Stores one batch of `records` log records, evicting the oldest batches if it would not fit.
    pub fn push(&mut self, payload: &[u8], records: u32) -> PushOutcome {
        let mut out = PushOutcome::default();
        let size = HEADER_LEN + payload.len() as u64;
        if size > self.max_bytes {
            self.refused += 1;
            out.refused_too_big = true;
            return out;
        }
        while self.bytes + size > self.max_bytes {
            let Some((&id, &entry)) = self.index.iter().next() else {
                break;
            };
            if let Err(e) = self.forget(id) {
                out.error = Some(e.to_string());
            }
            out.evicted_batches += 1;
            out.evicted_records += u64::from(entry.records);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        match self.write_batch(seq, payload, records) {
            Ok(()) => {
                let entry = Entry {
                    id: seq,
                    records,
                    bytes: size,
                };
                self.bytes += size;
                self.records += u64::from(records);
                self.index.insert(seq, entry);
                out.stored = Some(seq);
            }
            Err(e) => out.error = Some(e.to_string()),
        }
        out
    }

    fn write_batch(&self, seq: u64, payload: &[u8], records: u32) -> io::Result<()> {
        let tmp = self.path(seq, TMP_SUFFIX);
        let fin = self.path(seq, SUFFIX);
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| with_path(e, &tmp, "cannot create"))?;
            let mut header = Vec::with_capacity(HEADER_LEN as usize);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&records.to_le_bytes());
            header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            header.extend_from_slice(&fnv1a(payload).to_le_bytes());
            f.write_all(&header)
                .and_then(|()| f.write_all(payload))
                .and_then(|()| f.sync_all())
                .map_err(|e| with_path(e, &tmp, "cannot write"))?;
            drop(f);
            fs::rename(&tmp, &fin).map_err(|e| with_path(e, &fin, "cannot rename into place"))?;
            // The rename is durable only once the directory is synced.
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// The oldest batch, the next to re-send.
    pub fn oldest(&self) -> Option<Entry> {
        self.index.values().next().copied()
    }

    /// The payload of a batch. A damaged batch is moved aside and dropped from the index (the error's
    /// kind is `InvalidData`): call [`Spool::oldest`] again and go on.
    pub fn read(&mut self, id: u64) -> io::Result<Vec<u8>> {
        let path = self.path(id, SUFFIX);
        if !self.index.contains_key(&id) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such batch in the spool", path.display()),
            ));
        }
        let mut data = Vec::new();
        let read = File::open(&path).and_then(|mut f| f.read_to_end(&mut data));
        if let Err(e) = read {
            if e.kind() == io::ErrorKind::NotFound {
                // Someone deleted it under us: forget it.
                self.drop_from_index(id);
                return Err(with_path(e, &path, "spooled batch vanished"));
            }
            self.move_aside(id);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot read {} ({e}): moved aside as .bad", path.display()),
            ));
        }
        let ok = parse_header(&data).filter(|h| {
            h.len == data.len() as u64 - HEADER_LEN
                && fnv1a(&data[HEADER_LEN as usize..]) == h.checksum
        });
        if ok.is_none() {
            self.move_aside(id);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is damaged (header, length or checksum): moved aside as .bad",
                    path.display()
                ),
            ));
        }
        data.drain(..HEADER_LEN as usize);
        Ok(data)
    }

    /// Deletes a batch (delivered, or rejected for good). Unknown ids and vanished files are fine.
    pub fn remove(&mut self, id: u64) -> io::Result<()> {
        if !self.index.contains_key(&id) {
            return Ok(());
        }
        self.forget(id)
    }

    /// Drops from the index and deletes the file. The index is updated even when deleting fails, so
    /// the batch is not re-sent again in this run.
    fn forget(&mut self, id: u64) -> io::Result<()> {
        self.drop_from_index(id);
        let path = self.path(id, SUFFIX);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(with_path(e, &path, "cannot delete spooled batch")),
        }
    }

    fn drop_from_index(&mut self, id: u64) {
        if let Some(e) = self.index.remove(&id) {
            self.bytes -= e.bytes;
            self.records -= u64::from(e.records);
        }
    }

    fn move_aside(&mut self, id: u64) {
        self.drop_from_index(id);
        self.bad += 1;
        let from = self.path(id, SUFFIX);
        if fs::rename(&from, self.path(id, BAD_SUFFIX)).is_err() {
            // Cannot rename (permissions?): try deleting; if that fails too it stays on disk but out of
            // the index, and the next open tries again.
            let _ = fs::remove_file(&from);
        }
        self.trim_bad_files();
    }

    fn trim_bad_files(&self) {
        let Ok(listing) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut bad: Vec<u64> = listing
            .filter_map(|i| i.ok())
            .filter_map(|i| seq_of(i.file_name().to_str()?, BAD_SUFFIX))
            .collect();
        if bad.len() > MAX_BAD_FILES {
            bad.sort_unstable();
            for seq in &bad[..bad.len() - MAX_BAD_FILES] {
                let _ = fs::remove_file(self.path(*seq, BAD_SUFFIX));
            }
        }
    }

    /// Records in the spool.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes on disk (headers included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Batches in the spool.
    pub fn batches(&self) -> usize {
        self.index.len()
    }

    /// Damaged batches moved aside since open (including those found by open).
    pub fn bad(&self) -> u64 {
        self.bad
    }

    /// Batches refused since open because they alone exceed the bound.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

/// Reads and checks a batch's header against the file's size.
fn read_entry_header(path: &Path, seq: u64) -> Option<Entry> {
    let mut f = File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    let mut h = [0u8; HEADER_LEN as usize];
    f.read_exact(&mut h).ok()?;
    let header = parse_header(&h)?;
    (header.len.checked_add(HEADER_LEN)? == size).then_some(Entry {
        id: seq,
        records: header.records,
        bytes: size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "kwire-spool-test-{}-{tag}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn push_oldest_read_remove_in_order() {
        let t = TempDir::new("order");
        let mut s = Spool::open(&t.0.join("nested/spool"), 1 << 20).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(s.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(s.oldest(), None);
        let a = s.push(b"first", 3);
        let b = s.push(b"second", 5);
        assert_eq!(a.stored, Some(1));
        assert_eq!(b.stored, Some(2));
        assert_eq!(
            (a.evicted_batches, a.refused_too_big, a.error),
            (0, false, None)
        );
        assert_eq!(s.batches(), 2);
        assert_eq!(s.records(), 8);
        assert_eq!(s.bytes(), 2 * HEADER_LEN + 11);
        assert_eq!(
            s.oldest(),
            Some(Entry {
                id: 1,
                records: 3,
                bytes: HEADER_LEN + 5
            })
        );
        assert_eq!(s.read(1).unwrap(), b"first");
        s.remove(1).unwrap();
        s.remove(1).unwrap(); // twice is fine
        assert_eq!(s.oldest().unwrap().id, 2);
        assert_eq!(s.read(2).unwrap(), b"second");
        s.remove(2).unwrap();
        assert_eq!((s.batches(), s.records(), s.bytes()), (0, 0, 0));
        assert!(names(s.dir()).is_empty());
        assert_eq!(s.read(2).unwrap_err().kind(), io::ErrorKind::NotFound);
        let file = s.push(b"x", 1);
        assert_eq!(file.stored, Some(3));
        assert_eq!(names(s.dir()), vec!["00000000000000000003.logs.pb"]);
    }

    #[test]
    fn survives_reopen_and_cleans_temp_files() {
        let t = TempDir::new("reopen");
        {
            let mut s = Spool::open(&t.0, 1 << 20).unwrap();
            s.push(b"one", 1);
            s.push(b"two", 2);
            s.push(b"three", 3);
            s.remove(1).unwrap();
        }
        fs::write(t.0.join("00000000000000000009.logs.pb.tmp"), b"half").unwrap();
        fs::write(t.0.join("README"), b"not ours").unwrap();
        let mut s = Spool::open(&t.0, 1 << 20).unwrap();
        assert_eq!(s.batches(), 2);
        assert_eq!(s.records(), 5);
        assert_eq!(s.bytes(), 2 * HEADER_LEN + 8);
        assert_eq!(s.oldest().unwrap().id, 2);
        assert_eq!(s.read(2).unwrap(), b"two");
        assert_eq!(s.read(3).unwrap(), b"three");
        // The temp file is gone, foreign files are untouched, and new ids continue past the temp's.
        assert!(!t.0.join("00000000000000000009.logs.pb.tmp").exists());
        assert!(t.0.join("README").exists());
        assert_eq!(s.push(b"four", 4).stored, Some(10));
    }

    #[test]
    fn evicts_oldest_when_full_and_refuses_oversized() {
        let t = TempDir::new("evict");
        let batch = HEADER_LEN + 100;
        let mut s = Spool::open(&t.0, 3 * batch).unwrap();
        for i in 0..3u8 {
            let o = s.push(&[i; 100], 10 + u32::from(i));
            assert_eq!(o.evicted_batches, 0);
        }
        assert_eq!(s.bytes(), 3 * batch);
        let o = s.push(&[9; 100], 7);
        assert_eq!(o.stored, Some(4));
        assert_eq!((o.evicted_batches, o.evicted_records), (1, 10));
        assert_eq!(s.oldest().unwrap().id, 2);
        // A bigger batch evicts as many as needed.
        let o = s.push(&[8; 150], 1);
        assert_eq!((o.evicted_batches, o.evicted_records), (2, 11 + 12));
        assert_eq!(s.batches(), 2);
        assert!(s.bytes() <= s.max_bytes());
        assert_eq!(s.records(), 8);
        // Alone too big: refused, nothing evicted.
        let o = s.push(&[0; 400], 99);
        assert!(o.refused_too_big);
        assert_eq!((o.stored, o.evicted_batches), (None, 0));
        assert_eq!(s.refused(), 1);
        assert_eq!(s.batches(), 2);
        // A smaller bound at reopen trims at the next push.
        drop(s);
        let mut s = Spool::open(&t.0, batch + HEADER_LEN + 10).unwrap();
        assert_eq!(s.batches(), 2);
        let o = s.push(&[1; 10], 1);
        assert_eq!(o.evicted_batches, 2);
        assert_eq!(s.batches(), 1);
        assert_eq!(names(&t.0).len(), 1);
    }

    #[test]
    fn damaged_files_are_moved_aside_once() {
        let t = TempDir::new("damage");
        let mut s = Spool::open(&t.0, 1 << 20).unwrap();
        s.push(b"good-1", 1);
        s.push(b"flipped", 2);
        s.push(b"good-3", 3);
        drop(s);
        // Truncated header, garbage, a checksum mismatch, a directory with a batch's name.
        fs::write(t.0.join("00000000000000000010.logs.pb"), b"KWSP").unwrap();
        fs::write(t.0.join("00000000000000000011.logs.pb"), vec![0u8; 64]).unwrap();
        let p2 = t.0.join("00000000000000000002.logs.pb");
        let mut bytes = fs::read(&p2).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&p2, bytes).unwrap();
        fs::create_dir(t.0.join("00000000000000000012.logs.pb")).unwrap();

        let mut s = Spool::open(&t.0, 1 << 20).unwrap();
        assert_eq!(s.bad(), 3); // 10, 11, 12 (header checks); 2 passes the header check
        assert_eq!(s.batches(), 3);
        assert_eq!(s.read(1).unwrap(), b"good-1");
        s.remove(1).unwrap();
        let e = s.read(2).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string().contains("00000000000000000002.logs.pb"),
            "{e}"
        );
        assert_eq!(s.bad(), 4);
        assert_eq!(s.oldest().unwrap().id, 3);
        assert_eq!(s.records(), 3);
        assert_eq!(s.read(3).unwrap(), b"good-3");
        assert!(t.0.join("00000000000000000002.logs.pb.bad").exists());
        // Reopen: .bad files are not batches, and new ids go past them.
        drop(s);
        let mut s = Spool::open(&t.0, 1 << 20).unwrap();
        assert_eq!(s.batches(), 1);
        assert_eq!(s.push(b"new", 1).stored, Some(13));
    }

    #[test]
    fn bad_files_are_bounded() {
        let t = TempDir::new("badcap");
        fs::create_dir_all(&t.0).unwrap();
        for i in 1..=(MAX_BAD_FILES as u64 + 5) {
            fs::write(t.0.join(format!("{i:020}.logs.pb")), b"junk").unwrap();
        }
        let s = Spool::open(&t.0, 1 << 20).unwrap();
        assert_eq!(s.bad(), MAX_BAD_FILES as u64 + 5);
        let left = names(&t.0);
        assert_eq!(left.len(), MAX_BAD_FILES);
        assert!(left.iter().all(|n| n.ends_with(".bad")));
        assert_eq!(left[0], format!("{:020}.logs.pb.bad", 6));
    }

    #[test]
    fn errors_name_the_path() {
        let t = TempDir::new("errors");
        fs::create_dir_all(&t.0).unwrap();
        let file = t.0.join("a-file");
        fs::write(&file, b"x").unwrap();
        let e = Spool::open(&file.join("spool"), 1000).unwrap_err();
        assert!(e.to_string().contains("a-file"), "{e}");
        let mut s = Spool::open(&t.0.join("spool"), 1000).unwrap();
        // The directory disappears under us: push reports it, never panics.
        fs::remove_dir_all(t.0.join("spool")).unwrap();
        let o = s.push(b"payload", 1);
        assert_eq!(o.stored, None);
        let msg = o.error.unwrap();
        assert!(
            msg.contains("spool") && msg.contains("cannot create"),
            "{msg}"
        );
        assert_eq!(s.batches(), 0);
    }
}
