//! The Prometheus text exposition format (0.0.4) of a metrics snapshot, for `kwire run`'s `/metrics`
//! on the health port: clusters that scrape rather than push see the same series names and labels the
//! collector's Prometheus exporter makes from kwire's OTLP metrics (`catalog::prometheus_name`,
//! `catalog::prometheus_label`), so the dashboards work on either path.
//!
//! Written by hand, not with the `prometheus` or `prometheus-client` crates: both keep their own
//! registries of typed metrics, and kwire's metrics already live in [`crate::metrics::MetricState`]
//! (one place, bounded); turning its OTLP snapshot into the text format is ~100 lines, where a registry
//! would mean a second copy of every series.
//!
//! Easy to get wrong:
//! - histograms: OTLP buckets are per bucket, Prometheus `_bucket{le=..}` series are cumulative and end
//!   with `le="+Inf"` equal to `_count`;
//! - label values escape `\`, `"` and newlines; every series of one name is grouped under a single
//!   `# HELP`/`# TYPE` pair;
//! - resource attributes (`service.instance.id`, `k8s.node.name`, ...) become labels on every series,
//!   as the collector's exporter does with `resource_to_telemetry_conversion`; Prometheus adds `job` and
//!   `instance` itself.

use std::fmt::Write as _;

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, Metric as OtlpMetric,
};

use crate::catalog::{prometheus_label, prometheus_name, Metric};

/// The `content-type` of the text this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn value_str(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn labels(
    resource: &[(String, String)],
    attrs: &[KeyValue],
    extra: Option<(&str, String)>,
) -> String {
    let mut parts: Vec<String> = resource
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", prometheus_label(k), escape(v)))
        .collect();
    parts.extend(attrs.iter().map(|kv| {
        format!(
            "{}=\"{}\"",
            prometheus_label(&kv.key),
            escape(&value_str(kv))
        )
    }));
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{}\"", escape(&v)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn float(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        v.to_string()
    }
}

fn number(p: &Option<number_data_point::Value>) -> String {
    match p {
        Some(number_data_point::Value::AsInt(i)) => i.to_string(),
        Some(number_data_point::Value::AsDouble(d)) => float(*d),
        None => "0".to_string(),
    }
}

/// The text exposition of `metrics` (a `MetricState::snapshot`), each series labelled with the
/// `resource` attributes too. Metrics not in the catalog are left out (there are none: the snapshot
/// is made from the catalog).
pub fn render(metrics: &[OtlpMetric], resource: &[(String, String)]) -> String {
    let mut out = String::new();
    for m in metrics {
        let Some(def) = Metric::ALL
            .iter()
            .map(|c| c.def())
            .find(|d| d.name == m.name)
        else {
            continue;
        };
        let name = prometheus_name(&def);
        let help = def.description.replace('\\', "\\\\").replace('\n', "\\n");
        match &m.data {
            Some(Data::Sum(s)) => {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for p in &s.data_points {
                    let _ = writeln!(
                        out,
                        "{name}{} {}",
                        labels(resource, &p.attributes, None),
                        number(&p.value)
                    );
                }
            }
            Some(Data::Gauge(g)) => {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                for p in &g.data_points {
                    let _ = writeln!(
                        out,
                        "{name}{} {}",
                        labels(resource, &p.attributes, None),
                        number(&p.value)
                    );
                }
            }
            Some(Data::Histogram(h)) => {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
                for p in &h.data_points {
                    let mut cum = 0u64;
                    for (i, c) in p.bucket_counts.iter().enumerate() {
                        cum += c;
                        let le = p
                            .explicit_bounds
                            .get(i)
                            .map(|b| float(*b))
                            .unwrap_or_else(|| "+Inf".to_string());
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {cum}",
                            labels(resource, &p.attributes, Some(("le", le)))
                        );
                    }
                    if p.bucket_counts.is_empty() {
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {}",
                            labels(resource, &p.attributes, Some(("le", "+Inf".into()))),
                            p.count
                        );
                    }
                    let l = labels(resource, &p.attributes, None);
                    let _ = writeln!(out, "{name}_sum{l} {}", float(p.sum.unwrap_or(0.0)));
                    let _ = writeln!(out, "{name}_count{l} {}", p.count);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Health, MetricState};

    #[test]
    fn health_counters_and_escaping() {
        let mut s = MetricState::default();
        s.health = Health {
            packets: 42,
            kernel_drops: 3,
            flows_tracked: 7,
            ..Health::default()
        };
        let text = render(
            &s.snapshot(1_000_000_000),
            &[("k8s.node.name".into(), "node \"a\"\\1".into())],
        );
        assert!(
            text.contains("# TYPE kwire_packets_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("kwire_packets_total{k8s_node_name=\"node \\\"a\\\"\\\\1\"} 42\n"),
            "{text}"
        );
        assert!(
            text.contains("kwire_capture_drops_total{k8s_node_name=\"node \\\"a\\\"\\\\1\",kwire_drop_reason=\"kernel\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE kwire_flows_tracked gauge\n"),
            "{text}"
        );
        // One HELP/TYPE pair per name.
        assert_eq!(text.matches("# TYPE kwire_capture_drops_total ").count(), 1);
    }
}
