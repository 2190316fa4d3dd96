//! The Grafana dashboards in `dashboards/` query only what kwire exports, and show all of it.
//!
//! Every PromQL and LogQL expression of every dashboard (panel targets, nested rows, template variables,
//! annotations) is tokenized by hand and checked against the export catalog: each metric is the
//! Prometheus name of a catalog metric (`_bucket`/`_sum`/`_count` for the histogram), each label is one of
//! that metric's attributes, a resource attribute, or one Prometheus adds (`le`, `job`, `instance`,
//! `__name__`); each Loki label or field is `service_name`, an alert log attribute, `kwire_alert_*` or a
//! resource attribute, and each LogQL query selects the alert records. Together the dashboards query every
//! metric of `Metric::ALL` (or `NOT_SHOWN` says why not). Structure: uid, title, tags, unique panel ids, and
//! every panel's data source is a data-source template variable.
//!
//! Easy to get wrong: names on dashboards are the ones a Prometheus backend sees after the collector's
//! translation (`kwire_alerts_total`), not the dotted OpenTelemetry names; `catalog::prometheus_name` is the
//! only source of them here, so a renamed metric fails this test instead of emptying a panel.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use kwire_export::catalog::{
    prometheus_label, prometheus_name, Instrument, Metric, ALERT_FIELD_PREFIX,
    ALERT_LOG_ATTRIBUTES, RESOURCE_ATTRIBUTES,
};
use serde_json::{json, Value};

/// Metrics deliberately on no dashboard, with the reason. Empty: every exported metric is shown.
const NOT_SHOWN: &[(Metric, &str)] = &[];

/// Labels Prometheus (or the collector's exporter) adds to every series, whatever the metric.
const PROMETHEUS_LABELS: &[&str] = &["le", "job", "instance", "__name__"];

/// Column names Grafana gives data frames (usable in table transformations besides labels).
const FRAME_FIELDS: &[&str] = &["Time", "Value", "Line", "labels", "tsNs", "id", "Metric"];

/// PromQL (and Grafana variable) functions.
const PROMQL_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "count_values",
    "delta",
    "deriv",
    "exp",
    "floor",
    "group",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_sum",
    "holt_winters",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log2",
    "log10",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "predict_linear",
    "present_over_time",
    "quantile",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "stddev",
    "stddev_over_time",
    "stdvar",
    "stdvar_over_time",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "vector",
    // Grafana template-variable queries.
    "label_names",
    "metrics",
    "query_result",
];

/// PromQL words that are neither functions nor metrics.
const PROMQL_KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "Inf",
    "NaN",
];

/// Clauses followed by a parenthesised list of label names.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// LogQL metric functions and aggregations.
const LOGQL_FUNCTIONS: &[&str] = &[
    "rate",
    "count_over_time",
    "bytes_rate",
    "bytes_over_time",
    "sum_over_time",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "first_over_time",
    "last_over_time",
    "absent_over_time",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "topk",
    "bottomk",
    "sort",
    "sort_desc",
    "vector",
];

/// Fields every LogQL template may use besides labels.
const LOGQL_TEMPLATE_BUILTINS: &[&str] = &["__line__", "__timestamp__"];

// ------------------------------------------------------------------------------------------ catalog view

/// The names a dashboard may use, derived from the catalog.
struct Names {
    /// Prometheus series name → the metric and the labels its series carry.
    series: BTreeMap<String, (Metric, BTreeSet<String>)>,
    /// Labels any series carries (resource attributes, Prometheus' own).
    common: BTreeSet<String>,
    /// Labels and fields of alert log records in Loki (besides `kwire_alert_*`).
    log: BTreeSet<String>,
}

impl Names {
    fn new() -> Names {
        let mut common: BTreeSet<String> = RESOURCE_ATTRIBUTES
            .iter()
            .map(|a| prometheus_label(a))
            .collect();
        common.extend(PROMETHEUS_LABELS.iter().map(|l| l.to_string()));
        let mut series = BTreeMap::new();
        for m in Metric::ALL {
            let def = m.def();
            let labels: BTreeSet<String> =
                def.attributes.iter().map(|a| prometheus_label(a)).collect();
            let base = prometheus_name(&def);
            if def.instrument == Instrument::Histogram {
                for suffix in ["_bucket", "_sum", "_count"] {
                    series.insert(format!("{base}{suffix}"), (m, labels.clone()));
                }
            } else {
                series.insert(base, (m, labels));
            }
        }
        let mut log: BTreeSet<String> = ALERT_LOG_ATTRIBUTES
            .iter()
            .map(|a| prometheus_label(a))
            .collect();
        log.extend(RESOURCE_ATTRIBUTES.iter().map(|a| prometheus_label(a)));
        log.insert("service_name".to_string());
        Names {
            series,
            common,
            log,
        }
    }

    fn metric_allows(&self, series: &str, label: &str) -> bool {
        self.common.contains(label)
            || self
                .series
                .get(series)
                .is_some_and(|(_, labels)| labels.contains(label))
    }

    fn any_metric_allows(&self, label: &str) -> bool {
        self.common.contains(label) || self.series.values().any(|(_, l)| l.contains(label))
    }

    fn log_allows(&self, label: &str) -> bool {
        self.log.contains(label)
            || label
                .strip_prefix(&prometheus_label(ALERT_FIELD_PREFIX))
                .is_some_and(|field| !field.is_empty())
    }
}

// ---------------------------------------------------------------------------------------------- tokenizer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num,
    /// A template variable (`$node`, `${DS_LOKI}`, `$__rate_interval`).
    Var,
    /// `[...]`: a range or subquery (`[5m]`, `[$__rate_interval]`, `[1h:5m]`).
    Range,
    /// Brackets, commas, and runs of operator characters (`=~`, `!=`, `|=`, `|`).
    Punct(String),
}

/// Splits a PromQL or LogQL expression into tokens. Strings, numbers, durations, ranges, comments and
/// template variables become opaque tokens so none of them is mistaken for a name.
fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident_start = |ch: char| ch.is_ascii_alphabetic() || ch == '_' || ch == ':';
    let ident_cont = |ch: char| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':';
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '#' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '"' || ch == '\'' || ch == '`' {
            let mut s = String::new();
            i += 1;
            loop {
                match c.get(i) {
                    None => return Err(format!("unterminated string in `{src}`")),
                    Some('\\') if ch != '`' => {
                        if let Some(n) = c.get(i + 1) {
                            s.push(*n);
                        }
                        i += 2;
                    }
                    Some(&q) if q == ch => {
                        i += 1;
                        break;
                    }
                    Some(&o) => {
                        s.push(o);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if ch == '[' {
            while i < c.len() && c[i] != ']' {
                i += 1;
            }
            if i == c.len() {
                return Err(format!("unterminated `[` in `{src}`"));
            }
            i += 1;
            out.push(Tok::Range);
        } else if ch == '$' {
            i += 1;
            if c.get(i) == Some(&'{') {
                while i < c.len() && c[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < c.len() && ident_cont(c[i]) && c[i] != ':' {
                    i += 1;
                }
            }
            out.push(Tok::Var);
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(|n| n.is_ascii_digit()))
        {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.' || c[i] == '_') {
                // An exponent's sign (`1e-9`) belongs to the number.
                if (c[i] == 'e' || c[i] == 'E') && matches!(c.get(i + 1), Some('-') | Some('+')) {
                    i += 1;
                }
                i += 1;
            }
            out.push(Tok::Num);
        } else if ident_start(ch) {
            let start = i;
            while i < c.len() && ident_cont(c[i]) {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else if "=!~<>|".contains(ch) {
            let start = i;
            while i < c.len() && "=!~<>|".contains(c[i]) {
                i += 1;
            }
            out.push(Tok::Punct(c[start..i].iter().collect()));
        } else if "(){},+-*/%^".contains(ch) {
            out.push(Tok::Punct(ch.to_string()));
            i += 1;
        } else {
            return Err(format!("unexpected `{ch}` in `{src}`"));
        }
    }
    Ok(out)
}

fn is_punct(t: Option<&Tok>, p: &str) -> bool {
    matches!(t, Some(Tok::Punct(s)) if s == p)
}

/// `sum by (...) (...)`: an aggregation whose grouping comes first.
fn grouped(t: Option<&Tok>) -> bool {
    matches!(t, Some(Tok::Ident(s)) if s == "by" || s == "without")
}

fn is_comparison(t: Option<&Tok>) -> bool {
    matches!(t, Some(Tok::Punct(s)) if ["=", "!=", "=~", "!~", "==", ">", "<", ">=", "<="].contains(&s.as_str()))
}

/// The label names of a `(a, b, c)` list starting at `i` (the `(`), and the index after its `)`.
fn label_list(toks: &[Tok], mut i: usize) -> Result<(Vec<String>, usize), String> {
    let mut labels = Vec::new();
    i += 1;
    loop {
        match toks.get(i) {
            Some(Tok::Ident(l)) => labels.push(l.clone()),
            Some(Tok::Punct(p)) if p == "," => {}
            Some(Tok::Punct(p)) if p == ")" => return Ok((labels, i + 1)),
            other => return Err(format!("unexpected {other:?} in a label list")),
        }
        i += 1;
    }
}

/// One `label op "value"` matcher.
type Matcher = (String, String, String);

/// The matchers of a `{label op "value", ...}` selector starting at `i` (the `{`), and the index after `}`.
fn matchers(toks: &[Tok], mut i: usize) -> Result<(Vec<Matcher>, usize), String> {
    let mut out = Vec::new();
    i += 1;
    loop {
        match toks.get(i) {
            Some(Tok::Punct(p)) if p == "}" => return Ok((out, i + 1)),
            Some(Tok::Punct(p)) if p == "," => i += 1,
            Some(Tok::Ident(l)) => match (toks.get(i + 1), toks.get(i + 2)) {
                (Some(Tok::Punct(op)), Some(Tok::Str(v))) if is_comparison(toks.get(i + 1)) => {
                    out.push((l.clone(), op.clone(), v.clone()));
                    i += 3;
                }
                other => return Err(format!("bad matcher after `{l}`: {other:?}")),
            },
            other => return Err(format!("unexpected {other:?} in a selector")),
        }
    }
}

/// The names inside `{{ ... }}` of a legend or template (`{{label}}`, `{{ .field }}`).
fn template_names(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        for word in inner.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.'))
        {
            let name = word.trim_start_matches('.');
            if !name.is_empty() && !name.contains('.') {
                out.push(name.to_string());
            }
        }
        rest = &rest[start + len + 2..];
    }
    out
}

// ---------------------------------------------------------------------------------------------- checks

/// What checking one dashboard found.
#[derive(Default)]
struct Report {
    errors: Vec<String>,
    used: BTreeSet<Metric>,
}

impl Report {
    fn err(&mut self, at: &str, msg: String) {
        self.errors.push(format!("{at}: {msg}"));
    }
}

/// Checks one PromQL expression (and its legend). Returns the series names it queries.
fn check_promql(
    names: &Names,
    at: &str,
    expr: &str,
    legend: Option<&str>,
    r: &mut Report,
) -> Vec<String> {
    let toks = match tokenize(expr) {
        Ok(t) => t,
        Err(e) => {
            r.err(at, e);
            return Vec::new();
        }
    };
    let mut series: Vec<String> = Vec::new();
    let mut grouping: Vec<String> = Vec::new();
    let mut skip: BTreeSet<usize> = BTreeSet::new();
    let mut i = 0;
    while i < toks.len() {
        if skip.contains(&i) {
            i += 1;
            continue;
        }
        match &toks[i] {
            Tok::Ident(word) if is_punct(toks.get(i + 1), "(") => {
                if GROUPING.contains(&word.as_str()) {
                    match label_list(&toks, i + 1) {
                        Ok((labels, next)) => {
                            grouping.extend(labels);
                            i = next;
                            continue;
                        }
                        Err(e) => r.err(at, format!("`{expr}`: {e}")),
                    }
                } else if word == "label_values" {
                    // label_values([selector,] label): the last name before the closing `)` is a label.
                    let mut depth = 0;
                    let mut j = i + 1;
                    while j < toks.len() {
                        if is_punct(toks.get(j), "(") {
                            depth += 1;
                        } else if is_punct(toks.get(j), ")") {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        j += 1;
                    }
                    match toks.get(j - 1) {
                        Some(Tok::Ident(label)) => {
                            grouping.push(label.clone());
                            skip.insert(j - 1);
                        }
                        other => r.err(
                            at,
                            format!("`{expr}`: label_values without a label ({other:?})"),
                        ),
                    }
                } else if !PROMQL_FUNCTIONS.contains(&word.as_str()) {
                    r.err(at, format!("`{expr}`: unknown function `{word}`"));
                }
                i += 2;
            }
            Tok::Ident(word)
                if PROMQL_KEYWORDS.contains(&word.as_str())
                    || (PROMQL_FUNCTIONS.contains(&word.as_str()) && grouped(toks.get(i + 1))) =>
            {
                i += 1
            }
            Tok::Ident(word) => {
                if names.series.contains_key(word) {
                    series.push(word.clone());
                } else {
                    r.err(
                        at,
                        format!("`{expr}`: `{word}` is not a metric kwire exports"),
                    );
                }
                i += 1;
                if is_punct(toks.get(i), "{") {
                    match matchers(&toks, i) {
                        Ok((ms, next)) => {
                            for (label, _, _) in ms {
                                if names.series.contains_key(word)
                                    && !names.metric_allows(word, &label)
                                {
                                    r.err(at, format!("`{expr}`: `{word}` has no label `{label}`"));
                                }
                            }
                            i = next;
                        }
                        Err(e) => {
                            r.err(at, format!("`{expr}`: {e}"));
                            i += 1;
                        }
                    }
                }
            }
            Tok::Punct(p) if p == "{" => match matchers(&toks, i) {
                // A selector without a metric name: `{__name__=~"a|b", label="x"}`.
                Ok((ms, next)) => {
                    let mut sel: Vec<String> = Vec::new();
                    for (label, op, value) in &ms {
                        if label == "__name__" && (op == "=" || op == "=~") {
                            for name in value.split('|') {
                                if names.series.contains_key(name) {
                                    sel.push(name.to_string());
                                } else {
                                    r.err(
                                        at,
                                        format!("`{expr}`: `{name}` is not a metric kwire exports"),
                                    );
                                }
                            }
                        }
                    }
                    if sel.is_empty() {
                        r.err(at, format!("`{expr}`: a selector needs a metric name"));
                    }
                    for (label, _, _) in &ms {
                        for s in &sel {
                            if !names.metric_allows(s, label) {
                                r.err(at, format!("`{expr}`: `{s}` has no label `{label}`"));
                            }
                        }
                    }
                    series.extend(sel);
                    i = next;
                }
                Err(e) => {
                    r.err(at, format!("`{expr}`: {e}"));
                    i += 1;
                }
            },
            _ => i += 1,
        }
    }
    // Grouping labels must exist on every series the expression aggregates.
    for label in &grouping {
        if series.is_empty() {
            if !names.any_metric_allows(label) {
                r.err(at, format!("`{expr}`: no metric has a label `{label}`"));
            }
        } else {
            for s in &series {
                if !names.metric_allows(s, label) {
                    r.err(
                        at,
                        format!("`{expr}`: `{s}` has no label `{label}` (grouped by)"),
                    );
                }
            }
        }
    }
    if let Some(legend) = legend {
        for label in template_names(legend) {
            if !series.iter().any(|s| names.metric_allows(s, &label)) {
                r.err(
                    at,
                    format!("legend `{legend}`: no queried metric has a label `{label}`"),
                );
            }
        }
    }
    for s in &series {
        r.used.insert(names.series[s].0);
    }
    series
}

/// Checks one LogQL expression (and its legend): only alert-record labels, and it selects alert records.
fn check_logql(names: &Names, at: &str, expr: &str, legend: Option<&str>, r: &mut Report) {
    let toks = match tokenize(expr) {
        Ok(t) => t,
        Err(e) => {
            r.err(at, e);
            return;
        }
    };
    let label = |r: &mut Report, l: &str, what: &str| {
        if !names.log_allows(l) {
            r.err(
                at,
                format!("`{expr}`: {what} `{l}` is not on kwire's alert records"),
            );
        }
    };
    let (mut service, mut alert_filter, mut selector) = (false, false, false);
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Punct(p) if p == "{" => match matchers(&toks, i) {
                Ok((ms, next)) => {
                    selector = true;
                    for (l, op, v) in &ms {
                        label(r, l, "stream label");
                        if l == "service_name" && (op == "=" || op == "=~") && !v.is_empty() {
                            service = true;
                        }
                        if l == "kwire_alert_kind" {
                            alert_filter = true;
                        }
                    }
                    i = next;
                }
                Err(e) => {
                    r.err(at, format!("`{expr}`: {e}"));
                    i += 1;
                }
            },
            Tok::Ident(word) if is_punct(toks.get(i + 1), "(") => {
                if word == "by" || word == "without" {
                    match label_list(&toks, i + 1) {
                        Ok((ls, next)) => {
                            for l in ls {
                                label(r, &l, "grouping label");
                            }
                            i = next;
                            continue;
                        }
                        Err(e) => r.err(at, format!("`{expr}`: {e}")),
                    }
                } else if !LOGQL_FUNCTIONS.contains(&word.as_str()) {
                    r.err(at, format!("`{expr}`: unknown function `{word}`"));
                }
                i += 2;
            }
            Tok::Ident(word) if selector && is_comparison(toks.get(i + 1)) => {
                label(r, word, "label filter");
                if word == "kwire_alert_kind" {
                    alert_filter = true;
                }
                i += 2;
            }
            Tok::Ident(word) if word == "line_format" => {
                match toks.get(i + 1) {
                    Some(Tok::Str(t)) => {
                        for f in template_names(t) {
                            if !LOGQL_TEMPLATE_BUILTINS.contains(&f.as_str()) {
                                label(r, &f, "line_format field");
                            }
                        }
                    }
                    other => r.err(
                        at,
                        format!("`{expr}`: line_format without a template ({other:?})"),
                    ),
                }
                i += 2;
            }
            Tok::Ident(word) if word == "keep" || word == "drop" || word == "unwrap" => {
                i += 1;
                while let Some(Tok::Ident(l)) = toks.get(i) {
                    label(r, l, "label");
                    i += 1;
                    if is_punct(toks.get(i), ",") {
                        i += 1;
                    }
                }
            }
            Tok::Ident(word)
                if ["and", "or", "unless", "bool", "offset"].contains(&word.as_str())
                    || (LOGQL_FUNCTIONS.contains(&word.as_str()) && grouped(toks.get(i + 1))) =>
            {
                i += 1
            }
            // Parsers (json, logfmt, ...) and label_format would create labels this check cannot see;
            // kwire's attributes are structured metadata already, so dashboards need none of them.
            Tok::Ident(word) => {
                r.err(
                    at,
                    format!("`{expr}`: `{word}` is not supported by this check"),
                );
                i += 1;
            }
            _ => i += 1,
        }
    }
    if !(selector && service && alert_filter) {
        r.err(
            at,
            format!(
                "`{expr}` does not select kwire's alert records: needs {{service_name=...}} and a kwire_alert_kind filter"
            ),
        );
    }
    if let Some(legend) = legend {
        for l in template_names(legend) {
            label(r, &l, "legend field");
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Lang {
    PromQl,
    LogQl,
}

/// The language behind a `datasource` reference, which must be one of the dashboard's data-source
/// variables (`{"type": "loki", "uid": "${DS_LOKI}"}`, or the legacy string form).
fn datasource(
    ds_vars: &BTreeMap<String, Lang>,
    at: &str,
    v: Option<&Value>,
    r: &mut Report,
) -> Option<Lang> {
    let uid = match v {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => o.get("uid").and_then(Value::as_str).unwrap_or(""),
        _ => {
            r.err(at, "no datasource".to_string());
            return None;
        }
    };
    let var = uid
        .strip_prefix("${")
        .and_then(|s| s.strip_suffix('}'))
        .or_else(|| uid.strip_prefix('$'));
    let lang = var.and_then(|name| ds_vars.get(name)).copied();
    if lang.is_none() {
        r.err(
            at,
            format!("datasource `{uid}` is not a data-source template variable"),
        );
    }
    if let (Some(lang), Some(Value::Object(o))) = (lang, v) {
        let want = if lang == Lang::PromQl {
            "prometheus"
        } else {
            "loki"
        };
        if o.get("type").and_then(Value::as_str) != Some(want) {
            r.err(at, format!("datasource `{uid}` should have type `{want}`"));
        }
    }
    lang
}

/// Field names in table transformations must be frame columns or labels the panel's queries can carry.
fn check_transformations(names: &Names, at: &str, lang: Lang, panel: &Value, r: &mut Report) {
    let Some(ts) = panel.get("transformations").and_then(Value::as_array) else {
        return;
    };
    for t in ts {
        let opts = &t["options"];
        let mut fields: Vec<&str> = Vec::new();
        for key in ["indexByName", "renameByName", "excludeByName"] {
            if let Some(o) = opts.get(key).and_then(Value::as_object) {
                fields.extend(o.keys().map(String::as_str));
            }
        }
        if let Some(a) = opts["include"]["names"].as_array() {
            fields.extend(a.iter().filter_map(Value::as_str));
        }
        for f in fields {
            let ok = FRAME_FIELDS.contains(&f)
                || match lang {
                    Lang::PromQl => names.any_metric_allows(f),
                    Lang::LogQl => names.log_allows(f),
                };
            if !ok {
                r.err(
                    at,
                    format!("transformation field `{f}` is not a label kwire exports"),
                );
            }
        }
    }
}

fn check_panels(
    names: &Names,
    ds_vars: &BTreeMap<String, Lang>,
    dash: &str,
    panels: &[Value],
    ids: &mut BTreeSet<i64>,
    r: &mut Report,
) {
    for p in panels {
        let title = p["title"].as_str().unwrap_or("");
        let at = format!("{dash} panel `{title}`");
        match p["id"].as_i64() {
            Some(id) if !ids.insert(id) => r.err(&at, format!("duplicate panel id {id}")),
            Some(_) => {}
            None => r.err(&at, "no panel id".to_string()),
        }
        if title.is_empty() {
            r.err(&at, "no title".to_string());
        }
        if p["type"] == "row" {
            if let Some(inner) = p["panels"].as_array() {
                check_panels(names, ds_vars, dash, inner, ids, r);
            }
            continue;
        }
        if p["description"].as_str().unwrap_or("").is_empty() {
            r.err(&at, "no description".to_string());
        }
        if p["type"] != "logs" && p["fieldConfig"]["defaults"]["unit"].as_str().is_none() {
            r.err(&at, "no unit".to_string());
        }
        let Some(lang) = datasource(ds_vars, &at, p.get("datasource"), r) else {
            continue;
        };
        check_transformations(names, &at, lang, p, r);
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if targets.is_empty() {
            r.err(&at, "no queries".to_string());
        }
        for t in targets {
            let lang = match t.get("datasource") {
                Some(ds) => match datasource(ds_vars, &at, Some(ds), r) {
                    Some(l) => l,
                    None => continue,
                },
                None => lang,
            };
            let Some(expr) = t["expr"].as_str() else {
                r.err(&at, "a query without expr".to_string());
                continue;
            };
            let legend = t["legendFormat"].as_str().filter(|l| *l != "__auto");
            match lang {
                Lang::PromQl => {
                    check_promql(names, &at, expr, legend, r);
                }
                Lang::LogQl => check_logql(names, &at, expr, legend, r),
            }
        }
    }
}

/// Checks one dashboard JSON model.
fn check_dashboard(names: &Names, file: &str, d: &Value) -> Report {
    let mut r = Report::default();
    if d["uid"].as_str().unwrap_or("").is_empty() {
        r.err(file, "no uid".to_string());
    }
    if !d["title"].as_str().unwrap_or("").starts_with("kwire · ") {
        r.err(file, "title must start with `kwire · `".to_string());
    }
    if !d["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t == "kwire"))
    {
        r.err(file, "no `kwire` tag".to_string());
    }
    if d["schemaVersion"].as_i64().is_none() {
        r.err(file, "no schemaVersion".to_string());
    }

    let vars = d["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut ds_vars = BTreeMap::new();
    for v in &vars {
        if v["type"] == "datasource" {
            let lang = match v["query"].as_str() {
                Some("prometheus") => Lang::PromQl,
                Some("loki") => Lang::LogQl,
                other => {
                    r.err(
                        file,
                        format!("data-source variable of unsupported type {other:?}"),
                    );
                    continue;
                }
            };
            ds_vars.insert(v["name"].as_str().unwrap_or("").to_string(), lang);
        }
    }
    for v in &vars {
        let name = v["name"].as_str().unwrap_or("");
        let at = format!("{file} variable `{name}`");
        if v["type"] != "query" {
            continue;
        }
        let Some(lang) = datasource(&ds_vars, &at, v.get("datasource"), &mut r) else {
            continue;
        };
        let mut queries: Vec<&str> = Vec::new();
        queries.extend(v["query"].as_str());
        queries.extend(v["query"]["query"].as_str());
        queries.extend(v["definition"].as_str());
        if queries.is_empty() {
            r.err(&at, "no query".to_string());
        }
        for q in queries {
            match lang {
                Lang::PromQl => {
                    check_promql(names, &at, q, None, &mut r);
                }
                Lang::LogQl => check_logql(names, &at, q, None, &mut r),
            }
        }
    }
    if !vars.iter().any(|v| v["name"] == "node") {
        r.err(file, "no `node` variable".to_string());
    }

    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if a["builtIn"] == 1 {
            continue;
        }
        let at = format!("{file} annotation `{}`", a["name"].as_str().unwrap_or(""));
        let Some(lang) = datasource(&ds_vars, &at, a.get("datasource"), &mut r) else {
            continue;
        };
        // Older models keep the query in `expr`, newer ones in `target.expr`: check both.
        let exprs: Vec<&str> = [&a["expr"], &a["target"]["expr"]]
            .into_iter()
            .filter_map(Value::as_str)
            .collect();
        if exprs.is_empty() {
            r.err(&at, "no query".to_string());
        }
        let mut templates: Vec<String> = ["titleFormat", "textFormat"]
            .iter()
            .filter_map(|k| a[*k].as_str())
            .map(str::to_string)
            .collect();
        if let Some(keys) = a["tagKeys"].as_str() {
            templates.extend(keys.split(',').map(|k| format!("{{{{{}}}}}", k.trim())));
        }
        let legend = templates.join(" ");
        for expr in exprs {
            match lang {
                Lang::PromQl => {
                    check_promql(names, &at, expr, Some(&legend), &mut r);
                }
                Lang::LogQl => check_logql(names, &at, expr, Some(&legend), &mut r),
            }
        }
    }

    let mut ids = BTreeSet::new();
    let panels = d["panels"].as_array().cloned().unwrap_or_default();
    if panels.is_empty() {
        r.err(file, "no panels".to_string());
    }
    check_panels(names, &ds_vars, file, &panels, &mut ids, &mut r);
    r
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let value: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                value,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

// ---------------------------------------------------------------------------------------------- tests

#[test]
fn dashboards_query_only_exported_names() {
    let names = Names::new();
    let boards = dashboards();
    for expected in [
        "kwire-alerts.json",
        "kwire-offsets.json",
        "kwire-latency.json",
        "kwire-agent-health.json",
    ] {
        assert!(
            boards.iter().any(|(f, _)| f == expected),
            "dashboards/{expected} is missing"
        );
    }
    let mut errors = Vec::new();
    let mut uids = BTreeSet::new();
    for (file, d) in &boards {
        errors.extend(check_dashboard(&names, file, d).errors);
        if !uids.insert(d["uid"].as_str().unwrap_or("").to_string()) {
            errors.push(format!("{file}: uid used by another dashboard"));
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

#[test]
fn dashboards_show_every_metric() {
    let names = Names::new();
    let mut used = BTreeSet::new();
    for (file, d) in dashboards() {
        used.extend(check_dashboard(&names, &file, &d).used);
    }
    let not_shown: BTreeSet<Metric> = NOT_SHOWN.iter().map(|(m, _)| *m).collect();
    for m in Metric::ALL {
        assert!(
            used.contains(&m) || not_shown.contains(&m),
            "{m:?} ({}) is on no dashboard; show it or list it in NOT_SHOWN with a reason",
            prometheus_name(&m.def())
        );
        assert!(
            !(used.contains(&m) && not_shown.contains(&m)),
            "{m:?} is shown: remove it from NOT_SHOWN"
        );
    }
}

/// The check can fail: a misspelt metric and labels the metric or the alert records do not have.
#[test]
fn checker_reports_wrong_names() {
    let names = Names::new();
    let prom = json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});
    let loki = json!({"type": "loki", "uid": "${DS_LOKI}"});
    let board = json!({
        "uid": "bad", "title": "kwire · bad", "tags": ["kwire"], "schemaVersion": 39,
        "templating": {"list": [
            {"name": "DS_PROMETHEUS", "type": "datasource", "query": "prometheus"},
            {"name": "DS_LOKI", "type": "datasource", "query": "loki"},
            {"name": "node", "type": "query", "datasource": prom,
             "query": "label_values(kwire_packets_total, k8s_node_name)"},
        ]},
        "panels": [
            {"id": 1, "type": "timeseries", "title": "a", "description": "d", "datasource": prom,
             "fieldConfig": {"defaults": {"unit": "short"}},
             "targets": [
                 {"expr": "sum(rate(kwire_alert_total{k8s_node_name=~\"$node\"}[$__rate_interval]))"},
                 {"expr": "kwire_consumer_lag{messaging_client_id=\"x\"}"},
             ]},
            {"id": 2, "type": "row", "title": "r", "panels": [
                {"id": 3, "type": "timeseries", "title": "b", "description": "d", "datasource": prom,
                 "fieldConfig": {"defaults": {"unit": "short"}},
                 "targets": [{"expr": "sum by (topic) (rate(kwire_alerts_total[5m]))",
                              "legendFormat": "{{topic}}"}]},
            ]},
            {"id": 3, "type": "logs", "title": "c", "description": "d", "datasource": loki,
             "targets": [{"expr": "{service_name=\"kwire\"} | topic=\"orders\""}]},
            {"id": 4, "type": "timeseries", "title": "e", "description": "d",
             "datasource": {"type": "prometheus", "uid": "prom-uid-of-one-grafana"},
             "fieldConfig": {"defaults": {"unit": "short"}},
             "targets": [{"expr": "kwire_packets_total"}]},
        ],
    });
    let r = check_dashboard(&names, "bad.json", &board);
    let all = r.errors.join("\n");
    let expect = [
        "`kwire_alert_total` is not a metric kwire exports",
        "`kwire_alerts_total` has no label `topic` (grouped by)",
        "legend `{{topic}}`: no queried metric has a label `topic`",
        "label filter `topic` is not on kwire's alert records",
        "does not select kwire's alert records",
        "duplicate panel id 3",
        "`prom-uid-of-one-grafana` is not a data-source template variable",
    ];
    for e in expect {
        assert!(all.contains(e), "expected `{e}` in:\n{all}");
    }
    // Client ids are unbounded: never a metric label.
    assert!(
        all.contains("`kwire_consumer_lag` has no label `messaging_client_id`"),
        "{all}"
    );
    assert_eq!(r.errors.len(), expect.len() + 1, "{all}");
}

/// What the tokenizer must not mistake for names: functions, durations, variables, strings, numbers.
#[test]
fn checker_accepts_valid_queries() {
    let names = Names::new();
    let mut r = Report::default();
    let series = check_promql(
        &names,
        "t",
        "histogram_quantile(0.99, sum by (le, messaging_operation_name) (rate(messaging_client_operation_duration_seconds_bucket{job=~\"$job\", k8s_node_name=~\"${node}\", error_type!=\"\"}[$__rate_interval] offset 1h))) > bool 1e-3 \
         or on (messaging_operation_name) clamp_min(sum by (messaging_operation_name) (increase(messaging_client_operation_duration_seconds_count[5m:1m])), 0) # comment",
        Some("{{messaging_operation_name}} p99"),
        &mut r,
    );
    check_promql(
        &names,
        "t",
        "label_values({__name__=~\"kwire_consumer_lag|kwire_consumer_committed_offset\"}, messaging_consumer_group_name)",
        None,
        &mut r,
    );
    check_logql(
        &names,
        "t",
        "sum by (kwire_alert_kind) (count_over_time({service_name=\"kwire\"} |= \"lost\" | kwire_alert_kind != \"\" \
         | kwire_alert_previous_offset > 10 | line_format \"{{ .messaging_destination_name }} {{__line__}}\" [$__range]))",
        Some("{{kwire_alert_kind}}"),
        &mut r,
    );
    assert!(r.errors.is_empty(), "{}", r.errors.join("\n"));
    assert_eq!(series.len(), 2);
    assert!(r.used.contains(&Metric::OperationDuration));
    assert!(r.used.contains(&Metric::ConsumerLag));
    assert!(r.used.contains(&Metric::CommittedOffset));
}

// ------------------------------------------------------------------------------------- /metrics (scrape)

/// Series name and label names of one line of the Prometheus text format (None for comments).
fn scrape_line(line: &str) -> Option<(String, Vec<String>)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..name_end].to_string();
    let mut labels = Vec::new();
    if line[name_end..].starts_with('{') {
        let mut rest = &line[name_end + 1..];
        while let Some(eq) = rest.find('=') {
            labels.push(rest[..eq].trim_start_matches(',').to_string());
            // Skip the quoted value (with its escapes).
            let v = &rest[eq + 2..];
            let mut end = 0;
            let mut esc = false;
            for (i, c) in v.char_indices() {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    end = i;
                    break;
                }
            }
            rest = &v[end + 1..];
            if rest.starts_with('}') {
                break;
            }
        }
    }
    Some((name, labels))
}

/// What `kwire run` serves on `/metrics` (the metric state of every harness capture, rendered by
/// `kwire_export::prometheus`) uses only names and labels the dashboards may query: the same check the
/// dashboards pass, so a scrape and the collector's Prometheus exporter feed the same panels.
#[test]
fn metrics_endpoint_names_are_the_catalog_names() {
    use kwire_engine::{Engine, EngineConfig, Output};
    use kwire_export::metrics::{Health, MetricState};
    let names = Names::new();
    let mut state = MetricState::default();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/harness");
    let mut captures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    captures.sort();
    assert!(captures.len() >= 10, "{captures:?}");
    let mut last = 0i64;
    for c in &captures {
        let mut f = kwire_capture::PcapFile::open(c).unwrap();
        let mut e = Engine::new(EngineConfig {
            exchange_facts: true,
            ..EngineConfig::default()
        });
        let mut feed = |o: Output| match &o {
            Output::Exchange(x) => state.on_exchange(x),
            Output::Alert(a) => state.on_alert(a),
            _ => {}
        };
        while let Ok(Some(p)) = f.next_packet() {
            last = last.max(p.ts.0);
            e.on_packet(p.ts, p.link, p.data, &mut feed);
        }
        e.finish(&mut feed);
    }
    state.health = Health {
        packets: 1,
        ..Health::default()
    };
    state.export.queue_depth.insert("logs", 0);
    state.export.dropped.insert(("traces", "queue_full"), 2);
    let resource: Vec<(String, String)> = RESOURCE_ATTRIBUTES
        .iter()
        .filter(|a| **a != "service.name")
        .map(|a| (a.to_string(), "x".to_string()))
        .collect();
    let text = kwire_export::prometheus::render(&state.snapshot(last as u64), &resource);
    let mut served = BTreeSet::new();
    let mut errors = Vec::new();
    for line in text.lines() {
        let Some((series, labels)) = scrape_line(line) else {
            continue;
        };
        if !names.series.contains_key(&series) {
            errors.push(format!("`{series}` is not a catalog metric: {line}"));
            continue;
        }
        served.insert(names.series[&series].0);
        for l in labels {
            if !names.metric_allows(&series, &l) {
                errors.push(format!("`{series}` has no label `{l}`: {line}"));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // Every metric the harness captures exercise is served (all but the spool gauge's zero, which is
    // served too: the agent's own health is always there).
    for m in Metric::ALL {
        assert!(served.contains(&m), "{m:?} not on /metrics:\n{text}");
    }
    // Histograms: cumulative buckets ending in +Inf equal to _count.
    let inf = text
        .lines()
        .find(|l| {
            l.starts_with("messaging_client_operation_duration_seconds_bucket")
                && l.contains("le=\"+Inf\"")
        })
        .expect("an operation duration +Inf bucket");
    let labels = &inf[inf.find('{').unwrap()..inf.rfind(' ').unwrap()];
    let plain = labels.replace(",le=\"+Inf\"", "");
    let count_line = format!("messaging_client_operation_duration_seconds_count{plain} ");
    let count = text
        .lines()
        .find(|l| l.starts_with(&count_line))
        .expect("its _count");
    assert_eq!(
        inf.rsplit(' ').next(),
        count.rsplit(' ').next(),
        "{inf}\n{count}"
    );
    // The check can fail: a line under a name the catalog does not have is reported.
    assert!(!names
        .series
        .contains_key(&scrape_line("kwire_alert_total{x=\"1\"} 1").unwrap().0));
}
