//! The metrics state as OTLP and `/metrics` carry it, for ten harness fixtures chosen to cover every
//! metric (produce with errors and leader moves, consumer groups committing, follower fetches, lag,
//! transactions, alerts): what replaying each fixture counted, one line per data point (histograms
//! with their count, sum, min, max and bucket counts), pinned byte for byte in
//! `golden/metrics_points.txt` (`UPDATE_EXPECT=1 cargo test -p kwire-export --test metrics_page`
//! rewrites it after a deliberate change). It guards the series keys and attribute values, their order,
//! the histogram buckets and the lag arithmetic against refactors of `metrics.rs`; the Prometheus text
//! format itself is tested in `prometheus.rs`.

use std::path::{Path, PathBuf};

use kwire_capture::PcapFile;
use kwire_engine::{Engine, EngineConfig, Output};
use kwire_export::metrics::MetricState;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};

const FIXTURES: &[&str] = &[
    "acked-lost-restart-tansu.pcap",
    "acks1-leader-change-mock.pcap",
    "commit-after-revoke-cooperative-mock.pcap",
    "follower-fetch-hwm-regression-mock.pcap",
    "group-kafka-python-tansu.pcap",
    "listoffsets-metadata-tansu.pcap",
    "offset-reset-jump-mock.pcap",
    "produce-compression-librdkafka-tansu.pcap",
    "produce-rejected-mock.pcap",
    "txn-offset-commit-mock.pcap",
];

fn attrs(kv: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> String {
    let mut out = Vec::new();
    for a in kv {
        let v = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => format!("{s:?}"),
            Some(Value::IntValue(i)) => i.to_string(),
            other => format!("{other:?}"),
        };
        out.push(format!("{}={v}", a.key));
    }
    out.join(",")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn points(pcap: &Path) -> String {
    let mut f = PcapFile::open(pcap).expect("fixture opens");
    let mut e = Engine::new(EngineConfig {
        exchange_facts: true,
        ..EngineConfig::default()
    });
    let mut state = MetricState::default();
    let mut feed = |o: Output| match &o {
        Output::Exchange(x) => state.on_exchange(x),
        Output::Alert(a) => state.on_alert(a),
        _ => {}
    };
    while let Ok(Some(p)) = f.next_packet() {
        e.on_packet(p.ts, p.link, p.data, &mut feed);
    }
    e.finish(&mut feed);
    let mut out = String::new();
    for m in state.snapshot(1_700_000_000_000_000_000) {
        match &m.data {
            Some(Data::Histogram(h)) => {
                for p in &h.data_points {
                    out.push_str(&format!(
                        "{}{{{}}} count={} sum={:?} min={:?} max={:?} buckets={:?}\n",
                        m.name,
                        attrs(&p.attributes),
                        p.count,
                        p.sum,
                        p.min,
                        p.max,
                        p.bucket_counts
                    ));
                }
            }
            Some(Data::Sum(s)) => number_points(&mut out, &m.name, &s.data_points),
            Some(Data::Gauge(g)) => number_points(&mut out, &m.name, &g.data_points),
            other => out.push_str(&format!("{} {other:?}\n", m.name)),
        }
    }
    out
}

fn number_points(
    out: &mut String,
    name: &str,
    points: &[opentelemetry_proto::tonic::metrics::v1::NumberDataPoint],
) {
    for p in points {
        let v = match p.value {
            Some(number_data_point::Value::AsInt(i)) => i.to_string(),
            other => format!("{other:?}"),
        };
        out.push_str(&format!("{name}{{{}}} {v}\n", attrs(&p.attributes)));
    }
}

#[test]
fn points_of_ten_fixtures() {
    let dir = repo().join("tests/fixtures/harness");
    let mut all = String::new();
    for f in FIXTURES {
        all.push_str(&format!("===== {f}\n"));
        all.push_str(&points(&dir.join(f)));
    }
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/metrics_points.txt");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&golden, &all).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden).expect("golden file (UPDATE_EXPECT=1 writes it)");
    if want != all {
        let at = want
            .lines()
            .zip(all.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(all.lines().count()));
        panic!(
            "metrics points differ from golden/metrics_points.txt at line {}:\n  want: {:?}\n  got:  {:?}",
            at + 1,
            want.lines().nth(at),
            all.lines().nth(at)
        );
    }
}
