//! `kwire replay --tls-keylog`: the TLS captures of tests/fixtures/tls (real kafka-python, aiokafka and
//! kafkajs under node over TLS 1.2 and 1.3 to stunnel in front of tansu, see its README) decrypted with
//! the clients' own key logs give the same exchanges and alerts as the plaintext leg of the same run
//! (stunnel → tansu, captured by the same tcpdump). Without the key log: no exchange, the TLS
//! connections counted and the summary says a key log would help. With wrong secrets: records counted
//! as failed, nothing invented.
//! No secret of the key log appears in any output.
//!
//! Easy to get wrong: the two legs are different TCP connections (ports, connection numbers, Community
//! IDs, packet numbers and timestamps differ), so those are removed before comparing; what remains
//! (API, version, client id, correlation id, request and response bodies with topics, partitions,
//! offsets and error codes; alert kind, severity, client, topic, offsets) must be equal as multisets
//! (connections interleave differently on the two legs).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{replay, repo, Run};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/tls").join(name)
}

/// Fields that name the TCP connection or the moment rather than what was said: removed, with every
/// key ending in `_ts` (times) or `_addr` (client sockets).
const LEG_FIELDS: [&str; 10] = [
    "ts",
    "latency_us",
    "conn",
    "community_id",
    "request_frame",
    "response_frame",
    "alert_id",
    // Hashes and sentences that embed the broker's address and times (their typed fields are compared).
    "incident_id",
    "explanation",
    // Legitimately different: on the plaintext leg the broker is reached at tansu's own port while its
    // Metadata advertises stunnel's, so kwire cannot tell the broker's role there; on the TLS leg it can.
    "broker_role",
];

/// `broker` is the address of the broker on this leg: it becomes "BROKER".
fn strip_leg(v: &mut Value, broker: &str) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| {
                !LEG_FIELDS.contains(&k.as_str()) && !k.ends_with("_ts") && !k.ends_with("_addr")
            });
            for (_, x) in m.iter_mut() {
                strip_leg(x, broker);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip_leg(x, broker)),
        Value::String(s) if s == broker => *s = "BROKER".into(),
        _ => {}
    }
}

fn normalized(r: &Run, ty: &str, broker_port: u64) -> Vec<String> {
    let broker = format!("127.0.0.1:{broker_port}");
    let mut v: Vec<String> = r
        .of_type(ty)
        .into_iter()
        .map(|l| {
            let mut l = l.clone();
            strip_leg(&mut l, &broker);
            l.to_string()
        })
        .collect();
    v.sort();
    v
}

/// The run's facts (ports of both legs).
fn facts(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{name}.facts.json"))).unwrap())
        .unwrap()
}

fn ok(r: &Run, what: &str) {
    assert_eq!(r.status, 0, "{what}: kwire failed: {}", r.stderr);
}

/// The TLS leg decrypted gives exactly the plaintext leg's exchanges and alerts.
fn same_as_plaintext(name: &str) -> (Run, Run) {
    let keylog = fixture(&format!("{name}.keylog"));
    let tls = replay(
        &fixture(&format!("{name}.tls.pcap")),
        &["--tls-keylog", keylog.to_str().unwrap()],
    );
    let plain = replay(&fixture(&format!("{name}.plain.pcap")), &[]);
    ok(&tls, name);
    ok(&plain, name);
    let f = facts(name);
    let (tp, pp) = (
        f["tls_port"].as_u64().unwrap(),
        f["plain_port"].as_u64().unwrap(),
    );
    let (te, pe) = (
        normalized(&tls, "exchange", tp),
        normalized(&plain, "exchange", pp),
    );
    assert!(
        pe.len() >= 7,
        "{name}: the plaintext leg has {} exchanges",
        pe.len()
    );
    assert_eq!(te.len(), pe.len(), "{name}: exchange counts differ");
    for (t, p) in te.iter().zip(&pe) {
        assert_eq!(t, p, "{name}: an exchange differs");
    }
    let (ta, pa) = (
        normalized(&tls, "alert", tp),
        normalized(&plain, "alert", pp),
    );
    assert!(!ta.is_empty(), "{name}: no alert");
    assert_eq!(ta, pa, "{name}: alerts differ");
    // The summaries agree on what was decoded.
    for k in [
        "requests",
        "responses",
        "decode_errors",
        "orphans",
        "unanswered",
    ] {
        assert_eq!(tls.kafka(k), plain.kafka(k), "{name}: kafka.{k}");
    }
    assert_eq!(tls.client_ids(), plain.client_ids(), "{name}: client ids");
    assert_eq!(tls.api_counts(), plain.api_counts(), "{name}: APIs");
    let s = tls.summary();
    let n = s["flows"]["tls"].as_u64().unwrap();
    assert!(n >= 2, "{name}: {n} TLS connections");
    assert_eq!(s["tls"]["connections"], n);
    assert_eq!(
        s["tls"]["decrypted"], n,
        "{name}: every TLS connection decrypted"
    );
    assert_eq!(s["tls"]["records_failed"], 0, "{name}");
    assert_eq!(s["tls"]["without_keys"], 0, "{name}");
    assert_eq!(s["fidelity"]["complete"], true, "{name}: {}", s["fidelity"]);
    assert_eq!(s["kafka"]["decode_errors"], 0);
    (tls, plain)
}

fn alert<'a>(r: &'a Run, kind: &str, client: &str) -> &'a Value {
    let v: Vec<_> = r
        .of_type("alert")
        .into_iter()
        .filter(|a| a["alert"] == kind && a["client_id"] == client)
        .collect();
    assert_eq!(v.len(), 1, "one {kind} alert of {client}: {v:?}");
    v[0]
}

#[test]
fn tls13_aes256_gcm_matches_plaintext() {
    let (tls, _) = same_as_plaintext("tls13-aes256");
    let w = alert(&tls, "weak_acks", "kw-tls-acks1");
    assert_eq!(
        (w["severity"].as_str(), w["topic"].as_str()),
        (Some("warning"), Some("kw-tls"))
    );
    assert_eq!(w["acks"], 1);
    assert_eq!(w["records"], 4);
    assert_eq!(w["partitions"], serde_json::json!([0, 1]));
    let a = alert(&tls, "weak_acks", "kw-tls-aio");
    assert_eq!(
        (a["records"].as_i64(), a["topic"].as_str()),
        (Some(3), Some("kw-tls"))
    );
    let lo = alert(&tls, "listoffsets_regression", "kw-tlsrc-watch");
    assert_eq!(lo["topic"], "kw-tlsrc");
    assert_eq!(lo["partition"], 0);
    // The commit of the group read over TLS: OffsetCommit with kw-tls-group's offsets.
    let commits: Vec<_> = tls
        .exchanges()
        .into_iter()
        .filter(|e| e["api"] == "OffsetCommit" && e["client_id"] == "kw-tls-consumer")
        .collect();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0]["request"]["group_id"], "kw-tls-group");
}

#[test]
fn tls13_chacha20_matches_plaintext() {
    let (tls, _) = same_as_plaintext("tls13-chacha");
    alert(&tls, "weak_acks", "kw-tls-acks1");
    alert(&tls, "weak_acks", "kw-tls-aio");
}

#[test]
fn tls12_aes128_gcm_matches_plaintext() {
    let (tls, _) = same_as_plaintext("tls12-aes128");
    alert(&tls, "weak_acks", "kw-tls-acks1");
}

#[test]
fn tls12_chacha20_matches_plaintext() {
    let (tls, _) = same_as_plaintext("tls12-chacha");
    alert(&tls, "weak_acks", "kw-tls-acks1");
}

/// Node's own `--tls-keylog` (kafkajs 2.2.4 on node 20, TLS 1.3): the producer's weak acks and the
/// group's commit, decrypted, are the plaintext leg's.
#[test]
fn tls13_node_kafkajs_matches_plaintext() {
    let (tls, _) = same_as_plaintext("tls13-node");
    let w = alert(&tls, "weak_acks", "kw-tls-node");
    assert_eq!(
        (w["severity"].as_str(), w["topic"].as_str()),
        (Some("warning"), Some("kw-tls-node"))
    );
    assert_eq!(w["acks"], 1);
    assert_eq!(w["records"], 4);
    assert_eq!(w["partitions"], serde_json::json!([0, 1]));
    assert_eq!(tls.of_type("alert").len(), 1, "only the weak acks");
    let produces = tls
        .exchanges()
        .into_iter()
        .filter(|e| e["api"] == "Produce" && e["client_id"] == "kw-tls-node")
        .count();
    assert_eq!(produces, 4, "one Produce per record");
    let commits: Vec<_> = tls
        .exchanges()
        .into_iter()
        .filter(|e| e["api"] == "OffsetCommit" && e["client_id"] == "kw-tls-node-consumer")
        .collect();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0]["request"]["group_id"], "kw-tls-node-group");
    let parts = &commits[0]["request"]["topics"][0];
    assert_eq!(parts["name"], "kw-tls-node");
    assert_eq!(
        parts["partitions"],
        serde_json::json!([
            {"partition": 0, "committed_offset": 2},
            {"partition": 1, "committed_offset": 2}
        ])
    );
}

/// The facts of `kind` (and of `client`, when given) in a fixture's FACT lines.
fn facts_of<'a>(f: &'a Value, kind: &str, client: Option<&str>) -> Vec<&'a Value> {
    f["facts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["fact"] == kind && client.is_none_or(|c| x["client_id"] == c))
        .collect()
}

fn the<'a>(v: Vec<&'a Value>, what: &str) -> &'a Value {
    assert_eq!(v.len(), 1, "expected exactly one {what}: {v:#?}");
    v[0]
}

/// Commit after revoke over TLS (kafka-python, story `stale`): decrypted with the key log, the TLS leg
/// gives exactly the alerts the plaintext leg gives, and they are the ones the clients' facts call for:
/// member 1's explicit commit of its old positions for the two partitions the rebalance gave member 2,
/// accepted by tansu, is `commit_after_revoke` (critical) and rewinds member 2's committed offset
/// (`committed_offset_regression`, info), once per lost partition. Without the key log: nothing.
#[test]
fn tls13_stale_commit_after_revoke_matches_plaintext() {
    let name = "tls13-stale";
    let (tls, _) = same_as_plaintext(name);
    let f = facts(name);
    let (group, topic) = ("kw-tls-stale", "kw-tls-stale-topic");
    let (c1, c2) = ("kw-tls-stale-1", "kw-tls-stale-2");

    // What the clients say happened.
    let rb = the(facts_of(&f, "rebalanced", None), "rebalanced");
    let lost: Vec<i64> = rb["member1_lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    assert_eq!(lost.len(), 2, "member 1 lost two partitions: {rb}");
    assert_eq!(rb["member2_owns"], rb["member1_lost"]);
    let (m1, m2) = (
        rb["member1_id"].as_str().unwrap(),
        rb["member2_id"].as_str().unwrap(),
    );
    let commit = |c: &str, why: &str| {
        the(
            facts_of(&f, "committed", Some(c))
                .into_iter()
                .filter(|x| x["why"] == why)
                .collect(),
            &format!("{why} commit of {c}"),
        )
    };
    let first = commit(c1, "step1");
    let stale = commit(c1, "stale");
    let owned = commit(c2, "step4");
    assert_eq!(stale["member_id"], m1);
    assert_eq!(owned["member_id"], m2);
    assert_eq!(stale["generation"], owned["generation"]);
    for p in &lost {
        let k = p.to_string();
        assert_eq!(stale["errors"][&k], 0, "tansu accepted the stale commit");
        assert_eq!(owned["errors"][&k], 0);
        assert_eq!(stale["offsets"][&k], rb["stale_positions"][&k]);
    }

    // Exactly these four alerts, nothing else.
    let alerts = tls.of_type("alert");
    assert_eq!(alerts.len(), 4, "{alerts:#?}");
    let of = |kind: &str| {
        let mut v: Vec<&Value> = alerts
            .iter()
            .copied()
            .filter(|a| a["alert"] == kind)
            .collect();
        v.sort_by_key(|a| a["partition"].as_i64());
        v
    };
    let (car, reg) = (of("commit_after_revoke"), of("committed_offset_regression"));
    assert_eq!((car.len(), reg.len()), (2, 2), "{alerts:#?}");
    for (i, p) in lost.iter().enumerate() {
        let k = p.to_string();
        let (stale_off, owner_off) = (&stale["offsets"][&k], &owned["offsets"][&k]);
        let a = car[i];
        assert_eq!(
            (a["severity"].as_str(), a["client_id"].as_str()),
            (Some("critical"), Some(c1))
        );
        assert_eq!(
            (a["topic"].as_str(), a["partition"].as_i64()),
            (Some(topic), Some(*p))
        );
        assert_eq!(
            (a["group"].as_str(), a["member_id"].as_str()),
            (Some(group), Some(m1))
        );
        assert_eq!(&a["committed_offset"], stale_off);
        assert_eq!(
            (a["accepted"].as_bool(), a["broker_error_code"].as_i64()),
            (Some(true), Some(0))
        );
        assert_eq!(a["new_owner"], m2);
        assert_eq!(&a["new_owner_committed_offset"], owner_off);
        // Member 2 read up to what it committed before member 1's late commit.
        assert_eq!(&a["new_owner_served_offset"], owner_off);
        // The stale commit's generation; the partitions were revoked in the one of the first commit.
        assert_eq!(a["generation"], stale["generation"]);
        assert_eq!(a["revoked_generation"], first["generation"]);
        let b = reg[i];
        assert_eq!(
            (b["severity"].as_str(), b["client_id"].as_str()),
            (Some("info"), Some(c1))
        );
        assert_eq!(
            (b["topic"].as_str(), b["partition"].as_i64(), &b["ts"]),
            (Some(topic), Some(*p), &a["ts"])
        );
        assert_eq!(
            (&b["previous_offset"], &b["committed_offset"]),
            (owner_off, stale_off)
        );
        assert_eq!(
            b["delta"].as_i64(),
            Some(owner_off.as_i64().unwrap() - stale_off.as_i64().unwrap())
        );
        assert_eq!(
            (b["member_id"].as_str(), b["previous_member_id"].as_str()),
            (Some(m1), Some(m2))
        );
    }
    // The values the story was written to produce (the facts above could only agree with themselves).
    assert_eq!(car[0]["committed_offset"], 6);
    assert_eq!(car[0]["new_owner_committed_offset"], 7);

    // The accepted OffsetCommit is there, decrypted, with the stale offsets.
    let x: Vec<_> = tls
        .exchanges()
        .into_iter()
        .filter(|e| e["api"] == "OffsetCommit" && e["client_id"] == c1 && e["ts"] == car[0]["ts"])
        .collect();
    let x = the(x, "the stale OffsetCommit");
    assert_eq!(x["request"]["member_id"], m1);
    assert_eq!(
        x["request"]["generation_id_or_member_epoch"],
        stale["generation"]
    );
    assert_eq!(x["error_codes"], serde_json::json!([]));

    // Without the key log the same capture says nothing.
    let quiet = replay(&fixture(&format!("{name}.tls.pcap")), &[]);
    ok(&quiet, name);
    assert!(quiet.exchanges().is_empty());
    assert!(quiet.of_type("alert").is_empty());
    assert_eq!(
        quiet.summary()["tls"]["without_keys"],
        quiet.summary()["flows"]["tls"]
    );
}

#[test]
fn without_keylog_tls_is_counted_and_a_keylog_suggested() {
    let r = replay(&fixture("tls13-aes256.tls.pcap"), &[]);
    ok(&r, "no keylog");
    assert!(r.exchanges().is_empty());
    assert!(r.of_type("alert").is_empty());
    let s = r.summary();
    let n = s["flows"]["tls"].as_u64().unwrap();
    assert_eq!(
        n, 17,
        "TLS connections of tls13-aes256 (17 ServerHellos in the capture)"
    );
    assert_eq!(s["tls"]["connections"], n);
    assert_eq!(s["tls"]["without_keys"], n);
    assert_eq!(s["tls"]["keylog"], false);
    assert_eq!(s["fidelity"]["tls_without_keys"], n);
    assert!(s["fidelity"]["reasons"]
        .as_array()
        .unwrap()
        .contains(&Value::from("tls_without_keys")));
    // The readable summary says what would help.
    let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["replay", fixture("tls13-aes256.tls.pcap").to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--tls-keylog"), "{text}");
    assert!(text.contains("17 TLS connections not decrypted"), "{text}");
    assert!(
        text.contains("17 connections: 0 Kafka, 17 TLS, 0 other"),
        "{text}"
    );
    // With the key log the connection line says they were read.
    let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["replay", fixture("tls13-aes256.tls.pcap").to_str().unwrap()])
        .arg("--tls-keylog")
        .arg(fixture("tls13-aes256.keylog"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("17 connections: 0 Kafka, 17 TLS (17 decrypted), 0 other"),
        "{text}"
    );
    assert!(!text.contains("not decrypted"), "{text}");
}

/// The same key log with every secret replaced: nothing decrypts, nothing is invented, no panic.
#[test]
fn wrong_keys_fail_counted_and_invent_nothing() {
    let text = std::fs::read_to_string(fixture("tls13-aes256.keylog")).unwrap();
    let wrong: String = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() == 3 {
                format!("{} {} {}\n", f[0], f[1], "5a".repeat(f[2].len() / 2))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("kwire-tls-wrong-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wrong.keylog");
    std::fs::write(&path, wrong).unwrap();
    let r = replay(
        &fixture("tls13-aes256.tls.pcap"),
        &["--tls-keylog", path.to_str().unwrap()],
    );
    std::fs::remove_dir_all(&dir).ok();
    ok(&r, "wrong keys");
    assert!(r.exchanges().is_empty());
    assert!(r.of_type("alert").is_empty());
    let s = r.summary();
    assert_eq!(s["tls"]["decrypted"], 0);
    assert_eq!(s["tls"]["records_decrypted"], 0);
    assert!(s["tls"]["records_failed"].as_u64().unwrap() > 17);
    assert!(s["fidelity"]["reasons"]
        .as_array()
        .unwrap()
        .contains(&Value::from("tls_records_lost")));
    assert_eq!(s["kafka"]["requests"], 0);
}

/// `KWIRE_TLS_KEYLOG` and the config file's `tls_keylog` work as the flag does; an unreadable or empty
/// key log is refused by name.
#[test]
fn keylog_from_env_and_config() {
    let pcap = fixture("tls12-chacha.tls.pcap");
    let keylog = fixture("tls12-chacha.keylog");
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
            .args(["replay", pcap.to_str().unwrap(), "--json"])
            .args(args)
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (st, out, _) = run(&[("KWIRE_TLS_KEYLOG", keylog.to_str().unwrap())], &[]);
    assert_eq!(st, Some(0));
    assert!(out.contains("\"api\":\"Produce\""));
    let dir = std::env::temp_dir().join(format!("kwire-tls-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("kwire.toml");
    std::fs::write(
        &cfg,
        format!("tls_keylog = {:?}\n", keylog.to_str().unwrap()),
    )
    .unwrap();
    let (st, out, _) = run(&[], &["--config", cfg.to_str().unwrap()]);
    assert_eq!(st, Some(0));
    assert!(out.contains("\"api\":\"Produce\""));
    let empty = dir.join("empty.keylog");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let (st, _, err) = run(&[], &["--tls-keylog", empty.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_ne!(st, Some(0));
    assert!(err.contains("no TLS secrets"), "{err}");
}

/// No secret (nor the client randoms that index them) appears in any output of any command, readable or
/// JSON, with the key log given.
#[test]
fn no_secret_in_any_output() {
    for name in ["tls13-aes256", "tls12-aes128"] {
        let keylog = fixture(&format!("{name}.keylog"));
        let pcap = fixture(&format!("{name}.tls.pcap"));
        let text = std::fs::read_to_string(&keylog).unwrap();
        let secrets: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| {
                l.split(' ')
                    .skip(1)
                    .map(str::to_lowercase)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(secrets.len() >= 4);
        let dir = std::env::temp_dir().join(format!("kwire-tls-out-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let html = dir.join("r.html");
        let k = keylog.to_str().unwrap();
        let p = pcap.to_str().unwrap();
        let mut outputs = String::new();
        for args in [
            vec!["replay", p, "--json", "--tls-keylog", k],
            vec!["replay", p, "--tls-keylog", k],
            vec!["timeline", p, "--json", "--all", "--tls-keylog", k],
            vec!["timeline", p, "--tls-keylog", k],
            vec!["report", p, "--tls-keylog", k, "-o", html.to_str().unwrap()],
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
                .args(&args)
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            outputs.push_str(&String::from_utf8_lossy(&out.stdout));
            outputs.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        let report = std::fs::read_to_string(&html).unwrap();
        // The report's capture card says the TLS connections were read, as the readable summary does.
        assert!(
            report.contains(" TLS, ") && report.contains(" decrypted)</td>"),
            "{name}: the report's TCP connections row names the decrypted ones"
        );
        outputs.push_str(&report);
        std::fs::remove_dir_all(&dir).ok();
        assert!(
            outputs.contains("kw-tls-acks1"),
            "{name}: the outputs show the decrypted traffic"
        );
        let low = outputs.to_lowercase();
        for s in &secrets {
            // Any 16 hex digits of a secret or client random (the whole, or a piece of it).
            for piece in s.as_bytes().chunks(16).filter(|c| c.len() == 16) {
                let piece = std::str::from_utf8(piece).unwrap();
                assert!(
                    !low.contains(piece),
                    "{name}: a key log value appears in an output"
                );
            }
        }
    }
}

/// The TLS leg re-cut into TCP segments of `seg` payload bytes (Ethernet + IPv4 on loopback, as the
/// fixtures are): TLS records now span many segments. Same timestamps, so only packet numbers change.
fn resegmented(name: &str, seg: usize) -> Vec<u8> {
    let mut f = kwire_capture::PcapFile::open(&fixture(name)).unwrap();
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes()); // ns timestamps
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&262_144u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes()); // EN10MB
    let mut put = |ts: i64, data: &[u8]| {
        b.extend_from_slice(&(ts.div_euclid(1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&(ts.rem_euclid(1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
    };
    while let Some(p) = f.next_packet().unwrap() {
        let d = p.data;
        assert_eq!(&d[12..14], &[8, 0], "IPv4 over Ethernet");
        let ihl = usize::from(d[14] & 0x0f) * 4;
        let tcp = 14 + ihl;
        let thl = usize::from(d[tcp + 12] >> 4) * 4;
        let head = tcp + thl;
        let total = 14 + usize::from(u16::from_be_bytes([d[16], d[17]]));
        let payload = &d[head..total];
        if payload.len() <= seg {
            put(p.ts.0, &d[..total]);
            continue;
        }
        let seq = u32::from_be_bytes(d[tcp + 4..tcp + 8].try_into().unwrap());
        for (i, part) in payload.chunks(seg).enumerate() {
            let mut q = d[..head].to_vec();
            q.extend_from_slice(part);
            let ip_len = (q.len() - 14) as u16;
            q[16..18].copy_from_slice(&ip_len.to_be_bytes());
            let s = seq.wrapping_add((i * seg) as u32);
            q[tcp + 4..tcp + 8].copy_from_slice(&s.to_be_bytes());
            put(p.ts.0, &q);
        }
    }
    b
}

/// Records split over many TCP segments (and segments holding the end of one record and the start of
/// the next) decrypt to the same exchanges and alerts.
#[test]
fn records_split_across_segments_decrypt_the_same() {
    for (name, seg) in [
        ("tls12-aes128", 7),
        ("tls13-chacha", 1),
        ("tls13-aes256", 100),
        ("tls13-node", 3),
        ("tls13-stale", 13),
    ] {
        let keylog = fixture(&format!("{name}.keylog"));
        let k = ["--tls-keylog", keylog.to_str().unwrap()];
        let whole = replay(&fixture(&format!("{name}.tls.pcap")), &k);
        let dir = std::env::temp_dir().join(format!("kwire-tls-reseg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{seg}.pcap"));
        std::fs::write(&path, resegmented(&format!("{name}.tls.pcap"), seg)).unwrap();
        let cut = replay(&path, &k);
        std::fs::remove_dir_all(&dir).ok();
        ok(&cut, name);
        let port = facts(name)["tls_port"].as_u64().unwrap();
        for ty in ["exchange", "alert"] {
            assert_eq!(
                normalized(&cut, ty, port),
                normalized(&whole, ty, port),
                "{name} in {seg}-byte segments: {ty}s"
            );
        }
        assert!(!normalized(&cut, "exchange", port).is_empty());
        let s = cut.summary();
        assert_eq!(s["tls"]["records_failed"], 0, "{name}");
        assert_eq!(s["tls"]["decrypted"], s["flows"]["tls"], "{name}");
        assert_eq!(s["tcp"]["gaps"], 0, "{name}");
        assert!(
            s["packets"]["packets"].as_u64() > whole.summary()["packets"]["packets"].as_u64(),
            "{name}: re-cut into more packets"
        );
    }
}
