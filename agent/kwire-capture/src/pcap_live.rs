//! Live capture with libpcap ([`PcapLive`]): one handle per interface (`any` included: Linux cooked
//! SLL2/SLL), a kernel BPF filter on the broker ports (`tcp port P or tcp port Q ...`, or `tcp` when no
//! port is configured and Kafka is found by probing), snap length 256 KiB, a TPACKET_V3 ring whose blocks
//! are handed over when full or after [`BLOCK_TIMEOUT_MS`], and a large kernel buffer. Packets keep the kernel's capture timestamp (nanoseconds when libpcap grants them).
//!
//! Why libpcap: it works on every Linux kernel with only CAP_NET_RAW (no BPF loading, no BTF), on any
//! interface, and it is what `--source auto` falls back to when the eBPF source cannot load.
//!
//! What is easy to get wrong:
//! * Blocking reads: `pcap_next_ex` with a read timeout never returns on an idle interface (TPACKET_V3
//!   waits for a first packet before the timeout starts), so a blocking agent would ignore signals and
//!   health checks. Every handle is non-blocking; [`PcapLive::poll`] waits in poll(2) on the handles'
//!   selectable descriptors with the caller's timeout, then drains what is there with `pcap_dispatch`
//!   (packets handed over where they lie in the ring; `pcap_next_ex` copies each one out first).
//! * Never immediate mode: it puts libpcap on a TPACKET_V2 ring of fixed slots, each as large as the snap
//!   length (256 KiB here, for loopback's 64 KiB segments): 128 MiB then holds 512 packets, a few
//!   milliseconds at 100k packets/s, and the kernel drops while the agent uses a quarter of a core
//!   (measured: 55,723 of 706,380 packets dropped at 756 Mbps on a veth pair). Without it libpcap uses
//!   TPACKET_V3, whose blocks pack packets by their real size; the kernel retires a block when it is full
//!   or [`BLOCK_TIMEOUT_MS`] after its first packet, so an alert is at most that late. The default
//!   buffer is 128 MiB per interface.
//! * Drop counters (`pcap_stats`: ps_drop, ps_ifdrop) are cumulative since the handle was opened; they are
//!   read fresh by [`LiveSource::stats`] and summed over the interfaces.
//! * Permissions: opening fails without CAP_NET_RAW; the error says so and what to do (see [`OpenError`]).
//! * Several interfaces can see one packet twice (`any` plus `lo`, or a bridge and its ports): choose
//!   either `any` or a set of distinct interfaces.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::unix::io::AsRawFd;

use kwire_flow::{LinkType, Timestamp};
use pcap::{Active, Capture, Linktype, Precision};

use crate::live::{LivePacket, LiveSource, SourceStats};

/// Default bytes captured per packet: a whole loopback segment (64 KiB MTU) with room for offloads.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Longest time a captured packet waits in a partly filled ring block before the agent sees it.
pub const BLOCK_TIMEOUT_MS: i32 = 50;
/// Default kernel ring per interface (see the module doc).
pub const DEFAULT_BUFFER_MB: u32 = 128;

/// What to capture with libpcap.
#[derive(Debug, Clone)]
pub struct PcapOptions {
    /// Interface names (`any` = every interface, Linux cooked headers).
    pub interfaces: Vec<String>,
    /// Broker ports (empty = every TCP port: Kafka found by probing).
    pub ports: Vec<u16>,
    pub snaplen: u32,
    /// Kernel buffer per interface, in MiB.
    pub buffer_mb: u32,
    /// Why libpcap is in use (e.g. "--source pcap", "eBPF unavailable: ..."), for `describe`.
    pub reason: String,
}

impl Default for PcapOptions {
    fn default() -> Self {
        PcapOptions {
            interfaces: vec!["any".to_string()],
            ports: Vec::new(),
            snaplen: DEFAULT_SNAPLEN,
            buffer_mb: DEFAULT_BUFFER_MB,
            reason: String::new(),
        }
    }
}

/// Why the capture could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Not allowed to capture: CAP_NET_RAW is missing.
    Permission {
        interface: String,
        message: String,
    },
    /// No such interface.
    NoInterface {
        interface: String,
        message: String,
    },
    /// The BPF filter did not compile or attach.
    Filter {
        filter: String,
        message: String,
    },
    Other {
        interface: String,
        message: String,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Permission { interface, message } => {
                let caps = match has_cap_net_raw() {
                    Some(false) => "CAP_NET_RAW is missing from this process's effective capabilities",
                    _ => "the capture needs CAP_NET_RAW",
                };
                write!(
                    f,
                    "cannot capture on {interface}: {message}; {caps}. Run kwire as root, or give the binary the \
                     capability (`setcap cap_net_raw+ep /path/to/kwire`), or in Kubernetes add NET_RAW to the \
                     container's securityContext.capabilities.add"
                )
            }
            OpenError::NoInterface { interface, message } => write!(
                f,
                "cannot capture on {interface}: {message} (no such interface? `ip link` lists them; `any` captures all)"
            ),
            OpenError::Filter { filter, message } => {
                write!(f, "BPF filter {filter:?} rejected: {message}")
            }
            OpenError::Other { interface, message } => {
                write!(f, "cannot capture on {interface}: {message}")
            }
        }
    }
}

impl std::error::Error for OpenError {}

impl OpenError {
    pub fn is_permission(&self) -> bool {
        matches!(self, OpenError::Permission { .. })
    }
}

/// Whether CAP_NET_RAW (bit 13) is in this process's effective set (None when /proc cannot tell).
pub fn has_cap_net_raw() -> Option<bool> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let eff = u64::from_str_radix(hex, 16).ok()?;
    Some(eff & (1 << 13) != 0)
}

/// The kernel filter for these ports.
pub fn bpf_filter(ports: &[u16]) -> String {
    if ports.is_empty() {
        "tcp".to_string()
    } else {
        ports
            .iter()
            .map(|p| format!("tcp port {p}"))
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

struct Handle {
    name: String,
    cap: Capture<Active>,
    link: LinkType,
    nanos: bool,
}

pub struct PcapLive {
    handles: RefCell<Vec<Handle>>,
    filter: String,
    opts: PcapOptions,
    packets: u64,
    bytes: u64,
    truncated: u64,
    /// Next handle to drain first (round robin, so one busy interface cannot starve another).
    next: usize,
}

// libpcap's own getter; the pcap crate sets the precision but never reads it back.
extern "C" {
    fn pcap_get_tstamp_precision(p: *mut libc::c_void) -> libc::c_int;
    fn pcap_lib_version() -> *const libc::c_char;
}

/// "libpcap version 1.10.3 (...)" → "libpcap 1.10.3".
pub fn libpcap_version() -> String {
    // SAFETY: pcap_lib_version returns a static NUL-terminated string.
    let s = unsafe { std::ffi::CStr::from_ptr(pcap_lib_version()) };
    let s = s.to_string_lossy();
    let v = s
        .strip_prefix("libpcap version ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or(&s);
    format!("libpcap {v}")
}

fn classify(interface: &str, e: pcap::Error) -> OpenError {
    let message = e.to_string();
    let lower = message.to_lowercase();
    let interface = interface.to_string();
    if lower.contains("permission") || lower.contains("not permitted") || lower.contains("eperm") {
        OpenError::Permission { interface, message }
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        OpenError::NoInterface { interface, message }
    } else {
        OpenError::Other { interface, message }
    }
}

fn link_name(l: LinkType) -> String {
    match l {
        LinkType::Ethernet => "EN10MB".into(),
        LinkType::LinuxSll => "LINUX_SLL".into(),
        LinkType::LinuxSll2 => "LINUX_SLL2".into(),
        LinkType::Raw => "RAW".into(),
        LinkType::Null => "NULL".into(),
        LinkType::Loop => "LOOP".into(),
        LinkType::Ipv4 => "IPV4".into(),
        LinkType::Ipv6 => "IPV6".into(),
        LinkType::Unsupported(v) => format!("DLT {v}"),
    }
}

impl PcapLive {
    pub fn open(opts: &PcapOptions) -> Result<PcapLive, OpenError> {
        if opts.interfaces.is_empty() {
            return Err(OpenError::Other {
                interface: String::new(),
                message: "no interface given".into(),
            });
        }
        let filter = bpf_filter(&opts.ports);
        let mut handles = Vec::new();
        for name in &opts.interfaces {
            let snaplen = i32::try_from(opts.snaplen.max(1514)).unwrap_or(i32::MAX);
            let buffer = i32::try_from(u64::from(opts.buffer_mb.max(1)) << 20).unwrap_or(i32::MAX);
            let cap = Capture::from_device(name.as_str())
                .map_err(|e| classify(name, e))?
                .snaplen(snaplen)
                .immediate_mode(false)
                .timeout(BLOCK_TIMEOUT_MS)
                .buffer_size(buffer)
                .precision(Precision::Nano)
                .promisc(false)
                .open()
                .map_err(|e| classify(name, e))?;
            let mut cap = cap.setnonblock().map_err(|e| classify(name, e))?;
            // On `any`, prefer SLL2 (it carries the interface index), as tcpdump does.
            if let Ok(dl) = cap.list_datalinks() {
                if dl.contains(&Linktype(276)) && cap.get_datalink() == Linktype(113) {
                    let _ = cap.set_datalink(Linktype(276));
                }
            }
            cap.filter(&filter, true).map_err(|e| OpenError::Filter {
                filter: filter.clone(),
                message: e.to_string(),
            })?;
            // SAFETY: the handle is live for the duration of the call.
            let nanos = unsafe { pcap_get_tstamp_precision(cap.as_ptr().cast()) } == 1;
            let link = LinkType::from_dlt(cap.get_datalink().0 as u32);
            handles.push(Handle {
                name: name.clone(),
                cap,
                link,
                nanos,
            });
        }
        Ok(PcapLive {
            handles: RefCell::new(handles),
            filter,
            opts: opts.clone(),
            packets: 0,
            bytes: 0,
            truncated: 0,
            next: 0,
        })
    }

    /// The kernel filter in use.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Reads what is buffered now, without waiting. Returns the packets handed over.
    ///
    /// `pcap_dispatch`, not `pcap_next_ex`: on Linux's memory-mapped ring `pcap_next_ex` copies every
    /// packet out of the ring into a buffer of its own before returning it (the ring slot is released
    /// when it returns), which was 6% of the agent's CPU under the realistic load; `pcap_dispatch` hands
    /// each packet to the callback where it lies in the ring.
    fn drain(&mut self, max: usize, f: &mut dyn FnMut(&LivePacket<'_>)) -> io::Result<usize> {
        let handles = self.handles.get_mut();
        let n_handles = handles.len();
        let (mut n, mut bytes, mut truncated) = (0usize, 0u64, 0u64);
        for i in 0..n_handles {
            let h = &mut handles[(self.next + i) % n_handles];
            let (link, nanos) = (h.link, h.nanos);
            while n < max {
                let got = h.cap.dispatch(Some(max - n), |p| {
                    let tv = p.header.ts;
                    // time_t and suseconds_t are i64 here, narrower on other targets.
                    #[allow(clippy::useless_conversion)]
                    let frac = i64::from(tv.tv_usec);
                    let ns = if nanos { frac } else { frac * 1000 };
                    #[allow(clippy::useless_conversion)]
                    let ts = Timestamp::from_secs_nanos(
                        i64::from(tv.tv_sec),
                        ns.clamp(0, 999_999_999) as u32,
                    );
                    bytes += p.data.len() as u64;
                    if (p.data.len() as u64) < u64::from(p.header.len) {
                        truncated += 1;
                    }
                    f(&LivePacket {
                        ts,
                        link,
                        data: p.data,
                        orig_len: p.header.len,
                        owner: None,
                        plain: None,
                    });
                });
                match got {
                    Ok(0) | Err(pcap::Error::TimeoutExpired) => break,
                    Ok(k) => n += k,
                    Err(e) => {
                        self.packets += n as u64;
                        self.bytes += bytes;
                        self.truncated += truncated;
                        return Err(io::Error::other(format!("capture on {}: {e}", h.name)));
                    }
                }
            }
        }
        self.packets += n as u64;
        self.bytes += bytes;
        self.truncated += truncated;
        self.next = (self.next + 1) % n_handles.max(1);
        Ok(n)
    }
}

impl LiveSource for PcapLive {
    fn name(&self) -> &'static str {
        "pcap"
    }

    fn describe(&self) -> String {
        let handles = self.handles.borrow();
        let ifs: Vec<String> = handles
            .iter()
            .map(|h| format!("{} ({})", h.name, link_name(h.link)))
            .collect();
        let ts = if handles.iter().all(|h| h.nanos) {
            "ns"
        } else {
            "µs"
        };
        let mut s = format!(
            "{} on {}, kernel filter \"{}\", snaplen {}, {} MiB buffer per interface, {} timestamps, non-blocking",
            libpcap_version(),
            ifs.join(", "),
            self.filter,
            self.opts.snaplen,
            self.opts.buffer_mb,
            ts
        );
        if !self.opts.reason.is_empty() {
            s.push_str("; ");
            s.push_str(&self.opts.reason);
        }
        s
    }

    fn poll(
        &mut self,
        max: usize,
        timeout_ms: u32,
        f: &mut dyn FnMut(&LivePacket<'_>),
    ) -> io::Result<usize> {
        let max = max.max(1);
        let n = self.drain(max, f)?;
        if n > 0 || timeout_ms == 0 {
            return Ok(n);
        }
        let mut fds: Vec<libc::pollfd> = self
            .handles
            .get_mut()
            .iter()
            .map(|h| libc::pollfd {
                fd: h.cap.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: fds is a valid array of fds.len() pollfd structures for the duration of the call.
        let r = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout_ms.min(i32::MAX as u32) as libc::c_int,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0); // a signal: the caller checks its flags
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(0);
        }
        for (pfd, h) in fds.iter().zip(self.handles.get_mut().iter()) {
            if pfd.revents & libc::POLLNVAL != 0 {
                return Err(io::Error::other(format!(
                    "capture on {}: descriptor no longer valid",
                    h.name
                )));
            }
        }
        // POLLERR (e.g. the interface went down) is reported by libpcap on the read below.
        self.drain(max, f)
    }

    fn stats(&self) -> SourceStats {
        let mut s = SourceStats {
            packets: self.packets,
            bytes: self.bytes,
            truncated: self.truncated,
            ..SourceStats::default()
        };
        for h in self.handles.borrow_mut().iter_mut() {
            if let Ok(st) = h.cap.stats() {
                s.kernel_drops += u64::from(st.dropped);
                s.interface_drops += u64::from(st.if_dropped);
            }
        }
        s
    }

    fn set_ports(&mut self, ports: &[u16]) -> io::Result<()> {
        let filter = bpf_filter(ports);
        for h in self.handles.get_mut().iter_mut() {
            h.cap
                .filter(&filter, true)
                .map_err(|e| io::Error::other(format!("filter {filter:?} on {}: {e}", h.name)))?;
        }
        self.filter = filter;
        self.opts.ports = ports.to_vec();
        Ok(())
    }
}

/// The addresses of this network namespace's interfaces (libpcap's device list), for the fleet rule:
/// a connection whose client has one of them is this node's. Empty when the list cannot be read.
pub fn local_addresses() -> Result<Vec<std::net::IpAddr>, String> {
    let devs = pcap::Device::list().map_err(|e| format!("cannot list interfaces: {e}"))?;
    let mut out: Vec<std::net::IpAddr> = devs
        .iter()
        .flat_map(|d| d.addresses.iter().map(|a| a.addr))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    #[test]
    fn filter_text() {
        assert_eq!(bpf_filter(&[]), "tcp");
        assert_eq!(bpf_filter(&[9092, 9093]), "tcp port 9092 or tcp port 9093");
    }

    /// On loopback: an idle poll returns within its timeout (the non-blocking trap), traffic on the
    /// filtered port arrives with capture timestamps, and the drop counters read. Without CAP_NET_RAW the
    /// error must name the capability instead.
    #[test]
    fn loopback_poll_is_non_blocking_and_sees_traffic() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let opts = PcapOptions {
            interfaces: vec!["lo".into()],
            ports: vec![port],
            buffer_mb: 8,
            reason: "test".into(),
            ..PcapOptions::default()
        };
        let mut src = match PcapLive::open(&opts) {
            Ok(s) => s,
            Err(e) => {
                assert!(
                    e.is_permission() && e.to_string().contains("CAP_NET_RAW"),
                    "opening lo failed for another reason than permissions: {e}"
                );
                return;
            }
        };
        assert!(src.describe().contains(&format!("tcp port {port}")));
        let t = Instant::now();
        let n = src.poll(64, 150, &mut |_| {}).unwrap();
        assert_eq!(n, 0, "nothing on the port yet");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "idle poll took {:?}",
            t.elapsed()
        );

        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        c.write_all(b"hello kwire").unwrap();
        let mut buf = [0u8; 11];
        s.read_exact(&mut buf).unwrap();
        drop(c);
        drop(s);
        let mut seen = Vec::new();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end && seen.len() < 4 {
            src.poll(64, 100, &mut |p| {
                seen.push((p.ts, p.link, p.data.len(), p.orig_len));
            })
            .unwrap();
        }
        assert!(
            seen.len() >= 4,
            "SYN, SYN-ACK, ACK, data at least: {seen:?}"
        );
        for (ts, link, len, orig) in &seen {
            assert_eq!(*link, LinkType::Ethernet);
            assert!(*len as u32 <= *orig);
            assert!(ts.0 >= before - 1_000_000_000, "capture timestamp {ts:?}");
        }
        let st = src.stats();
        assert_eq!(st.packets as usize, seen.len());
        assert_eq!(st.kernel_drops, 0);
    }
}
