//! `kwire run --health ADDR`: `/healthz`, `/readyz` and `/metrics` served by one std::net thread, one
//! short request at a time.
//!
//! Easy to get wrong:
//! - `/healthz` is 200 while the capture loop runs (503 once it stops), `/readyz` 200 once the source is
//!   open and a first poll succeeded;
//! - `/metrics` only hands out the text the capture loop rendered (once a second): a scrape never touches
//!   the metric state, so it cannot slow the capture, and sees values at most a second old;
//! - a slow or silent client is cut after 1 s and 4 KiB of request line: it cannot hold the thread.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::log::Log;

/// What the health endpoint reports.
#[derive(Default)]
pub struct Health {
    alive: AtomicBool,
    ready: AtomicBool,
    source: Mutex<String>,
    /// The last rendering of `/metrics` (Prometheus text format 0.0.4).
    metrics: Mutex<String>,
}

impl Health {
    /// The capture loop runs with `source` (`/healthz` 200).
    pub fn alive(&self, source: String) {
        if let Ok(mut g) = self.source.lock() {
            *g = source;
        }
        self.alive.store(true, Ordering::SeqCst);
    }

    /// The capture loop stopped (`/healthz` 503).
    pub fn stopped(&self) {
        self.alive.store(false, Ordering::SeqCst);
    }

    /// A poll succeeded (`/readyz` 200 while alive).
    pub fn ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// The text `/metrics` serves from now on.
    pub fn publish_metrics(&self, text: String) {
        if let Ok(mut g) = self.metrics.lock() {
            *g = text;
        }
    }
}

/// Listens on `addr` and serves `h` from a thread of its own. `Err` is a one-line message.
pub fn serve(addr: SocketAddr, h: &Arc<Health>, log: &Log) -> Result<(), String> {
    let listener =
        TcpListener::bind(addr).map_err(|e| format!("--health {addr}: cannot listen: {e}"))?;
    let h = Arc::clone(h);
    std::thread::Builder::new()
        .name("kwire-health".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(s) = conn else { continue };
                let _ = answer(s, &h);
            }
        })
        .map_err(|e| format!("cannot start the health thread: {e}"))?;
    log.info(
        &format!("health on http://{addr}/healthz and /readyz, metrics on /metrics"),
        json!({}),
    );
    Ok(())
}

fn answer(mut s: TcpStream, h: &Health) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.set_write_timeout(Some(Duration::from_secs(1)))?;
    let mut line = String::new();
    BufReader::new((&s).take(4096)).read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let source = h.source.lock().map(|g| g.clone()).unwrap_or_default();
    let (code, body) = match (method, path) {
        ("GET" | "HEAD", "/healthz") => {
            if h.alive.load(Ordering::SeqCst) {
                (200, "ok\n".to_string())
            } else {
                (503, "stopped\n".to_string())
            }
        }
        ("GET" | "HEAD", "/readyz") => {
            if h.ready.load(Ordering::SeqCst) && h.alive.load(Ordering::SeqCst) {
                (200, format!("ready: {source}\n"))
            } else {
                (503, "not ready\n".to_string())
            }
        }
        ("GET" | "HEAD", "/metrics") => {
            (200, h.metrics.lock().map(|g| g.clone()).unwrap_or_default())
        }
        ("GET" | "HEAD", _) => (
            404,
            "not found (try /healthz, /readyz, /metrics)\n".to_string(),
        ),
        _ => (405, "method not allowed\n".to_string()),
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let ctype = if path == "/metrics" && code == 200 {
        kwire_export::prometheus::CONTENT_TYPE
    } else {
        "text/plain"
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    if method != "HEAD" {
        s.write_all(body.as_bytes())?;
    }
    s.flush()
}
