//! The output sink of `kwire replay` and `kwire run`: where the engine's findings become what the user
//! asked to see on stdout (or `--output`). One type for both commands; what differs is a [`Form`] and a
//! [`Flush`] chosen when it is made, never a flag passed along with each output.
//!
//! Easy to get wrong:
//! - output filters (`--topic`, `--client`, ...) narrow only what is printed, and the alert tally (for
//!   `--fail-on` and the closing line) counts what passed the filter;
//! - timeline rows and group events exist only for `kwire timeline` and the reports: never printed here;
//! - a failed write is kept (the first one) and ends every later write: the caller stops reading and
//!   decides the exit status from [`OutputSink::finish`] (a closed pipe is no error);
//! - `kwire run` flushes after every alert so `kwire run --json | jq` shows alerts as they fire; a replay
//!   flushes only at the end (its output is a file's worth, written at once).

use std::io::{self, BufWriter, Write};

use kwire_engine::{Alert, Output, Severity};

use crate::{human, OutputFilter};

/// What the sink writes.
pub enum Form {
    /// One JSON object per line (`--json`).
    JsonLines(Exchanges),
    /// `kwire replay`'s readable summary: outputs are collected, the summary written at the end.
    Summary(Box<human::Collector>),
    /// `kwire run` without `--json`: one readable line per alert, as it comes.
    AlertLines,
}

/// Whether exchange lines are written (`--no-exchanges` leaves them out).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Exchanges {
    Written,
    Left,
}

impl Exchanges {
    pub fn unless_left_out(no_exchanges: bool) -> Exchanges {
        if no_exchanges {
            Exchanges::Left
        } else {
            Exchanges::Written
        }
    }
}

/// When the writer is flushed before the end.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Only at the end and when the caller asks (a replay).
    AtEnd,
    /// After every alert too (live: an alert is seen when it fires).
    AfterEachAlert,
}

/// The alerts that passed the output filter.
#[derive(Default, Clone, Copy)]
pub struct AlertTally {
    pub alerts: u64,
    pub critical: u64,
    /// The most severe one (for `--fail-on`).
    pub worst: Option<Severity>,
}

/// Where the outputs go; see the module doc.
pub struct OutputSink {
    w: BufWriter<Box<dyn Write>>,
    form: Form,
    filter: OutputFilter,
    flush: Flush,
    err: Option<io::Error>,
    tally: AlertTally,
    /// JSON lines encoded but not yet handed to `w` (reused: no allocation per line). They go out in
    /// pieces of [`LINES_OUT`] bytes, straight past the BufWriter's copy, and at every flush.
    lines: Vec<u8>,
}

/// JSON lines are handed to the writer in pieces of at least this many bytes.
const LINES_OUT: usize = 1 << 16;

impl OutputSink {
    /// `out` is the opened `--output` (or stdout), buffered here.
    pub fn new(out: Box<dyn Write>, form: Form, filter: OutputFilter, flush: Flush) -> OutputSink {
        OutputSink {
            w: BufWriter::with_capacity(1 << 16, out),
            form,
            filter,
            flush,
            err: None,
            tally: AlertTally::default(),
            lines: Vec::new(),
        }
    }

    /// One output of the engine.
    pub fn emit(&mut self, o: &Output) {
        let alert = match o {
            Output::Timeline(_) | Output::Group(_) => return,
            Output::Exchange(x) if !self.filter.exchange(x) => return,
            Output::Alert(a) if !self.filter.alert(a) => return,
            Output::Alert(a) => {
                self.count(a);
                Some(&**a)
            }
            _ => None,
        };
        if self.err.is_some() {
            return;
        }
        let r = match &mut self.form {
            Form::Summary(c) => {
                c.add(o);
                return;
            }
            Form::JsonLines(Exchanges::Left) if matches!(o, Output::Exchange(_)) => return,
            Form::JsonLines(_) => self.json_line(o),
            Form::AlertLines => match alert {
                Some(a) => alert_line(&mut self.w, a),
                None => return,
            },
        };
        let r = r.and_then(|_| match (alert, self.flush) {
            (Some(_), Flush::AfterEachAlert) => self.write_lines().and_then(|_| self.w.flush()),
            _ => Ok(()),
        });
        self.keep(r);
    }

    /// One output as a JSON line, through the engine's encoder into `lines`.
    fn json_line(&mut self, o: &Output) -> io::Result<()> {
        kwire_engine::output::json::write_line(&mut self.lines, o).map_err(io::Error::other)?;
        if self.lines.len() >= LINES_OUT {
            self.write_lines()?;
        }
        Ok(())
    }

    /// Hands the encoded lines to the writer.
    fn write_lines(&mut self) -> io::Result<()> {
        let r = self.w.write_all(&self.lines);
        self.lines.clear();
        r
    }

    fn count(&mut self, a: &Alert) {
        self.tally.alerts += 1;
        if a.severity == Severity::Critical {
            self.tally.critical += 1;
        }
        self.tally.worst = self.tally.worst.max(Some(a.severity));
    }

    fn keep(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.err.get_or_insert(e);
        }
    }

    /// False once a write failed (e.g. a closed pipe): stop reading.
    pub fn is_ok(&self) -> bool {
        self.err.is_none()
    }

    pub fn tally(&self) -> AlertTally {
        self.tally
    }

    /// Writes buffered lines out (live: after every batch of packets).
    pub fn flush(&mut self) {
        if self.err.is_none() {
            let r = self.write_lines().and_then(|_| self.w.flush());
            self.keep(r);
        }
    }

    /// The closing line of `--json` (the summary object), unless writing already failed.
    pub fn json_summary(&mut self, v: &serde_json::Value) {
        if self.err.is_none() {
            let r = self
                .write_lines()
                .and_then(|_| json_value_line(&mut self.w, v));
            self.keep(r);
        }
    }

    /// The closing lines of a readable output, written by `f` unless writing already failed.
    pub fn closing(&mut self, f: impl FnOnce(&mut dyn Write, &Form) -> io::Result<()>) {
        if self.err.is_none() {
            let r = self.write_lines();
            let r = r.and_then(|_| f(&mut self.w, &self.form));
            self.keep(r);
        }
    }

    /// Flushes (unless writing already failed); the first write error, if any (a closed pipe included:
    /// the caller judges it).
    pub fn finish(&mut self) -> Option<io::Error> {
        self.flush();
        self.err.take()
    }
}

/// The closing summary object (a `serde_json::Value`, built at the edge) as one line.
fn json_value_line(w: &mut impl Write, v: &serde_json::Value) -> io::Result<()> {
    serde_json::to_writer(&mut *w, v)
        .map_err(io::Error::from)
        .and_then(|_| w.write_all(b"\n"))
}

/// The line `kwire replay` prints per alert in its readable summary.
fn alert_line(w: &mut impl Write, a: &Alert) -> io::Result<()> {
    writeln!(
        w,
        "{:<8} {} {} [{}] {}",
        a.severity.as_str().to_uppercase(),
        a.ts.to_rfc3339(),
        a.kind.as_str(),
        a.client_id.as_deref().unwrap_or("-"),
        a.explanation
    )
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use kwire_engine::{AlertKind, NoticeRecord};
    use kwire_flow::Timestamp;

    use super::*;

    /// A writer whose bytes the test can read, and that can be made to fail.
    #[derive(Clone, Default)]
    struct Shared {
        bytes: Rc<RefCell<Vec<u8>>>,
        flushes: Rc<RefCell<u32>>,
        broken: Rc<RefCell<bool>>,
    }

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if *self.broken.borrow() {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
            }
            self.bytes.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            *self.flushes.borrow_mut() += 1;
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.bytes.borrow().clone()).unwrap()
        }
    }

    fn alert(sev: Severity, client: &str) -> Output {
        let mut a = Alert::new(
            AlertKind::WeakAcks,
            sev,
            Timestamp(1_700_000_000_000_000_000),
            "acks=1 lost data".into(),
        );
        a.client_id = Some(client.into());
        Output::Alert(Box::new(a))
    }

    fn notice() -> Output {
        Output::Notice(NoticeRecord::new(Timestamp(0), "tcp_gap", "a gap".into()))
    }

    /// `kwire run` without `--json`: one line per alert, flushed as it comes; notices are not printed.
    #[test]
    fn alert_lines_are_written_and_flushed_one_by_one() {
        let w = Shared::default();
        let mut s = OutputSink::new(
            Box::new(w.clone()),
            Form::AlertLines,
            OutputFilter::default(),
            Flush::AfterEachAlert,
        );
        s.emit(&notice());
        assert_eq!((w.text(), *w.flushes.borrow()), (String::new(), 0));
        s.emit(&alert(Severity::Critical, "c1"));
        assert_eq!(
            w.text(),
            "CRITICAL 2023-11-14T22:13:20.000000Z weak_acks [c1] acks=1 lost data\n"
        );
        assert_eq!(*w.flushes.borrow(), 1);
        let t = s.tally();
        assert_eq!(
            (t.alerts, t.critical, t.worst),
            (1, 1, Some(Severity::Critical))
        );
    }

    /// The output filter narrows what is written and what the tally counts; a replay does not flush
    /// before the end.
    #[test]
    fn the_filter_narrows_lines_and_tally() {
        let w = Shared::default();
        let filter = OutputFilter {
            client: Some("c2".into()),
            ..OutputFilter::default()
        };
        let mut s = OutputSink::new(
            Box::new(w.clone()),
            Form::JsonLines(Exchanges::Written),
            filter,
            Flush::AtEnd,
        );
        s.emit(&alert(Severity::Critical, "c1"));
        s.emit(&alert(Severity::Warning, "c2"));
        s.emit(&notice());
        assert_eq!(*w.flushes.borrow(), 0);
        assert!(s.finish().is_none());
        let text = w.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["client_id"], "c2");
        assert_eq!(lines[0]["severity"], "warning");
        assert_eq!(lines[1]["type"], "notice");
        let t = s.tally();
        assert_eq!(
            (t.alerts, t.critical, t.worst),
            (1, 0, Some(Severity::Warning))
        );
    }

    /// A failed write is kept, stops later writes, and is what `finish` reports.
    #[test]
    fn a_write_error_is_sticky() {
        let w = Shared::default();
        let mut s = OutputSink::new(
            Box::new(w.clone()),
            Form::AlertLines,
            OutputFilter::default(),
            Flush::AfterEachAlert,
        );
        *w.broken.borrow_mut() = true;
        s.emit(&alert(Severity::Warning, "c1"));
        assert!(!s.is_ok());
        *w.broken.borrow_mut() = false;
        s.emit(&alert(Severity::Warning, "c1"));
        s.json_summary(&serde_json::json!({"type": "summary"}));
        assert_eq!(w.text(), "", "nothing written after the failure");
        assert_eq!(
            s.finish().map(|e| e.kind()),
            Some(io::ErrorKind::BrokenPipe)
        );
    }
}
