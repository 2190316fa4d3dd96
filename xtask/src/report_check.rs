//! `cargo xtask report-check`: every committed fixture's `kwire report` opened in a real browser
//! (Debian's `chromium`, headless). Per fixture: the page itself rendered to a PNG (must not be blank),
//! the same page with its overview hidden rendered again so its first charts are on screen (the chart area
//! must hold drawn series: pixels of the report's palette), the browser's log checked for console
//! messages and script errors, and its net log (`--log-net-log`) for any http(s) request the page made
//! (the page has no script and loads nothing, so any is a failure). Screenshots and logs are left in tests/out/report-check/ to look at.
//!
//! Easy to get wrong: chromium needs a writable profile (`--user-data-dir` in the output folder, one per
//! page, so a crashed run never poisons the next); its D-Bus and GPU warnings on stderr are noise, only
//! `CONSOLE`, `Uncaught` and `net::ERR_` lines count; the browser makes requests of its own (update
//! checks, time, accounts: Google hosts) even with background networking off, so those hosts are left
//! out of the net log check; `--screenshot` of a `file://` URL needs an absolute
//! path; the PNG is decoded (png crate) rather than trusted by its size, since a white page compresses
//! well but is still a valid file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::tools::Paths;

/// The window every page is rendered in.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2400;
/// The report's chart colours (svg.rs: blue, orange, green, purple, sky, vermillion).
const PALETTE: [[u8; 3]; 6] = [
    [0x00, 0x72, 0xB2],
    [0xE6, 0x9F, 0x00],
    [0x00, 0x9E, 0x73],
    [0xCC, 0x79, 0xA7],
    [0x56, 0xB4, 0xE9],
    [0xD5, 0x5E, 0x00],
];
/// Pixels of the palette a chart view must show at least (a 2-px line across a chart is thousands).
const MIN_CHART_PIXELS: usize = 400;

fn chromium() -> Result<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!("chromium not found: `cargo xtask setup` (as root) installs Debian's chromium")
}

/// A decoded screenshot: width, height, RGB pixels.
struct Shot {
    w: u32,
    h: u32,
    rgb: Vec<[u8; 3]>,
}

fn decode(p: &Path) -> Result<Shot> {
    let f = fs::File::open(p).with_context(|| format!("{}", p.display()))?;
    let mut r = png::Decoder::new(f)
        .read_info()
        .with_context(|| format!("{}: not a PNG", p.display()))?;
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf)?;
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => bail!("{}: unexpected PNG colour type {other:?}", p.display()),
    };
    if info.bit_depth != png::BitDepth::Eight {
        bail!("{}: unexpected bit depth {:?}", p.display(), info.bit_depth);
    }
    let rgb = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    Ok(Shot {
        w: info.width,
        h: info.height,
        rgb,
    })
}

impl Shot {
    /// Pixels that differ from the most common colour (the background).
    fn ink(&self) -> usize {
        let mut counts = std::collections::HashMap::new();
        for p in &self.rgb {
            *counts.entry(*p).or_insert(0usize) += 1;
        }
        let bg = counts.values().copied().max().unwrap_or(0);
        self.rgb.len() - bg
    }

    fn distinct(&self) -> usize {
        self.rgb
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// Pixels within a small distance of one of the chart colours.
    fn palette_pixels(&self) -> usize {
        self.rgb
            .iter()
            .filter(|p| {
                PALETTE
                    .iter()
                    .any(|c| (0..3).all(|i| (i16::from(p[i]) - i16::from(c[i])).abs() <= 10))
            })
            .count()
    }
}

/// Renders `page` to `png` in headless chromium; returns the browser's log (stderr).
fn render(browser: &Path, page: &Path, png: &Path, profile: &Path) -> Result<String> {
    let _ = fs::remove_dir_all(profile);
    let url = format!("file://{}", page.canonicalize()?.display());
    let mut child = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!(
            "--log-net-log={}",
            png.with_extension("netlog.json").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", browser.display()))?;
    let mut err = child.stderr.take().context("stderr")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "chromium did not finish rendering {} in 120 s",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = reader.join().unwrap_or_default();
    let _ = fs::remove_dir_all(profile);
    if !status.success() {
        bail!("chromium failed on {} ({status}):\n{log}", page.display());
    }
    Ok(log)
}

/// The http(s) URLs the browser requested, from its net log, without the browser's own service
/// requests (update checks, time, accounts: Google hosts the report never names).
fn page_requests(netlog: &str) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for part in netlog.split("\"url\":\"").skip(1) {
        let url = part.split('"').next().unwrap_or_default();
        let Some(rest) = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
        else {
            continue;
        };
        let host = rest
            .split(['/', ':', '?'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let browser_own = ["google.com", "googleapis.com", "gstatic.com", "gvt1.com"]
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")));
        if !browser_own {
            out.insert(url.to_string());
        }
    }
    out.into_iter().collect()
}

/// Lines of the browser log that say the page did something it must not.
fn bad_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("CONSOLE")
                || l.contains("Uncaught")
                || l.contains("net::ERR_")
                || l.contains("Refused to")
        })
        .collect()
}

/// One fixture: its report, both screenshots and their checks. Returns the failures and a summary line.
fn check_one(browser: &Path, kwire: &Path, out: &Path, f: &Path) -> Result<(Vec<String>, String)> {
    let mut failures = Vec::new();
    let name = f
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let html = out.join(format!("{name}.html"));
    let o = Command::new(kwire)
        .arg("report")
        .arg(f)
        .arg("-o")
        .arg(&html)
        .output()
        .context("run kwire report")?;
    if !o.status.success() {
        failures.push(format!(
            "{name}: kwire report failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
        return Ok((failures, String::new()));
    }
    // The same page with the overview hidden: its first charts come into the window.
    let page = fs::read_to_string(&html)?;
    let charts = out.join(format!("{name}.charts.html"));
    fs::write(
        &charts,
        page.replacen(
            "</style>",
            "#overview,header.top,nav.toc,.verdict,p.what,table{display:none}</style>",
            1,
        ),
    )?;
    let mut msgs = Vec::new();
    for (page, png, what) in [
        (&html, out.join(format!("{name}.png")), "page"),
        (&charts, out.join(format!("{name}.charts.png")), "charts"),
    ] {
        let profile = out.join(format!(".profile-{name}"));
        let log = render(browser, page, &png, &profile)?;
        fs::write(png.with_extension("log"), &log)?;
        for l in bad_lines(&log) {
            failures.push(format!("{name} ({what}): browser said: {l}"));
        }
        let netlog = fs::read_to_string(png.with_extension("netlog.json")).unwrap_or_default();
        if netlog.is_empty() {
            failures.push(format!("{name} ({what}): chromium wrote no net log"));
        }
        for u in page_requests(&netlog) {
            failures.push(format!("{name} ({what}): the page requested {u}"));
        }
        let s = decode(&png)?;
        if (s.w, s.h) != (WIDTH, HEIGHT) {
            failures.push(format!("{name} ({what}): screenshot is {}x{}", s.w, s.h));
        }
        let (ink, distinct) = (s.ink(), s.distinct());
        // Text and tables on a light background: thousands of pixels, dozens of colours.
        if ink < 20_000 || distinct < 32 {
            failures.push(format!(
                "{name} ({what}): blank screenshot ({ink} drawn pixels, {distinct} colours)"
            ));
        }
        if what == "charts" {
            let pal = s.palette_pixels();
            if pal < MIN_CHART_PIXELS {
                failures.push(format!(
                    "{name}: chart area empty ({pal} pixels of chart colours)"
                ));
            }
            msgs.push(format!("{pal} chart pixels"));
        } else {
            msgs.push(format!("{ink} drawn pixels, {distinct} colours"));
        }
    }
    Ok((failures, format!("{name}: {}", msgs.join("; "))))
}

pub fn report_check(paths: &Paths, args: &[String]) -> Result<()> {
    let started = Instant::now();
    eprintln!("==> report-check: every fixture's `kwire report` rendered by headless chromium");
    let browser = chromium()?;
    let kwire = crate::agent::build_kwire(paths)?;
    let out = paths.out().join("report-check");
    fs::create_dir_all(&out)?;
    let mut fixtures: Vec<PathBuf> = fs::read_dir(paths.fixtures())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .filter(|p| {
            args.is_empty()
                || args
                    .iter()
                    .any(|a| p.file_stem().is_some_and(|s| s.to_string_lossy() == *a))
        })
        .collect();
    fixtures.sort();
    if fixtures.is_empty() {
        bail!("no fixture matched {args:?}");
    }
    // Fixtures rendered in parallel (each chromium is one process tree, mostly single-threaded).
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let queue = std::sync::Mutex::new(fixtures.iter().collect::<Vec<_>>());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| {
                while let Some(f) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    let r = check_one(&browser, &kwire, &out, f);
                    if let Ok(mut v) = results.lock() {
                        v.push((f.clone(), r));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut failures = Vec::new();
    for (f, r) in results {
        match r {
            Ok((fails, line)) => {
                println!("      {line}");
                failures.extend(fails);
            }
            Err(e) => failures.push(format!("{}: {e:#}", f.display())),
        }
    }
    if !failures.is_empty() {
        bail!("report-check:\n  {}", failures.join("\n  "));
    }
    eprintln!(
        "    report-check: {} reports rendered and checked in {:.0}s (screenshots in {})",
        fixtures.len(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_script_and_network_lines_fail() {
        let log = "[1:2:ERROR:bus.cc(407)] Failed to connect to the bus\n\
                   [3:4:INFO:CONSOLE(1)] \"x\", source: file:///r.html (1)\n\
                   Uncaught ReferenceError\n\
                   [5:6:ERROR:x] net::ERR_NAME_NOT_RESOLVED\n";
        assert_eq!(bad_lines(log).len(), 3);
        assert!(bad_lines("[1:2:ERROR:bus.cc(407)] Failed to connect to the bus").is_empty());
    }

    #[test]
    fn page_requests_leave_out_the_browsers_own() {
        // What chromium 156's net log held for a page with <img src="http://example.invalid/a.png">.
        let log = r#"{"url":"http://clients2.google.com/time/1/current?x=1"},{"url":"http://example.invalid/a.png"},
            {"url":"https://update.googleapis.com/service/update2/json"},{"url":"file:///tmp/r.html"}"#;
        assert_eq!(page_requests(log), ["http://example.invalid/a.png"]);
        assert!(page_requests(r#"{"url":"https://accounts.google.com/ListAccounts"}"#).is_empty());
    }
}
