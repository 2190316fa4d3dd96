//! How fast the OTLP exporter delivers: the exchanges and alerts of a capture, fed N times (each copy on
//! other connection ids, so every span has its own ids), with backpressure (nothing dropped), to a
//! collector; prints spans and alerts delivered per second, end to end (queue, batching, encoding, send).
//!
//! `cargo run --release -p kwire-export --example export_rate -- CAPTURE N http://127.0.0.1:4317 grpc`
//! (a collector with `--exporter blackhole` measures kwire, not the backend). Easy to get wrong: the
//! engine runs once, before the clock starts; only the export is timed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kwire_capture::PcapFile;
use kwire_engine::{Engine, EngineConfig, Output};
use kwire_export::exporter::resource_attributes;
use kwire_export::{ExportOptions, Exporter, Health, OtlpFileConfig, OtlpSettings};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        eprintln!("usage: export_rate CAPTURE COPIES ENDPOINT grpc|http/protobuf");
        std::process::exit(2);
    }
    let copies: u64 = a[2].parse().expect("COPIES");
    let mut outs = Vec::new();
    let mut f = PcapFile::open(std::path::Path::new(&a[1])).expect("capture");
    let cfg = EngineConfig {
        exchange_facts: true,
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg);
    let mut keep = |o: Output| {
        if matches!(o, Output::Exchange(_) | Output::Alert(_)) {
            outs.push(o)
        }
    };
    while let Ok(Some(p)) = f.next_packet() {
        e.on_packet(p.ts, p.link, p.data, &mut keep);
    }
    e.finish(&mut keep);
    let (ep, proto) = (a[3].clone(), a[4].clone());
    let env = move |k: &str| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(ep.clone()),
        "OTEL_EXPORTER_OTLP_PROTOCOL" => Some(proto.clone()),
        _ => None,
    };
    let opts = ExportOptions {
        settings: OtlpSettings::resolve(&OtlpFileConfig::default(), &env).expect("settings"),
        spans: true,
        sample_ratio: 1.0,
        metrics_interval: Duration::from_secs(3600),
        spool_dir: None,
        spool_max_bytes: 64 << 20,
        queue_size: 8192,
        backpressure: true,
        resource: resource_attributes(&Default::default(), &|_| None),
        semconv: Default::default(),
    };
    let mut x = Exporter::start(opts, Arc::new(|_, m| eprintln!("{m}"))).expect("exporter");
    let t = Instant::now();
    let mut last = kwire_flow::Timestamp(0);
    for i in 0..copies {
        for o in &outs {
            match o {
                Output::Exchange(r) => {
                    let mut r = r.clone();
                    r.conn.id += i * 1_000_000;
                    last = r.exchange.request_ts;
                    x.on_output(&Output::Exchange(r));
                }
                Output::Alert(al) => {
                    let mut al = al.clone();
                    al.exchange = al.exchange.map(|(c, k, ts)| (c + i * 1_000_000, k, ts));
                    x.on_output(&Output::Alert(al));
                }
                _ => {}
            }
        }
    }
    let r = x.finish(last, &Health::default(), Duration::from_secs(120));
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} spans, {} alerts delivered in {:.2} s: {:.0} spans/s, {:.0} alerts/s; dropped {:?}",
        r.spans_delivered,
        r.alerts_delivered,
        secs,
        r.spans_delivered as f64 / secs,
        r.alerts_delivered as f64 / secs,
        r.dropped
    );
}
