//! The OpenTelemetry collector the checks export to, and what it received: rotel (`cargo xtask setup`
//! installs it into .tools/venv) started on loopback or in a network namespace, its debug text
//! (`--debug-log traces/logs/metrics --debug-log-verbosity detailed`) parsed into typed spans, log
//! records and metric points. Used by `live`, `fleet-check` and `bench` (a blackhole for the OTLP row).
//!
//! The debug text, as rotel prints it (one item per block; attributes are `-> key: Type(value)` lines):
//!
//! ```text
//! ResourceSpans #0 / ResourceLog #0 / ResourceMetrics #0
//! Resource attributes:
//!      -> service.name: Str(kwire)
//! Span #0                       LogRecord #0              Metric #0
//! Attributes:                   Attributes:               Descriptor:
//!      -> kwire.api: Str(..)         -> kwire.alert.id: ..     -> Name: kwire.packets
//!                                                         NumberDataPoints #0 (or HistogramDataPoints)
//!                                                         Data point attributes:
//!                                                              -> kwire.api: Str(Fetch)
//!                                                         Value: 12 (histograms: Count: 12)
//! ```
//!
//! Easy to get wrong: metric descriptors and data points carry `-> ` lines too (a `kwire.alert.kind`
//! attribute of the kwire.alerts metric is not an alert): every attribute belongs to the block it is
//! in. A histogram's buckets print `Buckets #n, Count: c`: only a line starting with `Count:` is the
//! point's count. A collector shared by several runs is read from the byte offset a run started at.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, Result};

use crate::agent;
use crate::broker;
use crate::proc::{Out, Proc};
use crate::tools::Paths;

/// Where rotel listens and what it does with what it receives.
pub struct Config<'a> {
    /// Its files: rotel.out (the debug text), rotel.log, rotel.pid, rotel.stderr.
    pub dir: &'a Path,
    /// The network namespace it runs in (`ip netns exec`), and the address it listens on there.
    pub netns: Option<&'a str>,
    pub host: &'a str,
    /// gRPC and HTTP ports (free loopback ports when None).
    pub ports: Option<(u16, u16)>,
    pub mode: Mode,
}

/// What rotel does with what it receives.
#[derive(PartialEq)]
pub enum Mode {
    /// Prints every span, log record and metric point (unbatched) to rotel.out, to be read back.
    Print,
    /// Drops it (batched, as a deployment would): a load's sink.
    Discard,
}

/// A running rotel, killed on drop.
pub struct Collector {
    proc: Proc,
    out: PathBuf,
    pub grpc_port: u16,
}

fn rotel(paths: &Paths) -> Result<PathBuf> {
    fs::read_dir(paths.venv().join("lib"))
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("site-packages/rotel/rotel-agent"))
        .find(|p| p.exists())
        .ok_or_else(|| anyhow!("rotel not installed: run `cargo xtask setup`"))
}

impl Collector {
    pub fn start(paths: &Paths, cfg: Config) -> Result<Collector> {
        let bin = rotel(paths)?;
        let (grpc_port, http_port) = match cfg.ports {
            Some(p) => p,
            None => (broker::free_port()?, broker::free_port()?),
        };
        fs::create_dir_all(cfg.dir)?;
        let mut cmd = match cfg.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.args(["start", "--otlp-grpc-endpoint"])
            .arg(format!("{}:{grpc_port}", cfg.host))
            .arg("--otlp-http-endpoint")
            .arg(format!("{}:{http_port}", cfg.host))
            .args(["--exporter", "blackhole"]);
        if cfg.mode == Mode::Print {
            cmd.arg("--disable-batching");
            for signal in ["traces", "logs", "metrics"] {
                cmd.args(["--debug-log", signal]);
            }
            cmd.args(["--debug-log-verbosity", "detailed"]);
        }
        cmd.arg("--pid-file")
            .arg(cfg.dir.join("rotel.pid"))
            .arg("--log-file")
            .arg(cfg.dir.join("rotel.log"))
            .current_dir(cfg.dir);
        let out = cfg.dir.join("rotel.out");
        let _ = fs::remove_file(&out);
        let stdout = match cfg.mode {
            Mode::Print => Out::File(&out),
            Mode::Discard => Out::Null,
        };
        let stderr = cfg.dir.join("rotel.stderr");
        let _ = fs::remove_file(&stderr);
        let proc = Proc::spawn("rotel", &mut cmd, false, stdout, Out::File(&stderr))?;
        let addr: SocketAddr = format!("{}:{grpc_port}", cfg.host).parse()?;
        agent::wait_listening(cfg.netns, addr, Duration::from_secs(10))
            .map_err(|e| anyhow!("rotel: {e} (see {})", cfg.dir.display()))?;
        Ok(Collector {
            proc,
            out,
            grpc_port,
        })
    }

    /// Bytes printed so far: a later [`Collector::received_since`] reads only what came after.
    pub fn printed(&self) -> usize {
        fs::metadata(&self.out).map_or(0, |m| m.len() as usize)
    }

    pub fn received(&self) -> Received {
        self.received_since(0)
    }

    /// What it printed after `from` bytes.
    pub fn received_since(&self, from: usize) -> Received {
        let bytes = fs::read(&self.out).unwrap_or_default();
        parse(&String::from_utf8_lossy(&bytes[from.min(bytes.len())..]))
    }

    pub fn stop(&mut self) {
        self.proc.kill();
    }
}

/// An attribute as printed: key and typed value text, e.g. ("kwire.api", "Str(Fetch)").
pub type Attr = (String, String);

/// A span or a log record.
#[derive(Debug, Default)]
pub struct Item {
    /// The resource's `service.name`.
    pub service: String,
    pub attrs: Vec<Attr>,
}

impl Item {
    /// An attribute's typed value text (`Str(x)`, `Int(1)`).
    pub fn attr(&self, key: &str) -> Option<&str> {
        attr(&self.attrs, key)
    }

    /// A string attribute's value (inside `Str(...)`).
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attr(key)?.strip_prefix("Str(")?.strip_suffix(')')
    }
}

/// One data point of a metric.
#[derive(Debug, Default)]
pub struct Point {
    pub service: String,
    pub metric: String,
    pub attrs: Vec<Attr>,
    /// `Value:` of a number point, `Count:` of a histogram point.
    pub value: Option<String>,
}

/// Everything the collector printed.
#[derive(Debug, Default)]
pub struct Received {
    pub spans: Vec<Item>,
    pub logs: Vec<Item>,
    pub points: Vec<Point>,
    /// Names of every metric described (with or without points).
    pub metrics: BTreeSet<String>,
}

fn attr<'a>(attrs: &'a [Attr], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The block a line is in.
#[derive(Clone, Copy, PartialEq)]
enum Block {
    Resource,
    Span,
    Log,
    Descriptor,
    Point,
    Other,
}

/// Parses rotel's debug text.
pub fn parse(text: &str) -> Received {
    let mut r = Received::default();
    let mut block = Block::Other;
    let (mut service, mut metric) = (String::new(), String::new());
    for l in text.lines().map(str::trim) {
        if l.starts_with("ResourceSpans #")
            || l.starts_with("ResourceLog")
            || l.starts_with("ResourceMetrics #")
        {
            block = Block::Resource;
            service.clear();
        } else if l.starts_with("Span #") {
            block = Block::Span;
            r.spans.push(Item {
                service: service.clone(),
                ..Item::default()
            });
        } else if l.starts_with("LogRecord #") {
            block = Block::Log;
            r.logs.push(Item {
                service: service.clone(),
                ..Item::default()
            });
        } else if l.starts_with("Metric #") {
            block = Block::Other;
            metric.clear();
        } else if l == "Descriptor:" {
            block = Block::Descriptor;
        } else if l.contains("DataPoints #") {
            block = Block::Point;
            r.points.push(Point {
                service: service.clone(),
                metric: metric.clone(),
                ..Point::default()
            });
        } else if l.starts_with("Scope") {
            block = Block::Other;
        } else if let Some((k, v)) = l.strip_prefix("-> ").and_then(|a| a.split_once(": ")) {
            let a = (k.to_string(), v.to_string());
            match block {
                Block::Resource if k == "service.name" => {
                    service = v.trim_start_matches("Str(").trim_end_matches(')').into();
                }
                Block::Span => r.spans.last_mut().expect("in a span").attrs.push(a),
                Block::Log => r.logs.last_mut().expect("in a log record").attrs.push(a),
                Block::Descriptor if k == "Name" => {
                    metric = v.to_string();
                    r.metrics.insert(metric.clone());
                }
                Block::Point => r.points.last_mut().expect("in a point").attrs.push(a),
                _ => {}
            }
        } else if let (Block::Point, Some(v)) = (
            block,
            l.strip_prefix("Value: ")
                .or_else(|| l.strip_prefix("Count: ")),
        ) {
            r.points.last_mut().expect("in a point").value = Some(v.to_string());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "ResourceSpans #0
Resource attributes:
     -> service.name: Str(kwire-a)
ScopeSpans #0
Span #0
    Name           : ApiVersions 127.0.0.1:44765
Attributes:
     -> kwire.api: Str(ApiVersions)
     -> kwire.client.cgroup_id: Int(1)
ResourceLog #0
Resource attributes:
     -> service.name: Str(kwire-b)
ScopeLogs #0
LogRecord #0
Attributes:
     -> kwire.alert.id: Str(48be)
     -> kwire.alert.kind: Str(weak_acks)
ResourceMetrics #0
Resource attributes:
     -> service.name: Str(kwire-a)
ScopeMetrics #0
Metric #0
Descriptor:
     -> Name: kwire.alerts
     -> DataType: Sum
NumberDataPoints #0
Data point attributes:
     -> kwire.alert.kind: Str(weak_acks)
Value: 2
Metric #1
Descriptor:
     -> Name: kwire.request.duration
HistogramDataPoints #0
Data point attributes:
     -> kwire.api: Str(Fetch)
Count: 4
Buckets #6, Count: 1
";

    #[test]
    fn every_attribute_belongs_to_its_block() {
        let r = parse(TEXT);
        assert_eq!(r.spans.len(), 1);
        assert_eq!(r.spans[0].service, "kwire-a");
        assert_eq!(r.spans[0].attr("kwire.client.cgroup_id"), Some("Int(1)"));
        assert_eq!(r.logs.len(), 1);
        assert_eq!(r.logs[0].service, "kwire-b");
        assert_eq!(r.logs[0].str_attr("kwire.alert.kind"), Some("weak_acks"));
        assert_eq!(r.logs[0].str_attr("kwire.alert.id"), Some("48be"));
        assert_eq!(r.points.len(), 2);
        let (p, h) = (&r.points[0], &r.points[1]);
        assert_eq!(
            (p.service.as_str(), p.metric.as_str()),
            ("kwire-a", "kwire.alerts")
        );
        assert_eq!(attr(&p.attrs, "kwire.alert.kind"), Some("Str(weak_acks)"));
        assert_eq!(p.value.as_deref(), Some("2"));
        assert_eq!(h.metric, "kwire.request.duration");
        assert_eq!(h.value.as_deref(), Some("4"));
        assert!(r.metrics.contains("kwire.alerts") && !r.metrics.contains("Sum"));
    }
}
