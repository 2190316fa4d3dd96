//! The capture files of `kwire replay` / `kwire timeline`: globs expanded, several files read as one
//! capture merged by packet timestamp (a rotated `kwire run --write-pcap` set `x.pcap x.pcap.1 ...`
//! replays as what `kwire run` saw), and the guard that refuses an `--output` that is one of the inputs.
//!
//! Easy to get wrong:
//! - the merge is a k-way merge on (timestamp, file index): equal timestamps keep the order of the files
//!   as given, so the same inputs always give the same bytes out. One file is read without copying; with
//!   several, each file's next packet is copied into that file's own reused buffer (the reader's buffer
//!   is only borrowed until its next read);
//! - damage in one file stops that file only: the others are read to their end, the first damage is
//!   reported (exit status 2) and everything read is processed;
//! - the output guard compares device and inode, not names (`./x.pcap` and `x.pcap` are one file), and
//!   runs before anything is opened for writing;
//! - globs are expanded here for quoted patterns (cron, CI): only `*` and `?` in the last path component.
//!   A path that exists is taken literally even when its name holds a wildcard. Written here rather than
//!   taking a glob crate: the one form needed is twenty lines.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use kwire_capture::{CaptureError, FileStats, PcapFile, RawPacket, ReadMode};
use kwire_engine::analysis::suppress::wildcard;
use kwire_flow::{LinkType, Timestamp};

/// Input files at most (each holds a reader buffer).
pub const MAX_INPUTS: usize = 4096;

/// Expands the command line's files: `-` stays (standard input, at most once), an existing path is kept,
/// a pattern with `*`/`?` in its file name is replaced by its matches (sorted); no match is an error.
pub fn expand(files: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for f in files {
        let s = f.to_string_lossy();
        if s == "-" || f.exists() || !f.file_name().is_some_and(has_wildcard) {
            out.push(f.clone());
            continue;
        }
        let dir = match f.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let pat = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", f.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter(|e| wildcard(pat.as_bytes(), e.file_name().to_string_lossy().as_bytes()))
            .map(|e| {
                if f.parent().is_some_and(|p| !p.as_os_str().is_empty()) {
                    dir.join(e.file_name())
                } else {
                    PathBuf::from(e.file_name())
                }
            })
            .collect();
        if found.is_empty() {
            return Err(format!("{}: no file matches", f.display()));
        }
        found.sort();
        out.extend(found);
    }
    if out.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return Err("standard input (-) can be read only once".into());
    }
    if out.len() > MAX_INPUTS {
        return Err(format!(
            "{} input files, at most {MAX_INPUTS} are read at once",
            out.len()
        ));
    }
    Ok(out)
}

fn has_wildcard(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().contains(['*', '?'])
}

/// `Err` when `output` is one of `inputs` (same device and inode), checked before it is created.
pub fn refuse_output_over_input(output: &Path, inputs: &[PathBuf]) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(o) = std::fs::metadata(output) else {
        return Ok(()); // does not exist yet: cannot be an input
    };
    for i in inputs {
        let path = if i.as_os_str() == "-" {
            Path::new("/dev/stdin")
        } else {
            i.as_path()
        };
        if let Ok(m) = std::fs::metadata(path) {
            if m.dev() == o.dev() && m.ino() == o.ino() {
                return Err(format!(
                    "--output {} is the input capture {}: refusing to overwrite it",
                    output.display(),
                    i.display()
                ));
            }
        }
    }
    Ok(())
}

/// One file's next packet, copied (multi-file merge only).
struct Head {
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
    interface: u32,
    data: Vec<u8>,
    /// Its number in its own file (from 1, as Wireshark numbers it).
    frame: u64,
}

/// Several capture files read as one, in packet-timestamp order.
pub struct Inputs {
    files: Vec<PcapFile>,
    heads: Vec<Head>,
    /// (timestamp, file index) of each file holding a head packet.
    heap: BinaryHeap<Reverse<(Timestamp, usize)>>,
    /// The file whose head was handed out last: read its next packet on the next call.
    refill: Option<usize>,
    started: bool,
    damage: Option<CaptureError>,
    /// Packets read so far from each file (the next one's number is this plus one).
    read: Vec<u64>,
    /// Packets handed out by the single-file path.
    frame: u64,
}

impl Inputs {
    /// Opens every file (`-` is standard input) in `mode`; the first that cannot be opened is the error.
    pub fn open(files: &[PathBuf], mode: ReadMode) -> Result<Inputs, String> {
        let mut open = Vec::with_capacity(files.len());
        for f in files {
            let path = if f.as_os_str() == "-" {
                Path::new("/dev/stdin")
            } else {
                f.as_path()
            };
            open.push(PcapFile::open_with(path, mode).map_err(|e| e.to_string())?);
        }
        Ok(Inputs {
            heads: Vec::new(),
            read: vec![0; open.len()],
            frame: 0,
            files: open,
            heap: BinaryHeap::new(),
            refill: None,
            started: false,
            damage: None,
        })
    }

    /// Total size when every file's size is known (not standard input).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Option<u64> {
        self.files.iter().map(|f| f.len()).sum()
    }

    /// Bytes read so far over all files.
    pub fn position(&self) -> u64 {
        self.files.iter().map(|f| f.position()).sum()
    }

    /// The files' counters added up.
    pub fn stats(&self) -> FileStats {
        let mut t = FileStats::default();
        for f in &self.files {
            let s = f.stats();
            t.packets += s.packets;
            t.bytes += s.bytes;
            t.truncated_packets += s.truncated_packets;
            t.caplen_exceeds_origlen += s.caplen_exceeds_origlen;
            t.bad_records += s.bad_records;
            t.unsupported_blocks += s.unsupported_blocks;
            t.sections += s.sections;
            t.bytes_read += s.bytes_read;
        }
        t
    }

    /// The first damage met (that file's reading stopped there).
    pub fn take_damage(&mut self) -> Option<CaptureError> {
        self.damage.take()
    }

    /// The next packet in timestamp order with its number in its own file (from 1, as Wireshark numbers
    /// a file's packets: what evidence links such as `request_frame` name); `None` at the end of every
    /// file (or of the damaged ones).
    pub fn next_packet(&mut self) -> Option<(u64, RawPacket<'_>)> {
        if self.files.len() == 1 {
            if self.damage.is_some() {
                return None;
            }
            return match self.files[0].next_packet() {
                Ok(p) => {
                    self.frame += 1;
                    p.map(|p| (self.frame, p))
                }
                Err(e) => {
                    self.damage = Some(e);
                    None
                }
            };
        }
        if !self.started {
            self.started = true;
            self.heads = (0..self.files.len())
                .map(|_| Head {
                    ts: Timestamp(0),
                    link: LinkType::Ethernet,
                    orig_len: 0,
                    interface: 0,
                    data: Vec::new(),
                    frame: 0,
                })
                .collect();
            for i in 0..self.files.len() {
                self.read_head(i);
            }
        }
        if let Some(i) = self.refill.take() {
            self.read_head(i);
        }
        let Reverse((_, i)) = self.heap.pop()?;
        self.refill = Some(i);
        let h = &self.heads[i];
        Some((
            h.frame,
            RawPacket {
                ts: h.ts,
                link: h.link,
                data: &h.data,
                orig_len: h.orig_len,
                interface: h.interface,
            },
        ))
    }

    fn read_head(&mut self, i: usize) {
        match self.files[i].next_packet() {
            Ok(Some(p)) => {
                let h = &mut self.heads[i];
                h.ts = p.ts;
                h.link = p.link;
                h.orig_len = p.orig_len;
                h.interface = p.interface;
                h.data.clear();
                h.data.extend_from_slice(p.data);
                self.read[i] += 1;
                h.frame = self.read[i];
                self.heap.push(Reverse((p.ts, i)));
            }
            Ok(None) => {}
            Err(e) => {
                self.damage.get_or_insert(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards() {
        assert!(wildcard(b"kafka.pcap*", b"kafka.pcap"));
        assert!(wildcard(b"kafka.pcap*", b"kafka.pcap.3"));
        assert!(wildcard(b"kafka.pcap*", b"kafka.pcapng.x.y"));
        assert!(wildcard(b"*.pcap?", b"a.pcap1"));
        assert!(!wildcard(b"*.pcap?", b"a.pcap"));
        assert!(!wildcard(b"x*", b"y"));
        assert!(wildcard(b"a*b*c", b"aXXbYYc"));
        assert!(!wildcard(b"a*b*c", b"aXXbYY"));
    }
}
