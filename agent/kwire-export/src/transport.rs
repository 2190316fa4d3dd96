//! OTLP transport: sends already-built OTLP export requests (logs, traces, metrics) to the endpoints of
//! [`OtlpSettings`], over gRPC (tonic, on a current-thread tokio runtime owned by the [`Transport`]) or
//! HTTP/protobuf (reqwest's blocking client), and classifies every failure as retryable or not following
//! the OTLP specification. It never retries by itself: the caller decides (the alert spool re-sends).
//!
//! Easy to get wrong:
//! - Construction never connects (tonic's lazy channel, reqwest's pool): `Transport::new` must succeed
//!   while the collector is down. It fails only on bad settings (unreadable PEM file, bad header name).
//! - Every call is bounded by the endpoint's timeout as a whole (connect + TLS + request + response):
//!   gRPC through `tokio::time::timeout` around the call (tonic's own `timeout` covers only the request
//!   once connected), HTTP through reqwest's total timeout. A refused connection fails at once.
//! - Call from a plain thread, never from inside a tokio runtime: `block_on` on the Transport's own
//!   runtime panics there, and so does reqwest's blocking client. The Transport's runtime runs only
//!   during a call, so the gRPC connection makes no progress (no keep-alive pings) between calls; a
//!   connection the peer closed meanwhile is noticed and re-opened by the next call.
//! - tonic reports a connection that broke under a call (the collector restarted between two calls) as
//!   UNKNOWN, not UNAVAILABLE: a status made locally from a transport error (it has a `source`) is
//!   retryable whatever its code; UNKNOWN/INTERNAL from the server are not.
//! - RESOURCE_EXHAUSTED is retryable only when the server attached a `google.rpc.RetryInfo` (the spec:
//!   otherwise it is a permanent limit such as a too-big message); the retry delay is passed on in
//!   [`SendError::retry_after`], as is HTTP's `Retry-After` (seconds form).
//! - A 2xx/OK answer can still reject part of the data (`partial_success`): that is [`Sent::rejected`],
//!   not an error, and it must not be re-sent.
//! - Error messages quote what the server said (gRPC status message, HTTP body, up to 512 chars) but
//!   never the request's headers (credentials).

use crate::settings::{Endpoint, OtlpSettings, Protocol, Signal};
use opentelemetry_proto::tonic::collector::logs::v1::{
    logs_service_client::LogsServiceClient, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    metrics_service_client::MetricsServiceClient, ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    trace_service_client::TraceServiceClient, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::fmt;
use std::io::{Read, Write};
use std::time::Duration;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const USER_AGENT: &str = concat!("kwire/", env!("CARGO_PKG_VERSION"), " (OTLP exporter)");
/// How much of an error response body is quoted.
const MAX_QUOTE: usize = 512;
/// How much of a response body is read at all.
const MAX_RESPONSE: u64 = 1 << 20;

/// A request the server accepted (possibly in part).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sent {
    /// Records / spans / data points the server rejected (`partial_success`); 0 when all were accepted.
    pub rejected: i64,
    /// The server's `partial_success.error_message`, when not empty.
    pub message: Option<String>,
}

/// A request that was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Sending the same request again later may succeed (collector down, overloaded, timeout).
    pub retryable: bool,
    /// What happened, with what the server said; never contains header values.
    pub message: String,
    /// How long the server asked us to wait (gRPC RetryInfo, HTTP Retry-After), when it said.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if self.retryable {
            f.write_str(" (retryable")?;
            if let Some(d) = self.retry_after {
                write!(f, ", server asks to wait {}ms", d.as_millis())?;
            }
            f.write_str(")")
        } else {
            f.write_str(" (not retryable)")
        }
    }
}

impl std::error::Error for SendError {}

enum Sender {
    Grpc {
        channel: Channel,
        url: String,
        metadata: MetadataMap,
        timeout: Duration,
        gzip: bool,
    },
    Http {
        client: reqwest::blocking::Client,
        url: String,
        headers: reqwest::header::HeaderMap,
        timeout: Duration,
        gzip: bool,
    },
}

/// One `send_*` method per signal: the generated gRPC clients and messages differ only in their types
/// and in the name of the partial-success count.
macro_rules! send_fn {
    ($(#[$doc:meta])* $name:ident, $field:ident, $Req:ty, $Resp:ty, $Client:ident, $rejected:ident) => {
        $(#[$doc])*
        pub fn $name(&mut self, req: &$Req) -> Result<Sent, SendError> {
            let resp: $Resp = match &self.$field {
                Sender::Grpc {
                    channel,
                    url,
                    metadata,
                    timeout,
                    gzip,
                } => {
                    let mut client = $Client::new(channel.clone());
                    if *gzip {
                        client = client.send_compressed(CompressionEncoding::Gzip);
                    }
                    let request = grpc_request(req.clone(), metadata, *timeout);
                    grpc_call(&self.rt, url, *timeout, client.export(request))?
                }
                Sender::Http { .. } => http_call(&self.$field, req)?,
            };
            Ok(partial(
                resp.partial_success.map(|p| (p.$rejected, p.error_message)),
            ))
        }
    };
}

/// Sends OTLP requests; one per process is enough. Not for use inside an async context.
pub struct Transport {
    // Field order matters for Drop: the senders (tonic channels spawned on `rt`) go before the runtime.
    logs: Sender,
    traces: Sender,
    metrics: Sender,
    rt: tokio::runtime::Runtime,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = |s: &Sender| match s {
            Sender::Grpc { url, .. } => format!("grpc {url}"),
            Sender::Http { url, .. } => format!("http/protobuf {url}"),
        };
        f.debug_struct("Transport")
            .field("logs", &url(&self.logs))
            .field("traces", &url(&self.traces))
            .field("metrics", &url(&self.metrics))
            .finish()
    }
}

impl Transport {
    /// Builds the clients without connecting. Errors: unreadable or invalid PEM files, header names
    /// or values gRPC/HTTP cannot carry, a URL tonic or reqwest refuses.
    pub fn new(settings: &OtlpSettings) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the OTLP exporter's runtime: {e}"))?;
        // Endpoints with the same URL scheme/host and TLS share one client / channel.
        let mut http_clients: Vec<(Endpoint, reqwest::blocking::Client)> = Vec::new();
        let mut channels: Vec<(Endpoint, Channel)> = Vec::new();
        let mut build = |signal: Signal| -> Result<Sender, String> {
            let ep = settings.get(signal);
            match ep.protocol {
                Protocol::HttpProtobuf => {
                    let client = match http_clients
                        .iter()
                        .find(|(e, _)| e.tls == ep.tls && e.timeout == ep.timeout)
                    {
                        Some((_, c)) => c.clone(),
                        None => {
                            let c = http_client(ep)
                                .map_err(|e| format!("OTLP {signal} endpoint {}: {e}", ep.url))?;
                            http_clients.push((ep.clone(), c.clone()));
                            c
                        }
                    };
                    Ok(Sender::Http {
                        client,
                        url: ep.url.clone(),
                        headers: http_headers(ep)
                            .map_err(|e| format!("OTLP {signal} endpoint {}: {e}", ep.url))?,
                        timeout: ep.timeout,
                        gzip: ep.gzip,
                    })
                }
                Protocol::Grpc => {
                    let channel = match channels.iter().find(|(e, _)| {
                        e.url == ep.url && e.tls == ep.tls && e.timeout == ep.timeout
                    }) {
                        Some((_, c)) => c.clone(),
                        None => {
                            // connect_lazy spawns tonic's buffer worker: it needs the runtime's context.
                            let _guard = rt.enter();
                            let c = grpc_channel(ep)
                                .map_err(|e| format!("OTLP {signal} endpoint {}: {e}", ep.url))?;
                            channels.push((ep.clone(), c.clone()));
                            c
                        }
                    };
                    Ok(Sender::Grpc {
                        channel,
                        url: ep.url.clone(),
                        metadata: grpc_metadata(ep)
                            .map_err(|e| format!("OTLP {signal} endpoint {}: {e}", ep.url))?,
                        timeout: ep.timeout,
                        gzip: ep.gzip,
                    })
                }
            }
        };
        let logs = build(Signal::Logs)?;
        let traces = build(Signal::Traces)?;
        let metrics = build(Signal::Metrics)?;
        Ok(Transport {
            logs,
            traces,
            metrics,
            rt,
        })
    }

    send_fn!(
        /// Sends one logs request; `rejected` counts log records.
        send_logs, logs, ExportLogsServiceRequest, ExportLogsServiceResponse, LogsServiceClient,
        rejected_log_records
    );
    send_fn!(
        /// Sends one traces request; `rejected` counts spans.
        send_traces, traces, ExportTraceServiceRequest, ExportTraceServiceResponse,
        TraceServiceClient, rejected_spans
    );
    send_fn!(
        /// Sends one metrics request; `rejected` counts data points.
        send_metrics, metrics, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
        MetricsServiceClient, rejected_data_points
    );
}

fn partial(p: Option<(i64, String)>) -> Sent {
    match p {
        Some((rejected, message)) => Sent {
            rejected,
            message: (!message.is_empty()).then_some(message),
        },
        None => Sent::default(),
    }
}

fn read_pem(path: &std::path::Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// gRPC

fn grpc_channel(ep: &Endpoint) -> Result<Channel, String> {
    let mut endpoint = Channel::from_shared(ep.url.clone())
        .map_err(|e| format!("not a gRPC endpoint: {e}"))?
        .user_agent(USER_AGENT)
        .map_err(|e| format!("user agent: {e}"))?
        .connect_timeout(ep.timeout)
        .timeout(ep.timeout);
    if ep.is_tls() {
        let mut tls = ClientTlsConfig::new().with_webpki_roots();
        if let Some(ca) = &ep.tls.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(read_pem(ca, "CA certificate")?));
        }
        if let (Some(cert), Some(key)) = (&ep.tls.client_cert_pem, &ep.tls.client_key_pem) {
            tls = tls.identity(Identity::from_pem(
                read_pem(cert, "client certificate")?,
                read_pem(key, "client key")?,
            ));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("TLS settings: {}", chain(&e)))?;
    }
    Ok(endpoint.connect_lazy())
}

fn grpc_metadata(ep: &Endpoint) -> Result<MetadataMap, String> {
    let mut map = MetadataMap::new();
    for (k, v) in &ep.headers {
        if k.ends_with("-bin") {
            return Err(format!(
                "header {k:?}: binary (-bin) gRPC metadata is not supported"
            ));
        }
        let key = MetadataKey::from_bytes(k.as_bytes())
            .map_err(|_| format!("header {k:?} is not a valid gRPC metadata name"))?;
        let value = MetadataValue::try_from(v.as_str())
            .map_err(|_| format!("the value of header {k:?} is not valid gRPC metadata"))?;
        map.append(key, value);
    }
    Ok(map)
}

fn grpc_request<T>(msg: T, metadata: &MetadataMap, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(msg);
    *request.metadata_mut() = metadata.clone();
    // Sent as grpc-timeout so the server gives up when we do.
    request.set_timeout(timeout);
    request
}

fn grpc_call<R>(
    rt: &tokio::runtime::Runtime,
    url: &str,
    timeout: Duration,
    call: impl std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
) -> Result<R, SendError> {
    match rt.block_on(async { tokio::time::timeout(timeout, call).await }) {
        Ok(Ok(resp)) => Ok(resp.into_inner()),
        Ok(Err(status)) => Err(grpc_error(url, &status, timeout)),
        Err(_) => Err(SendError {
            retryable: true,
            message: format!(
                "gRPC {url}: no answer within the timeout of {}ms",
                timeout.as_millis()
            ),
            retry_after: None,
        }),
    }
}

fn grpc_error(url: &str, status: &tonic::Status, timeout: Duration) -> SendError {
    use tonic::Code;
    let retry_after = retry_info(status.details());
    // A status with a source was made here from a transport failure (tonic turns a broken connection
    // into UNKNOWN): the server never answered, so it is the collector being away, not a verdict.
    let local = std::error::Error::source(status).is_some();
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => retry_after.is_some(),
        Code::Unknown | Code::Internal => local,
        _ => false,
    };
    if status.code() == Code::Cancelled && status.message().contains("Timeout expired") {
        // tonic's own deadline (from grpc-timeout) raced ours: say it the same way.
        return SendError {
            retryable: true,
            message: format!(
                "gRPC {url}: no answer within the timeout of {}ms",
                timeout.as_millis()
            ),
            retry_after: None,
        };
    }
    let mut said = quote(status.message());
    if let Some(source) = std::error::Error::source(status) {
        // Transport errors (connection refused, TLS) carry the reason in the source chain.
        let why = chain(source);
        if said.is_empty() || why.contains(&said) {
            said = why;
        } else if !said.contains(&why) {
            said = format!("{said}: {why}");
        }
    }
    SendError {
        retryable,
        message: format!("gRPC {url}: {:?}: {said}", status.code()),
        retry_after,
    }
}

/// `google.rpc.Status` as carried in `grpc-status-details-bin`: only what we read of it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(message, repeated, tag = "3")]
    details: Vec<RpcAny>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RpcAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<RpcDuration>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RpcDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The delay of a `google.rpc.RetryInfo` in the status details, when there is one.
fn retry_info(details: &[u8]) -> Option<Duration> {
    if details.is_empty() {
        return None;
    }
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .find(|a| a.type_url.ends_with("google.rpc.RetryInfo"))
        .map(|a| {
            let delay = RetryInfo::decode(a.value.as_slice())
                .ok()
                .and_then(|r| r.retry_delay)
                .unwrap_or_default();
            Duration::new(
                delay.seconds.clamp(0, 3600) as u64,
                delay.nanos.clamp(0, 999_999_999) as u32,
            )
        })
}

// ---------------------------------------------------------------------------------------------
// HTTP/protobuf

fn http_client(ep: &Endpoint) -> Result<reqwest::blocking::Client, String> {
    let mut b = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .user_agent(USER_AGENT)
        .timeout(ep.timeout)
        .connect_timeout(ep.timeout)
        // A redirect would re-send credentials elsewhere; collectors never redirect.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &ep.tls.ca_pem {
        let pem = read_pem(ca, "CA certificate")?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("CA certificate {}: {}", ca.display(), chain(&e)))?;
        if certs.is_empty() {
            return Err(format!(
                "CA certificate {}: no PEM certificate in it",
                ca.display()
            ));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if let (Some(cert), Some(key)) = (&ep.tls.client_cert_pem, &ep.tls.client_key_pem) {
        let mut pem = read_pem(cert, "client certificate")?;
        pem.push(b'\n');
        pem.extend(read_pem(key, "client key")?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
            format!(
                "client certificate {} / key {}: {}",
                cert.display(),
                key.display(),
                chain(&e)
            )
        })?;
        b = b.identity(id);
    }
    b.build()
        .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))
}

fn http_headers(ep: &Endpoint) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
    let mut map = HeaderMap::new();
    for (k, v) in &ep.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("header {k:?} is not a valid HTTP header name"))?;
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| format!("the value of header {k:?} is not a valid HTTP header value"))?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    // Ours win over user-given ones: the body is what we say it is.
    map.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    if ep.gzip {
        map.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    } else {
        map.remove(CONTENT_ENCODING);
    }
    Ok(map)
}

fn http_call<Req: Message, Resp: Message + Default>(
    sender: &Sender,
    req: &Req,
) -> Result<Resp, SendError> {
    let Sender::Http {
        client,
        url,
        headers,
        timeout,
        gzip,
    } = sender
    else {
        unreachable!("http_call on a gRPC sender")
    };
    let mut body = req.encode_to_vec();
    if *gzip {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4 + 64),
            flate2::Compression::default(),
        );
        // Writing to a Vec cannot fail.
        let _ = enc.write_all(&body);
        body = enc.finish().unwrap_or_default();
    }
    let resp = client
        .post(url.as_str())
        .headers(headers.clone())
        .body(body)
        .send()
        .map_err(|e| {
            let what = if e.is_timeout() {
                format!("no answer within the timeout of {}ms", timeout.as_millis())
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                "request failed".to_string()
            };
            SendError {
                // Builder errors cannot happen here (checked in new); anything else is the network.
                retryable: !e.is_builder(),
                message: format!("HTTP {url}: {what}: {}", chain(&e)),
                retry_after: None,
            }
        })?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(3600)));
    let is_protobuf = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-protobuf"));
    let mut bytes = Vec::new();
    let read = resp.take(MAX_RESPONSE).read_to_end(&mut bytes);
    if status.is_success() {
        // An unreadable or undecodable body on 2xx still means "accepted" (the spec: the body of a
        // full success may be empty).
        if read.is_err() {
            return Ok(Resp::default());
        }
        return Ok(Resp::decode(bytes.as_slice()).unwrap_or_default());
    }
    let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
    let said = if bytes.is_empty() {
        String::new()
    } else if is_protobuf {
        match GoogleRpcStatusMessage::decode(bytes.as_slice()) {
            Ok(s) if !s.message.is_empty() => quote(&s.message),
            _ => format!("({} bytes of protobuf)", bytes.len()),
        }
    } else {
        quote(&String::from_utf8_lossy(&bytes))
    };
    Err(SendError {
        retryable,
        message: if said.is_empty() {
            format!("HTTP {url}: {status}")
        } else {
            format!("HTTP {url}: {status}: {said}")
        },
        retry_after: retry_after.filter(|_| retryable),
    })
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error: its message.
#[derive(Clone, PartialEq, prost::Message)]
struct GoogleRpcStatusMessage {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

// ---------------------------------------------------------------------------------------------

/// The error and its sources, `a: b: c`, without repeats.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// A server's words, on one line, at most MAX_QUOTE characters.
fn quote(s: &str) -> String {
    let one_line: String = s
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > MAX_QUOTE {
        let cut: String = one_line.chars().take(MAX_QUOTE).collect();
        format!("{cut}...")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_is_read_from_status_details() {
        let info = RetryInfo {
            retry_delay: Some(RpcDuration {
                seconds: 2,
                nanos: 500_000_000,
            }),
        };
        let status = RpcStatus {
            details: vec![
                RpcAny {
                    type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                    value: vec![1, 2, 3],
                },
                RpcAny {
                    type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                    value: info.encode_to_vec(),
                },
            ],
        };
        assert_eq!(
            retry_info(&status.encode_to_vec()),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(retry_info(&[]), None);
        assert_eq!(retry_info(&[0xff, 0xff]), None);
    }

    #[test]
    fn grpc_codes_are_classified_per_the_spec() {
        use tonic::Code;
        let retryable = |code: Code, details: &[u8]| {
            grpc_error(
                "http://x",
                &tonic::Status::with_details(code, "said", details.to_vec().into()),
                Duration::from_secs(1),
            )
            .retryable
        };
        for c in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert!(retryable(c, &[]), "{c:?}");
        }
        for c in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::Unimplemented,
            Code::Internal,
            Code::NotFound,
            Code::ResourceExhausted,
        ] {
            assert!(!retryable(c, &[]), "{c:?}");
        }
        let with_retry = RpcStatus {
            details: vec![RpcAny {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: RetryInfo {
                    retry_delay: Some(RpcDuration {
                        seconds: 1,
                        nanos: 0,
                    }),
                }
                .encode_to_vec(),
            }],
        }
        .encode_to_vec();
        assert!(retryable(Code::ResourceExhausted, &with_retry));
        // Made locally from a transport failure (a stale connection to a collector that went away).
        let local = tonic::Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "broken pipe",
        )));
        assert_eq!(local.code(), Code::Unknown);
        assert!(grpc_error("http://x", &local, Duration::from_secs(1)).retryable);
        let e = grpc_error(
            "http://x",
            &tonic::Status::new(Code::Unauthenticated, "bad token"),
            Duration::from_secs(1),
        );
        assert!(e.message.contains("Unauthenticated") && e.message.contains("bad token"));
        assert!(e.to_string().contains("not retryable"));
    }

    #[test]
    fn quotes_are_bounded_and_single_line() {
        assert_eq!(quote(" a\nb "), "a b");
        let long = "x".repeat(2000);
        assert_eq!(quote(&long).len(), MAX_QUOTE + 3);
    }
}
