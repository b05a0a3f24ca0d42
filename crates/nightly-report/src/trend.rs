//! The 7-day trend line (spec §8.3): one symbol per morning from Prometheus, oldest first.
//! Optional: a failure drops the line (with a WARN), never the report.

use homelab_core::http::{Client, HttpConfig, Redirects};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where the trend comes from.
pub trait Trend: Send + Sync {
    /// The 7 symbols ending today 06:00Z, or why not.
    fn symbols(&self, now: i64) -> Result<String, String>;
}

pub const METRICS: [&str; 4] = [
    "k8s_upgrade_in_flight",
    "k8s_upgrade_held",
    "k8s_upgrade_blocked",
    "k8s_upgrade_available",
];

/// Today's 06:00Z and the six mornings before it.
pub fn window(now: i64) -> (i64, i64) {
    let end = now.div_euclid(86400) * 86400 + 6 * 3600;
    (end - 6 * 86400, end)
}

/// One symbol per day from per-metric samples (`metric → {ts → value}`), oldest first.
pub fn symbols(series: &BTreeMap<&str, BTreeMap<i64, f64>>, start: i64) -> String {
    (0..7)
        .map(|i| {
            let ts = start + i * 86400;
            let v = |m: &str| series.get(m).and_then(|s| s.get(&ts)).copied();
            let one = |m: &str| v(m) == Some(1.0);
            if one(METRICS[0]) {
                "🟡"
            } else if one(METRICS[1]) {
                "⏸️"
            } else if one(METRICS[2]) {
                "🔴"
            } else if one(METRICS[3]) {
                "🟠"
            } else if METRICS.iter().any(|m| v(m).is_some()) {
                "⚪"
            } else {
                "·"
            }
        })
        .collect()
}

/// Prometheus' `/api/v1/query_range`.
pub struct Prometheus {
    url: String,
}

impl Prometheus {
    pub fn new(url: &str) -> Self {
        Prometheus {
            url: url.trim_end_matches('/').to_string(),
        }
    }
}

/// The samples of a `query_range` answer (all series merged, max per timestamp).
pub fn parse_range(doc: &serde_json::Value) -> Result<BTreeMap<i64, f64>, String> {
    if doc["status"] != "success" {
        return Err(format!("status is {}", doc["status"]));
    }
    let mut out: BTreeMap<i64, f64> = BTreeMap::new();
    for r in doc["data"]["result"]
        .as_array()
        .ok_or("data.result is not an array")?
    {
        for p in r["values"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let ts = p[0].as_f64().map(|t| t.round() as i64);
            let v = p[1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|v| v.is_finite());
            if let (Some(ts), Some(v)) = (ts, v) {
                let e = out.entry(ts).or_insert(v);
                *e = e.max(v);
            }
        }
    }
    Ok(out)
}

impl Trend for Prometheus {
    fn symbols(&self, now: i64) -> Result<String, String> {
        let client = Client::new(&HttpConfig {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            redirects: Redirects::Never,
            ..HttpConfig::default()
        })
        .map_err(|e| e.to_string())?;
        let (start, end) = window(now);
        let mut series = BTreeMap::new();
        for m in METRICS {
            let url = format!(
                "{}/api/v1/query_range?query=max%28{m}%29&start={start}&end={end}&step=86400",
                self.url
            );
            let doc = client.get_json(&url, &[]).map_err(|e| e.to_string())?;
            series.insert(
                m,
                parse_range(&doc).map_err(|e| format!("GET /api/v1/query_range: {e}"))?,
            );
        }
        Ok(symbols(&series, start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn window_ends_today_0600() {
        let now = 1_782_713_220; // 2026-06-29T06:07Z
        assert_eq!(window(now), (1_782_712_800 - 6 * 86400, 1_782_712_800));
    }

    #[test]
    fn one_symbol_per_day_by_priority() {
        let start = 1000 * 86400;
        let day = |i: i64| start + i * 86400;
        let mut s: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
        s.entry(METRICS[3]).or_default().extend([
            (day(0), 1.0),
            (day(1), 1.0),
            (day(2), 1.0),
            (day(3), 1.0),
            (day(4), 0.0),
        ]);
        s.entry(METRICS[2])
            .or_default()
            .extend([(day(1), 1.0), (day(2), 1.0)]);
        s.entry(METRICS[1]).or_default().extend([(day(2), 1.0)]);
        s.entry(METRICS[0]).or_default().extend([(day(3), 1.0)]);
        assert_eq!(symbols(&s, start), "🟠🔴⏸️🟡⚪··");
    }

    #[test]
    fn range_answers() {
        let doc = json!({"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1700000000,"1"],[1700086400,"NaN"],[1700172800,"0"]]}]}});
        let r = parse_range(&doc).unwrap();
        assert_eq!(r.len(), 2);
        assert!(parse_range(&json!({"status":"error"})).is_err());
    }
}

#[cfg(test)]
pub(crate) mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// Any JSON value (with floats; only shape matters to the readers).
    pub(crate) fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("NaN"),
                Just("+Inf"),
                Just("1"),
                Just("0"),
                Just("True"),
                Just("Ready"),
                Just("2026-06-28T23:02:00Z")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        "\\PC{0,8}",
                        Just("status".to_string()),
                        Just("data".to_string()),
                        Just("result".to_string()),
                        Just("values".to_string()),
                        Just("metadata".to_string()),
                        Just("conditions".to_string()),
                        Just("name".to_string()),
                        Just("type".to_string()),
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary JSON, bare or under a success envelope: never panics; a result holds
        /// finite values only.
        #[test]
        fn parse_range_never_panics(v in any_json(), p in any_json()) {
            for doc in [
                v.clone(),
                json!({"status": "success", "data": v.clone()}),
                json!({"status": "success", "data": {"result": v.clone()}}),
                json!({"status": "success", "data": {"result": [{"values": v.clone()}]}}),
                json!({"status": "success", "data": {"result": [{"values": [p.clone(), [p.clone(), v.clone()]]}]}}),
            ] {
                if let Ok(r) = parse_range(&doc) {
                    prop_assert!(r.values().all(|x| x.is_finite()));
                }
            }
        }

        /// Generated range answers: per timestamp the maximum finite value over all series;
        /// non-numbers are dropped.
        #[test]
        fn parse_range_keeps_the_max_per_timestamp(
            series in proptest::collection::vec(
                proptest::collection::vec((0i64..10, prop_oneof![
                    (-1e6f64..1e6).prop_map(|f| f.to_string()),
                    Just("NaN".to_string()), Just("+Inf".to_string()), Just("x".to_string()),
                ]), 0..8),
                0..4,
            ),
        ) {
            let base = 1_700_000_000i64;
            let doc = json!({"status": "success", "data": {"resultType": "matrix", "result":
                series.iter().map(|s| json!({"metric": {}, "values":
                    s.iter().map(|(d, v)| json!([base + d * 86400, v])).collect::<Vec<_>>()})).collect::<Vec<_>>()}});
            let mut want: BTreeMap<i64, f64> = BTreeMap::new();
            for (d, v) in series.iter().flatten() {
                if let Some(x) = v.parse::<f64>().ok().filter(|x| x.is_finite()) {
                    let e = want.entry(base + d * 86400).or_insert(x);
                    *e = e.max(x);
                }
            }
            prop_assert_eq!(parse_range(&doc).unwrap(), want);
        }

        /// Seven symbols, one per day, for any series and any clock.
        #[test]
        fn symbols_are_one_per_day(now in -4_000_000_000i64..4_000_000_000, pts in proptest::collection::vec((0usize..4, 0i64..8, 0f64..2.0), 0..20)) {
            let (start, end) = window(now);
            prop_assert_eq!(end - start, 6 * 86400);
            prop_assert!(end - 86400 < now + 6 * 3600 && end >= now + 6 * 3600 - 86400);
            let mut s: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
            for (m, d, v) in pts {
                s.entry(METRICS[m]).or_default().insert(start + d * 86400, v.floor());
            }
            prop_assert_eq!(symbols(&s, start).chars().filter(|c| *c != '\u{fe0f}').count(), 7);
        }
    }
}
