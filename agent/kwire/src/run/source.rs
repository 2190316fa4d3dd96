//! The live source of `kwire run` (eBPF, or libpcap) and what the agent reads from the host to
//! configure it: `--source auto` tries eBPF first and says why it fell back; the fleet rule's node
//! networks come from the OS here, so the engine (which does no IO) gets them as configuration.
//!
//! Easy to get wrong: `--interface` under `--source auto` means libpcap (only libpcap can pick
//! interfaces; eBPF sees every socket of the host), and under `--source ebpf` it is ignored with a
//! warning; the fleet rule's flags and variables win over `[fleet]`, and no cluster CIDR turns it off.

use serde_json::{json, Value};

use kwire_capture::ebpf::{self, EbpfOptions};
use kwire_capture::pcap_live::{PcapLive, PcapOptions};
use kwire_capture::{LiveSource, SourceStats};

use super::log::Log;
use super::{RunArgs, SourceKind};
use crate::config;

/// Opens the source asked for; `auto` tries eBPF first and says why it fell back.
pub fn open(args: &RunArgs, ports: &[u16], log: &Log) -> Result<Box<dyn LiveSource>, String> {
    // Not given: every interface. Given: the user chose where to capture, which only libpcap can honour.
    let chosen = !args.interface.is_empty();
    let interfaces = if chosen {
        args.interface.clone()
    } else {
        vec!["any".to_string()]
    };
    let pcap = |reason: String| -> Result<Box<dyn LiveSource>, String> {
        let opts = PcapOptions {
            interfaces: interfaces.clone(),
            ports: ports.to_vec(),
            snaplen: args.snaplen,
            buffer_mb: args.pcap_buffer_mb,
            reason,
        };
        PcapLive::open(&opts)
            .map(|s| Box::new(s) as Box<dyn LiveSource>)
            .map_err(|e| e.to_string())
    };
    let ebpf_opts = EbpfOptions {
        ports: ports.to_vec(),
        cgroup: args.ebpf_cgroup.clone(),
        snap_len: args.snaplen,
        tls_uprobes: args.tls_uprobes == "on",
        tls_libs: args.tls_lib.clone(),
        tls_rescan_ms: 0,
    };
    let ifs = interfaces.join(",");
    match args.source {
        SourceKind::Pcap => pcap("libpcap chosen with --source pcap".into()),
        SourceKind::Ebpf => {
            if chosen {
                log.warn(
                    &format!("--interface {ifs} is ignored by --source ebpf: it sees the sockets of every interface"),
                    json!({"interface": ifs}),
                );
            }
            ebpf::open(&ebpf_opts).map_err(|r| format!("eBPF source unavailable: {r}"))
        }
        SourceKind::Auto if chosen => {
            log.info(
                &format!("--interface {ifs} given: using libpcap on {ifs} (--source auto)"),
                json!({"source": "pcap", "interface": ifs}),
            );
            pcap(format!("--interface {ifs} given with --source auto"))
        }
        SourceKind::Auto => match ebpf::open(&ebpf_opts) {
            Ok(s) => {
                log.info("using eBPF (--source auto)", json!({}));
                Ok(s)
            }
            Err(reason) => {
                log.info(
                    &format!("eBPF unavailable: {reason}; using libpcap on {ifs}"),
                    json!({"source": "pcap", "ebpf_error": reason}),
                );
                pcap(format!("eBPF unavailable: {reason}"))
            }
        },
    }
}

/// The source's counters for the JSON summary's `"capture"`, with its name and description.
pub fn stats_json(name: &str, describe: &str, st: &SourceStats) -> Value {
    let mut v = serde_json::to_value(st).unwrap_or_else(|_| json!({}));
    if let Some(m) = v.as_object_mut() {
        m.insert("source".into(), name.into());
        m.insert("description".into(), describe.into());
    }
    v
}

/// The fleet rule's configuration: flags/env win over `[fleet]`; this node's addresses from its
/// interfaces plus `--node-cidrs`. None when no cluster CIDRs are given (rule off).
pub fn fleet(args: &RunArgs) -> Result<Option<kwire_engine::fleet::FleetConfig>, String> {
    use kwire_engine::fleet::{parse_cidrs, IpNet};
    let file = config::fleet_config(args.engine.config.as_deref())?;
    let pick = |flag: &[String], file: &[String]| {
        if flag.is_empty() {
            file.join(",")
        } else {
            flag.join(",")
        }
    };
    let cluster = parse_cidrs(&pick(&args.cluster_cidrs, &file.cluster_cidrs))
        .map_err(|e| format!("--cluster-cidrs: {e}"))?;
    if cluster.is_empty() {
        return Ok(None);
    }
    let mut local = parse_cidrs(&pick(&args.node_cidrs, &file.node_cidrs))
        .map_err(|e| format!("--node-cidrs: {e}"))?;
    let addrs = kwire_capture::pcap_live::local_addresses()?;
    local.extend(addrs.into_iter().map(IpNet::from));
    Ok(Some(kwire_engine::fleet::FleetConfig {
        cluster_cidrs: cluster,
        local,
    }))
}
