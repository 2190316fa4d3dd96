//! `--otlp` for `kwire replay` and `kwire run`: the flags, how they combine with the standard
//! `OTEL_EXPORTER_OTLP_*` variables and the config file's `[otlp]` section, and the exporter's health
//! from the engine and the source.
//!
//! Easy to get wrong: precedence is flag > environment > config file > default, for the endpoint and
//! protocol too (the flags are passed to the settings resolver as if they were the standard variables);
//! the exporter never makes `kwire` fail to start because the collector is down, only because of bad
//! settings; at the end, alerts that could not be delivered and are not spooled are an error (exit 1).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use kwire_capture::SourceStats;
use kwire_engine::Engine;
use kwire_export::exporter::{
    resource_attributes, DEFAULT_METRICS_INTERVAL, DEFAULT_QUEUE_SIZE, DEFAULT_SPOOL_MAX_MB,
};
use kwire_export::{
    ExportOptions, ExportReport, Exporter, Health, LogFn, OtlpFileConfig, OtlpSettings,
};

#[derive(Args, Clone, Debug, Default)]
pub struct OtlpArgs {
    /// Export alerts (log records), exchanges (spans) and metrics over OTLP. Endpoint, protocol, headers
    /// and TLS from the standard OTEL_EXPORTER_OTLP_* variables or the config file's [otlp] section.
    #[arg(long, env = "KWIRE_OTLP")]
    pub otlp: bool,
    /// OTLP endpoint (overrides OTEL_EXPORTER_OTLP_ENDPOINT), e.g. http://collector:4317.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// OTLP protocol: grpc or http/protobuf (overrides OTEL_EXPORTER_OTLP_PROTOCOL).
    #[arg(long, value_name = "PROTOCOL")]
    pub otlp_protocol: Option<String>,
    /// Directory where alerts wait while the backend is unreachable (re-sent, oldest first, when it
    /// answers again, also by the next run). Without it they wait in memory only.
    #[arg(long, env = "KWIRE_OTLP_SPOOL", value_name = "DIR")]
    pub otlp_spool: Option<PathBuf>,
    /// Bound of the spool in MB; when full the oldest alerts are dropped (counted, logged). Default 64.
    #[arg(long, env = "KWIRE_OTLP_SPOOL_MAX_MB", value_name = "MB")]
    pub otlp_spool_max_mb: Option<u64>,
    /// Fraction of exchanges exported as spans, 0..1 (the exchange behind an alert is always kept).
    /// Default 1; OTEL_TRACES_SAMPLER=traceidratio with OTEL_TRACES_SAMPLER_ARG is honoured too.
    #[arg(long, env = "KWIRE_OTLP_SAMPLE_RATIO", value_name = "RATIO")]
    pub otlp_sample_ratio: Option<f64>,
}

/// The exporter asked for, or None without `--otlp` / `[otlp] enabled = true`.
pub fn start(
    args: &OtlpArgs,
    file: &OtlpFileConfig,
    backpressure: bool,
    log: LogFn,
) -> Result<Option<Exporter>, String> {
    let env = |k: &str| std::env::var(k).ok();
    if !(args.otlp || file.enabled == Some(true)) {
        return Ok(None);
    }
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        log(
            kwire_export::LogLevel::Info,
            "OTEL_SDK_DISABLED=true: OTLP export off".into(),
        );
        return Ok(None);
    }
    let endpoint = args.otlp_endpoint.clone();
    let protocol = args.otlp_protocol.clone();
    let lookup = move |k: &str| -> Option<String> {
        match k {
            "OTEL_EXPORTER_OTLP_ENDPOINT" if endpoint.is_some() => endpoint.clone(),
            "OTEL_EXPORTER_OTLP_PROTOCOL" if protocol.is_some() => protocol.clone(),
            // An explicit flag also wins over the per-signal variables.
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
            | "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
            | "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
                if endpoint.is_some() =>
            {
                None
            }
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"
            | "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
            | "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
                if protocol.is_some() =>
            {
                None
            }
            _ => std::env::var(k).ok(),
        }
    };
    let settings = OtlpSettings::resolve(file, &lookup)?;
    let sample_ratio = match args.otlp_sample_ratio.or(file.sample_ratio) {
        Some(r) => r,
        None => match (env("OTEL_TRACES_SAMPLER"), env("OTEL_TRACES_SAMPLER_ARG")) {
            (Some(s), Some(a)) if s.ends_with("traceidratio") => {
                a.trim().parse::<f64>().map_err(|_| {
                    format!("OTEL_TRACES_SAMPLER_ARG={a:?} is not a number between 0 and 1")
                })?
            }
            (Some(s), None) if s.ends_with("traceidratio") => 1.0,
            (Some(s), _) if s.ends_with("always_off") => 0.0,
            _ => 1.0,
        },
    };
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err(format!(
            "OTLP sample ratio {sample_ratio} is out of range: give a number from 0 to 1"
        ));
    }
    let opts = ExportOptions {
        settings,
        spans: file.spans.unwrap_or(true),
        sample_ratio,
        metrics_interval: file
            .metrics_interval_s
            .map(|s| Duration::from_secs(s.max(1)))
            .unwrap_or(DEFAULT_METRICS_INTERVAL),
        spool_dir: args.otlp_spool.clone().or_else(|| file.spool_dir.clone()),
        spool_max_bytes: args
            .otlp_spool_max_mb
            .or(file.spool_max_mb)
            .unwrap_or(DEFAULT_SPOOL_MAX_MB)
            .saturating_mul(1 << 20),
        queue_size: file.queue_size.unwrap_or(DEFAULT_QUEUE_SIZE),
        backpressure,
        resource: resource_attributes(&file.resource, &env),
        semconv: kwire_export::catalog::Semconv::resolve(
            env("OTEL_SEMCONV_STABILITY_OPT_IN").as_deref(),
            env("KWIRE_OTLP_SEMCONV")
                .or_else(|| file.semconv.clone())
                .as_deref(),
        )?,
    };
    log(
        kwire_export::LogLevel::Info,
        format!(
            "OTLP export to {} (spans: {}, sample ratio {}, spool: {})",
            opts.settings,
            opts.spans,
            opts.sample_ratio,
            opts.spool_dir
                .as_ref()
                .map_or("memory only".to_string(), |d| d.display().to_string())
        ),
    );
    Exporter::start(opts, log).map(Some)
}

/// The agent's health counters as the metrics report them.
pub fn health(engine: &Engine, source: Option<&SourceStats>) -> Health {
    let s = engine.live_summary();
    let mut h = Health {
        packets: s.packets.packets,
        bytes: s.packets.bytes,
        tcp_gaps: s.tcp.gaps,
        desyncs: s.kafka.desyncs,
        orphans: s.kafka.orphans,
        flows_tracked: engine.flows_tracked() as u64,
        flows_evicted_full: s.flows.evicted_full,
        flows_refused: s.flows.refused_table_full,
        ..Health::default()
    };
    if let Some(st) = source {
        h.kernel_drops = st.kernel_drops;
        h.interface_drops = st.interface_drops;
        h.ring_drops = st.ring_drops;
    }
    h
}

/// One line about what the export did, and whether it is a failure (alerts neither delivered nor
/// spooled).
pub fn describe(r: &ExportReport, spool: bool) -> (String, bool) {
    let mut msg = format!(
        "OTLP: {} alerts, {} spans, {} metric exports delivered",
        r.alerts_delivered, r.spans_delivered, r.metric_exports
    );
    if r.alerts_spooled > 0 {
        msg.push_str(&format!(
            "; {} alerts wait in the spool (re-sent by the next run with the same --otlp-spool)",
            r.alerts_spooled
        ));
    }
    let dropped: u64 = r.dropped.values().sum();
    if dropped > 0 {
        let parts: Vec<String> = r
            .dropped
            .iter()
            .map(|((s, why), n)| format!("{s} {why} {n}"))
            .collect();
        msg.push_str(&format!("; not delivered: {}", parts.join(", ")));
    }
    // Alerts dropped by policy (spool full, rejected by the backend) are counted and logged as they
    // go; at the end they also make the run fail, like alerts that could not be kept at all.
    let alerts_dropped: u64 = r
        .dropped
        .iter()
        .filter(|((signal, _), _)| *signal == "logs")
        .map(|(_, n)| n)
        .sum();
    let failed = r.alerts_undelivered > 0 || alerts_dropped > 0;
    if r.alerts_undelivered > 0 {
        msg.push_str(&format!(
            "; {} alerts could NOT be delivered{}",
            r.alerts_undelivered,
            if spool {
                ""
            } else {
                " (use --otlp-spool DIR to keep them for the next run)"
            }
        ));
    }
    if let Some(e) = &r.last_error {
        if failed || dropped > 0 || r.alerts_spooled > 0 {
            msg.push_str(&format!("; last error: {e}"));
        }
    }
    (msg, failed)
}

/// A log function writing plain `kwire: ...` lines to stderr (replay).
pub fn stderr_log() -> LogFn {
    Arc::new(|level, msg| match level {
        kwire_export::LogLevel::Info => eprintln!("kwire: {msg}"),
        kwire_export::LogLevel::Warn => eprintln!("kwire: warning: {msg}"),
        kwire_export::LogLevel::Error => eprintln!("kwire: error: {msg}"),
    })
}
