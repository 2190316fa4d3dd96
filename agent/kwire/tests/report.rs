//! `kwire report` (issue #12) on every committed real-traffic fixture: one incident section per incident
//! of the `--json` alert lines, the figures of each section's "What happened" equal to the alert line's
//! own values, the evidence exchanges' correlation ids those of the `--json` exchange lines, nothing
//! loaded from anywhere (no URL, no script), the same bytes for the same capture, and a record canary
//! planted in a real capture never on the page.
//!
//! Easy to get wrong: numbers are printed with grouped digits (`169,994,417`), so expected values are
//! formatted the same way here before they are looked for; a section is the text from its
//! `id="inc-<incident_id>"` to its `</article>`, so a figure found in another incident does not count.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::repo;
use serde_json::Value;

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures/harness"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    assert!(v.len() >= 21, "fixtures missing: {v:?}");
    v
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kwire-report-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn report(pcap: &Path, out: &Path, extra: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("report")
        .arg(pcap)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .expect("run kwire report");
    assert!(
        o.status.success(),
        "{}: {}",
        pcap.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read_to_string(out).unwrap()
}

fn json_lines(pcap: &Path) -> Vec<Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["replay", "--json", "--no-notices"])
        .arg(pcap)
        .output()
        .expect("run kwire replay");
    assert!(o.status.success());
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// 169994417 -> "169,994,417", as the page prints figures.
fn grouped(v: i64) -> String {
    let s = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The incident section of `id`.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"inc-{id}\""))
        .unwrap_or_else(|| panic!("no section for incident {id}"));
    let end = page[start..].find("</article>").expect("section end") + start;
    &page[start..end]
}

/// The "What happened" paragraphs of a section.
fn what(sec: &str) -> String {
    let mut out = String::new();
    let mut rest = sec;
    while let Some(i) = rest.find("<p class=\"what\">") {
        let r = &rest[i..];
        let j = r.find("</p>").unwrap();
        out.push_str(&r[..j]);
        out.push('\n');
        rest = &r[j..];
    }
    assert!(!out.is_empty(), "no What happened paragraph");
    out
}

/// Integer fields every paragraph prints as a highlighted figure (all of the line's but these).
const NOT_FIGURES: [&str; 4] = [
    "occurrence",
    "broker_error_code",
    "acks",
    "preferred_read_replica",
];

#[test]
fn every_fixture_has_a_section_per_incident_with_the_alerts_own_figures() {
    let dir = tmpdir("fixtures");
    let mut checked_alerts = 0;
    let mut checked_exchanges = 0;
    for pcap in fixtures() {
        let name = pcap.file_stem().unwrap().to_string_lossy().to_string();
        let page = report(&pcap, &dir.join(format!("{name}.html")), &[]);
        let lines = json_lines(&pcap);
        let alerts: Vec<&Value> = lines.iter().filter(|l| l["type"] == "alert").collect();
        let incidents: BTreeSet<&str> = alerts
            .iter()
            .map(|a| a["incident_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            page.matches("<article class=\"incident ").count(),
            incidents.len(),
            "{name}: one section per incident"
        );
        if incidents.is_empty() {
            assert!(page.contains("No alert was raised"), "{name}");
        }
        // Exchanges by (client port, correlation id), to check the evidence rows' ids.
        let mut exchanges: BTreeMap<(String, i64), &Value> = BTreeMap::new();
        // Several requests can end in one packet (pipelining).
        let mut by_frame: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
        for x in lines.iter().filter(|l| l["type"] == "exchange") {
            let port = x["client_addr"]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .to_string();
            exchanges.insert((port, x["correlation_id"].as_i64().unwrap()), x);
            if let Some(f) = x["request_frame"].as_u64() {
                by_frame.entry(f).or_default().push(x);
            }
        }
        for a in &alerts {
            let id = a["incident_id"].as_str().unwrap();
            let sec = section(&page, id);
            let text = what(sec);
            let m = a.as_object().unwrap();
            for (k, v) in m {
                if let Some(i) = v.as_i64() {
                    if NOT_FIGURES.contains(&k.as_str()) || k == "partition" {
                        continue;
                    }
                    let want = format!("<b class=\"v\">{}</b>", grouped(i));
                    assert!(
                        text.contains(&want),
                        "{name} {id}: {k} = {i} not in What happened:\n{text}"
                    );
                } else if let Some(s) = v.as_str() {
                    if k.ends_with("_ts") && k != "incident_first_ts" {
                        assert!(
                            text.contains(&format!("<time>{s}</time>")),
                            "{name} {id}: {k} = {s} not in What happened:\n{text}"
                        );
                    }
                }
            }
            assert!(text.contains(&format!("<time>{}</time>", a["ts"].as_str().unwrap())));
            for k in [
                "client_id",
                "member_id",
                "group",
                "new_owner",
                "current_owner",
            ] {
                if let Some(s) = a[k].as_str() {
                    assert!(
                        text.contains(&esc(s)),
                        "{name} {id}: {k} {s} not in What happened"
                    );
                }
            }
            if let Some(acks) = a["acks"].as_i64() {
                assert!(text.contains(&format!("acks={acks}")), "{name}");
            }
            if let Some(code) = a["broker_error_code"].as_i64().filter(|c| *c != 0) {
                assert!(text.contains(&format!("({code})")), "{name}: error code");
            }
            // The remediation the alert line carries is the section's advice.
            if let Some(r) = a["remediation"].as_str() {
                assert!(sec.contains(&esc(r)), "{name} {id}: remediation");
            }
            // Evidence rows name real exchanges: every correlation id shown belongs to an exchange
            // line of that client port.
            for row in sec.split("<tr").skip(1) {
                // With packet numbers (every replay): the frame of the request, which is an exchange
                // line's request_frame, and the row shows that exchange's correlation id.
                if let Some(f) = row.find("frame.number == ") {
                    let n: u64 = row[f + 16..]
                        .chars()
                        .take_while(|c| c.is_ascii_digit())
                        .collect::<String>()
                        .parse()
                        .unwrap();
                    let xs = by_frame.get(&n).unwrap_or_else(|| {
                        panic!(
                            "{name} {id}: evidence names frame {n}: no exchange's request is there"
                        )
                    });
                    assert!(
                        xs.iter()
                            .any(|x| row.contains(&format!("{}</td>", x["correlation_id"]))),
                        "{row}"
                    );
                    checked_exchanges += 1;
                    continue;
                }
                let Some(f) = row.find("tcp.port == ") else {
                    continue;
                };
                let rest = &row[f + 12..];
                let port: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                let c = rest.find("kafka.correlation_id == ").unwrap() + 24;
                let corr: i64 = rest[c..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect::<String>()
                    .parse()
                    .unwrap();
                let x = exchanges.get(&(port.clone(), corr)).unwrap_or_else(|| {
                    panic!("{name} {id}: evidence names port {port} correlation id {corr}: no such exchange")
                });
                assert!(row.contains(&format!("{}</td>", x["correlation_id"])));
                checked_exchanges += 1;
            }
            checked_alerts += 1;
        }
        // Nothing loaded from anywhere.
        for bad in [
            "http://", "https://", "<script", "src=", "@import", "url(", "xmlns", "<link", "//cdn",
        ] {
            assert!(!page.contains(bad), "{name}: page contains {bad:?}");
        }
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.trim_end().ends_with("</html>"));
    }
    eprintln!("{checked_alerts} alert lines, {checked_exchanges} evidence rows checked");
    // Every alert fixture was checked (21 fixtures, 14 with alerts).
    assert!(checked_alerts >= 30, "{checked_alerts} alert lines checked");
    assert!(
        checked_exchanges >= 30,
        "{checked_exchanges} evidence rows checked"
    );
}

#[test]
fn evidence_of_a_follower_regression_shows_both_answers() {
    let pcap = repo().join("tests/fixtures/harness/follower-fetch-hwm-regression-mock.pcap");
    let dir = tmpdir("ff");
    let page = report(&pcap, &dir.join("r.html"), &[]);
    let lines = json_lines(&pcap);
    let a = lines
        .iter()
        .find(|l| l["type"] == "alert" && l["client_id"] == "kw-ff-reader")
        .unwrap();
    let sec = section(&page, a["incident_id"].as_str().unwrap());
    // The earlier answer (10 from the leader) and the lower one (4 from the follower), each with its
    // time and broker, the lower one highlighted as the trigger.
    assert!(sec.contains(a["previous_ts"].as_str().unwrap()));
    assert!(sec.contains(&format!(
        "{} (broker",
        a["previous_broker"].as_str().unwrap()
    )));
    let trigger = &sec[sec.find("<tr class=\"trigger\">").expect("trigger row")..];
    let trigger = &trigger[..trigger.find("</tr>").unwrap()];
    assert!(trigger.contains(a["ts"].as_str().unwrap()));
    assert!(trigger.contains(a["broker_addr"].as_str().unwrap()));
    assert!(trigger.contains("<td>4 (leader epoch 1)</td>"), "{trigger}");
    // The chart: an SVG with the told series and the alert marked.
    assert!(sec.contains("<svg class=\"chart\""));
    assert!(sec.contains("told: high watermark (Fetch)"));
    assert!(sec.contains("told 4 by broker"));
    assert!(sec.contains("told 10 by broker"));
    // Cause: the broker is a follower.
    assert!(sec.contains("follower"));
}

#[test]
fn the_same_capture_gives_the_same_bytes() {
    let dir = tmpdir("det");
    for name in [
        "commit-after-revoke-twice-cooperative-mock",
        "acks1-leader-change-mock",
    ] {
        let pcap = repo().join(format!("tests/fixtures/harness/{name}.pcap"));
        let a = report(&pcap, &dir.join("a.html"), &[]);
        let b = report(&pcap, &dir.join("b.html"), &[]);
        assert_eq!(a, b, "{name}");
        assert!(a.len() > 20_000);
    }
}

#[test]
fn the_engine_facts_reach_the_page_leader_changes_software_brokers() {
    let name = "acks1-leader-change-mock";
    let pcap = repo().join(format!("tests/fixtures/harness/{name}.pcap"));
    let dir = tmpdir("facts");
    let page = report(&pcap, &dir.join("r.html"), &[]);
    let lines = json_lines(&pcap);
    let a = lines.iter().find(|l| l["type"] == "alert").unwrap();
    // The cluster view's leader change of partition 0 is marked on the weak_acks chart.
    assert!(page.contains("leader change p0"), "leader change mark");
    // The software the client announced (ApiVersions), as the alert line names it.
    let sw = a["client_software"].as_str().unwrap();
    assert!(
        page.contains(&format!("<td>{}</td>", esc(sw))),
        "software in the clients table"
    );
    // Brokers with their node ids from Metadata: the alert's broker is listed.
    let b = a["broker_addr"].as_str().unwrap();
    assert!(page.contains(&format!("<code>{b}</code>")));
    // Every produce of the producer is an evidence row (answered ones: a base offset each).
    let sec = section(&page, a["incident_id"].as_str().unwrap());
    let produced = lines
        .iter()
        .filter(|l| {
            l["type"] == "exchange"
                && l["api"] == "Produce"
                && l["client_id"] == a["client_id"]
                && l["error_codes"].as_array().is_some_and(|e| e.is_empty())
        })
        .count();
    assert!(produced >= 10, "{produced}");
    assert_eq!(sec.matches("base offset assigned").count(), produced);
}

#[test]
fn a_record_canary_never_reaches_the_page() {
    // A real capture whose uncompressed records carry `...|kwirekwirekwire...` values: the padding is
    // replaced by a canary of the same length (kwire reads batch headers, not record bytes, and checks no
    // CRC), so the canary is on the wire in Produce requests and Fetch responses.
    let src = repo().join("tests/fixtures/harness/produce-compression-librdkafka-tansu.pcap");
    let mut b = std::fs::read(&src).unwrap();
    let from = b"kwirekwirekwire";
    let to = b"CANARYs3cr3t!!!";
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= b.len() {
        if &b[i..i + from.len()] == from {
            b[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(n >= 2, "the capture carries plain record values ({n})");
    let dir = tmpdir("canary");
    let pcap = dir.join("canary.pcap");
    std::fs::write(&pcap, &b).unwrap();
    let page = report(&pcap, &dir.join("r.html"), &[]);
    assert!(page.contains("kw-comp"), "the page covers the capture");
    assert!(page.contains("records produced"));
    assert!(!page.contains("CANARY"), "a record value reached the page");
    assert!(!page.contains("s3cr3t"));
}

#[test]
fn filters_narrow_the_incidents_and_output_over_an_input_is_refused() {
    let pcap = repo().join("tests/fixtures/harness/follower-fetch-hwm-regression-mock.pcap");
    let dir = tmpdir("filter");
    let page = report(&pcap, &dir.join("r.html"), &["--client", "kw-ff-tail"]);
    assert_eq!(page.matches("<article class=\"incident ").count(), 1);
    assert!(page.contains("Filter <code>--client kw-ff-tail</code>"));
    let copy = dir.join("in.pcap");
    std::fs::copy(&pcap, &copy).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("report")
        .arg(&copy)
        .arg("-o")
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&pcap).unwrap());
}

/// The sample report the README shows (docs/report-commit-after-revoke.html, made from a committed
/// fixture) is what kwire writes today, byte for byte. When the page changes on purpose, refresh it with
/// `UPDATE_EXPECT=1 cargo test -p kwire --test report` and look at it (and at the screenshot beside it).
#[test]
fn the_committed_sample_report_is_what_kwire_writes() {
    let sample = repo().join("docs/report-commit-after-revoke.html");
    let out = tmpdir("sample").join("r.html");
    // Run from the repository with a relative path: the page names its input as given.
    let o = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .current_dir(repo())
        .args([
            "report",
            "tests/fixtures/harness/commit-after-revoke-cooperative-mock.pcap",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let page = std::fs::read_to_string(&out).unwrap();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&sample, &page).unwrap();
    }
    let want = std::fs::read_to_string(&sample).unwrap_or_default();
    assert!(
        want == page,
        "{} differs from what kwire writes now (refresh: UPDATE_EXPECT=1 cargo test -p kwire --test report)",
        sample.display()
    );
}
