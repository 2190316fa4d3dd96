//! The agent's logs on stderr: plain (`kwire: msg`, `kwire: warning: msg`) or one JSON object per line
//! (`{"ts":..,"level":..,"msg":..}` plus the message's fields), chosen once by `--log-format`.
//!
//! Easy to get wrong: logs never go to stdout (stdout carries only the requested output); a plain info
//! line has no level word, so the lines a user reads most stay short; the JSON `ts` is the wall clock
//! (a log line is about now, unlike an output's packet time).

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use kwire_flow::Timestamp;

use super::LogFormat;

/// Structured logs on stderr.
#[derive(Clone, Copy)]
pub struct Log {
    format: LogFormat,
}

impl Log {
    pub fn new(format: LogFormat) -> Log {
        Log { format }
    }

    fn line(&self, level: &str, msg: &str, fields: Value) {
        let mut err = io::stderr().lock();
        match self.format {
            LogFormat::Json => {
                let mut m = Map::new();
                m.insert("ts".into(), wall_clock().to_rfc3339().into());
                m.insert("level".into(), level.into());
                m.insert("msg".into(), msg.into());
                if let Value::Object(f) = fields {
                    m.extend(f);
                }
                let _ = writeln!(err, "{}", Value::Object(m));
            }
            LogFormat::Plain if level == "info" => {
                let _ = writeln!(err, "kwire: {msg}");
            }
            LogFormat::Plain => {
                let _ = writeln!(err, "kwire: {level}: {msg}");
            }
        }
    }

    pub fn info(&self, msg: &str, fields: Value) {
        self.line("info", msg, fields)
    }

    pub fn warn(&self, msg: &str, fields: Value) {
        self.line("warning", msg, fields)
    }

    pub fn error(&self, msg: &str) {
        self.line("error", msg, json!({}))
    }

    /// The exporter's log function: its lines in this log's format.
    pub fn for_export(self) -> kwire_export::LogFn {
        Arc::new(move |level, msg| match level {
            kwire_export::LogLevel::Info => self.info(&msg, json!({})),
            kwire_export::LogLevel::Warn => self.warn(&msg, json!({})),
            kwire_export::LogLevel::Error => self.error(&msg),
        })
    }
}

/// Now, as a packet timestamp (live metrics and log lines follow the wall clock).
pub fn wall_clock() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0),
    )
}
