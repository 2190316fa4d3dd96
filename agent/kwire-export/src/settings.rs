//! OTLP exporter settings: where each signal (logs, traces, metrics) goes and how, resolved from the
//! standard `OTEL_EXPORTER_OTLP_*` environment variables and the `[otlp]` section of the config file,
//! following the OTLP exporter specification
//! (<https://opentelemetry.io/docs/specs/otel/protocol/exporter/>).
//!
//! Precedence, per signal and per option: `OTEL_EXPORTER_OTLP_<SIGNAL>_<OPTION>` >
//! `OTEL_EXPORTER_OTLP_<OPTION>` > the file's per-signal key (`logs_endpoint`, ...; only endpoints have
//! one) > the file's generic key > the default. An environment variable set to the empty string counts as
//! unset (the specification says so). Headers are replaced as a whole by the most specific source, never
//! merged.
//!
//! Defaults: protocol `http/protobuf`, the specification's default and the default of the OpenTelemetry
//! SDKs (opentelemetry-otlp for Rust since 0.2x, Java 2.x, JavaScript), so an agent dropped next to a
//! collector configured by the book works without settings; endpoint `http://localhost:4318` for
//! http/protobuf and `http://localhost:4317` for grpc; timeout 10 s; no compression.
//!
//! Easy to get wrong:
//! - With http/protobuf the GENERIC endpoint is a base URL: `/v1/logs` (`/v1/traces`, `/v1/metrics`) is
//!   appended to its path, after removing one trailing slash (`http://c:4318/` and `http://c:4318` both
//!   give `http://c:4318/v1/logs`; `http://c:4318/otlp` gives `http://c:4318/otlp/v1/logs`). A PER-SIGNAL
//!   endpoint is used exactly as given, even without a path. With grpc nothing is appended.
//! - A grpc endpoint may come without a scheme (`collector:4317`): then `insecure` decides, TLS unless
//!   `insecure=true`. http/protobuf endpoints must have `http://` or `https://`. `insecure` never turns
//!   TLS off for an `https://` endpoint.
//! - Timeouts: milliseconds in the environment (`OTEL_EXPORTER_OTLP_TIMEOUT=10000`), SECONDS in the file
//!   (`timeout_s = 10`).
//! - Header values carry credentials (`authorization=Bearer ...`, `api-key=...`): nothing here prints
//!   them, not `Debug`, not `Display`, not error messages (which name the header, never its value).
//!   Keep it that way in every caller.
//! - `http/json` is a valid OTLP protocol that we do not implement: it is refused with a message, never
//!   silently sent as protobuf.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Default per-request timeout (the specification's 10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default endpoint for grpc.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Default base endpoint for http/protobuf (`/v1/<signal>` is appended).
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";

/// The `[otlp]` section of the config file. Every key is optional.
#[derive(Deserialize, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpFileConfig {
    /// Export at all (the exporter decides what absent means).
    pub enabled: Option<bool>,
    /// Generic endpoint (base URL for http/protobuf).
    pub endpoint: Option<String>,
    /// `grpc` or `http/protobuf`.
    pub protocol: Option<String>,
    /// Extra request headers (gRPC metadata). Values are secrets: never printed.
    pub headers: BTreeMap<String, String>,
    /// Per-request timeout in SECONDS (the environment variable is in milliseconds).
    pub timeout_s: Option<f64>,
    /// `none` or `gzip`.
    pub compression: Option<String>,
    /// PEM file of CA certificates to trust in addition to the webpki roots.
    pub certificate: Option<PathBuf>,
    /// PEM file of the client certificate (mTLS).
    pub client_certificate: Option<PathBuf>,
    /// PEM file of the client private key (mTLS).
    pub client_key: Option<PathBuf>,
    /// grpc endpoints without a scheme: `true` = plain text, `false` (default) = TLS.
    pub insecure: Option<bool>,
    /// Logs endpoint, used as given.
    pub logs_endpoint: Option<String>,
    /// Traces endpoint, used as given.
    pub traces_endpoint: Option<String>,
    /// Metrics endpoint, used as given.
    pub metrics_endpoint: Option<String>,
    // Carried for the exporter; not interpreted here.
    pub sample_ratio: Option<f64>,
    pub spans: Option<bool>,
    pub metrics_interval_s: Option<u64>,
    pub spool_dir: Option<PathBuf>,
    pub spool_max_mb: Option<u64>,
    pub queue_size: Option<usize>,
    pub resource: BTreeMap<String, String>,
    /// `current` (default), `legacy` or `dup`: names for the attributes semantic conventions v1.45.0
    /// renamed (`OTEL_SEMCONV_STABILITY_OPT_IN=messaging/dup` or `messaging` take precedence).
    pub semconv: Option<String>,
}

/// Hand-written so that header values never reach a log line.
impl fmt::Debug for OtlpFileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpFileConfig")
            .field("enabled", &self.enabled)
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &RedactedKeys(self.headers.keys()))
            .field("timeout_s", &self.timeout_s)
            .field("compression", &self.compression)
            .field("certificate", &self.certificate)
            .field("client_certificate", &self.client_certificate)
            .field("client_key", &self.client_key)
            .field("insecure", &self.insecure)
            .field("logs_endpoint", &self.logs_endpoint)
            .field("traces_endpoint", &self.traces_endpoint)
            .field("metrics_endpoint", &self.metrics_endpoint)
            .field("sample_ratio", &self.sample_ratio)
            .field("spans", &self.spans)
            .field("metrics_interval_s", &self.metrics_interval_s)
            .field("spool_dir", &self.spool_dir)
            .field("spool_max_mb", &self.spool_max_mb)
            .field("queue_size", &self.queue_size)
            .field("resource", &self.resource)
            .field("semconv", &self.semconv)
            .finish()
    }
}

/// Debug-prints header names as `name=<redacted>`.
struct RedactedKeys<I>(I);

impl<'a, I: Iterator<Item = &'a String> + Clone> fmt::Debug for RedactedKeys<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.clone().map(|k| format!("{k}=<redacted>")))
            .finish()
    }
}

/// OTLP transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }

    fn parse(value: &str, source: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Err(format!(
                "{source}=http/json is not supported: use grpc or http/protobuf"
            )),
            _ => Err(format!(
                "{source}={value:?} is not a protocol: use grpc or http/protobuf"
            )),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OpenTelemetry signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Logs,
    Traces,
    Metrics,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Logs, Signal::Traces, Signal::Metrics];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// The path appended to a generic http/protobuf endpoint.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Logs => "/v1/logs",
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }

    fn env_word(self) -> &'static str {
        match self {
            Signal::Logs => "LOGS",
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// TLS material for one endpoint (used only for `https://` URLs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tls {
    /// Extra CA certificates (PEM), trusted in addition to the webpki roots.
    pub ca_pem: Option<PathBuf>,
    /// Client certificate chain (PEM) for mTLS; set together with `client_key_pem`.
    pub client_cert_pem: Option<PathBuf>,
    /// Client private key (PEM) for mTLS.
    pub client_key_pem: Option<PathBuf>,
    /// The resolved `insecure` option (already applied to the URL's scheme; informative).
    pub insecure: bool,
}

/// Where and how one signal is sent. `Debug` and `Display` never show header values.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Full URL with scheme: for http/protobuf the exact POST target, for grpc the server.
    pub url: String,
    pub protocol: Protocol,
    /// Request headers / gRPC metadata, in order. Values are secrets.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub gzip: bool,
    pub tls: Tls,
}

impl Endpoint {
    /// `true` when the URL is `https://`.
    pub fn is_tls(&self) -> bool {
        self.url.starts_with("https://")
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("protocol", &self.protocol)
            .field(
                "headers",
                &RedactedKeys(self.headers.iter().map(|(k, _)| k)),
            )
            .field("timeout", &self.timeout)
            .field("gzip", &self.gzip)
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} timeout {}ms",
            self.protocol,
            self.url,
            self.timeout.as_millis()
        )?;
        if self.gzip {
            f.write_str(" gzip")?;
        }
        if !self.headers.is_empty() {
            f.write_str(" headers ")?;
            for (i, (k, _)) in self.headers.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}=<redacted>")?;
            }
        }
        if self.tls.ca_pem.is_some() {
            f.write_str(" ca-file")?;
        }
        if self.tls.client_cert_pem.is_some() {
            f.write_str(" mtls")?;
        }
        Ok(())
    }
}

/// The resolved settings of the three signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    pub logs: Endpoint,
    pub traces: Endpoint,
    pub metrics: Endpoint,
}

impl fmt::Display for OtlpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "logs: {}; traces: {}; metrics: {}",
            self.logs, self.traces, self.metrics
        )
    }
}

/// A value with the name of where it came from, for error messages.
struct Found {
    value: String,
    source: String,
}

impl OtlpSettings {
    /// Resolves the settings of every signal. `env` looks a variable up (`|k| std::env::var(k).ok()` in
    /// production, a map in tests). Errors name the variable or file key and say what to write instead.
    pub fn resolve(
        file: &OtlpFileConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        Ok(OtlpSettings {
            logs: resolve_signal(file, env, Signal::Logs)?,
            traces: resolve_signal(file, env, Signal::Traces)?,
            metrics: resolve_signal(file, env, Signal::Metrics)?,
        })
    }

    pub fn get(&self, signal: Signal) -> &Endpoint {
        match signal {
            Signal::Logs => &self.logs,
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
        }
    }
}

/// Looks up the per-signal variable, then the generic one. Empty values count as unset.
fn env_lookup(env: &dyn Fn(&str) -> Option<String>, signal: Signal, option: &str) -> Option<Found> {
    let specific = format!("OTEL_EXPORTER_OTLP_{}_{option}", signal.env_word());
    let generic = format!("OTEL_EXPORTER_OTLP_{option}");
    for name in [specific, generic] {
        if let Some(v) = env(&name) {
            if !v.trim().is_empty() {
                return Some(Found {
                    value: v,
                    source: name,
                });
            }
        }
    }
    None
}

fn file_source(key: &str) -> String {
    format!("[otlp] {key} (config file)")
}

fn resolve_signal(
    file: &OtlpFileConfig,
    env: &dyn Fn(&str) -> Option<String>,
    signal: Signal,
) -> Result<Endpoint, String> {
    // Protocol first: it decides the default endpoint and whether a path is appended.
    let protocol = match env_lookup(env, signal, "PROTOCOL") {
        Some(f) => Protocol::parse(&f.value, &f.source)?,
        None => match &file.protocol {
            Some(p) if !p.trim().is_empty() => Protocol::parse(p, &file_source("protocol"))?,
            _ => Protocol::HttpProtobuf,
        },
    };

    let insecure = match env_lookup(env, signal, "INSECURE") {
        Some(f) => parse_bool(&f.value, &f.source)?,
        None => file.insecure.unwrap_or(false),
    };

    // Endpoint: (value, source, is_generic).
    let specific_env = format!("OTEL_EXPORTER_OTLP_{}_ENDPOINT", signal.env_word());
    let file_specific = match signal {
        Signal::Logs => (&file.logs_endpoint, "logs_endpoint"),
        Signal::Traces => (&file.traces_endpoint, "traces_endpoint"),
        Signal::Metrics => (&file.metrics_endpoint, "metrics_endpoint"),
    };
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let (raw, source, generic) = if let Some(v) = non_empty(env(&specific_env)) {
        (v, specific_env, false)
    } else if let Some(v) = non_empty(env("OTEL_EXPORTER_OTLP_ENDPOINT")) {
        (v, "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), true)
    } else if let Some(v) = non_empty(file_specific.0.clone()) {
        (v, file_source(file_specific.1), false)
    } else if let Some(v) = non_empty(file.endpoint.clone()) {
        (v, file_source("endpoint"), true)
    } else {
        let d = match protocol {
            Protocol::Grpc => DEFAULT_GRPC_ENDPOINT,
            Protocol::HttpProtobuf => DEFAULT_HTTP_ENDPOINT,
        };
        (d.to_string(), "the default endpoint".to_string(), true)
    };
    let url = endpoint_url(raw.trim(), &source, protocol, insecure, signal, generic)?;

    let headers = match env_lookup(env, signal, "HEADERS") {
        Some(f) => parse_headers(&f.value, &f.source)?,
        None => {
            let mut out = Vec::new();
            for (k, v) in &file.headers {
                let k = k.trim().to_ascii_lowercase();
                check_header(&k, v.trim(), &file_source("headers"))?;
                out.push((k, v.trim().to_string()));
            }
            out
        }
    };

    let timeout = match env_lookup(env, signal, "TIMEOUT") {
        Some(f) => {
            let ms: u64 = f.value.trim().parse().map_err(|_| {
                format!(
                    "{}={:?} is not a timeout: write whole milliseconds, e.g. {}=10000",
                    f.source, f.value, f.source
                )
            })?;
            if ms == 0 {
                return Err(format!(
                    "{}=0: the timeout must be at least 1 millisecond (e.g. 10000)",
                    f.source
                ));
            }
            Duration::from_millis(ms)
        }
        None => match file.timeout_s {
            Some(s) if !(s.is_finite() && s > 0.0 && s <= 86_400.0) => {
                return Err(format!(
                    "{} = {s} is not a timeout: write seconds between 0.001 and 86400, e.g. timeout_s = 10",
                    file_source("timeout_s")
                ))
            }
            Some(s) => Duration::from_secs_f64(s).max(Duration::from_millis(1)),
            None => DEFAULT_TIMEOUT,
        },
    };

    let gzip = match env_lookup(env, signal, "COMPRESSION") {
        Some(f) => parse_compression(&f.value, &f.source)?,
        None => match &file.compression {
            Some(c) if !c.trim().is_empty() => parse_compression(c, &file_source("compression"))?,
            _ => false,
        },
    };

    let path_opt = |option: &str, file_value: &Option<PathBuf>| -> Option<PathBuf> {
        match env_lookup(env, signal, option) {
            Some(f) => Some(PathBuf::from(f.value.trim())),
            None => file_value.clone().filter(|p| !p.as_os_str().is_empty()),
        }
    };
    let tls = Tls {
        ca_pem: path_opt("CERTIFICATE", &file.certificate),
        client_cert_pem: path_opt("CLIENT_CERTIFICATE", &file.client_certificate),
        client_key_pem: path_opt("CLIENT_KEY", &file.client_key),
        insecure,
    };
    match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(_), None) => {
            return Err(format!(
                "{signal}: a client certificate is set but no client key: set OTEL_EXPORTER_OTLP_CLIENT_KEY \
                 (or [otlp] client_key) too, or neither"
            ))
        }
        (None, Some(_)) => {
            return Err(format!(
                "{signal}: a client key is set but no client certificate: set OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE \
                 (or [otlp] client_certificate) too, or neither"
            ))
        }
        _ => {}
    }

    Ok(Endpoint {
        url,
        protocol,
        headers,
        timeout,
        gzip,
        tls,
    })
}

fn parse_bool(value: &str, source: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!(
            "{source}={value:?} is not a boolean: write true or false"
        )),
    }
}

fn parse_compression(value: &str, source: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(true),
        "none" => Ok(false),
        _ => Err(format!(
            "{source}={value:?} is not supported: use gzip or none"
        )),
    }
}

/// Builds the final URL of one signal's endpoint.
fn endpoint_url(
    raw: &str,
    source: &str,
    protocol: Protocol,
    insecure: bool,
    signal: Signal,
    generic: bool,
) -> Result<String, String> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        match protocol {
            // The spec's "insecure" case: a gRPC endpoint given as host:port.
            Protocol::Grpc if insecure => format!("http://{raw}"),
            Protocol::Grpc => format!("https://{raw}"),
            Protocol::HttpProtobuf => {
                return Err(format!(
                    "{source}={raw:?} has no scheme: write http://{raw} or https://{raw}"
                ))
            }
        }
    };
    let mut url = reqwest::Url::parse(&with_scheme).map_err(|e| {
        format!("{source}={raw:?} is not a URL ({e}): write e.g. http://collector:4318")
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "{source}={raw:?}: the scheme must be http or https, not {}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{source}={raw:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in the URL would be printed with it: make the operator use headers.
        return Err(format!(
            "{source}: the endpoint carries a user or password: put credentials in OTEL_EXPORTER_OTLP_HEADERS \
             (e.g. authorization=Basic ...) instead"
        ));
    }
    if (url.query().is_some() || url.fragment().is_some())
        && (protocol == Protocol::Grpc || generic)
    {
        return Err(format!(
            "{source}={raw:?}: a query or fragment is allowed only in a per-signal http/protobuf endpoint"
        ));
    }
    match protocol {
        Protocol::HttpProtobuf if generic => {
            let base = url
                .path()
                .strip_suffix('/')
                .unwrap_or(url.path())
                .to_string();
            url.set_path(&format!("{base}{}", signal.http_path()));
            Ok(url.to_string())
        }
        Protocol::HttpProtobuf => Ok(url.to_string()),
        Protocol::Grpc => {
            if url.path() != "/" && !url.path().is_empty() {
                return Err(format!(
                    "{source}={raw:?}: a grpc endpoint has no path (the service path is fixed): write {}://{}",
                    url.scheme(),
                    url.host_str().unwrap_or("") .to_string()
                        + &url.port().map(|p| format!(":{p}")).unwrap_or_default()
                ));
            }
            // No trailing slash: tonic takes scheme://authority.
            Ok(url.to_string().trim_end_matches('/').to_string())
        }
    }
}

/// Parses `k=v,k2=v2` (W3C-baggage-like): entries trimmed, empty entries skipped, values
/// percent-decoded, names lower-cased. Errors never include a value.
fn parse_headers(value: &str, source: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, entry) in value.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((k, v)) = entry.split_once('=') else {
            return Err(format!(
                "{source}: entry {} has no '=': write name=value,name2=value2",
                i + 1
            ));
        };
        let k = k.trim().to_ascii_lowercase();
        let v = percent_decode(v.trim()).map_err(|why| {
            format!(
                "{source}: the value of header {k:?} {why}: encode it as %XX (e.g. a space as %20)"
            )
        })?;
        check_header(&k, &v, source)?;
        out.push((k, v));
    }
    Ok(out)
}

fn check_header(name: &str, value: &str, source: &str) -> Result<(), String> {
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(tchar) {
        return Err(format!(
            "{source}: {name:?} is not a header name (letters, digits and -_. only)"
        ));
    }
    if value
        .chars()
        .any(|c| (c.is_control() && c != '\t') || !c.is_ascii())
    {
        return Err(format!(
            "{source}: the value of header {name:?} has a control or non-ASCII character"
        ));
    }
    Ok(())
}

pub(crate) fn percent_decode(s: &str) -> Result<String, &'static str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err("has a bad percent escape"),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once percent-decoded")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(file: &OtlpFileConfig, vars: &[(&str, &str)]) -> Result<OtlpSettings, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OtlpSettings::resolve(file, &|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_http_protobuf_on_4318() {
        let s = resolve(&OtlpFileConfig::default(), &[]).unwrap();
        assert_eq!(s.logs.url, "http://localhost:4318/v1/logs");
        assert_eq!(s.traces.url, "http://localhost:4318/v1/traces");
        assert_eq!(s.metrics.url, "http://localhost:4318/v1/metrics");
        assert_eq!(s.logs.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.logs.timeout, Duration::from_secs(10));
        assert!(!s.logs.gzip);
        assert!(s.logs.headers.is_empty());
        let g = resolve(
            &OtlpFileConfig::default(),
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
        )
        .unwrap();
        assert_eq!(g.logs.url, "http://localhost:4317");
        assert_eq!(g.metrics.protocol, Protocol::Grpc);
    }

    #[test]
    fn endpoint_precedence() {
        let file = OtlpFileConfig {
            endpoint: Some("http://file-generic:4318".into()),
            logs_endpoint: Some("http://file-logs:9999/custom".into()),
            ..Default::default()
        };
        // File only: per-signal file key beats generic file key, used as given.
        let s = resolve(&file, &[]).unwrap();
        assert_eq!(s.logs.url, "http://file-logs:9999/custom");
        assert_eq!(s.traces.url, "http://file-generic:4318/v1/traces");
        // Generic env beats both file keys.
        let s = resolve(&file, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318")]).unwrap();
        assert_eq!(s.logs.url, "http://env:4318/v1/logs");
        assert_eq!(s.metrics.url, "http://env:4318/v1/metrics");
        // Per-signal env beats generic env, used as given.
        let s = resolve(
            &file,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "https://traces.example:443",
                ),
            ],
        )
        .unwrap();
        assert_eq!(s.traces.url, "https://traces.example/");
        assert_eq!(s.logs.url, "http://env:4318/v1/logs");
        // Empty env value counts as unset.
        let s = resolve(&file, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")]).unwrap();
        assert_eq!(s.traces.url, "http://file-generic:4318/v1/traces");
    }

    #[test]
    fn other_options_precedence() {
        let mut headers = BTreeMap::new();
        headers.insert("X-File".to_string(), "f".to_string());
        let file = OtlpFileConfig {
            protocol: Some("grpc".into()),
            timeout_s: Some(2.5),
            compression: Some("gzip".into()),
            headers,
            certificate: Some("/file/ca.pem".into()),
            ..Default::default()
        };
        let s = resolve(&file, &[]).unwrap();
        assert_eq!(s.logs.protocol, Protocol::Grpc);
        assert_eq!(s.logs.timeout, Duration::from_millis(2500));
        assert!(s.logs.gzip);
        assert_eq!(s.logs.headers, vec![("x-file".into(), "f".into())]);
        assert_eq!(s.logs.tls.ca_pem, Some(PathBuf::from("/file/ca.pem")));

        let s = resolve(
            &file,
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
                ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "500"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
                ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
                ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "b=2"),
                ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/env/ca.pem"),
            ],
        )
        .unwrap();
        assert_eq!(s.logs.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.metrics.protocol, Protocol::Grpc);
        assert_eq!(s.metrics.url, "http://localhost:4317");
        assert_eq!(s.logs.timeout, Duration::from_millis(500));
        assert_eq!(s.traces.timeout, Duration::from_millis(3000));
        assert!(!s.logs.gzip);
        assert!(s.traces.gzip);
        // Headers: the most specific source replaces, never merges.
        assert_eq!(s.logs.headers, vec![("b".into(), "2".into())]);
        assert_eq!(s.traces.headers, vec![("a".into(), "1".into())]);
        assert_eq!(s.traces.tls.ca_pem, Some(PathBuf::from("/env/ca.pem")));
        assert_eq!(s.logs.tls.ca_pem, Some(PathBuf::from("/file/ca.pem")));
    }

    #[test]
    fn http_path_appending() {
        for (base, want) in [
            ("http://c:4318", "http://c:4318/v1/logs"),
            ("http://c:4318/", "http://c:4318/v1/logs"),
            ("http://c:4318/otlp", "http://c:4318/otlp/v1/logs"),
            ("http://c:4318/otlp/", "http://c:4318/otlp/v1/logs"),
            ("https://c", "https://c/v1/logs"),
        ] {
            let s = resolve(
                &OtlpFileConfig::default(),
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", base)],
            )
            .unwrap();
            assert_eq!(s.logs.url, want, "{base}");
        }
        // Per-signal: as given, even without a path.
        let s = resolve(
            &OtlpFileConfig::default(),
            &[("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://c:4318")],
        )
        .unwrap();
        assert_eq!(s.logs.url, "http://c:4318/");
        let s = resolve(
            &OtlpFileConfig::default(),
            &[(
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://c:4318/x/y?tenant=a",
            )],
        )
        .unwrap();
        assert_eq!(s.logs.url, "http://c:4318/x/y?tenant=a");
    }

    #[test]
    fn grpc_scheme_and_insecure() {
        let grpc = ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
        let s = resolve(
            &OtlpFileConfig::default(),
            &[grpc, ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
        )
        .unwrap();
        assert_eq!(s.logs.url, "https://collector:4317");
        assert!(s.logs.is_tls());
        let s = resolve(
            &OtlpFileConfig::default(),
            &[
                grpc,
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
                ("OTEL_EXPORTER_OTLP_INSECURE", "TRUE"),
            ],
        )
        .unwrap();
        assert_eq!(s.logs.url, "http://collector:4317");
        assert!(s.logs.tls.insecure);
        // insecure never downgrades an explicit https://.
        let s = resolve(
            &OtlpFileConfig::default(),
            &[
                grpc,
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317/"),
                ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
            ],
        )
        .unwrap();
        assert_eq!(s.logs.url, "https://collector:4317");
        // Nothing appended for grpc, and a path is refused.
        let e = resolve(
            &OtlpFileConfig::default(),
            &[
                grpc,
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "http://collector:4317/v1/logs",
                ),
            ],
        )
        .unwrap_err();
        assert!(e.contains("grpc endpoint has no path"), "{e}");
        assert!(e.contains("http://collector:4317"), "{e}");
    }

    #[test]
    fn header_parsing() {
        let h = parse_headers(
            " Authorization = Bearer%20abc%3D%3D , x-tenant=a%2Cb,,api-key=k=v ",
            "X",
        )
        .unwrap();
        assert_eq!(
            h,
            vec![
                ("authorization".into(), "Bearer abc==".into()),
                ("x-tenant".into(), "a,b".into()),
                ("api-key".into(), "k=v".into()),
            ]
        );
        assert_eq!(parse_headers("", "X").unwrap(), vec![]);
        let e = parse_headers("a=1,novalue", "OTEL_EXPORTER_OTLP_HEADERS").unwrap_err();
        assert!(e.contains("entry 2 has no '='"), "{e}");
        let e = parse_headers("authorization=secret%zz", "OTEL_EXPORTER_OTLP_HEADERS").unwrap_err();
        assert!(
            e.contains("bad percent escape") && e.contains("authorization"),
            "{e}"
        );
        assert!(!e.contains("secret"), "{e}");
        let e = parse_headers("bad name=1", "X").unwrap_err();
        assert!(e.contains("not a header name"), "{e}");
        let e = parse_headers("a=line%0Abreak", "X").unwrap_err();
        assert!(e.contains("control"), "{e}");
        assert!(!e.contains("break"), "{e}");
    }

    #[test]
    fn header_values_are_redacted() {
        let mut headers = BTreeMap::new();
        headers.insert("api-key".to_string(), "file-secret".to_string());
        let file = OtlpFileConfig {
            headers,
            ..Default::default()
        };
        assert!(!format!("{file:?}").contains("file-secret"));
        assert!(format!("{file:?}").contains("api-key=<redacted>"));
        let s = resolve(
            &file,
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "authorization=Bearer%20env-secret",
            )],
        )
        .unwrap();
        for text in [
            format!("{s:?}"),
            format!("{s}"),
            format!("{:#?}", s.traces),
            s.logs.to_string(),
        ] {
            assert!(!text.contains("secret"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
        assert!(format!("{s}").contains("authorization=<redacted>"));
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
                "OTEL_EXPORTER_OTLP_PROTOCOL=http/json is not supported: use grpc or http/protobuf",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "thrift")],
                "use grpc or http/protobuf",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")],
                "write whole milliseconds",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TIMEOUT", "0")],
                "at least 1 millisecond",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")],
                "use gzip or none",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_INSECURE", "yes")],
                "write true or false",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
                "has no scheme: write http://collector:4318",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "unix:///tmp/sock")],
                "scheme must be http or https",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://u:pw@c:4318")],
                "put credentials in OTEL_EXPORTER_OTLP_HEADERS",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c.pem")],
                "no client key",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", "/k.pem")],
                "no client certificate",
            ),
        ];
        for (vars, want) in cases {
            let e = resolve(&OtlpFileConfig::default(), vars).unwrap_err();
            assert!(e.contains(want), "{vars:?}: {e}");
        }
        let e = resolve(
            &OtlpFileConfig {
                timeout_s: Some(-1.0),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(
            e.contains("[otlp] timeout_s") && e.contains("timeout_s = 10"),
            "{e}"
        );
        let e = resolve(
            &OtlpFileConfig {
                protocol: Some("http/json".into()),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(
            e.contains("[otlp] protocol") && e.contains("use grpc or http/protobuf"),
            "{e}"
        );
        let e = resolve(
            &OtlpFileConfig {
                headers: [("bad name".to_string(), "v".to_string())].into(),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(e.contains("[otlp] headers"), "{e}");
    }

    #[test]
    fn file_section_deserializes_and_rejects_unknown_keys() {
        let f: OtlpFileConfig = serde_json::from_str(
            r#"{"endpoint":"http://c:4317","protocol":"grpc","timeout_s":5,"headers":{"a":"b"},
                "spool_dir":"/var/lib/kwire/spool","spool_max_mb":64,"resource":{"env":"prod"}}"#,
        )
        .unwrap();
        assert_eq!(f.timeout_s, Some(5.0));
        assert_eq!(f.spool_max_mb, Some(64));
        let s = resolve(&f, &[]).unwrap();
        assert_eq!(s.logs.url, "http://c:4317");
        assert_eq!(s.logs.timeout, Duration::from_secs(5));
        let e = serde_json::from_str::<OtlpFileConfig>(r#"{"endpoit":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
