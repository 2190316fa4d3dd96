//! The command line in an incident (issue #11): what the readable summary says first, `--fail-on` for CI
//! and cron, several capture files read as one (a rotated `--write-pcap` set), an `--output` that would
//! overwrite the capture refused, output filters, ApiVersions negotiation not counted as an error, and the
//! JSON summary's time range and version.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{replay, repo};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/harness").join(name)
}

fn kwire(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(args)
        .output()
        .expect("run kwire")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kwire-inc-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Splits a classic pcap into files the way `kwire run --write-pcap` rotates them (FILE newest, FILE.1
/// older, ...): `parts` consecutive runs of packets, or (`interleave`) packet i into file i % parts.
/// Returns the paths, newest first.
fn split_pcap(src: &Path, dir: &Path, parts: usize, interleave: bool) -> Vec<PathBuf> {
    let b = std::fs::read(src).unwrap();
    assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let (hdr, mut rest) = b.split_at(24);
    let mut recs = Vec::new();
    while rest.len() >= 16 {
        let caplen = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (r, t) = rest.split_at(16 + caplen);
        recs.push(r.to_vec());
        rest = t;
    }
    let mut files: Vec<Vec<u8>> = vec![hdr.to_vec(); parts];
    let per = recs.len().div_ceil(parts);
    for (i, r) in recs.iter().enumerate() {
        let f = if interleave { i % parts } else { i / per };
        files[f].extend_from_slice(r);
    }
    // files[0] holds the oldest packets: it becomes FILE.(parts-1).
    let base = dir.join("kafka.pcap");
    let mut paths = Vec::new();
    for (i, bytes) in files.iter().enumerate() {
        let n = parts - 1 - i;
        let p = if n == 0 {
            base.clone()
        } else {
            PathBuf::from(format!("{}.{n}", base.display()))
        };
        std::fs::write(&p, bytes).unwrap();
        paths.push(p);
    }
    paths.reverse();
    paths
}

/// Every line but the summary's `file` object (it names the inputs).
fn without_file(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if let Some(m) = v.as_object_mut() {
                m.remove("file");
            }
            // Packet numbers count in each file (what Wireshark shows when it opens that file).
            common::strip_frames(&mut v);
            v
        })
        .collect()
}

#[test]
fn a_rotated_set_replays_as_the_whole_capture() {
    let src = fixture("commit-after-revoke-cooperative-mock.pcap");
    let whole = kwire(&["replay", src.to_str().unwrap(), "--json"]);
    assert_eq!(whole.status.code(), Some(0));
    for interleave in [false, true] {
        let dir = tmpdir(if interleave { "inter" } else { "rot" });
        let parts = split_pcap(&src, &dir, 3, interleave);
        let mut args = vec!["replay", "--json"];
        let names: Vec<String> = parts.iter().map(|p| p.display().to_string()).collect();
        args.extend(names.iter().map(String::as_str));
        let merged = kwire(&args);
        assert_eq!(merged.status.code(), Some(0), "{:?}", merged);
        assert_eq!(
            without_file(&merged.stdout),
            without_file(&whole.stdout),
            "interleave={interleave}: same exchanges, alerts and summary as the one file"
        );
        let last: Value = serde_json::from_str(
            String::from_utf8_lossy(&merged.stdout)
                .lines()
                .last()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(last["file"]["packets"], 621);
        assert_eq!(last["file"]["paths"].as_array().unwrap().len(), 3);
        // A quoted glob (cron, CI) expands to the same set; same bytes out.
        let glob = format!("{}/kafka.pcap*", dir.display());
        let globbed = kwire(&["replay", "--json", &glob]);
        assert_eq!(globbed.status.code(), Some(0));
        assert_eq!(without_file(&globbed.stdout), without_file(&whole.stdout));
        // The timeline reads the same set.
        let t_whole = kwire(&["timeline", src.to_str().unwrap(), "--json", "--all"]);
        let mut targs = vec!["timeline", "--json", "--all"];
        targs.extend(names.iter().map(String::as_str));
        let t_merged = kwire(&targs);
        assert_eq!(t_merged.status.code(), Some(0));
        assert!(t_whole.stdout.len() > 1000);
        assert!(
            without_file(&t_merged.stdout) == without_file(&t_whole.stdout),
            "the timeline of the set is the timeline of the whole capture"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    let none = kwire(&["replay", "/nonexistent-dir/kafka.pcap*"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("kafka.pcap*"));
}

#[test]
fn damage_in_one_file_stops_only_that_file() {
    let dir = tmpdir("dmg2");
    let good = fixture("produce-acks-librdkafka-mock.pcap");
    let mut bytes = std::fs::read(fixture("commit-after-revoke-cooperative-mock.pcap")).unwrap();
    bytes.truncate(bytes.len() - 7);
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, bytes).unwrap();
    let r = replay(&cut, &["--no-exchanges", good.to_str().unwrap()]);
    assert_eq!(r.status, 2);
    assert!(
        r.stderr.contains("cut.pcap: damaged at byte"),
        "{}",
        r.stderr
    );
    let s = r.summary();
    // 620 of the cut file's 621 packets, and all 192 of the good one (read after the damage).
    assert_eq!(s["file"]["packets"], 620 + 192);
    let kinds: Vec<&str> = r
        .of_type("alert")
        .iter()
        .map(|a| a["alert"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"weak_acks") && kinds.contains(&"commit_after_revoke"),
        "{kinds:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn many_captures_merged_criticals_listed_first_with_a_verdict() {
    let glob = repo().join("tests/fixtures/harness/*.pcap");
    let out = kwire(&["replay", glob.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1],
        "  verdict    23 critical alerts (commit_after_revoke, listoffsets_regression, produce_rejected, acknowledged_then_lost, weak_acks): data was lost, skipped or will be processed again"
    );
    let at = lines
        .iter()
        .position(|l| l.starts_with("  alerts "))
        .unwrap();
    assert_eq!(
        lines[at],
        "  alerts     53 (23 critical, 12 warning, 18 info)"
    );
    // Each listed alert is followed by its evidence line (the packets to open).
    assert!(
        lines[at + 2].trim_start().starts_with("evidence: "),
        "{}",
        lines[at + 2]
    );
    let rest: Vec<&str> = lines[at + 1..]
        .iter()
        .copied()
        .filter(|l| !l.trim_start().starts_with("evidence:"))
        .collect();
    let sev: Vec<&str> = rest[..23]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    // The first warning of the merged capture (weak_acks, 18:31) is older than every critical.
    assert!(sev.iter().all(|s| *s == "CRITICAL"), "{sev:?}");
    // More than a screen of warnings and infos: folded by kind and client, after the criticals.
    assert_eq!(
        rest[23],
        "    WARNING  12 alerts by kind and client (use --json for each):"
    );
    assert!(
        rest.contains(&"    INFO     18 alerts by kind and client (use --json for each):"),
        "{rest:?}"
    );
}

#[test]
fn fail_on_sets_exit_status_3() {
    let crit = fixture("commit-after-revoke-cooperative-mock.pcap"); // 2 critical, 2 info
    let warn = fixture("produce-acks-librdkafka-mock.pcap"); // 2 warnings
    let quiet = fixture("group-eager-mock.pcap"); // no alert
    let code = |f: &Path, extra: &[&str]| {
        let mut a = vec!["replay", f.to_str().unwrap()];
        a.extend_from_slice(extra);
        kwire(&a).status.code()
    };
    assert_eq!(code(&crit, &[]), Some(0));
    assert_eq!(code(&crit, &["--fail-on", "critical"]), Some(3));
    assert_eq!(code(&crit, &["--fail-on", "warning", "--json"]), Some(3));
    assert_eq!(code(&warn, &["--fail-on", "critical"]), Some(0));
    assert_eq!(code(&warn, &["--fail-on", "warning"]), Some(3));
    assert_eq!(code(&quiet, &["--fail-on", "warning"]), Some(0));
    // Filters narrow what counts: kw-carc-2 raised nothing.
    assert_eq!(
        code(&crit, &["--fail-on", "critical", "--client", "kw-carc-2"]),
        Some(0)
    );
    let out = kwire(&["replay", crit.to_str().unwrap(), "--fail-on", "critical"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--fail-on critical: a critical alert"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Damage (2) wins over --fail-on (3).
    let dir = tmpdir("dmg");
    let mut bytes = std::fs::read(&crit).unwrap();
    bytes.truncate(bytes.len() - 7);
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, bytes).unwrap();
    assert_eq!(code(&cut, &["--fail-on", "critical"]), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
    let help = String::from_utf8(kwire(&["replay", "--help"]).stdout).unwrap();
    assert!(
        help.contains("--fail-on <SEVERITY>") && help.contains("3 --fail-on"),
        "{help}"
    );
    let help = String::from_utf8(kwire(&["run", "--help"]).stdout).unwrap();
    assert!(help.contains("--fail-on <SEVERITY>"), "{help}");
}

#[test]
fn output_over_an_input_is_refused_before_anything_is_written() {
    let dir = tmpdir("over");
    let cap = dir.join("c.pcap");
    std::fs::copy(fixture("produce-acks-librdkafka-mock.pcap"), &cap).unwrap();
    let before = std::fs::read(&cap).unwrap();
    let other = dir.join("d.pcap");
    std::fs::copy(fixture("group-eager-mock.pcap"), &other).unwrap();
    // Another spelling of the same file.
    let alias = dir.join("sub/../c.pcap");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for out in [cap.clone(), alias] {
        let o = kwire(&[
            "replay",
            other.to_str().unwrap(),
            cap.to_str().unwrap(),
            "--json",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("refusing to overwrite"), "{err}");
        assert_eq!(std::fs::read(&cap).unwrap(), before, "capture untouched");
    }
    // A fresh file is fine.
    let o = kwire(&[
        "replay",
        cap.to_str().unwrap(),
        "-o",
        dir.join("out.txt").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_filters_narrow_what_is_printed_only() {
    let f = fixture("commit-after-revoke-cooperative-mock.pcap");
    let all = replay(&f, &[]);
    let by_client = replay(&f, &["--client", "kw-carc-2"]);
    let ex = by_client.exchanges();
    assert_eq!(ex.len(), 32, "kw-carc-2's exchanges");
    assert!(ex.iter().all(|e| e["client_id"] == "kw-carc-2"));
    assert!(by_client.of_type("alert").is_empty());
    // The analysis saw everything: the summary is the whole capture's.
    assert_eq!(by_client.kafka("requests"), all.kafka("requests"));
    assert_eq!(by_client.summary()["output_filter"], "--client kw-carc-2");

    let commits = replay(&f, &["--api", "offsetcommit"]);
    assert_eq!(commits.exchanges().len(), 7);
    assert!(commits
        .exchanges()
        .iter()
        .all(|e| e["api"] == "OffsetCommit"));
    assert_eq!(
        commits.of_type("alert").len(),
        4,
        "alerts are kept by --api"
    );
    assert_eq!(replay(&f, &["--api", "8"]).exchanges().len(), 7);

    // Fetch v16 names topics by id: the filter resolves them.
    let topic = replay(&f, &["--topic", "kw-carc", "--api", "Fetch"]);
    assert_eq!(
        topic.exchanges().len(),
        94,
        "every Fetch of the topic, named by id on the wire"
    );
    assert_eq!(topic.of_type("alert").len(), 4);
    assert!(replay(&f, &["--topic", "nope"]).exchanges().is_empty());

    let group = replay(&f, &["--group", "kw-carc", "--no-notices"]);
    let apis: std::collections::BTreeSet<&str> = group
        .exchanges()
        .iter()
        .map(|e| e["api"].as_str().unwrap())
        .collect();
    assert_eq!(
        apis.into_iter().collect::<Vec<_>>(),
        // Fetch too: a consumer's Fetch belongs to the group its client is a member of.
        vec![
            "Fetch",
            "Heartbeat",
            "JoinGroup",
            "LeaveGroup",
            "OffsetCommit",
            "OffsetFetch",
            "SyncGroup"
        ]
    );
    assert_eq!(group.of_type("alert").len(), 4);

    // The readable summary says it is filtered and counts only what matched.
    let o = kwire(&["replay", f.to_str().unwrap(), "--client", "kw-carc-2"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("  filter     --client kw-carc-2: "), "{text}");
    assert!(text.contains("  alerts     none"), "{text}");
}

#[test]
fn api_versions_negotiation_is_not_an_error() {
    let f = fixture("commit-after-revoke-cooperative-mock.pcap");
    let r = replay(&f, &[]);
    // The 13 ApiVersions v3 requests answered UNSUPPORTED_VERSION (the clients then retried with v0)
    // still carry the code on their line...
    let negotiated = r
        .exchanges()
        .iter()
        .filter(|e| e["api"] == "ApiVersions" && e["error_codes"] == serde_json::json!([35]))
        .count();
    assert_eq!(negotiated, 13);
    // ...but are not errors of the capture.
    assert_eq!(
        r.summary()["errors"],
        serde_json::json!([{"error_code": 27, "error": "REBALANCE_IN_PROGRESS", "count": 3}])
    );
    let o = kwire(&["replay", f.to_str().unwrap()]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("  errors     REBALANCE_IN_PROGRESS (27) x3\n"),
        "{text}"
    );
}

#[test]
fn json_summary_has_the_time_range_and_version() {
    let r = replay(
        &fixture("commit-after-revoke-cooperative-mock.pcap"),
        &["--no-exchanges"],
    );
    let s = r.summary();
    assert_eq!(s["first_ts"], "2026-11-22T18:50:57.530599Z");
    assert_eq!(s["last_ts"], "2026-11-22T18:51:16.814269Z");
    assert_eq!(s["kwire_version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn suppress_rules_hold_alerts_back_and_count_them() {
    let f = fixture("produce-acks-librdkafka-mock.pcap");
    let dir = tmpdir("suppress");
    let cfg = dir.join("suppress.toml");
    std::fs::write(
        &cfg,
        "[[suppress]]\nalert = \"weak_acks\"\nclient = \"kw-acks0*\"\nreason = \"fire and forget by design\"\n\
         [[suppress]]\ngroup = \"nightly-*\"\n",
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let r = replay(&f, &["--config", c, "--no-exchanges"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let alerts: Vec<&str> = r
        .of_type("alert")
        .iter()
        .map(|a| a["client_id"].as_str().unwrap())
        .collect();
    // Without the rule: kw-acks0 and kw-acks1 (cli.rs); the acks=0 producer is held back.
    assert_eq!(alerts, vec!["kw-acks1"]);
    let s = &r.summary()["suppressed"];
    assert_eq!(
        s,
        &serde_json::json!([
            {"alert": "weak_acks", "client": "kw-acks0*", "topic": null, "group": null,
             "reason": "fire and forget by design", "count": 1},
            {"alert": null, "client": null, "topic": null, "group": "nightly-*",
             "reason": null, "count": 0}
        ])
    );
    // The readable summary says so.
    let out = kwire(&["replay", f.to_str().unwrap(), "--config", c]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "  suppressed 1 alert by 2 [[suppress]] rules of the config (not listed above)\n"
        ) && text.contains("         1 x weak_acks client=kw-acks0* (fire and forget by design)\n")
            && text.contains("         0 x any alert group=nightly-*\n"),
        "{text}"
    );
    assert!(
        text.contains("alerts     1 (0 critical, 1 warning, 0 info)"),
        "{text}"
    );
    // A rule that would hide everything, or an unknown kind, is refused.
    for (body, msg) in [
        (
            "[[suppress]]\nreason = \"x\"\n",
            "rule 1: no alert, client, topic or group",
        ),
        (
            "[[suppress]]\nalert = \"weak_ack\"\n",
            "unknown alert kind \"weak_ack\"",
        ),
    ] {
        std::fs::write(&cfg, body).unwrap();
        let out = kwire(&["replay", f.to_str().unwrap(), "--config", c]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{err}");
    }
}

/// Rewrites a little-endian classic pcap record by record: `f` gets (caplen-cut data, original length)
/// and returns the data to keep (None drops the packet). The same as `editcap -s N` (data cut, original
/// length kept) or a `tcpdump -r in -w out FILTER`.
fn rewrite_pcap(src: &Path, dst: &Path, mut f: impl FnMut(&[u8]) -> Option<Vec<u8>>) {
    let b = std::fs::read(src).unwrap();
    assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let (hdr, mut rest) = b.split_at(24);
    let mut out = hdr.to_vec();
    while rest.len() >= 16 {
        let caplen = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (r, t) = rest.split_at(16 + caplen);
        if let Some(data) = f(&r[16..]) {
            out.extend_from_slice(&r[..8]);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&r[12..16]);
            out.extend_from_slice(&data);
        }
        rest = t;
    }
    std::fs::write(dst, out).unwrap();
}

/// The TCP header of an Ethernet + IPv4 frame.
fn tcp_header(d: &[u8]) -> &[u8] {
    assert_eq!(&d[12..14], &[0x08, 0x00], "IPv4 over Ethernet");
    let ihl = usize::from(d[14] & 0x0f) * 4;
    &d[14 + ihl..]
}

fn fidelity(r: &common::Run) -> Value {
    r.summary()["fidelity"].clone()
}

fn readable(f: &Path, extra: &[&str]) -> String {
    let mut args = vec!["replay", f.to_str().unwrap()];
    args.extend_from_slice(extra);
    String::from_utf8(kwire(&args).stdout).unwrap()
}

/// The case: copies of a capture with two critical alerts, degraded the way captures are, say
/// why their conclusions may be missing; the original says `complete`.
#[test]
fn fidelity_says_why_conclusions_may_be_missing() {
    let src = fixture("commit-after-revoke-cooperative-mock.pcap");
    let dir = tmpdir("fidelity");

    let clean = replay(&src, &["--no-exchanges"]);
    assert_eq!(clean.of_type("alert").len(), 4);
    let f = fidelity(&clean);
    assert_eq!(f["complete"], true);
    assert_eq!(f["reasons"], serde_json::json!([]));
    assert!(readable(&src, &[]).contains("\n  fidelity   complete\n"));

    // editcap -s 96: every packet with payload past byte 96 is cut.
    let cut = dir.join("cut.pcap");
    rewrite_pcap(&src, &cut, |d| Some(d[..d.len().min(96)].to_vec()));
    let r = replay(&cut, &["--no-exchanges"]);
    assert!(
        r.of_type("alert").is_empty(),
        "the cut copy loses the alerts"
    );
    let f = fidelity(&r);
    assert_eq!(f["complete"], false);
    assert_eq!(f["reasons"], serde_json::json!(["snaplen"]));
    assert_eq!(f["snaplen_cut_packets"], 335);
    assert_eq!(f["snaplen_cut_bytes"], 23598);
    assert_eq!(f["lost_bytes"], 0, "every gap is a snaplen cut");
    let text = readable(&cut, &[]);
    assert!(
        text.contains("  fidelity   incomplete: alerts and figures may be missing because of\n             - 335 packets cut by the snaplen (23598 TCP payload bytes missing)"),
        "{text}"
    );

    // tcpdump 'dst port B1 or dst port B2 ...': requests only (client to broker).
    let brokers = [43641u16, 44707, 45513];
    let onedir = dir.join("onedir.pcap");
    rewrite_pcap(&src, &onedir, |d| {
        let t = tcp_header(d);
        brokers
            .contains(&u16::from_be_bytes([t[2], t[3]]))
            .then(|| d.to_vec())
    });
    let r = replay(&onedir, &["--no-exchanges"]);
    assert!(r.of_type("alert").is_empty());
    let f = fidelity(&r);
    assert_eq!(f["reasons"], serde_json::json!(["one_direction"]));
    assert_eq!(f["one_direction_connections"], 13);
    assert!(
        readable(&onedir, &[]).contains("- 13 Kafka connections with bytes in one direction only")
    );

    // Joined mid-stream: no SYN of any connection captured.
    let mid = dir.join("mid.pcap");
    rewrite_pcap(&src, &mid, |d| {
        (tcp_header(d)[13] & 0x02 == 0).then(|| d.to_vec())
    });
    let r = replay(&mid, &["--no-exchanges"]);
    let f = fidelity(&r);
    assert_eq!(f["reasons"], serde_json::json!(["midstream"]));
    assert_eq!(f["midstream_connections"], 13);
    assert!(readable(&mid, &[]).contains(
        "- 13 Kafka connections joined mid-stream (no SYN seen): group state and earlier offsets unknown"
    ));

    // Analysis limits hit: no client timeline kept, no group tracked.
    let cfg = dir.join("limits.toml");
    std::fs::write(&cfg, "[limits]\nmax_clients = 0\nmax_groups = 0\n").unwrap();
    let c = cfg.to_str().unwrap();
    let r = replay(&src, &["--config", c, "--no-exchanges"]);
    let f = fidelity(&r);
    assert_eq!(f["reasons"], serde_json::json!(["analysis_limits"]));
    assert!(
        f["limits"]["timelines_dropped"].as_u64().unwrap() > 0,
        "{f}"
    );
    assert!(f["limits"]["groups_dropped"].as_u64().unwrap() > 0, "{f}");
    assert!(readable(&src, &["--config", c]).contains("- analysis limits hit, not tracked: "));
}

/// `kwire timeline` tells a group incident: join (generation, assignor), sync with the partitions
/// assigned and revoked, heartbeat errors, leave; `--group`, `--since`, `--until`, `-o`.
#[test]
fn timeline_tells_the_group_story_in_a_window() {
    let f = fixture("commit-after-revoke-cooperative-mock.pcap");
    let fs = f.to_str().unwrap();
    let dir = tmpdir("timeline");
    let out = dir.join("tl.txt");
    let o = kwire(&[
        "timeline",
        fs,
        "--group",
        "kw-carc",
        "--since",
        "2026-11-22T18:51:06.249Z",
        "--until",
        "2026-11-22T18:51:11.7876Z",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stdout.is_empty());
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ts "));
    // The window: first and last rows inside it.
    assert!(
        lines[1].starts_with("2026-11-22T18:51:06.249042Z kw-carc-1"),
        "{text}"
    );
    assert!(lines
        .iter()
        .skip(1)
        .all(|l| &l[..27] <= "2026-11-22T18:51:11.787600Z"));
    let group_rows: Vec<String> = lines
        .iter()
        .filter(|l| l.contains(" group_"))
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", c[1], c[2], l.split("  ").last().unwrap().trim())
        })
        .collect();
    assert_eq!(
        group_rows,
        vec![
            "kw-carc-1 group_sync member 0x7fd8ac004490, assigned [kw-carc-2 kw-carc-3], revoked [kw-carc-0 kw-carc-1]",
            "kw-carc-2 group_sync member 0x7fd8ac005e90, assigned []",
            "kw-carc-1 group_join member 0x7fd8ac004490, assignor cooperative-sticky",
            "kw-carc-2 group_heartbeat member 0x7fd8ac005e90, REBALANCE_IN_PROGRESS",
            "kw-carc-2 group_join member 0x7fd8ac005e90, assignor cooperative-sticky",
            "kw-carc-1 group_sync member 0x7fd8ac004490, assigned [kw-carc-2 kw-carc-3]",
            "kw-carc-2 group_sync member 0x7fd8ac005e90, assigned [kw-carc-0 kw-carc-1]",
        ],
        "{text}"
    );
    // The new owner's rows that do not name the group are kept (a client seen in the group).
    assert!(text.contains(
        "2026-11-22T18:51:11.286469Z kw-carc-2                offset_fetch           kw-carc-0                       6"
    ));
    assert!(!text.contains("kw-carc-producer"), "{text}");

    // JSON: group_event lines with the generation and the partitions.
    let o = kwire(&["timeline", fs, "--group", "kw-carc", "--json"]);
    let events: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["type"] == "group_event")
        .collect();
    let revoking = events
        .iter()
        .find(|e| e["what"] == "sync" && !e["revoked"].as_array().unwrap().is_empty())
        .unwrap();
    assert_eq!(revoking["generation"], 3);
    assert_eq!(revoking["client_id"], "kw-carc-1");
    assert_eq!(
        revoking["assigned"],
        serde_json::json!(["kw-carc-2", "kw-carc-3"])
    );
    assert_eq!(
        revoking["revoked"],
        serde_json::json!(["kw-carc-0", "kw-carc-1"])
    );
    assert!(events
        .iter()
        .any(|e| e["what"] == "leave" && e["client_id"] == "kw-carc-2"));

    // Another group: nothing; a bad time and an output over the input are refused.
    let o = kwire(&["timeline", fs, "--group", "nope"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
    let o = kwire(&["timeline", fs, "--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected RFC 3339"));
    let copy = dir.join("in.pcap");
    std::fs::copy(&f, &copy).unwrap();
    let c = copy.to_str().unwrap();
    let o = kwire(&["timeline", c, "-o", c]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&f).unwrap());
}
