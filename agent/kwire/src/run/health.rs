//! `kwire run --health ADDR`: `/healthz`, `/readyz` and `/metrics` served by one std::net thread, one
//! short request at a time.
//!
//! Easy to get wrong:
//! - `/healthz` is 200 while the capture loop runs (503 once it stops), `/readyz` 200 once the source is
//!   open and a first poll succeeded;
//! - `/metrics` is rendered on demand by the capture loop, never by this thread: a scrape raises a flag
//!   and waits (at most [`METRICS_WAIT`]) for the loop's next rendering, made between two polls (within
//!   ~100 ms); a loop that does not come round in time gets the last rendering served. So a scrape never
//!   touches the metric state, costs the capture one rendering, and nobody scraping costs nothing (the
//!   loop rendered the page every second before: 6% of a live agent's CPU at 15 MB/s, for no reader);
//! - a slow or silent client is cut after 1 s and 4 KiB of request line: it cannot hold the thread; a
//!   scrape holds it while it waits for its rendering (~0.1 s, [`METRICS_WAIT`] at most), and a probe
//!   arriving meanwhile waits that long.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
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
    metrics: Mutex<Page>,
    /// Told when a new rendering is published.
    rendered: Condvar,
    /// A scrape waits for a rendering.
    wanted: AtomicBool,
}

/// How long a scrape waits for the capture loop's rendering before it is served the last one.
pub const METRICS_WAIT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Page {
    text: String,
    /// Renderings published so far.
    generation: u64,
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

    /// Does a scrape wait for a rendering of `/metrics`? (One atomic load: asked between polls.)
    pub fn metrics_wanted(&self) -> bool {
        self.wanted.load(Ordering::Acquire)
    }

    /// A rendering of `/metrics`: served to the scrapes waiting for it and to later ones.
    pub fn publish_metrics(&self, text: String) {
        if let Ok(mut g) = self.metrics.lock() {
            g.text = text;
            g.generation += 1;
            self.wanted.store(false, Ordering::Release);
        }
        self.rendered.notify_all();
    }

    /// The page for a scrape: a rendering made after it asked, or the last one after `wait`.
    fn fresh_metrics(&self, wait: Duration) -> String {
        let Ok(g) = self.metrics.lock() else {
            return String::new();
        };
        let seen = g.generation;
        // Raised while the lock is held: the loop's publish (which takes it) comes after the wait began.
        self.wanted.store(true, Ordering::Release);
        match self
            .rendered
            .wait_timeout_while(g, wait, |p| p.generation == seen)
        {
            Ok((g, _)) => g.text.clone(),
            Err(_) => String::new(),
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
        ("GET" | "HEAD", "/metrics") => (200, h.fresh_metrics(METRICS_WAIT)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A scrape is served the rendering made after it asked, by the loop that saw the flag.
    #[test]
    fn a_scrape_waits_for_a_fresh_rendering() {
        let h = Arc::new(Health::default());
        h.publish_metrics("old\n".into());
        assert!(!h.metrics_wanted(), "nobody scraping: no rendering wanted");
        let loop_side = Arc::clone(&h);
        let renderer = std::thread::spawn(move || {
            let t = Instant::now();
            while !loop_side.metrics_wanted() {
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "the scrape never asked"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            loop_side.publish_metrics("fresh\n".into());
        });
        assert_eq!(h.fresh_metrics(Duration::from_secs(5)), "fresh\n");
        renderer.join().unwrap();
        assert!(!h.metrics_wanted(), "the rendering answered the flag");
    }

    /// A loop that does not come round in time: the last rendering, after the wait.
    #[test]
    fn a_scrape_gets_the_last_rendering_when_the_loop_is_late() {
        let h = Health::default();
        h.publish_metrics("last\n".into());
        let t = Instant::now();
        assert_eq!(h.fresh_metrics(Duration::from_millis(60)), "last\n");
        assert!(t.elapsed() >= Duration::from_millis(60));
        assert!(h.metrics_wanted(), "still wanted: the next loop renders it");
    }
}
