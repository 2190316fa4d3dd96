//! Where OpenSSL lives on this node, for the eBPF source's TLS uprobes: files mapped by running
//! processes (`/proc/<pid>/maps`) that may hold `SSL_write`/`SSL_read` (shared `libssl.so.*`,
//! librdkafka builds that link OpenSSL statically, each process's own executable), and the file
//! offsets of those functions read from the ELF symbol tables.
//!
//! Easy to get wrong:
//! - Statically linked copies keep the functions as LOCAL symbols in `.symtab` (the librdkafka
//!   inside confluent-kafka wheels): they are not in `.dynsym`, and a resolver that only looks at
//!   exported symbols misses them. Both tables are read here.
//! - A uprobe is placed at a file offset, not a virtual address: offset = address − section address
//!   + section file offset.
//! - One attachment per file (device, inode) covers every process mapping it, now and later: a file
//!   is looked at once, whether it had the functions or not (bounded, counted).
//! - A process in another mount namespace (a container) maps paths of its own root: the file is
//!   reached through `/proc/<pid>/root/<path>`.
//! - Scans are bounded (processes per scan, files remembered); a deleted or unreadable file is
//!   skipped and counted, never fatal.
//! - A write on a memory BIO (asyncio's `SSLObject`, Node's TLS sockets) sends nothing inside the
//!   call: its chunk comes without a connection and waits in a [`Binder`] until the kernel binds its
//!   `SSL*` to the thread's next TCP send (or its hold time passes: dropped, counted).

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// The OpenSSL functions probed (`SSL_free` forgets an `SSL*`'s connection; optional).
pub const SSL_FUNCS: [&str; 5] = [
    "SSL_write",
    "SSL_write_ex",
    "SSL_read",
    "SSL_read_ex",
    "SSL_free",
];

/// Processes read per scan at most (`/proc/<pid>/maps`).
pub const MAX_PIDS_PER_SCAN: usize = 32 * 1024;
/// Files (device, inode) remembered, attached or not.
pub const MAX_FILES: usize = 4096;
/// Files with uprobes attached at most.
pub const MAX_ATTACHED: usize = 256;
/// Largest file parsed for symbols (a big statically linked binary is still far below).
pub const MAX_ELF_BYTES: u64 = 1 << 30;

/// File offsets of the OpenSSL functions found in one ELF file (index as in [`SSL_FUNCS`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SslOffsets(pub [Option<u64>; 5]);

impl SslOffsets {
    /// Worth attaching: something that writes and something that reads.
    pub fn usable(&self) -> bool {
        (self.0[0].is_some() || self.0[1].is_some()) && (self.0[2].is_some() || self.0[3].is_some())
    }
}

/// Reads the offsets of [`SSL_FUNCS`] from an ELF file's `.symtab` and `.dynsym` (defined text
/// symbols only; the first definition found wins).
pub fn ssl_offsets(data: &[u8]) -> Result<SslOffsets, String> {
    let file = object::File::parse(data).map_err(|e| e.to_string())?;
    let mut out = SslOffsets::default();
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        if sym.is_undefined() || sym.kind() != SymbolKind::Text {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        let Some(i) = SSL_FUNCS.iter().position(|f| *f == name) else {
            continue;
        };
        if out.0[i].is_some() {
            continue;
        }
        let Some(index) = sym.section_index() else {
            continue;
        };
        let Ok(section) = file.section_by_index(index) else {
            continue;
        };
        let Some((offset, _)) = section.file_range() else {
            continue;
        };
        let Some(off) = sym
            .address()
            .checked_sub(section.address())
            .and_then(|d| d.checked_add(offset))
        else {
            continue;
        };
        out.0[i] = Some(off);
    }
    Ok(out)
}

/// Whether a mapped file may hold OpenSSL: `libssl*.so*`, `librdkafka*` (wheels link OpenSSL
/// statically), or the process's executable (`exe`: node and others link it statically).
pub fn is_candidate(path: &str, exe: Option<&str>) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    (base.starts_with("libssl") && base.contains(".so"))
        || base.starts_with("librdkafka")
        || exe == Some(path)
}

/// Executable file mappings of one `/proc/<pid>/maps`: their paths (deduplicated, in order).
pub fn mapped_files(maps: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode path
        let mut it = line.splitn(6, ' ');
        let (Some(_), Some(perms), Some(_), Some(_), Some(inode), Some(rest)) = (
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
        ) else {
            continue;
        };
        let path = rest.trim_start();
        if !perms.contains('x') || inode == "0" || !path.starts_with('/') {
            continue;
        }
        if path.ends_with(" (deleted)") {
            continue;
        }
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// One file found mapped by a process, reachable at `target` (through that process's root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub target: PathBuf,
    /// The path as the process sees it.
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub pid: u32,
}

/// Counters of the discovery.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    pub scans: u64,
    /// Processes whose maps could not be read (gone, or not permitted).
    pub unreadable: u64,
    /// Scans that stopped at [`MAX_PIDS_PER_SCAN`].
    pub pid_bound_hit: u64,
}

/// New candidate files mapped by running processes (files in `known` are skipped).
pub fn scan(
    proc_root: &Path,
    known: &HashMap<(u64, u64), bool>,
    stats: &mut ScanStats,
) -> Vec<Candidate> {
    stats.scans += 1;
    let mut out: Vec<Candidate> = Vec::new();
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return out;
    };
    let self_pid = std::process::id();
    let mut n = 0usize;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == self_pid {
            continue;
        }
        n += 1;
        if n > MAX_PIDS_PER_SCAN {
            stats.pid_bound_hit += 1;
            break;
        }
        let base = proc_root.join(pid.to_string());
        let Ok(maps) = std::fs::read_to_string(base.join("maps")) else {
            stats.unreadable += 1;
            continue;
        };
        let exe = std::fs::read_link(base.join("exe"))
            .ok()
            .and_then(|p| p.to_str().map(str::to_string));
        for path in mapped_files(&maps) {
            if !is_candidate(path, exe.as_deref()) {
                continue;
            }
            let target = base.join("root").join(path.trim_start_matches('/'));
            let Ok(md) = std::fs::metadata(&target) else {
                continue;
            };
            let key = (md.dev(), md.ino());
            if known.contains_key(&key) || out.iter().any(|c| (c.dev, c.ino) == key) {
                continue;
            }
            out.push(Candidate {
                target,
                path: path.to_string(),
                dev: key.0,
                ino: key.1,
                pid,
            });
        }
    }
    out
}

/// Chunks waiting at most for their connection, and their bytes.
pub const MAX_UNBOUND_CHUNKS: usize = 4096;
pub const MAX_UNBOUND_BYTES: usize = 16 << 20;

/// Plaintext chunks that came without a connection (writes on a memory BIO), keyed by (process id,
/// `SSL*`), until a binding names the connection `C` of that key. A binding serves the chunks waiting
/// then, and is not kept: later chunks of that `SSL*` come with their connection from the kernel,
/// and a chunk that comes without one after it belongs to a new `SSL` at the same address (the old
/// one freed), which waits for its own binding. Bounded: past its bounds the oldest waiting chunk is
/// dropped, counted in `dropped` like a chunk whose hold time passed unbound.
#[derive(Debug)]
pub struct Binder<T> {
    /// (key, timestamp, bytes, chunk), oldest first.
    waiting: VecDeque<((u32, u64), i64, usize, T)>,
    waiting_bytes: usize,
    /// Chunks that never got a connection.
    pub dropped: u64,
    /// Chunks that got one.
    pub bound_chunks: u64,
}

impl<T> Default for Binder<T> {
    fn default() -> Self {
        Binder {
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            dropped: 0,
            bound_chunks: 0,
        }
    }
}

impl<T> Binder<T> {
    /// A chunk without a connection: it waits for the binding of `key`.
    pub fn arrive(&mut self, key: (u32, u64), ts: i64, bytes: usize, chunk: T) {
        while !self.waiting.is_empty()
            && (self.waiting.len() >= MAX_UNBOUND_CHUNKS
                || self.waiting_bytes + bytes > MAX_UNBOUND_BYTES)
        {
            self.pop_oldest();
        }
        self.waiting_bytes += bytes;
        self.waiting.push_back((key, ts, bytes, chunk));
    }

    /// `key` is connection `c`: the chunks that waited for it, in arrival order, with their timestamps.
    pub fn bind<C: Clone>(&mut self, key: (u32, u64), c: C) -> Vec<(i64, C, T)> {
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(self.waiting.len());
        for (k, ts, bytes, chunk) in self.waiting.drain(..) {
            if k == key {
                self.waiting_bytes -= bytes;
                self.bound_chunks += 1;
                out.push((ts, c.clone(), chunk));
            } else {
                keep.push_back((k, ts, bytes, chunk));
            }
        }
        self.waiting = keep;
        out
    }

    /// Drops (and counts) the chunks older than `horizon`: their hold time passed without a binding.
    pub fn expire(&mut self, horizon: i64) {
        while self.waiting.front().is_some_and(|w| w.1 <= horizon) {
            self.pop_oldest();
        }
    }

    /// Chunks waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn pop_oldest(&mut self) {
        if let Some((_, _, bytes, _)) = self.waiting.pop_front() {
            self.waiting_bytes -= bytes;
            self.dropped += 1;
        }
    }
}

/// Reads a candidate's ELF symbols (bounded size).
pub fn read_offsets(target: &Path) -> Result<SslOffsets, String> {
    let md = std::fs::metadata(target).map_err(|e| e.to_string())?;
    if md.len() > MAX_ELF_BYTES {
        return Err(format!("{} bytes: larger than {MAX_ELF_BYTES}", md.len()));
    }
    let f = std::fs::File::open(target).map_err(|e| e.to_string())?;
    // SAFETY: a read-only private mapping; a file truncated under us can fault, as with any
    // mapping of a file we do not own: the files read here are installed libraries.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| e.to_string())?;
    ssl_offsets(&map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_give_executable_files_once() {
        let maps = "\
7f00-7f10 r--p 00000000 08:01 1234 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f10-7f20 r-xp 00010000 08:01 1234 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f20-7f30 r-xp 00020000 08:01 1234 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f30-7f40 rw-p 00000000 00:00 0 [heap]
7f40-7f50 r-xp 00000000 08:01 99 /opt/app/librdkafka-0cb94173.so.1 (deleted)
7f50-7f60 r-xp 00000000 08:01 77 /usr/bin/python3.11
";
        assert_eq!(
            mapped_files(maps),
            vec![
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                "/usr/bin/python3.11"
            ]
        );
        assert!(is_candidate("/usr/lib/x86_64-linux-gnu/libssl.so.3", None));
        assert!(is_candidate(
            "/x/confluent_kafka.libs/librdkafka-0cb94173.so.1",
            None
        ));
        assert!(!is_candidate(
            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
            None
        ));
        assert!(!is_candidate("/usr/bin/python3.11", None));
        assert!(is_candidate("/usr/bin/node", Some("/usr/bin/node")));
        assert!(!is_candidate("/usr/lib/libssl.a", None));
    }

    /// asyncio's order: the write's chunk, then the send that binds it. A binding is not kept: a chunk
    /// of the same address after it is a new SSL (the old one freed) and waits for its own; another
    /// process's SSL* at the same address waits for its own binding, and a chunk never bound is dropped
    /// once its hold time passes.
    #[test]
    fn unbound_chunks_wait_for_their_binding() {
        let mut b: Binder<&str> = Binder::default();
        b.arrive((7, 0xa0), 100, 40, "ApiVersions");
        b.arrive((8, 0xa0), 105, 10, "other process");
        assert_eq!(b.waiting(), 2);
        assert_eq!(
            b.bind((7, 0xa0), "conn-1"),
            vec![(100, "conn-1", "ApiVersions")]
        );
        b.arrive((7, 0xa0), 200, 60, "next connection's ApiVersions");
        assert_eq!(
            b.bind((7, 0xa0), "conn-2"),
            vec![(200, "conn-2", "next connection's ApiVersions")]
        );
        assert_eq!(b.bound_chunks, 2);
        b.expire(104);
        assert_eq!((b.waiting(), b.dropped), (1, 0));
        b.expire(105);
        assert_eq!((b.waiting(), b.dropped), (0, 1));
        // bounded: the oldest waiting chunk goes first
        for i in 0..MAX_UNBOUND_CHUNKS + 3 {
            b.arrive((9, i as u64), i as i64, 1, "x");
        }
        assert_eq!((b.waiting(), b.dropped), (MAX_UNBOUND_CHUNKS, 4));
        assert!(b.bind((9, 0), "gone").is_empty());
        assert_eq!(b.bind((9, 3), "kept").len(), 1);
    }

    #[test]
    fn not_an_elf_file_is_an_error() {
        assert!(ssl_offsets(b"not an elf").is_err());
    }

    /// Debian's shared libssl exports the four functions in `.dynsym`.
    #[test]
    fn system_libssl_has_all_four() {
        let p = Path::new("/usr/lib/x86_64-linux-gnu/libssl.so.3");
        if !p.exists() {
            // Not every build machine has libssl3 (the uprobe check in xtask needs it and fails).
            return;
        }
        let o = read_offsets(p).expect("libssl parses");
        assert!(o.0.iter().all(|x| x.is_some()), "{o:?}");
        assert!(o.usable());
        assert_ne!(o.0[0], o.0[2]);
    }
}
