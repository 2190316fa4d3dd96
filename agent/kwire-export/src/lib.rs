//! kwire-export (IO): kwire's outputs to OpenTelemetry — alerts as log records, exchanges as spans,
//! metrics — over OTLP gRPC or HTTP/protobuf, with an on-disk spool so no alert is silently lost.
//!
//! Easy to get wrong: the core crates never see this one; it consumes `kwire_engine::Output`s. Packet time
//! stamps spans and logs; only the export cadence of a live agent follows the wall clock.

pub mod catalog;
pub mod convert;
pub mod exporter;
pub mod metrics;
pub mod prometheus;
pub mod settings;
pub mod spool;
pub mod transport;

pub use exporter::{ExportOptions, ExportReport, Exporter, LogFn, LogLevel};
pub use metrics::Health;
pub use settings::{OtlpFileConfig, OtlpSettings};
