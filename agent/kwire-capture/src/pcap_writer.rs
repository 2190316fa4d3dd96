//! [`PcapWriter`]: what a live source handed to the agent, written as pcap (nanosecond timestamps, magic
//! a1b23c4d) so that an incident can be replayed later with `kwire replay`, bounded in size and count.
//!
//! Bounds: a file is rotated when the next record would take it past `max_bytes`, or when its packets
//! span `max_seconds` of capture time (packet time, not the wall clock: an idle agent has nothing to
//! rotate). At most `max_files` files are kept per link type, named like logrotate: `FILE` (being
//! written), `FILE.1` (the one before), ... `FILE.<max_files-1>` (oldest); older ones are deleted. A
//! `FILE` left by an earlier run is rotated to `FILE.1` when the first packet comes, never overwritten.
//!
//! Several link types (e.g. `--interface lo,any`: Ethernet and Linux cooked SLL2): a pcap file has one
//! link type, so each link type gets its own rotating set. The first link type seen writes `FILE`; the
//! others write `FILE` with `.<link type>` before the extension (`x.pcap` → `x.linux_sll2.pcap`).
//! pcapng would hold them in one file, but libpcap (tcpdump, tshark's reader) cannot read a pcapng whose
//! interfaces have different link types, so plain pcap per link type is the more useful evidence.
//!
//! What is easy to get wrong: a packet larger than `max_bytes` still gets a file of its own (never
//! dropped silently); the buffered writer is flushed on [`PcapWriter::flush`] (the agent calls it every
//! second so a running capture is readable) and on [`PcapWriter::finish`] / drop; a write error (disk
//! full) is counted and stops the writer, it never stops the agent.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use kwire_flow::{LinkType, Timestamp};

/// Link types written at most (each has its own set of files).
pub const MAX_LINK_TYPES: usize = 8;
/// Snap length written in file headers (the live sources never capture more).
const HEADER_SNAPLEN: u32 = 262_144;

#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub path: PathBuf,
    /// Rotate before a file would exceed this many bytes.
    pub max_bytes: Option<u64>,
    /// Rotate when a file's packets span this many seconds of capture time.
    pub max_seconds: Option<u64>,
    /// Files kept per link type, the one being written included (at least 1).
    pub max_files: u32,
}

/// Counters of a writer (monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriterStats {
    pub packets: u64,
    /// Bytes written, headers included.
    pub bytes: u64,
    pub files_opened: u64,
    pub rotations: u64,
    /// Old files deleted to keep the bound.
    pub files_deleted: u64,
    /// Packets not written (writer stopped by an error, or a link type beyond the limit).
    pub packets_not_written: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Set {
    link: LinkType,
    path: PathBuf,
    w: Option<BufWriter<File>>,
    size: u64,
    first_ts: Option<Timestamp>,
    /// Packets in the current file.
    packets: u64,
}

pub struct PcapWriter {
    opts: WriterOptions,
    sets: Vec<Set>,
    stats: WriterStats,
    failed: bool,
    /// Number of the last packet written, in its file (from 1); 0 when it was not written.
    last_frame: u64,
}

/// `x.pcap` + "linux_sll2" → `x.linux_sll2.pcap`; `x` → `x.linux_sll2`.
fn with_link_suffix(path: &Path, link: LinkType) -> PathBuf {
    let tag = match link {
        LinkType::Ethernet => "ethernet".to_string(),
        LinkType::LinuxSll => "linux_sll".to_string(),
        LinkType::LinuxSll2 => "linux_sll2".to_string(),
        LinkType::Raw => "raw".to_string(),
        LinkType::Null => "null".to_string(),
        LinkType::Loop => "loop".to_string(),
        LinkType::Ipv4 => "ipv4".to_string(),
        LinkType::Ipv6 => "ipv6".to_string(),
        LinkType::Unsupported(v) => format!("dlt{v}"),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let new = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{tag}.{ext}"),
        _ => format!("{name}.{tag}"),
    };
    path.with_file_name(new)
}

/// `FILE` → `FILE.n`
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl PcapWriter {
    /// Checks that the file's directory exists; files are created when packets come.
    pub fn new(opts: WriterOptions) -> io::Result<PcapWriter> {
        let dir = match opts.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such directory", dir.display()),
            ));
        }
        if opts.path.is_dir() {
            return Err(io::Error::other(format!(
                "{} is a directory",
                opts.path.display()
            )));
        }
        let mut opts = opts;
        opts.max_files = opts.max_files.max(1);
        Ok(PcapWriter {
            opts,
            sets: Vec::new(),
            stats: WriterStats::default(),
            failed: false,
            last_frame: 0,
        })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// The files being written now (one per link type seen).
    pub fn current_files(&self) -> Vec<PathBuf> {
        self.sets.iter().map(|s| s.path.clone()).collect()
    }

    /// Number of the packet written last in the file it went to (from 1, as Wireshark numbers that
    /// file's packets; the file is renamed `FILE.1`, ... as it rotates); 0 when it was not written.
    pub fn last_frame(&self) -> u64 {
        self.last_frame
    }

    /// Writes one packet. An `Err` is returned once (the first failure); the writer then stops.
    pub fn write(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        self.last_frame = 0;
        if self.failed {
            self.stats.packets_not_written += 1;
            return Ok(());
        }
        let r = self.write_inner(ts, link, data, orig_len);
        if let Err(e) = &r {
            self.failed = true;
            self.stats.packets_not_written += 1;
            self.stats.error = Some(e.to_string());
        }
        r
    }

    fn write_inner(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let i = match self.sets.iter().position(|s| s.link == link) {
            Some(i) => i,
            None => {
                if self.sets.len() >= MAX_LINK_TYPES {
                    self.stats.packets_not_written += 1;
                    return Ok(());
                }
                let path = if self.sets.is_empty() {
                    self.opts.path.clone()
                } else {
                    with_link_suffix(&self.opts.path, link)
                };
                self.sets.push(Set {
                    link,
                    path,
                    w: None,
                    size: 0,
                    first_ts: None,
                    packets: 0,
                });
                self.sets.len() - 1
            }
        };
        let record = 16 + data.len() as u64;
        let set = &self.sets[i];
        let rotate = set.w.is_some()
            && set.first_ts.is_some()
            && (self.opts.max_bytes.is_some_and(|m| set.size + record > m)
                || self.opts.max_seconds.is_some_and(|s| {
                    ts.0.saturating_sub(set.first_ts.map_or(ts.0, |f| f.0))
                        >= (s as i64).saturating_mul(Timestamp::NANOS_PER_SEC)
                }));
        if rotate {
            self.stats.rotations += 1;
            self.rotate(i)?;
        }
        if self.sets[i].w.is_none() {
            self.open(i)?;
        }
        let set = &mut self.sets[i];
        let w = set.w.as_mut().expect("opened");
        let t = ts.0.max(0);
        let secs = (t / Timestamp::NANOS_PER_SEC).min(u32::MAX as i64) as u32;
        let nanos = (t % Timestamp::NANOS_PER_SEC) as u32;
        let caplen = data.len() as u32;
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&secs.to_le_bytes());
        hdr[4..8].copy_from_slice(&nanos.to_le_bytes());
        hdr[8..12].copy_from_slice(&caplen.to_le_bytes());
        hdr[12..16].copy_from_slice(&orig_len.max(caplen).to_le_bytes());
        w.write_all(&hdr)?;
        w.write_all(data)?;
        set.size += record;
        set.packets += 1;
        self.last_frame = set.packets;
        set.first_ts.get_or_insert(ts);
        self.stats.packets += 1;
        self.stats.bytes += record;
        Ok(())
    }

    /// Shifts `FILE` → `FILE.1` → ... and deletes the oldest beyond the bound (the current file closed).
    fn rotate(&mut self, i: usize) -> io::Result<()> {
        if let Some(mut w) = self.sets[i].w.take() {
            w.flush()?;
        }
        let path = self.sets[i].path.clone();
        let keep = self.opts.max_files;
        if keep <= 1 {
            if path.exists() {
                fs::remove_file(&path)?;
                self.stats.files_deleted += 1;
            }
        } else {
            let oldest = numbered(&path, keep - 1);
            if oldest.exists() {
                fs::remove_file(&oldest)?;
                self.stats.files_deleted += 1;
            }
            for n in (1..keep - 1).rev() {
                let from = numbered(&path, n);
                if from.exists() {
                    fs::rename(&from, numbered(&path, n + 1))?;
                }
            }
            if path.exists() {
                fs::rename(&path, numbered(&path, 1))?;
            }
        }
        self.sets[i].size = 0;
        self.sets[i].first_ts = None;
        self.sets[i].packets = 0;
        Ok(())
    }

    fn open(&mut self, i: usize) -> io::Result<()> {
        // A file of an earlier run (or of this one) at this name is kept as FILE.1, never overwritten.
        if self.sets[i].path.exists() {
            self.rotate(i)?;
        }
        let set = &mut self.sets[i];
        let f = File::create(&set.path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", set.path.display())))?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone, sigfigs: 0
        hdr[16..20].copy_from_slice(&HEADER_SNAPLEN.to_le_bytes());
        hdr[20..24].copy_from_slice(&set.link.to_dlt().to_le_bytes());
        w.write_all(&hdr)?;
        set.size = 24;
        set.w = Some(w);
        self.stats.files_opened += 1;
        self.stats.bytes += 24;
        Ok(())
    }

    /// Pushes buffered records to the files (readable while the agent runs).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        for s in &mut self.sets {
            if let Some(w) = s.w.as_mut() {
                if let Err(e) = w.flush() {
                    self.failed = true;
                    self.stats.error = Some(e.to_string());
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Flushes and closes every file.
    pub fn finish(mut self) -> (WriterStats, io::Result<()>) {
        let r = self.flush();
        for s in &mut self.sets {
            s.w = None;
        }
        (std::mem::take(&mut self.stats), r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PcapFile;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kwire-writer-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn read_all(p: &Path) -> Vec<(i64, LinkType, Vec<u8>, u32)> {
        let mut f = PcapFile::open(p).unwrap();
        let mut v = Vec::new();
        while let Some(r) = f.next_packet().unwrap() {
            v.push((r.ts.0, r.link, r.data.to_vec(), r.orig_len));
        }
        v
    }

    #[test]
    fn writes_ns_pcap_read_back_exactly() {
        let d = tmpdir("exact");
        let path = d.join("x.pcap");
        let mut w = PcapWriter::new(WriterOptions {
            path: path.clone(),
            max_bytes: None,
            max_seconds: None,
            max_files: 3,
        })
        .unwrap();
        w.write(
            Timestamp(1_700_000_000_123_456_789),
            LinkType::Ethernet,
            &[1, 2, 3],
            3,
        )
        .unwrap();
        w.write(
            Timestamp(1_700_000_001_000_000_001),
            LinkType::Ethernet,
            &[4; 10],
            1500,
        )
        .unwrap();
        let (st, r) = w.finish();
        r.unwrap();
        assert_eq!((st.packets, st.files_opened, st.rotations), (2, 1, 0));
        assert_eq!(st.bytes, fs::metadata(&path).unwrap().len());
        let got = read_all(&path);
        assert_eq!(
            got,
            vec![
                (
                    1_700_000_000_123_456_789,
                    LinkType::Ethernet,
                    vec![1, 2, 3],
                    3
                ),
                (
                    1_700_000_001_000_000_001,
                    LinkType::Ethernet,
                    vec![4; 10],
                    1500
                ),
            ]
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rotates_by_size_and_keeps_at_most_n_files() {
        let d = tmpdir("size");
        let path = d.join("r.pcap");
        let mut w = PcapWriter::new(WriterOptions {
            path: path.clone(),
            max_bytes: Some(24 + 2 * (16 + 100)),
            max_seconds: None,
            max_files: 3,
        })
        .unwrap();
        // 9 packets, 2 per file: 5 files made, the newest 3 kept ([4,5], [6,7], [8]).
        for i in 0..9u8 {
            w.write(
                Timestamp(i64::from(i) * 1000),
                LinkType::Ethernet,
                &[i; 100],
                100,
            )
            .unwrap();
        }
        let (st, r) = w.finish();
        r.unwrap();
        assert_eq!((st.files_opened, st.rotations, st.files_deleted), (5, 4, 2));
        let names: Vec<String> = {
            let mut v: Vec<String> = fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names, ["r.pcap", "r.pcap.1", "r.pcap.2"]);
        let first = |p: &Path| read_all(p).iter().map(|r| r.2[0]).collect::<Vec<_>>();
        assert_eq!(first(&path), [8]);
        assert_eq!(first(&numbered(&path, 1)), [6, 7]);
        assert_eq!(first(&numbered(&path, 2)), [4, 5]);
        for f in [path.clone(), numbered(&path, 1), numbered(&path, 2)] {
            assert!(fs::metadata(&f).unwrap().len() <= 24 + 2 * 116);
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rotates_by_capture_time_and_one_file_per_link_type() {
        let d = tmpdir("time");
        let path = d.join("t.pcap");
        fs::write(&path, b"left by an earlier run").unwrap();
        let mut w = PcapWriter::new(WriterOptions {
            path: path.clone(),
            max_bytes: None,
            max_seconds: Some(10),
            max_files: 2,
        })
        .unwrap();
        let s = Timestamp::NANOS_PER_SEC;
        w.write(Timestamp(0), LinkType::Ethernet, &[1], 1).unwrap();
        w.write(Timestamp(5 * s), LinkType::LinuxSll2, &[2], 1)
            .unwrap();
        w.write(Timestamp(9 * s), LinkType::Ethernet, &[3], 1)
            .unwrap();
        w.write(Timestamp(10 * s), LinkType::Ethernet, &[4], 1)
            .unwrap();
        assert_eq!(
            w.current_files(),
            vec![path.clone(), d.join("t.linux_sll2.pcap")]
        );
        let (st, r) = w.finish();
        r.unwrap();
        assert_eq!(st.packets, 4);
        // The earlier run's file became t.pcap.1 at start, then was deleted by the time rotation.
        let ether: Vec<u8> = read_all(&path).iter().map(|r| r.2[0]).collect();
        assert_eq!(ether, [4]);
        let older: Vec<u8> = read_all(&numbered(&path, 1))
            .iter()
            .map(|r| r.2[0])
            .collect();
        assert_eq!(older, [1, 3]);
        let sll2 = read_all(&d.join("t.linux_sll2.pcap"));
        assert_eq!((sll2.len(), sll2[0].1), (1, LinkType::LinuxSll2));
        assert!(!numbered(&path, 2).exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_directory_is_an_error() {
        let e = PcapWriter::new(WriterOptions {
            path: PathBuf::from("/nonexistent-kwire-dir/x.pcap"),
            max_bytes: None,
            max_seconds: None,
            max_files: 1,
        });
        assert!(e.is_err());
    }
}
