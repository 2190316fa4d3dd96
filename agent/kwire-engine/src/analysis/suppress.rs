//! Alert suppression: the `[[suppress]]` tables of the config file. A rule names an alert kind and/or
//! glob-like patterns (`*` any run of characters, `?` one character) on the alert's client id, topic
//! and consumer group; an alert every set criterion of which matches is not written, and the rule's
//! counter goes up. The summary lists every rule with its count (JSON `suppressed`, readable
//! `suppressed` line): a suppression is never silent.
//!
//! Easy to get wrong: a criterion the alert has no value for (a `group` pattern against `weak_acks`,
//! which has no group) does not match, so the rule does not apply; a rule with no criterion at all
//! would hide everything and is refused when the config is read ([`validate`]); the first matching rule
//! takes the count (rules are tried in file order); suppressed observations never open an incident;
//! the number of rules is bounded ([`MAX_RULES`]).

use serde::{Deserialize, Serialize};

use crate::output::alert::{Alert, AlertKind};

/// Most `[[suppress]]` rules accepted (every alert is tried against each in turn).
pub const MAX_RULES: usize = 1000;

/// One `[[suppress]]` table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SuppressRule {
    /// Alert kind (`weak_acks`, `commit_after_revoke`, ...); any kind when absent.
    pub alert: Option<String>,
    /// Pattern on the alert's client id.
    pub client: Option<String>,
    /// Pattern on the alert's topic.
    pub topic: Option<String>,
    /// Pattern on the alert's consumer group (its `group` field).
    pub group: Option<String>,
    /// Why (shown in the summary).
    pub reason: Option<String>,
}

/// A rule's line in the summary: the rule and how many alerts it held back.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suppressed {
    pub alert: Option<String>,
    pub client: Option<String>,
    pub topic: Option<String>,
    pub group: Option<String>,
    pub reason: Option<String>,
    pub count: u64,
}

impl Suppressed {
    /// The rule as one phrase: `weak_acks client=batch-* topic=logs`.
    pub fn describe(&self) -> String {
        let mut parts = vec![self.alert.clone().unwrap_or_else(|| "any alert".into())];
        for (k, v) in [
            ("client", &self.client),
            ("topic", &self.topic),
            ("group", &self.group),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        parts.join(" ")
    }
}

/// Checks the rules as read from the config file: known kinds, at least one criterion, at most
/// [`MAX_RULES`]. `Err` is a one-line message.
pub fn validate(rules: &[SuppressRule]) -> Result<(), String> {
    if rules.len() > MAX_RULES {
        return Err(format!(
            "{} [[suppress]] rules, at most {MAX_RULES}",
            rules.len()
        ));
    }
    for (i, r) in rules.iter().enumerate() {
        if let Some(a) = &r.alert {
            if !AlertKind::ALL.iter().any(|k| k.as_str() == a) {
                let known: Vec<&str> = AlertKind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(format!(
                    "[[suppress]] rule {}: unknown alert kind {a:?} (one of {})",
                    i + 1,
                    known.join(", ")
                ));
            }
        }
        if r.alert.is_none() && r.client.is_none() && r.topic.is_none() && r.group.is_none() {
            return Err(format!(
                "[[suppress]] rule {}: no alert, client, topic or group: it would hide every alert \
                 (turn detectors off with [detectors.<kind>] enabled = false)",
                i + 1
            ));
        }
    }
    Ok(())
}

/// The rules and their counters.
#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    rules: Vec<SuppressRule>,
    counts: Vec<u64>,
}

impl Suppressions {
    pub fn new(mut rules: Vec<SuppressRule>) -> Self {
        rules.truncate(MAX_RULES);
        let counts = vec![0; rules.len()];
        Suppressions { rules, counts }
    }

    /// True (and counted) when a rule holds `a` back.
    pub fn suppress(&mut self, a: &Alert) -> bool {
        let group = a.fields.get("group").and_then(|v| v.as_str());
        let hit = self.rules.iter().position(|r| {
            r.alert.as_deref().is_none_or(|k| k == a.kind.as_str())
                && matches(r.client.as_deref(), a.client_id.as_deref())
                && matches(r.topic.as_deref(), a.topic.as_deref())
                && matches(r.group.as_deref(), group)
        });
        match hit {
            Some(i) => {
                self.counts[i] += 1;
                true
            }
            None => false,
        }
    }

    /// Every rule with its count, in file order.
    pub fn report(&self) -> Vec<Suppressed> {
        self.rules
            .iter()
            .zip(&self.counts)
            .map(|(r, n)| Suppressed {
                alert: r.alert.clone(),
                client: r.client.clone(),
                topic: r.topic.clone(),
                group: r.group.clone(),
                reason: r.reason.clone(),
                count: *n,
            })
            .collect()
    }
}

/// An absent pattern matches anything; a pattern never matches an absent value.
fn matches(pattern: Option<&str>, value: Option<&str>) -> bool {
    match (pattern, value) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(p), Some(v)) => wildcard(p.as_bytes(), v.as_bytes()),
    }
}

/// `*` any run of bytes, `?` one byte (also the CLI's file globs; no crate for so little).
pub fn wildcard(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::alert::Severity;
    use kwire_flow::Timestamp;
    use std::sync::Arc;

    fn alert(kind: AlertKind, client: &str, topic: &str, group: Option<&str>) -> Alert {
        let mut a = Alert::new(kind, Severity::Warning, Timestamp(1), "x".into());
        a.client_id = Some(Arc::from(client));
        a.topic = Some(Arc::from(topic));
        if let Some(g) = group {
            a = a.field("group", g);
        }
        a
    }

    fn rule(alert: Option<&str>, client: Option<&str>, group: Option<&str>) -> SuppressRule {
        SuppressRule {
            alert: alert.map(Into::into),
            client: client.map(Into::into),
            group: group.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn matching_rule_suppresses_and_counts() {
        let mut s = Suppressions::new(vec![
            rule(Some("weak_acks"), Some("batch-*"), None),
            rule(None, None, Some("etl-?")),
        ]);
        assert!(s.suppress(&alert(AlertKind::WeakAcks, "batch-7", "logs", None)));
        assert!(s.suppress(&alert(
            AlertKind::CommitAfterRevoke,
            "c",
            "t",
            Some("etl-1")
        )));
        assert!(s.suppress(&alert(AlertKind::WeakAcks, "batch-", "t", None)));
        let r = s.report();
        assert_eq!(r[0].count, 2);
        assert_eq!(r[1].count, 1);
        assert_eq!(r[0].describe(), "weak_acks client=batch-*");
    }

    #[test]
    fn other_alerts_pass() {
        let mut s = Suppressions::new(vec![
            rule(Some("weak_acks"), Some("batch-*"), None),
            rule(None, None, Some("etl-?")),
        ]);
        // Another kind, another client, a group pattern against an alert without a group.
        assert!(!s.suppress(&alert(AlertKind::CommitAfterRevoke, "batch-7", "t", None)));
        assert!(!s.suppress(&alert(AlertKind::WeakAcks, "web-1", "logs", None)));
        assert!(!s.suppress(&alert(
            AlertKind::CommitAfterRevoke,
            "c",
            "t",
            Some("etl-10")
        )));
        assert!(s.report().iter().all(|r| r.count == 0));
    }

    #[test]
    fn validation() {
        assert!(validate(&[rule(Some("weak_acks"), None, None)]).is_ok());
        let e = validate(&[rule(Some("weak_ack"), None, None)]).unwrap_err();
        assert!(e.contains("unknown alert kind \"weak_ack\""), "{e}");
        let e = validate(&[SuppressRule {
            reason: Some("x".into()),
            ..Default::default()
        }])
        .unwrap_err();
        assert!(
            e.contains("rule 1: no alert, client, topic or group"),
            "{e}"
        );
    }
}
