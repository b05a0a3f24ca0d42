//! Reading the chain's gauges from the Pushgateway (spec §3.1): the Query API
//! `/api/v1/metrics`, falling back to the text exposition `/metrics` on 404.

use homelab_core::http::{Client, HttpConfig, HttpError, HttpErrorKind, Redirects};
use homelab_core::pushgateway::{basic_auth, parse_api_metrics, read_groups, Group, Sample};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where the gauges come from.
pub trait MetricsSource: Send + Sync {
    /// Every group, or the one-line reason (no secrets) why not.
    fn groups(&self) -> Result<Vec<Group>, String>;
}

/// A real Pushgateway over HTTP(S).
pub struct Pushgateway {
    pub url: String,
    /// Per request.
    pub timeout: Duration,
    /// Waits before retry 1 and 2 (transport, 5xx, 429).
    pub backoff: Vec<Duration>,
}

impl Pushgateway {
    pub fn new(url: &str) -> Self {
        Pushgateway {
            url: url.trim_end_matches('/').to_string(),
            timeout: Duration::from_secs(10),
            backoff: vec![Duration::from_millis(500), Duration::from_secs(1)],
        }
    }

    fn retrying<T>(&self, mut f: impl FnMut() -> Result<T, HttpError>) -> Result<T, HttpError> {
        let mut attempt = 0;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.backoff.len() && retryable(&e) => {
                    std::thread::sleep(self.backoff[attempt]);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn text_fallback(&self) -> Result<Vec<Group>, HttpError> {
        let client = Client::new(&HttpConfig {
            connect_timeout: self.timeout,
            total_timeout: self.timeout,
            redirects: Redirects::Never,
            ..HttpConfig::default()
        })?;
        let url = format!("{}/metrics", self.url);
        let (auth, url) = basic_auth(&url);
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        let resp = self.retrying(|| client.request_ok("GET", &url, &headers, None))?;
        Ok(parse_text(&resp.text()))
    }
}

fn retryable(e: &HttpError) -> bool {
    match &e.kind {
        HttpErrorKind::Status { code, .. } => *code == 429 || *code >= 500,
        HttpErrorKind::Timeout { .. } | HttpErrorKind::Transport { .. } => true,
        _ => false,
    }
}

impl MetricsSource for Pushgateway {
    fn groups(&self) -> Result<Vec<Group>, String> {
        match self.retrying(|| read_groups(&self.url, self.timeout)) {
            Ok(g) => Ok(g),
            Err(e) if e.status() == Some(404) => self
                .text_fallback()
                .map_err(|t| format!("{e}; text fallback: {t}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A fixed document (tests, `--json` replays): parsed like the Query API's answer.
pub struct Fixed(pub serde_json::Value);

impl MetricsSource for Fixed {
    fn groups(&self) -> Result<Vec<Group>, String> {
        parse_api_metrics(&self.0)
    }
}

/// Parse a text exposition (0.0.4) as the Pushgateway serves it on `/metrics`: a group is the
/// label set of a `push_time_seconds` series; every other sample joins the group whose labels
/// it carries (the most specific one). Samples of no group (the gateway's own metrics) are
/// dropped.
pub fn parse_text(body: &str) -> Vec<Group> {
    let mut samples: Vec<Sample> = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = parse_sample(line) {
            samples.push(s);
        }
    }
    let mut groups: Vec<Group> = samples
        .iter()
        .filter(|s| s.name == "push_time_seconds")
        .map(|s| Group {
            labels: s.labels.clone(),
            last_push_successful: None,
            push_time_seconds: s.value,
            samples: Vec::new(),
        })
        .collect();
    for s in samples {
        let best = groups
            .iter_mut()
            .filter(|g| g.labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .max_by_key(|g| g.labels.len());
        if let Some(g) = best {
            g.samples.push(s);
        }
    }
    groups
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(r)?;
        labels = parsed;
        rest = after;
    }
    let raw = rest.split_whitespace().next()?.to_string();
    let value = match raw.as_str() {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        raw,
        value,
    })
}

/// `k="v",k2="v2"}` → labels and the text after `}`.
fn parse_labels(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut out = BTreeMap::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(r) = s.strip_prefix('}') {
            return Some((out, r));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        let r = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut val = String::new();
        let mut chars = r.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => val.push('\n'),
                    Some((_, c2)) => val.push(c2),
                    None => return None,
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => val.push(c),
            }
        }
        s = &r[end?..];
        out.insert(key, val);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP k8s_upgrade_available 1 when an upgrade is available
# TYPE k8s_upgrade_available gauge
k8s_upgrade_available{instance="",job="k8s-version-check",kind="minor",running="v1.35.6",target="1.36.2"} 1
k8s_version_check_last_run_timestamp{instance="",job="k8s-version-check"} 1.7826876e+09
k8s_upgrade_held{job="k8s-upgrade"} NaN
k8s_upgrade_blocked{job="k8s-upgrade",note="a \"quoted\" \\ back\nslash, {x}"} 0
push_time_seconds{instance="",job="k8s-version-check"} 1.782687601e+09
push_time_seconds{job="k8s-upgrade"} 1.78e+09
pushgateway_build_info{version="1.6"} 1
"#;

    #[test]
    fn text_exposition_groups_and_values() {
        let g = parse_text(TEXT);
        assert_eq!(g.len(), 2);
        let vc = g
            .iter()
            .find(|g| g.labels["job"] == "k8s-version-check")
            .unwrap();
        assert_eq!(vc.push_time_seconds, Some(1.782687601e9));
        let a = vc
            .samples
            .iter()
            .find(|s| s.name == "k8s_upgrade_available")
            .unwrap();
        assert_eq!(a.labels["running"], "v1.35.6");
        assert_eq!(a.value, Some(1.0));
        let lr = vc
            .samples
            .iter()
            .find(|s| s.name == "k8s_version_check_last_run_timestamp")
            .unwrap();
        assert_eq!(lr.value, Some(1.7826876e9));
        let up = g.iter().find(|g| g.labels["job"] == "k8s-upgrade").unwrap();
        let held = up
            .samples
            .iter()
            .find(|s| s.name == "k8s_upgrade_held")
            .unwrap();
        assert!(held.value.unwrap().is_nan());
        let b = up
            .samples
            .iter()
            .find(|s| s.name == "k8s_upgrade_blocked")
            .unwrap();
        assert_eq!(b.labels["note"], "a \"quoted\" \\ back\nslash, {x}");
        assert!(!g
            .iter()
            .any(|g| g.samples.iter().any(|s| s.name == "pushgateway_build_info")));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let g = parse_text("push_time_seconds{job=\"j\"} 5\nbroken{job=\"j\" 1\nk8s_upgrade_held{job=\"j\"} yes\n{}\n");
        assert_eq!(g.len(), 1);
        let h = g[0]
            .samples
            .iter()
            .find(|s| s.name == "k8s_upgrade_held")
            .unwrap();
        assert_eq!((h.raw.as_str(), h.value), ("yes", None));
    }

    #[test]
    fn api_document_forms() {
        let doc = serde_json::json!({"status":"success","data":[{
            "labels":{"job":"k8s-version-check"},
            "push_time_seconds":{"metrics":[{"labels":{"job":"k8s-version-check"},"value":"1.58e+09"}]},
            "k8s_upgrade_available":{"type":"GAUGE","metrics":[{"labels":{"job":"k8s-version-check","target":"1.36.2","running":"a\"b"},"value":"1"}]}
        }]});
        let g = Fixed(doc).groups().unwrap();
        assert_eq!(g[0].push_time_seconds, Some(1.58e9));
        let a = &g[0]
            .samples
            .iter()
            .find(|s| s.name == "k8s_upgrade_available")
            .unwrap();
        assert_eq!(a.labels["running"], "a\"b");
        assert!(Fixed(serde_json::json!({"status":"error"}))
            .groups()
            .is_err());
    }

    #[test]
    fn userinfo_becomes_basic_auth() {
        let (a, u) = basic_auth("http://u:p@h:9091/metrics");
        assert_eq!(u, "http://h:9091/metrics");
        assert_eq!(a.as_deref(), Some("Basic dTpw"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use base64::Engine;
    use proptest::prelude::*;

    fn esc(v: &str) -> String {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }

    fn render_labels(l: &BTreeMap<String, String>, space: bool) -> String {
        let sep = if space { ", " } else { "," };
        let body: Vec<String> = l
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
            .collect();
        format!("{{{}}}", body.join(sep))
    }

    /// A value as the exposition writes it, and what it must parse to.
    fn value() -> impl Strategy<Value = (String, Option<f64>)> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| (format!("{f:e}"), Some(f))),
            (-1e12f64..1e12).prop_map(|f| (f.to_string(), Some(f))),
            Just(("NaN".to_string(), Some(f64::NAN))),
            Just(("+Inf".to_string(), Some(f64::INFINITY))),
            Just(("-Inf".to_string(), Some(f64::NEG_INFINITY))),
            "[a-z]{1,5}"
                .prop_filter("not a float word", |s| s.parse::<f64>().is_err())
                .prop_map(|s| (s, None)),
        ]
    }

    fn same_value(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
            (None, None) => true,
            _ => false,
        }
    }

    /// Groups with distinct `job`s; each sample carries its group's labels plus its own.
    #[allow(clippy::type_complexity)]
    fn groups() -> impl Strategy<
        Value = Vec<(
            BTreeMap<String, String>,
            (String, Option<f64>),
            Vec<(String, BTreeMap<String, String>, (String, Option<f64>))>,
        )>,
    > {
        proptest::collection::btree_map(
            "[a-z][a-z0-9_-]{0,10}",
            (
                proptest::option::of("\\PC{0,12}"),
                value(),
                proptest::collection::vec(
                    (
                        "k8s_[a-z_]{1,20}",
                        proptest::collection::btree_map(
                            "x_[a-z_]{1,8}",
                            "\\PC{0,12}|[\\\\\"\\n{},= ]{0,6}",
                            0..3,
                        ),
                        value(),
                    ),
                    0..4,
                ),
            ),
            0..4,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(job, (inst, push, samples))| {
                    let mut labels = BTreeMap::from([("job".to_string(), job)]);
                    if let Some(i) = inst {
                        labels.insert("instance".into(), i);
                    }
                    let samples = samples
                        .into_iter()
                        .map(|(n, mut l, v)| {
                            l.extend(labels.clone());
                            (n, l, v)
                        })
                        .collect();
                    (labels, push, samples)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary text never panics; every sample kept belongs to a group whose labels it
        /// carries, and each group has its `push_time_seconds` sample.
        #[test]
        fn parse_text_never_panics(
            s in "\\PC{0,200}",
            lines in proptest::collection::vec("[a-z_]{0,8}(\\{[a-z_=\",\\\\ }]{0,20})?[ \\t]{0,2}[0-9a-zA-Z.+-]{0,6}", 0..8),
        ) {
            for body in [s.clone(), lines.join("\n"), format!("push_time_seconds{{job=\"j\"}} 1\n{}", lines.join("\n"))] {
                for g in parse_text(&body) {
                    prop_assert!(g.samples.iter().any(|x| x.name == "push_time_seconds" && x.labels == g.labels));
                    for x in &g.samples {
                        prop_assert!(g.labels.iter().all(|(k, v)| x.labels.get(k) == Some(v)));
                    }
                }
            }
        }

        /// Rendered exposition of generated groups (HELP/TYPE comments, optional timestamps,
        /// blank lines, spaced label sets) parses back to the same groups and samples.
        #[test]
        fn rendered_exposition_round_trips(gs in groups(), ts in any::<bool>(), space in any::<bool>()) {
            let stamp = if ts { " 1782687601000" } else { "" };
            let mut text = String::from("# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n# TYPE push_time_seconds gauge\n");
            for (labels, push, samples) in &gs {
                text.push_str(&format!("push_time_seconds{} {}{stamp}\n\n", render_labels(labels, space), push.0));
                for (n, l, v) in samples {
                    text.push_str(&format!("# TYPE {n} gauge\n{n}{} {}{stamp}\n", render_labels(l, space), v.0));
                }
            }
            let got = parse_text(&text);
            prop_assert_eq!(got.len(), gs.len());
            for (g, (labels, push, samples)) in got.iter().zip(&gs) {
                prop_assert_eq!(&g.labels, labels);
                prop_assert!(same_value(g.push_time_seconds, push.1), "{:?} vs {:?}", g.push_time_seconds, push);
                prop_assert_eq!(g.samples.len(), samples.len() + 1);
                for (x, (n, l, v)) in g.samples[1..].iter().zip(samples) {
                    prop_assert_eq!(&x.name, n);
                    prop_assert_eq!(&x.labels, l);
                    prop_assert_eq!(&x.raw, &v.0);
                    prop_assert!(same_value(x.value, v.1), "{:?} vs {:?}", x.value, v);
                }
            }
        }

        /// Basic auth: the userinfo leaves the URL and lands in the header only.
        #[test]
        fn basic_auth_strips_userinfo(user in "[a-z]{1,8}", pw in "[A-Za-z0-9]{8,16}", host in "[a-z]{1,10}(:[0-9]{2,5})?", path in "(/[a-z]{1,6}){0,3}") {
            let (a, u) = basic_auth(&format!("http://{user}:{pw}@{host}{path}"));
            prop_assert_eq!(u, format!("http://{host}{path}"));
            let want = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}")));
            prop_assert_eq!(a, Some(want));
        }
    }
}
