//! Prometheus Pushgateway: push a group (text exposition 0.0.4) and read gauges back through
//! `/api/v1/metrics`.
//!
//! POST is the default: it replaces only the pushed metric names in the group, so series
//! other jobs put there (e.g. `k8s_upgrade_in_flight`) survive. PUT replaces the whole group
//! and must be asked for explicitly.

use crate::http::{Client, HttpConfig, HttpError, Redirects};
use base64::Engine;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Replace the pushed names only (default).
    Post,
    /// Replace the whole group.
    Put,
}

/// `/metrics/job/<job>{/<label>/<value>}` with Pushgateway's base64 rule for values that
/// contain `/` (or are empty).
pub fn group_path(job: &str, labels: &[(&str, &str)]) -> String {
    let mut p = String::from("/metrics");
    push_pair(&mut p, "job", job);
    for (k, v) in labels {
        push_pair(&mut p, k, v);
    }
    p
}

fn push_pair(p: &mut String, k: &str, v: &str) {
    if v.is_empty() {
        p.push_str(&format!("/{k}@base64/="));
    } else if v.contains('/') {
        let enc = base64::engine::general_purpose::URL_SAFE.encode(v.as_bytes());
        p.push_str(&format!("/{k}@base64/{enc}"));
    } else {
        p.push('/');
        p.push_str(k);
        p.push('/');
        p.push_str(&percent_encode(v));
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One gauge sample to push.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    pub name: String,
    pub help: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Gauge {
    pub fn new(name: &str, help: &str, value: f64) -> Self {
        Gauge {
            name: name.into(),
            help: help.into(),
            labels: Vec::new(),
            value,
        }
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.push((k.into(), v.into()));
        self
    }
}

fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Text exposition (0.0.4) of gauges; one HELP/TYPE per name, in first-seen order.
pub fn render(gauges: &[Gauge]) -> String {
    let mut out = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for g in gauges {
        if !seen.contains(&g.name.as_str()) {
            seen.push(&g.name);
            out.push_str(&format!(
                "# HELP {} {}\n# TYPE {} gauge\n",
                g.name, g.help, g.name
            ));
            for h in gauges.iter().filter(|x| x.name == g.name) {
                out.push_str(&h.name);
                if !h.labels.is_empty() {
                    let ls: Vec<String> = h
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                        .collect();
                    out.push_str(&format!("{{{}}}", ls.join(",")));
                }
                out.push(' ');
                out.push_str(&fmt_value(h.value));
                out.push('\n');
            }
        }
    }
    out
}

fn client(timeout: Duration) -> Result<Client, HttpError> {
    Client::new(&HttpConfig {
        connect_timeout: timeout,
        total_timeout: timeout,
        redirects: Redirects::Never,
        ..HttpConfig::default()
    })
}

/// Push `body` (text exposition) to the group. `base_url` may carry userinfo; it is never
/// shown (errors name only the path).
pub fn push(
    base_url: &str,
    job: &str,
    labels: &[(&str, &str)],
    body: &str,
    method: Method,
    timeout: Duration,
) -> Result<(), HttpError> {
    let url = format!(
        "{}{}",
        base_url.trim_end_matches('/'),
        group_path(job, labels)
    );
    let (auth, url) = basic_auth(&url);
    let mut headers = vec![("Content-Type", "text/plain; version=0.0.4; charset=utf-8")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let m = match method {
        Method::Post => "POST",
        Method::Put => "PUT",
    };
    client(timeout)?.request_ok(m, &url, &headers, Some(body.as_bytes()))?;
    Ok(())
}

/// Move `user:pw@` out of the URL into a `Basic …` Authorization value (ureq does not send
/// userinfo, and the URL without it is safe to show).
pub fn basic_auth(url: &str) -> (Option<String>, String) {
    match crate::http::UrlParts::parse(url).and_then(|p| p.userinfo) {
        Some(u) => (
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(u.as_bytes())
            )),
            url.replacen(&format!("{u}@"), "", 1),
        ),
        None => (None, url.to_string()),
    }
}

/// A sample read back from the Pushgateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// As sent by the gateway (`"1"`, `"NaN"`, …).
    pub raw: String,
    /// `raw` parsed; `None` when it is not a number (garbage stays visible as `raw`).
    pub value: Option<f64>,
}

/// One group as `/api/v1/metrics` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub labels: BTreeMap<String, String>,
    pub last_push_successful: Option<bool>,
    /// `push_time_seconds` of the group, when present.
    pub push_time_seconds: Option<f64>,
    pub samples: Vec<Sample>,
}

/// Parse a `/api/v1/metrics` document (pure).
pub fn parse_api_metrics(doc: &serde_json::Value) -> Result<Vec<Group>, String> {
    if doc["status"] != "success" {
        return Err(format!("status is {}", doc["status"]));
    }
    let data = doc["data"].as_array().ok_or("data is not an array")?;
    let mut groups = Vec::with_capacity(data.len());
    for g in data {
        let obj = g.as_object().ok_or("group is not an object")?;
        let labels = str_map(&g["labels"]);
        let mut samples = Vec::new();
        let mut push_time = None;
        for (name, fam) in obj {
            if matches!(name.as_str(), "labels" | "last_push_successful") {
                continue;
            }
            for m in fam["metrics"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let raw = m["value"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| m["value"].to_string());
                let value = parse_value(&raw);
                if name == "push_time_seconds" {
                    push_time = value;
                }
                samples.push(Sample {
                    name: name.clone(),
                    labels: str_map(&m["labels"]),
                    raw,
                    value,
                });
            }
        }
        samples.sort_by(|a, b| a.name.cmp(&b.name));
        groups.push(Group {
            labels,
            last_push_successful: g["last_push_successful"].as_bool(),
            push_time_seconds: push_time,
            samples,
        });
    }
    Ok(groups)
}

fn parse_value(raw: &str) -> Option<f64> {
    match raw {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    }
}

fn str_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// GET `/api/v1/metrics` and parse it.
pub fn read_groups(base_url: &str, timeout: Duration) -> Result<Vec<Group>, HttpError> {
    let url = format!("{}/api/v1/metrics", base_url.trim_end_matches('/'));
    let (auth, url) = basic_auth(&url);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let doc = client(timeout)?.get_json(&url, &headers)?;
    parse_api_metrics(&doc).map_err(|reason| HttpError {
        method: "GET".into(),
        path: "/api/v1/metrics".into(),
        kind: crate::http::HttpErrorKind::Body { reason },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_paths() {
        assert_eq!(group_path("k8s-upgrade", &[]), "/metrics/job/k8s-upgrade");
        assert_eq!(
            group_path("j", &[("instance", "a/b")]),
            "/metrics/job/j/instance@base64/YS9i"
        );
        assert_eq!(group_path("j", &[("x", "")]), "/metrics/job/j/x@base64/=");
        assert_eq!(group_path("j", &[("u", "a b")]), "/metrics/job/j/u/a%20b");
    }

    #[test]
    fn render_exposition() {
        let t = render(&[
            Gauge::new("k8s_upgrade_blocked", "1 when blocked", 1.0),
            Gauge::new("gate_blockers", "count", 2.0).label("class", "actionable"),
            Gauge::new("gate_blockers", "count", 0.0).label("class", "wait\"ing"),
            Gauge::new("ts", "t", 1.5),
        ]);
        assert_eq!(
            t,
            "# HELP k8s_upgrade_blocked 1 when blocked\n# TYPE k8s_upgrade_blocked gauge\nk8s_upgrade_blocked 1\n\
# HELP gate_blockers count\n# TYPE gate_blockers gauge\ngate_blockers{class=\"actionable\"} 2\ngate_blockers{class=\"wait\\\"ing\"} 0\n\
# HELP ts t\n# TYPE ts gauge\nts 1.5\n"
        );
    }

    #[test]
    fn parse_api_document() {
        let doc = serde_json::json!({"status":"success","data":[{
            "labels":{"job":"k8s-upgrade"},
            "last_push_successful":true,
            "push_time_seconds":{"metrics":[{"labels":{"job":"k8s-upgrade"},"value":"1.7e+09"}],"type":"GAUGE"},
            "k8s_upgrade_blocked":{"metrics":[{"labels":{"job":"k8s-upgrade"},"value":"NaN"}],"type":"GAUGE"}
        }]});
        let g = parse_api_metrics(&doc).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].labels["job"], "k8s-upgrade");
        assert_eq!(g[0].push_time_seconds, Some(1.7e9));
        let b = g[0]
            .samples
            .iter()
            .find(|s| s.name == "k8s_upgrade_blocked")
            .unwrap();
        assert!(b.value.unwrap().is_nan());
        assert!(parse_api_metrics(&serde_json::json!({"status":"error"})).is_err());
    }
}
