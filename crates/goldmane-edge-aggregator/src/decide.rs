//! Pure decisions (spec §5.3): classification, time normalisation, de-duplication, the
//! pending map, resume point, backoff and readiness. No I/O, no clock: time is passed in.

use crate::proto::FlowResult;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// The four action texts stored in `edge.action`.
pub fn action_text(v: i32) -> (&'static str, bool) {
    match v {
        0 => ("unspecified", true),
        1 => ("allow", true),
        2 => ("deny", true),
        3 => ("pass", true),
        _ => ("unspecified", false),
    }
}

/// RFC 1123 label: 1–63 chars of `[a-z0-9-]`, alphanumeric at both ends (§4.3.2).
pub fn valid_namespace(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 63 {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    alnum(b[0]) && alnum(b[b.len() - 1]) && b.iter().all(|&c| alnum(c) || c == b'-')
}

/// Why a flow did not become an observation (the six `flows_dropped_total` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    Malformed,
    EmptyNamespace,
    InvalidNamespace,
    SelfEdge,
    Duplicate,
    PendingFull,
}

impl DropReason {
    pub const ALL: [DropReason; 6] = [
        DropReason::Malformed,
        DropReason::EmptyNamespace,
        DropReason::InvalidNamespace,
        DropReason::SelfEdge,
        DropReason::Duplicate,
        DropReason::PendingFull,
    ];
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::EmptyNamespace => "empty_namespace",
            DropReason::InvalidNamespace => "invalid_namespace",
            DropReason::SelfEdge => "self_edge",
            DropReason::Duplicate => "duplicate",
            DropReason::PendingFull => "pending_full",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One accepted flow reduced to its edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation<'a> {
    pub src: &'a str,
    pub dst: &'a str,
    pub action: &'static str,
    pub raw_action: i32,
    pub known_action: bool,
    pub first: i64,
    pub last: i64,
    pub clamped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified<'a> {
    Edge(Observation<'a>),
    Dropped(DropReason, &'static str),
}

/// §4.3.4: Goldmane's times, made safe. Returns (first, last, clamped).
pub fn normalize_times(start: i64, end: i64, now: i64) -> (i64, i64, bool) {
    let first = if start <= 0 { now } else { start };
    let mut last = if end < first { first } else { end };
    let mut clamped = false;
    if last > now + 300 {
        last = now;
        clamped = true;
    }
    (first.min(last), last, clamped)
}

/// §4.3.1, first match wins.
pub fn classify(r: &FlowResult, now: i64) -> Classified<'_> {
    let Some(flow) = r.flow.as_ref() else {
        return Classified::Dropped(DropReason::Malformed, "no flow");
    };
    let Some(key) = flow.key.as_ref() else {
        return Classified::Dropped(DropReason::Malformed, "no key");
    };
    let (src, dst) = (key.source_namespace.as_str(), key.dest_namespace.as_str());
    if src.is_empty() || dst.is_empty() {
        return Classified::Dropped(DropReason::EmptyNamespace, "empty namespace");
    }
    if !valid_namespace(src) || !valid_namespace(dst) {
        return Classified::Dropped(DropReason::InvalidNamespace, "invalid namespace");
    }
    if src == dst {
        return Classified::Dropped(DropReason::SelfEdge, "self edge");
    }
    let (action, known_action) = action_text(key.action);
    let (first, last, clamped) = normalize_times(flow.start_time, flow.end_time, now);
    Classified::Edge(Observation {
        src,
        dst,
        action,
        raw_action: key.action,
        known_action,
        first,
        last,
        clamped,
    })
}

/// 64-bit fingerprint of an accepted flow (§3.4.4). Deterministic (fixed SipHash keys).
pub fn fingerprint(r: &FlowResult) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    r.id.hash(&mut h);
    if let Some(f) = &r.flow {
        f.start_time.hash(&mut h);
        f.end_time.hash(&mut h);
        if let Some(k) = &f.key {
            k.source_namespace.hash(&mut h);
            k.dest_namespace.hash(&mut h);
            k.action.hash(&mut h);
            k.source_name.hash(&mut h);
            k.dest_name.hash(&mut h);
            k.dest_port.hash(&mut h);
            k.proto.hash(&mut h);
            k.reporter.hash(&mut h);
        }
    }
    h.finish()
}

/// Fingerprints of recently accepted flows, keyed to their start time.
#[derive(Debug)]
pub struct Dedup {
    seen: HashMap<u64, i64>,
    cap: usize,
}

pub const DEDUP_CAP: usize = 262_144;

impl Dedup {
    pub fn new(cap: usize) -> Self {
        Dedup {
            seen: HashMap::new(),
            cap: cap.max(2),
        }
    }
    /// True when the fingerprint is new (kept); false for a duplicate.
    pub fn insert(&mut self, fp: u64, start: i64) -> bool {
        if self.seen.contains_key(&fp) {
            return false;
        }
        if self.seen.len() >= self.cap {
            self.evict_oldest_half();
        }
        self.seen.insert(fp, start);
        true
    }
    /// At the cap: drop the older half by start time (oldest start evicted first), O(n)
    /// once per cap/2 inserts.
    fn evict_oldest_half(&mut self) {
        let mut starts: Vec<i64> = self.seen.values().copied().collect();
        let mid = starts.len() / 2;
        let (_, pivot, _) = starts.select_nth_unstable(mid);
        let pivot = *pivot;
        self.seen.retain(|_, s| *s > pivot);
        if self.seen.len() >= self.cap {
            // All entries share one start: drop arbitrary ones to make room.
            let drop: Vec<u64> = self.seen.keys().take(self.cap / 2).copied().collect();
            for k in drop {
                self.seen.remove(&k);
            }
        }
    }
    /// Drop entries with `start < watermark − window`.
    pub fn prune(&mut self, watermark: i64, window: i64) {
        let floor = watermark.saturating_sub(window);
        self.seen.retain(|_, s| *s >= floor);
        if self.seen.capacity() > 4 * self.seen.len().max(1024) {
            self.seen.shrink_to_fit();
        }
    }
    pub fn len(&self) -> usize {
        self.seen.len()
    }
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Merged aggregate of one edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agg {
    pub first: i64,
    pub last: i64,
    pub count: i64,
}

impl Agg {
    fn absorb(&mut self, o: Agg) {
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.count = self.count.saturating_add(o.count);
    }
}

/// One row to upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub src: String,
    pub dst: String,
    pub action: String,
    pub first: i64,
    pub last: i64,
    pub count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    Merged,
    New,
    Full,
}

/// The pending map (§4.5): edge key `src\0dst\0action` → aggregate. A scratch buffer builds
/// the lookup key, so merging into a known edge allocates nothing.
#[derive(Debug)]
pub struct Pending {
    map: HashMap<Box<str>, Agg>,
    cap: usize,
    scratch: String,
}

impl Pending {
    pub fn new(cap: usize) -> Self {
        Pending {
            map: HashMap::new(),
            cap,
            scratch: String::with_capacity(140),
        }
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Merge one aggregate; new keys beyond the cap are refused (`Full`).
    pub fn merge(&mut self, src: &str, dst: &str, action: &str, agg: Agg) -> MergeOutcome {
        self.scratch.clear();
        self.scratch.push_str(src);
        self.scratch.push('\0');
        self.scratch.push_str(dst);
        self.scratch.push('\0');
        self.scratch.push_str(action);
        if let Some(a) = self.map.get_mut(self.scratch.as_str()) {
            a.absorb(agg);
            return MergeOutcome::Merged;
        }
        if self.map.len() >= self.cap {
            return MergeOutcome::Full;
        }
        self.map.insert(self.scratch.as_str().into(), agg);
        MergeOutcome::New
    }
    /// Swap the map out as rows sorted by (src, dst, action).
    pub fn take(&mut self) -> Vec<Row> {
        let map = std::mem::take(&mut self.map);
        let mut rows: Vec<Row> = map
            .into_iter()
            .map(|(k, a)| {
                let mut it = k.split('\0');
                let src = it.next().unwrap_or_default().to_string();
                let dst = it.next().unwrap_or_default().to_string();
                let action = it.next().unwrap_or_default().to_string();
                Row {
                    src,
                    dst,
                    action,
                    first: a.first,
                    last: a.last,
                    count: a.count,
                }
            })
            .collect();
        rows.sort_by(|a, b| (&a.src, &a.dst, &a.action).cmp(&(&b.src, &b.dst, &b.action)));
        rows
    }
    /// Put a failed batch back (merge is commutative, so nothing is lost or reordered).
    /// Re-merging ignores the cap: these edges were already accepted.
    pub fn merge_back(&mut self, rows: Vec<Row>) {
        for r in rows {
            let key: Box<str> = format!("{}\0{}\0{}", r.src, r.dst, r.action).into();
            let agg = Agg {
                first: r.first,
                last: r.last,
                count: r.count,
            };
            self.map
                .entry(key)
                .and_modify(|a| a.absorb(agg))
                .or_insert(agg);
        }
    }
}

/// Column arrays for the unnest upsert, sorted by (src, dst, action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertParams<'a> {
    pub src: Vec<&'a str>,
    pub dst: Vec<&'a str>,
    pub action: Vec<&'a str>,
    pub first: Vec<i64>,
    pub last: Vec<i64>,
    pub count: Vec<i64>,
}

pub fn upsert_params(rows: &[Row]) -> UpsertParams<'_> {
    let mut idx: Vec<&Row> = rows.iter().collect();
    idx.sort_by(|a, b| (&a.src, &a.dst, &a.action).cmp(&(&b.src, &b.dst, &b.action)));
    UpsertParams {
        src: idx.iter().map(|r| r.src.as_str()).collect(),
        dst: idx.iter().map(|r| r.dst.as_str()).collect(),
        action: idx.iter().map(|r| r.action.as_str()).collect(),
        first: idx.iter().map(|r| r.first).collect(),
        last: idx.iter().map(|r| r.last).collect(),
        count: idx.iter().map(|r| r.count).collect(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeSource {
    Db,
    Stream,
    Default,
}

impl ResumeSource {
    pub fn label(self) -> &'static str {
        match self {
            ResumeSource::Db => "db",
            ResumeSource::Stream => "stream",
            ResumeSource::Default => "default",
        }
    }
}

/// When the shutdown flush retries: the flusher's own next try, but at least 200 ms away (no
/// busy loop) and never past the shutdown deadline. Not `clamp`: with less than 200 ms of
/// budget left its bounds cross and it panics (seen as exit 101 on SIGTERM with Postgres down).
pub fn shutdown_wake(
    next_try: std::time::Instant,
    now: std::time::Instant,
    deadline: std::time::Instant,
) -> std::time::Instant {
    next_try
        .max(now + std::time::Duration::from_millis(200))
        .min(deadline)
}

/// §3.4.2/3.4.3: where the next stream starts. Always absolute and > 0.
pub fn resume_point(
    watermark: Option<i64>,
    db_max: Option<i64>,
    now: i64,
    backfill: i64,
    interval: i64,
) -> (i64, ResumeSource) {
    let floor = now - backfill;
    let clamp = |v: i64| v.clamp(floor, now).max(1);
    match (watermark, db_max) {
        (Some(w), _) => (clamp(w), ResumeSource::Stream),
        (None, Some(m)) => (clamp(m.saturating_sub(interval)), ResumeSource::Db),
        (None, None) => (floor.max(1), ResumeSource::Default),
    }
}

/// §3.5.2: attempt n ≥ 1 sleeps uniform [d/2, d], d = min(max, 2^(n−1) s); `jitter` ∈ [0, 1].
pub fn backoff(attempt: u32, jitter: f64, max: Duration) -> Duration {
    let n = attempt.max(1);
    let d = Duration::from_secs(1u64 << (n - 1).min(30)).min(max);
    let j = jitter.clamp(0.0, 1.0);
    d / 2 + d.mul_f64(j) / 2
}

/// Inputs of the readiness decision (§8.2); times are seconds on one monotonic clock.
#[derive(Debug, Clone, Default)]
pub struct ReadyState {
    pub started: bool,
    pub stream_open: bool,
    pub last_stream_activity: f64,
    pub dry_run: bool,
    pub db_last_ok: Option<f64>,
    pub db_failing: bool,
    pub cert_expired: bool,
}

/// 200 iff Ok; else the one reason.
pub fn readiness(s: &ReadyState, now: f64, stall_timeout: f64) -> Result<(), &'static str> {
    if s.cert_expired && !s.stream_open {
        return Err("client_cert_expired");
    }
    if !s.started {
        return Err("starting");
    }
    if !s.stream_open {
        return Err("no_stream");
    }
    if now - s.last_stream_activity >= stall_timeout {
        return Err("stream_stalled");
    }
    if !s.dry_run {
        match s.db_last_ok {
            Some(t) if !s.db_failing && now - t < 60.0 => {}
            _ => return Err("db_down"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Flow, FlowKey};

    fn fr(id: i64, src: &str, dst: &str, action: i32, start: i64, end: i64) -> FlowResult {
        FlowResult {
            id,
            flow: Some(Flow {
                key: Some(FlowKey {
                    source_namespace: src.into(),
                    dest_namespace: dst.into(),
                    source_name: "a-*".into(),
                    dest_name: "b-*".into(),
                    action,
                    dest_port: 443,
                    proto: "tcp".into(),
                    reporter: 1,
                    ..Default::default()
                }),
                start_time: start,
                end_time: end,
                num_connections_started: 1,
            }),
        }
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn shutdown_wake_never_passes_the_deadline() {
        use std::time::{Duration, Instant};
        let now = Instant::now();
        let ms = Duration::from_millis;
        // less than 200 ms of budget left: the deadline, not a panic
        assert_eq!(shutdown_wake(now, now, now + ms(50)), now + ms(50));
        assert_eq!(shutdown_wake(now + ms(10), now, now), now);
        // plenty of budget: at least 200 ms away, else the flusher's own next try
        assert_eq!(shutdown_wake(now, now, now + ms(5000)), now + ms(200));
        assert_eq!(
            shutdown_wake(now + ms(900), now, now + ms(5000)),
            now + ms(900)
        );
        assert_eq!(
            shutdown_wake(now + ms(9000), now, now + ms(5000)),
            now + ms(5000)
        );
    }

    #[test]
    fn classify_table() {
        let edge = |r: &FlowResult| match classify(r, NOW) {
            Classified::Edge(o) => Some((o.src.to_string(), o.dst.to_string(), o.action)),
            Classified::Dropped(..) => None,
        };
        let drop = |r: &FlowResult| match classify(r, NOW) {
            Classified::Dropped(d, _) => Some(d),
            Classified::Edge(_) => None,
        };
        assert_eq!(
            edge(&fr(1, "a", "b", 1, NOW - 30, NOW - 15)),
            Some(("a".into(), "b".into(), "allow"))
        );
        assert_eq!(drop(&fr(1, "a", "a", 1, 1, 2)), Some(DropReason::SelfEdge));
        assert_eq!(
            drop(&fr(1, "", "b", 1, 1, 2)),
            Some(DropReason::EmptyNamespace)
        );
        assert_eq!(
            drop(&fr(1, "a", "", 1, 1, 2)),
            Some(DropReason::EmptyNamespace)
        );
        assert_eq!(
            drop(&fr(1, "", "", 1, 1, 2)),
            Some(DropReason::EmptyNamespace)
        );
        let long = "a".repeat(64);
        for bad in ["Foo", "a_b", long.as_str(), "-a", "a-", "a/b", "a\0b"] {
            assert_eq!(
                drop(&fr(1, bad, "b", 1, 1, 2)),
                Some(DropReason::InvalidNamespace),
                "{bad:?}"
            );
            assert_eq!(
                drop(&fr(1, "b", bad, 1, 1, 2)),
                Some(DropReason::InvalidNamespace),
                "{bad:?}"
            );
        }
        assert!(valid_namespace(&"a".repeat(63)));
        assert_eq!(
            drop(&FlowResult { id: 1, flow: None }),
            Some(DropReason::Malformed)
        );
        let mut nokey = fr(1, "a", "b", 1, 1, 2);
        nokey.flow.as_mut().unwrap().key = None;
        assert_eq!(drop(&nokey), Some(DropReason::Malformed));
        // Namespaced NetworkSet source still counts (endpoint type not consulted).
        let mut ns = fr(1, "a", "b", 2, NOW - 30, NOW - 15);
        ns.flow.as_mut().unwrap().key.as_mut().unwrap().source_type = 3;
        assert_eq!(edge(&ns), Some(("a".into(), "b".into(), "deny")));
    }

    #[test]
    fn action_texts() {
        assert_eq!(action_text(0), ("unspecified", true));
        assert_eq!(action_text(1), ("allow", true));
        assert_eq!(action_text(2), ("deny", true));
        assert_eq!(action_text(3), ("pass", true));
        assert_eq!(action_text(7), ("unspecified", false));
        assert_eq!(action_text(-1), ("unspecified", false));
    }

    #[test]
    fn time_normalisation() {
        assert_eq!(normalize_times(100, 115, NOW), (100, 115, false));
        assert_eq!(normalize_times(0, 0, NOW), (NOW, NOW, false));
        assert_eq!(normalize_times(200, 100, NOW), (200, 200, false));
        assert_eq!(
            normalize_times(NOW - 15, NOW + 10_000, NOW),
            (NOW - 15, NOW, true)
        );
        assert_eq!(
            normalize_times(NOW + 5000, NOW + 5015, NOW),
            (NOW, NOW, true)
        );
        assert_eq!(
            normalize_times(NOW, NOW + 300, NOW),
            (NOW, NOW + 300, false)
        );
    }

    #[test]
    fn pending_merge_rules() {
        let mut a = Pending::new(10);
        let mut b = Pending::new(10);
        let obs = [(10, 20), (5, 30), (7, 8)];
        for (f, l) in obs {
            a.merge(
                "x",
                "y",
                "allow",
                Agg {
                    first: f,
                    last: l,
                    count: 1,
                },
            );
        }
        for (f, l) in obs.iter().rev() {
            b.merge(
                "x",
                "y",
                "allow",
                Agg {
                    first: *f,
                    last: *l,
                    count: 1,
                },
            );
        }
        let (ra, rb) = (a.take(), b.take());
        assert_eq!(ra, rb);
        assert_eq!(ra[0].first, 5);
        assert_eq!(ra[0].last, 30);
        assert_eq!(ra[0].count, 3);
        let mut p = Pending::new(10);
        p.merge(
            "x",
            "y",
            "allow",
            Agg {
                first: 1,
                last: 1,
                count: i64::MAX,
            },
        );
        p.merge(
            "x",
            "y",
            "allow",
            Agg {
                first: 1,
                last: 1,
                count: 5,
            },
        );
        assert_eq!(p.take()[0].count, i64::MAX);
        // Cap: known keys merge, new keys are refused; merge_back restores a batch.
        let mut p = Pending::new(1);
        assert_eq!(
            p.merge(
                "a",
                "b",
                "allow",
                Agg {
                    first: 1,
                    last: 2,
                    count: 1
                }
            ),
            MergeOutcome::New
        );
        assert_eq!(
            p.merge(
                "a",
                "b",
                "allow",
                Agg {
                    first: 1,
                    last: 2,
                    count: 1
                }
            ),
            MergeOutcome::Merged
        );
        assert_eq!(
            p.merge(
                "a",
                "c",
                "allow",
                Agg {
                    first: 1,
                    last: 2,
                    count: 1
                }
            ),
            MergeOutcome::Full
        );
        let rows = p.take();
        assert!(p.is_empty());
        p.merge(
            "a",
            "b",
            "allow",
            Agg {
                first: 0,
                last: 9,
                count: 1,
            },
        );
        p.merge_back(rows);
        let r = p.take();
        assert_eq!((r[0].first, r[0].last, r[0].count), (0, 9, 3));
    }

    #[test]
    fn dedup_rules() {
        let mut d = Dedup::new(DEDUP_CAP);
        let a = fr(1, "a", "b", 1, 100, 115);
        let b = fr(2, "a", "b", 1, 100, 115);
        assert!(d.insert(fingerprint(&a), 100));
        assert!(!d.insert(fingerprint(&a), 100));
        assert!(d.insert(fingerprint(&b), 100));
        assert_ne!(fingerprint(&a), fingerprint(&fr(1, "a", "b", 2, 100, 115)));
        d.insert(1, 200);
        d.prune(200, 60);
        assert_eq!(d.len(), 1);
        // Cap eviction drops the oldest starts first.
        let mut d = Dedup::new(4);
        for (fp, s) in [(1, 10), (2, 20), (3, 30), (4, 40)] {
            assert!(d.insert(fp, s));
        }
        assert!(d.insert(5, 50));
        assert!(d.len() <= 4);
        assert!(!d.insert(5, 50));
        assert!(!d.insert(4, 40));
        assert!(d.insert(1, 10), "oldest entry was evicted");
    }

    #[test]
    fn resume_points() {
        let now = NOW;
        assert_eq!(
            resume_point(Some(now - 100), Some(now - 50), now, 3600, 15),
            (now - 100, ResumeSource::Stream)
        );
        assert_eq!(
            resume_point(None, Some(now - 100), now, 3600, 15),
            (now - 115, ResumeSource::Db)
        );
        assert_eq!(
            resume_point(None, None, now, 3600, 15),
            (now - 3600, ResumeSource::Default)
        );
        assert_eq!(
            resume_point(Some(now - 99_999), None, now, 3600, 15),
            (now - 3600, ResumeSource::Stream)
        );
        assert_eq!(
            resume_point(None, Some(now + 999), now, 3600, 15),
            (now, ResumeSource::Db)
        );
    }

    #[test]
    fn backoff_schedule() {
        let max = Duration::from_secs(60);
        let secs: Vec<u64> = (1..=8).map(|n| backoff(n, 1.0, max).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(1, 0.0, max), Duration::from_millis(500));
        assert_eq!(backoff(3, 0.0, max), Duration::from_secs(2));
        assert_eq!(backoff(40, 0.5, max), Duration::from_secs(45));
        assert_eq!(
            backoff(0, 1.0, max),
            Duration::from_secs(1),
            "reset attempt behaves as 1"
        );
        assert_eq!(
            backoff(5, 1.0, Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn readiness_reasons() {
        let ok = ReadyState {
            started: true,
            stream_open: true,
            last_stream_activity: 100.0,
            db_last_ok: Some(100.0),
            ..Default::default()
        };
        assert_eq!(readiness(&ok, 101.0, 300.0), Ok(()));
        assert_eq!(
            readiness(&ReadyState::default(), 0.0, 300.0),
            Err("starting")
        );
        let s = ReadyState {
            stream_open: false,
            ..ok.clone()
        };
        assert_eq!(readiness(&s, 101.0, 300.0), Err("no_stream"));
        assert_eq!(readiness(&ok, 400.0, 300.0), Err("stream_stalled"));
        let s = ReadyState {
            db_failing: true,
            ..ok.clone()
        };
        assert_eq!(readiness(&s, 101.0, 300.0), Err("db_down"));
        let s = ReadyState {
            db_last_ok: None,
            ..ok.clone()
        };
        assert_eq!(readiness(&s, 101.0, 300.0), Err("db_down"));
        assert_eq!(readiness(&ok, 161.0, 300.0), Err("db_down"));
        let s = ReadyState {
            db_last_ok: None,
            dry_run: true,
            ..ok.clone()
        };
        assert_eq!(readiness(&s, 101.0, 300.0), Ok(()));
        let s = ReadyState {
            stream_open: false,
            cert_expired: true,
            ..ok
        };
        assert_eq!(readiness(&s, 101.0, 300.0), Err("client_cert_expired"));
    }

    #[test]
    fn upsert_params_sorted() {
        let row = |s: &str, d: &str, a: &str| Row {
            src: s.into(),
            dst: d.into(),
            action: a.into(),
            first: 1,
            last: 2,
            count: 1,
        };
        let rows = vec![
            row("b", "a", "allow"),
            row("a", "c", "deny"),
            row("a", "c", "allow"),
            row("a", "b", "pass"),
        ];
        let p = upsert_params(&rows);
        assert_eq!(p.src, ["a", "a", "a", "b"]);
        assert_eq!(p.dst, ["b", "c", "c", "a"]);
        assert_eq!(p.action, ["pass", "allow", "deny", "allow"]);
        assert_eq!(p.count.len(), 4);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Namespaces: valid labels, edgy-but-invalid ones, and arbitrary text.
        fn any_ns() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
                Just(String::new()),
                "[a-z0-9]{64,70}",
                "[-A-Za-z0-9_./ \\x00]{0,66}",
                ".{0,70}",
                Just("a".to_string()),
                Just("b".to_string()),
            ]
        }

        /// The fields classification must not consult (§4.3.1: endpoint type, names, port,
        /// protocol, reporter, id, connection count).
        #[derive(Debug, Clone)]
        struct Ignored {
            id: i64,
            source_name: String,
            dest_name: String,
            source_type: i32,
            dest_type: i32,
            dest_port: i64,
            proto: String,
            reporter: i32,
            conns: i64,
        }

        fn any_ignored() -> impl Strategy<Value = Ignored> {
            (
                any::<i64>(),
                ".{0,20}",
                ".{0,20}",
                any::<i32>(),
                any::<i32>(),
                any::<i64>(),
                ".{0,8}",
                any::<i32>(),
                any::<i64>(),
            )
                .prop_map(
                    |(
                        id,
                        source_name,
                        dest_name,
                        source_type,
                        dest_type,
                        dest_port,
                        proto,
                        reporter,
                        conns,
                    )| {
                        Ignored {
                            id,
                            source_name,
                            dest_name,
                            source_type,
                            dest_type,
                            dest_port,
                            proto,
                            reporter,
                            conns,
                        }
                    },
                )
        }

        fn any_time() -> impl Strategy<Value = i64> {
            prop_oneof![
                any::<i64>(),
                Just(0i64),
                -10i64..=10,
                (NOW - 100_000)..(NOW + 100_000),
                Just(i64::MIN),
                Just(i64::MAX),
            ]
        }

        fn build(
            src: &str,
            dst: &str,
            action: i32,
            start: i64,
            end: i64,
            ig: &Ignored,
        ) -> FlowResult {
            FlowResult {
                id: ig.id,
                flow: Some(Flow {
                    key: Some(FlowKey {
                        source_name: ig.source_name.clone(),
                        source_namespace: src.into(),
                        source_type: ig.source_type,
                        dest_name: ig.dest_name.clone(),
                        dest_namespace: dst.into(),
                        dest_type: ig.dest_type,
                        dest_port: ig.dest_port,
                        proto: ig.proto.clone(),
                        reporter: ig.reporter,
                        action,
                    }),
                    start_time: start,
                    end_time: end,
                    num_connections_started: ig.conns,
                }),
            }
        }

        fn any_action() -> impl Strategy<Value = i32> {
            prop_oneof![0i32..=3, any::<i32>()]
        }

        /// A wall clock anywhere from 1970 to far beyond any pod's lifetime.
        fn any_now() -> impl Strategy<Value = i64> {
            prop_oneof![Just(NOW), 0i64..=(1i64 << 40)]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// §4.3.1 on arbitrary flows: never panics, the first matching rule decides, and an
            /// edge always carries two distinct valid RFC 1123 labels taken byte-exact from the
            /// key, with the action text of §4.3.3.
            #[test]
            fn classify_follows_first_match_rules(
                src in any_ns(), dst in any_ns(), action in any_action(),
                start in any_time(), end in any_time(), now in any_now(), ig in any_ignored(),
                shape in 0u8..6,
            ) {
                let mut r = build(&src, &dst, action, start, end, &ig);
                match shape {
                    0 => r.flow = None,
                    1 => r.flow.as_mut().unwrap().key = None,
                    _ => {}
                }
                let expected = if shape == 0 || shape == 1 {
                    Some(DropReason::Malformed)
                } else if src.is_empty() || dst.is_empty() {
                    Some(DropReason::EmptyNamespace)
                } else if !valid_namespace(&src) || !valid_namespace(&dst) {
                    Some(DropReason::InvalidNamespace)
                } else if src == dst {
                    Some(DropReason::SelfEdge)
                } else {
                    None
                };
                match classify(&r, now) {
                    Classified::Dropped(d, why) => {
                        prop_assert_eq!(Some(d), expected);
                        prop_assert!(!why.is_empty());
                    }
                    Classified::Edge(o) => {
                        prop_assert_eq!(expected, None);
                        prop_assert_eq!(o.src, src.as_str());
                        prop_assert_eq!(o.dst, dst.as_str());
                        prop_assert!(o.src != o.dst);
                        for ns in [o.src, o.dst] {
                            prop_assert!((1..=63).contains(&ns.len()), "{:?}", ns);
                            prop_assert!(ns.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
                            prop_assert!(!ns.starts_with('-') && !ns.ends_with('-'));
                            prop_assert!(!ns.contains('\0'), "edge key separator inside a name");
                        }
                        prop_assert_eq!(o.raw_action, action);
                        prop_assert_eq!(o.known_action, (0..=3).contains(&action));
                        let want = ["unspecified", "allow", "deny", "pass"]
                            .get(usize::try_from(action).unwrap_or(usize::MAX))
                            .copied()
                            .unwrap_or("unspecified");
                        prop_assert_eq!(o.action, want);
                        prop_assert_eq!((o.first, o.last, o.clamped), normalize_times(start, end, now));
                    }
                }
            }

            /// The edge (key and times) is a function of namespaces, action, times and `now`
            /// only: ids, workload names, endpoint types, port, protocol, reporter and
            /// connection counts never change it, and classifying twice gives the same answer.
            #[test]
            fn classify_ignores_the_fields_it_must_ignore(
                src in any_ns(), dst in any_ns(), action in any_action(),
                start in any_time(), end in any_time(), now in any_now(),
                a in any_ignored(), b in any_ignored(),
            ) {
                let ra = build(&src, &dst, action, start, end, &a);
                let rb = build(&src, &dst, action, start, end, &b);
                prop_assert_eq!(classify(&ra, now), classify(&rb, now));
                let copy = ra.clone();
                prop_assert_eq!(classify(&ra, now), classify(&copy, now));
                prop_assert_eq!(fingerprint(&ra), fingerprint(&ra.clone()));
            }

            /// §4.3.4 for any times: first ≤ last ≤ now + 300; `start ≤ 0` means receipt time;
            /// clamped iff the unclamped last lay beyond now + 300 (then last = now); sane
            /// in-range times pass through untouched.
            #[test]
            fn times_are_clamped_as_specified(
                abs_start in any_time(), abs_end in any_time(), now in any_now(),
                rel in proptest::option::of((-1000i64..1000, prop_oneof![-1000i64..1000, 298i64..303])),
            ) {
                // Times around `now` (the 300 s boundary included) or anywhere at all.
                let (start, end) = match rel {
                    Some((s, e)) => (if s < -900 { s + 900 } else { now + s }, now + e),
                    None => (abs_start, abs_end),
                };
                let (first, last, clamped) = normalize_times(start, end, now);
                prop_assert!(first <= last);
                prop_assert!(last <= now + 300);
                let f0 = if start <= 0 { now } else { start };
                let l0 = end.max(f0);
                prop_assert_eq!(clamped, l0 > now + 300);
                if clamped {
                    prop_assert_eq!(last, now);
                    prop_assert_eq!(first, f0.min(now));
                } else {
                    prop_assert_eq!((first, last), (f0, l0));
                }
                if start > 0 && start <= end && end <= now + 300 {
                    prop_assert_eq!((first, last, clamped), (start, end, false));
                }
            }

            /// §4.4.1/§4.5.2: merging a batch into the pending map is order-independent, the
            /// rows come out sorted by key with min/max/saturating sum, and a failed batch
            /// merged back (into an empty or busy map) loses and reorders nothing.
            #[test]
            fn pending_merge_is_order_independent(
                obs in proptest::collection::vec(
                    (0usize..4, 0usize..4, 0i32..5, any_time(), any_time(), prop_oneof![Just(1i64), any::<i64>().prop_map(|c| c.saturating_abs())]),
                    0..60,
                ),
                seed in any::<u64>(),
                now in any_now(),
            ) {
                const NS: [&str; 4] = ["kube-system", "a", "b-0", "z9"];
                let aggs: Vec<(&str, &str, &str, Agg)> = obs
                    .iter()
                    .map(|&(s, d, act, st, en, c)| {
                        let (first, last, _) = normalize_times(st, en, now);
                        (NS[s], NS[d], action_text(act).0, Agg { first, last, count: c })
                    })
                    .collect();
                let mut shuffled = aggs.clone();
                // Deterministic Fisher–Yates from the seed.
                let mut x = seed | 1;
                for i in (1..shuffled.len()).rev() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    shuffled.swap(i, (x % (i as u64 + 1)) as usize);
                }
                let run = |batch: &[(&str, &str, &str, Agg)]| {
                    let mut p = Pending::new(usize::MAX);
                    for (s, d, a, g) in batch {
                        prop_assert_ne!(p.merge(s, d, a, *g), MergeOutcome::Full);
                    }
                    Ok(p.take())
                };
                let rows = run(&aggs)?;
                prop_assert_eq!(&rows, &run(&shuffled)?);
                prop_assert!(rows.windows(2).all(|w| (&w[0].src, &w[0].dst, &w[0].action) < (&w[1].src, &w[1].dst, &w[1].action)));
                for r in &rows {
                    let mine: Vec<&Agg> = aggs
                        .iter()
                        .filter(|(s, d, a, _)| (*s, *d, *a) == (r.src.as_str(), r.dst.as_str(), r.action.as_str()))
                        .map(|(.., g)| g)
                        .collect();
                    prop_assert!(!mine.is_empty());
                    prop_assert_eq!(r.first, mine.iter().map(|g| g.first).min().unwrap());
                    prop_assert_eq!(r.last, mine.iter().map(|g| g.last).max().unwrap());
                    prop_assert_eq!(r.count, mine.iter().fold(0i64, |n, g| n.saturating_add(g.count)));
                }
                let distinct: std::collections::HashSet<_> = aggs.iter().map(|(s, d, a, _)| (*s, *d, *a)).collect();
                prop_assert_eq!(rows.len(), distinct.len());
                // Merge back into an empty map: identical rows.
                let mut p = Pending::new(0);
                p.merge_back(rows.clone());
                prop_assert_eq!(&p.take(), &rows);
                // Merge back into a map that received the shuffled batch meanwhile: same as
                // merging everything twice.
                let mut p = Pending::new(usize::MAX);
                for (s, d, a, g) in &shuffled {
                    p.merge(s, d, a, *g);
                }
                p.merge_back(rows.clone());
                let twice: Vec<_> = aggs.iter().chain(aggs.iter()).cloned().collect();
                prop_assert_eq!(p.take(), run(&twice)?);
            }

            /// The pending cap: never more than `cap` keys, known keys always merge.
            #[test]
            fn pending_respects_its_cap(
                keys in proptest::collection::vec((0usize..6, 0usize..6), 1..40),
                cap in 0usize..8,
            ) {
                let mut p = Pending::new(cap);
                let mut seen = std::collections::HashSet::new();
                for (s, d) in keys {
                    let (s, d) = (format!("n{s}"), format!("n{d}"));
                    let out = p.merge(&s, &d, "allow", Agg { first: 1, last: 2, count: 1 });
                    let known = seen.contains(&(s.clone(), d.clone()));
                    match out {
                        MergeOutcome::Merged => prop_assert!(known),
                        MergeOutcome::New => { prop_assert!(!known && seen.len() < cap); seen.insert((s, d)); }
                        MergeOutcome::Full => prop_assert!(!known && seen.len() >= cap),
                    }
                    prop_assert!(p.len() <= cap);
                }
            }
        }
    }
}
