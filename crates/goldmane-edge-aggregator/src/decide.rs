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

/// Why a flow did not become an observation (the `flows_dropped_total` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    Malformed,
    EmptyNamespace,
    InvalidNamespace,
    SelfEdge,
    Duplicate,
    PendingFull,
    UnknownEnum,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::Malformed,
        DropReason::EmptyNamespace,
        DropReason::InvalidNamespace,
        DropReason::SelfEdge,
        DropReason::Duplicate,
        DropReason::PendingFull,
        DropReason::UnknownEnum,
    ];
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::EmptyNamespace => "empty_namespace",
            DropReason::InvalidNamespace => "invalid_namespace",
            DropReason::SelfEdge => "self_edge",
            DropReason::Duplicate => "duplicate",
            DropReason::PendingFull => "pending_full",
            DropReason::UnknownEnum => "unknown_enum",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Felix's reporting side (`felix/collector/flowlog/utils.go`, projectcalico/calico v3.30.7:
/// egress verdicts are reported by the source, ingress verdicts by the destination).
/// `ReporterUnspecified` (0) comes only from servers older than the field and is taken as the
/// source, like every row written before issue 13; other values are unknown.
pub fn reporter_text(v: i32) -> Option<&'static str> {
    match v {
        0 | 1 => Some("src"),
        2 => Some("dst"),
        _ => None,
    }
}

/// `"-"`: Felix's namespace for endpoints without one (`felix/collector/flowlog/utils.go`
/// `FieldNotIncluded`); whisker-backend treats it like `""`.
pub fn no_namespace(s: &str) -> bool {
    s.is_empty() || s == "-"
}

/// The staged-policy verdict of a flow: Felix evaluates the staged (pending) policies like
/// enforced ones and records the rule trace (`felix/collector/collector.go`
/// `evaluatePendingRuleTrace`); the trace ends at the verdict, `Pass` hands over to the next tier.
/// So the verdict is the first Allow/Deny hit of `pending_policies`; Goldmane's own filter looks
/// for any hit with the action (`goldmane/pkg/types/filters.go` `pendingActionMatch`, master).
/// `None`: no staged policy decided this flow.
pub fn pending_verdict(k: &crate::proto::FlowKey) -> Option<&'static str> {
    let p = k.policies.as_ref()?;
    p.pending_policies.iter().find_map(|h| match h.action {
        1 => Some("allow"),
        2 => Some("deny"),
        _ => None,
    })
}

/// A destination that is not a workload (`egress_edge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External<'a> {
    /// `network`, `networkset` or `hostendpoint`.
    pub dst_type: &'static str,
    /// Network: `pub`/`pvt`; global NetworkSet / host endpoint: Goldmane's name; namespaced
    /// NetworkSet: `<ns>/<name>`.
    pub dst_name: std::borrow::Cow<'a, str>,
    /// Goldmane's protocol string, lowercased.
    pub proto: std::borrow::Cow<'a, str>,
    /// 0 when out of range or the protocol has none.
    pub port: i32,
}

/// One accepted flow reduced to its edge (`dst` a namespace) or external egress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation<'a> {
    pub src: &'a str,
    /// Destination namespace (edge) or, with `external`, the destination name.
    pub dst: &'a str,
    pub external: Option<External<'a>>,
    pub action: &'static str,
    pub reporter: &'static str,
    pub raw_action: i32,
    pub known_action: bool,
    pub first: i64,
    pub last: i64,
    pub clamped: bool,
    pub pending: Option<&'static str>,
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

/// A Goldmane destination name kept in `egress_edge.dst_name`: 1–253 bytes, no control
/// characters (no `\0`, which separates the pending map's key parts).
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && !s.chars().any(char::is_control)
}

fn valid_proto(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// Issue 13 classification, first match wins: malformed; unknown reporter or endpoint type;
/// a source that is not a namespaced workload (`"-"`, `""`, host endpoint, network, set) →
/// empty_namespace; invalid source namespace; then by destination type: workload → edge
/// (empty/`"-"`/invalid namespace and self edges dropped), network / NetworkSet / host endpoint
/// → external egress. Endpoint types per `goldmane/proto/api.proto` `EndpointType`.
pub fn classify(r: &FlowResult, now: i64) -> Classified<'_> {
    use std::borrow::Cow;
    let Some(flow) = r.flow.as_ref() else {
        return Classified::Dropped(DropReason::Malformed, "no flow");
    };
    let Some(key) = flow.key.as_ref() else {
        return Classified::Dropped(DropReason::Malformed, "no key");
    };
    let Some(reporter) = reporter_text(key.reporter) else {
        return Classified::Dropped(DropReason::UnknownEnum, "unknown reporter");
    };
    if !(0..=4).contains(&key.source_type) || !(0..=4).contains(&key.dest_type) {
        return Classified::Dropped(DropReason::UnknownEnum, "unknown endpoint type");
    }
    let (src, dst) = (key.source_namespace.as_str(), key.dest_namespace.as_str());
    if no_namespace(src) || key.source_type > 1 {
        return Classified::Dropped(DropReason::EmptyNamespace, "source outside any namespace");
    }
    if !valid_namespace(src) {
        return Classified::Dropped(DropReason::InvalidNamespace, "invalid namespace");
    }
    let external = match key.dest_type {
        0 | 1 => {
            if no_namespace(dst) {
                return Classified::Dropped(DropReason::EmptyNamespace, "empty namespace");
            }
            if !valid_namespace(dst) {
                return Classified::Dropped(DropReason::InvalidNamespace, "invalid namespace");
            }
            if src == dst {
                return Classified::Dropped(DropReason::SelfEdge, "self edge");
            }
            None
        }
        t => {
            let name = key.dest_name.as_str();
            if !valid_name(name) || name.contains('/') {
                return Classified::Dropped(
                    DropReason::InvalidNamespace,
                    "invalid destination name",
                );
            }
            let proto = if key.proto.bytes().any(|c| c.is_ascii_uppercase()) {
                Cow::Owned(key.proto.to_ascii_lowercase())
            } else {
                Cow::Borrowed(key.proto.as_str())
            };
            if !valid_proto(&proto) {
                return Classified::Dropped(DropReason::InvalidNamespace, "invalid protocol");
            }
            let (dst_type, dst_name) = match t {
                2 => ("hostendpoint", Cow::Borrowed(name)),
                3 if no_namespace(dst) => ("networkset", Cow::Borrowed(name)),
                3 => {
                    // A namespaced NetworkSet (`felix/collector/utils/utils.go`
                    // `ExtractNamespaceFromNetworkSet`): external addresses, never namespace B.
                    if !valid_namespace(dst) {
                        return Classified::Dropped(
                            DropReason::InvalidNamespace,
                            "invalid namespace",
                        );
                    }
                    ("networkset", Cow::Owned(format!("{dst}/{name}")))
                }
                _ => ("network", Cow::Borrowed(name)),
            };
            let port = if (0..=65_535).contains(&key.dest_port) {
                key.dest_port as i32
            } else {
                0
            };
            Some(External {
                dst_type,
                dst_name,
                proto,
                port,
            })
        }
    };
    let (action, known_action) = action_text(key.action);
    let (first, last, clamped) = normalize_times(flow.start_time, flow.end_time, now);
    Classified::Edge(Observation {
        src,
        dst: if external.is_some() {
            key.dest_name.as_str()
        } else {
            dst
        },
        external,
        action,
        reporter,
        raw_action: key.action,
        known_action,
        first,
        last,
        clamped,
        pending: pending_verdict(key),
    })
}

/// 64-bit content fingerprint of a flow in its bucket (issue 13): the flow key and the bucket's
/// start/end, never Goldmane's id (ids restart after a Goldmane restart and Felix re-sends its
/// cache under new ids; whisker-backend de-duplicates on content too). The statistics are left
/// out: a bucket replayed by backfill may carry more packets than when it was streamed, and is
/// still the same observation. Deterministic (fixed SipHash keys).
pub fn fingerprint(r: &FlowResult) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    if let Some(f) = &r.flow {
        f.start_time.hash(&mut h);
        f.end_time.hash(&mut h);
        if let Some(k) = &f.key {
            key_hash(k, &mut h);
        }
    }
    h.finish()
}

/// The id-free identity of a Goldmane flow key (List de-duplication within a pass).
pub fn key_fingerprint(k: &crate::proto::FlowKey) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    key_hash(k, &mut h);
    h.finish()
}

fn key_hash(k: &crate::proto::FlowKey, h: &mut impl Hasher) {
    k.source_namespace.hash(h);
    k.source_name.hash(h);
    k.source_type.hash(h);
    k.dest_namespace.hash(h);
    k.dest_name.hash(h);
    k.dest_type.hash(h);
    k.dest_port.hash(h);
    k.proto.hash(h);
    k.reporter.hash(h);
    k.action.hash(h);
    if let Some(p) = &k.policies {
        for hit in &p.pending_policies {
            hit.action.hash(h);
        }
    }
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

/// Staged-policy state of one key: the verdict of the latest flow that carried one (with that
/// flow's last time) and the last time a flow would have been denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pend {
    pub action: Option<(i64, &'static str)>,
    pub deny_last: Option<i64>,
}

impl Pend {
    pub const NONE: Pend = Pend {
        action: None,
        deny_last: None,
    };
    /// From one observation.
    pub fn of(verdict: Option<&'static str>, last: i64) -> Pend {
        Pend {
            action: verdict.map(|v| (last, v)),
            deny_last: (verdict == Some("deny")).then_some(last),
        }
    }
    fn absorb(&mut self, o: Pend) {
        self.action = match (self.action, o.action) {
            (Some(a), Some(b)) => Some(if b.0 > a.0 || (b.0 == a.0 && b.1 == "deny") {
                b
            } else {
                a
            }),
            (a, b) => a.or(b),
        };
        self.deny_last = self.deny_last.max(o.deny_last);
    }
}

/// The egress part of a row key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EgressKey {
    pub dst_type: String,
    pub proto: String,
    pub port: i32,
}

/// One row to upsert: an `edge` row, or with `egress` an `egress_edge` row (`dst` is then the
/// destination name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub src: String,
    pub dst: String,
    pub action: String,
    pub reporter: String,
    pub egress: Option<EgressKey>,
    pub first: i64,
    pub last: i64,
    pub count: i64,
    pub pending_action: Option<String>,
    pub pending_deny_last: Option<i64>,
}

impl Row {
    /// Sort key: edges first, then by their primary key.
    pub fn sort_key(&self) -> (bool, &str, &str, &str, &str, Option<&EgressKey>) {
        (
            self.egress.is_some(),
            &self.src,
            &self.dst,
            &self.action,
            &self.reporter,
            self.egress.as_ref(),
        )
    }
    fn pend(&self) -> Pend {
        Pend {
            action: self
                .pending_action
                .as_deref()
                .map(|a| (self.last, if a == "deny" { "deny" } else { "allow" })),
            deny_last: self.pending_deny_last,
        }
    }
    /// The pending-map key of this row.
    pub fn key(&self) -> String {
        let mut k = String::new();
        push_key(
            &mut k,
            &self.src,
            &self.dst,
            &self.action,
            &self.reporter,
            self.egress
                .as_ref()
                .map(|e| (e.dst_type.as_str(), e.proto.as_str(), e.port)),
        );
        k
    }
}

/// The map key: `src\0dst\0action\0reporter[\0type\0proto\0port]` (no part may hold `\0`:
/// namespaces are RFC 1123 labels, names and protocols are checked by `classify`).
fn push_key(
    k: &mut String,
    src: &str,
    dst: &str,
    action: &str,
    reporter: &str,
    egress: Option<(&str, &str, i32)>,
) {
    use std::fmt::Write as _;
    k.push_str(src);
    k.push('\0');
    k.push_str(dst);
    k.push('\0');
    k.push_str(action);
    k.push('\0');
    k.push_str(reporter);
    if let Some((t, p, port)) = egress {
        k.push('\0');
        k.push_str(t);
        k.push('\0');
        k.push_str(p);
        let _ = write!(k, "\0{port}");
    }
}

/// A borrowed row key, for merging without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef<'a> {
    pub src: &'a str,
    pub dst: &'a str,
    pub action: &'a str,
    pub reporter: &'a str,
    pub egress: Option<(&'a str, &'a str, i32)>,
}

impl<'a> KeyRef<'a> {
    /// A source-reported edge (tests, and rows from before issue 13).
    pub fn edge(src: &'a str, dst: &'a str, action: &'a str) -> KeyRef<'a> {
        KeyRef {
            src,
            dst,
            action,
            reporter: "src",
            egress: None,
        }
    }
    pub fn of(o: &'a Observation<'a>) -> KeyRef<'a> {
        KeyRef {
            src: o.src,
            dst: o.external.as_ref().map_or(o.dst, |e| e.dst_name.as_ref()),
            action: o.action,
            reporter: o.reporter,
            egress: o
                .external
                .as_ref()
                .map(|e| (e.dst_type, e.proto.as_ref(), e.port)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    Merged,
    New,
    Full,
}

/// The pending map (§4.5): row key → aggregate. A scratch buffer builds the lookup key, so
/// merging into a known edge allocates nothing.
#[derive(Debug)]
pub struct Pending {
    map: HashMap<Box<str>, (Agg, Pend)>,
    cap: usize,
    scratch: String,
}

impl Pending {
    pub fn new(cap: usize) -> Self {
        Pending {
            map: HashMap::new(),
            cap,
            scratch: String::with_capacity(160),
        }
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Merge one aggregate without staged-policy data.
    pub fn merge(&mut self, k: &KeyRef<'_>, agg: Agg) -> MergeOutcome {
        self.merge_pend(k, agg, Pend::NONE)
    }
    /// Merge one aggregate; new keys beyond the cap are refused (`Full`).
    pub fn merge_pend(&mut self, k: &KeyRef<'_>, agg: Agg, pend: Pend) -> MergeOutcome {
        self.scratch.clear();
        push_key(
            &mut self.scratch,
            k.src,
            k.dst,
            k.action,
            k.reporter,
            k.egress,
        );
        if let Some((a, p)) = self.map.get_mut(self.scratch.as_str()) {
            a.absorb(agg);
            p.absorb(pend);
            return MergeOutcome::Merged;
        }
        if self.map.len() >= self.cap {
            return MergeOutcome::Full;
        }
        self.map.insert(self.scratch.as_str().into(), (agg, pend));
        MergeOutcome::New
    }
    /// Swap the map out as rows sorted by key (edges first).
    pub fn take(&mut self) -> Vec<Row> {
        let map = std::mem::take(&mut self.map);
        let mut rows: Vec<Row> = map
            .into_iter()
            .map(|(k, (a, p))| {
                let mut it = k.split('\0');
                let mut next = || it.next().unwrap_or_default().to_string();
                let (src, dst, action, reporter) = (next(), next(), next(), next());
                let t = next();
                let egress = (!t.is_empty()).then(|| {
                    let proto = next();
                    EgressKey {
                        dst_type: t,
                        proto,
                        port: next().parse().unwrap_or(0),
                    }
                });
                Row {
                    src,
                    dst,
                    action,
                    reporter,
                    egress,
                    first: a.first,
                    last: a.last,
                    count: a.count,
                    pending_action: p.action.map(|(_, v)| v.to_string()),
                    pending_deny_last: p.deny_last,
                }
            })
            .collect();
        rows.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        rows
    }
    /// Put a failed batch back (merge is commutative, so nothing is lost or reordered).
    /// Re-merging ignores the cap: these edges were already accepted.
    pub fn merge_back(&mut self, rows: Vec<Row>) {
        for r in rows {
            let key: Box<str> = r.key().into();
            let agg = Agg {
                first: r.first,
                last: r.last,
                count: r.count,
            };
            let pend = r.pend();
            self.map
                .entry(key)
                .and_modify(|(a, p)| {
                    a.absorb(agg);
                    p.absorb(pend);
                })
                .or_insert((agg, pend));
        }
    }
}

/// Reconciliation (issue 13): List rows whose key is also among the stream rows of the same
/// flush are known to the stream: only their first/last seen merge in (never the count). The
/// other List rows are returned for the reconciliation upsert.
pub fn absorb_known(rows: &mut [Row], rec: Vec<Row>) -> Vec<Row> {
    let idx: HashMap<String, usize> = rows.iter().enumerate().map(|(i, r)| (r.key(), i)).collect();
    let mut rest = Vec::new();
    for r in rec {
        match idx.get(&r.key()) {
            Some(&i) => {
                rows[i].first = rows[i].first.min(r.first);
                rows[i].last = rows[i].last.max(r.last);
            }
            None => rest.push(r),
        }
    }
    rest
}

/// Column arrays for the unnest upserts, in row order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertParams<'a> {
    pub src: Vec<&'a str>,
    pub dst: Vec<&'a str>,
    pub action: Vec<&'a str>,
    pub reporter: Vec<&'a str>,
    pub dst_type: Vec<&'a str>,
    pub proto: Vec<&'a str>,
    pub port: Vec<i32>,
    pub first: Vec<i64>,
    pub last: Vec<i64>,
    pub count: Vec<i64>,
    pub pending_action: Vec<Option<&'a str>>,
    pub pending_deny_last: Vec<Option<i64>>,
}

/// Parameters of `rows` sorted by key (a fixed lock order for concurrent writers).
pub fn upsert_params(rows: &[Row]) -> UpsertParams<'_> {
    let mut idx: Vec<&Row> = rows.iter().collect();
    idx.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    fn eg<'r>(r: &&'r Row) -> Option<&'r EgressKey> {
        r.egress.as_ref()
    }
    UpsertParams {
        src: idx.iter().map(|r| r.src.as_str()).collect(),
        dst: idx.iter().map(|r| r.dst.as_str()).collect(),
        action: idx.iter().map(|r| r.action.as_str()).collect(),
        reporter: idx.iter().map(|r| r.reporter.as_str()).collect(),
        dst_type: idx
            .iter()
            .map(|r| eg(r).map_or("", |e| e.dst_type.as_str()))
            .collect(),
        proto: idx
            .iter()
            .map(|r| eg(r).map_or("", |e| e.proto.as_str()))
            .collect(),
        port: idx.iter().map(|r| eg(r).map_or(0, |e| e.port)).collect(),
        first: idx.iter().map(|r| r.first).collect(),
        last: idx.iter().map(|r| r.last).collect(),
        count: idx.iter().map(|r| r.count).collect(),
        pending_action: idx.iter().map(|r| r.pending_action.as_deref()).collect(),
        pending_deny_last: idx.iter().map(|r| r.pending_deny_last).collect(),
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

/// Issue 13 (supersedes §3.4.2/3.4.3): where the next stream starts. `backfill = 0` → 0 (live
/// only: upstream's `start_time_gte = 0`, `goldmane/pkg/goldmane/goldmane.go` `backfill`).
/// Otherwise absolute, ≥ now − backfill (never older than the ring: an older start backfills
/// nothing, `goldmane/pkg/storage/bucket_ring.go` `findBucket`) and ≤ now − 30 (never inside the
/// filling bucket, whose start wraps around the ring and replays ~241 buckets).
pub fn resume_point(
    watermark: Option<i64>,
    db_max: Option<i64>,
    now: i64,
    backfill: i64,
    interval: i64,
) -> (i64, ResumeSource) {
    if backfill <= 0 {
        return (0, ResumeSource::Default);
    }
    let ceil = now - RESUME_MARGIN_SECS;
    let floor = (now - backfill).min(ceil);
    let clamp = |v: i64| v.clamp(floor, ceil).max(1);
    match (watermark, db_max) {
        (Some(w), _) => (clamp(w), ResumeSource::Stream),
        (None, Some(m)) => (clamp(m.saturating_sub(interval)), ResumeSource::Db),
        (None, None) => (floor.max(1), ResumeSource::Default),
    }
}

/// A stream start or a List end never lies within this many seconds of now: the two newest
/// buckets (filling and future) are not complete.
pub const RESUME_MARGIN_SECS: i64 = 30;

/// The reconciliation window [now − look-back, now − 30 s]; with `backfill = 0` the look-back
/// is the ring limit.
pub fn reconcile_window(now: i64, backfill: i64) -> (i64, i64) {
    let look = if backfill > 0 {
        backfill
    } else {
        crate::config::MAX_BACKFILL_SECS
    };
    (now - look, now - RESUME_MARGIN_SECS)
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
        // Issue 13: a source that is not a workload is not a namespace's flow.
        let mut ns = fr(1, "a", "b", 2, NOW - 30, NOW - 15);
        ns.flow.as_mut().unwrap().key.as_mut().unwrap().source_type = 3;
        assert_eq!(drop(&ns), Some(DropReason::EmptyNamespace));
        // `"-"` is Felix's "no namespace", never an invalid one.
        assert_eq!(
            drop(&fr(1, "-", "b", 1, 1, 2)),
            Some(DropReason::EmptyNamespace)
        );
        assert_eq!(
            drop(&fr(1, "a", "-", 1, 1, 2)),
            Some(DropReason::EmptyNamespace)
        );
        // Unknown enum values are refused, not guessed.
        let set = |f: &dyn Fn(&mut crate::proto::FlowKey)| {
            let mut r = fr(1, "a", "b", 1, NOW - 30, NOW - 15);
            f(r.flow.as_mut().unwrap().key.as_mut().unwrap());
            r
        };
        assert_eq!(
            drop(&set(&|k| k.reporter = 3)),
            Some(DropReason::UnknownEnum)
        );
        assert_eq!(
            drop(&set(&|k| k.dest_type = 5)),
            Some(DropReason::UnknownEnum)
        );
        assert_eq!(
            drop(&set(&|k| k.source_type = -1)),
            Some(DropReason::UnknownEnum)
        );
        // The destination's side.
        match classify(&set(&|k| k.reporter = 2), NOW) {
            Classified::Edge(o) => assert_eq!((o.reporter, o.external), ("dst", None)),
            c => panic!("{c:?}"),
        }
        // External destinations.
        let ext = |t: i32, ns: &str, name: &str, proto: &str, port: i64| {
            let r = set(&|k| {
                k.dest_type = t;
                k.dest_namespace = ns.into();
                k.dest_name = name.into();
                k.proto = proto.into();
                k.dest_port = port;
            });
            match classify(&r, NOW) {
                Classified::Edge(o) => o.external.map(|e| {
                    (
                        e.dst_type,
                        e.dst_name.to_string(),
                        e.proto.to_string(),
                        e.port,
                    )
                }),
                Classified::Dropped(d, _) => panic!("{d:?}"),
            }
        };
        assert_eq!(
            ext(4, "-", "pub", "tcp", 443),
            Some(("network", "pub".into(), "tcp".into(), 443))
        );
        assert_eq!(
            ext(4, "", "pvt", "ICMP", 0),
            Some(("network", "pvt".into(), "icmp".into(), 0))
        );
        assert_eq!(
            ext(3, "-", "cloudflare", "tcp", 443),
            Some(("networkset", "cloudflare".into(), "tcp".into(), 443))
        );
        // A namespaced set is external, named <ns>/<name>: never an edge to namespace b.
        assert_eq!(
            ext(3, "b", "partners", "udp", 99_999),
            Some(("networkset", "b/partners".into(), "udp".into(), 0))
        );
        assert_eq!(
            ext(2, "-", "node-1", "tcp", 22),
            Some(("hostendpoint", "node-1".into(), "tcp".into(), 22))
        );
        let mut bad = set(&|k| {
            k.dest_type = 4;
            k.dest_name = "pub\nINFO forged".into();
        });
        assert_eq!(drop(&bad), Some(DropReason::InvalidNamespace));
        bad.flow.as_mut().unwrap().key.as_mut().unwrap().dest_name = "pub".into();
        bad.flow.as_mut().unwrap().key.as_mut().unwrap().proto = "t c p".into();
        assert_eq!(drop(&bad), Some(DropReason::InvalidNamespace));
    }

    /// Issue 17: the staged verdict is the first Allow/Deny of the pending trace.
    #[test]
    fn pending_verdicts() {
        use crate::proto::{PolicyHit, PolicyTrace};
        let mut r = fr(1, "a", "b", 1, NOW - 30, NOW - 15);
        let k = r.flow.as_mut().unwrap().key.as_mut().unwrap();
        assert_eq!(pending_verdict(k), None);
        let hit = |action| PolicyHit { action };
        k.policies = Some(PolicyTrace {
            pending_policies: vec![hit(3), hit(2), hit(1)],
        });
        assert_eq!(pending_verdict(k), Some("deny"));
        k.policies = Some(PolicyTrace {
            pending_policies: vec![hit(3), hit(1)],
        });
        assert_eq!(pending_verdict(k), Some("allow"));
        k.policies = Some(PolicyTrace {
            pending_policies: vec![hit(3)],
        });
        assert_eq!(pending_verdict(k), None);
        // The newest verdict wins; the deny time is the latest deny.
        let mut p = Pend::of(Some("deny"), 100);
        p.absorb(Pend::of(Some("allow"), 200));
        assert_eq!(
            p,
            Pend {
                action: Some((200, "allow")),
                deny_last: Some(100)
            }
        );
        p.absorb(Pend::of(None, 300));
        assert_eq!(p.action, Some((200, "allow")));
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
                &KeyRef::edge("x", "y", "allow"),
                Agg {
                    first: f,
                    last: l,
                    count: 1,
                },
            );
        }
        for (f, l) in obs.iter().rev() {
            b.merge(
                &KeyRef::edge("x", "y", "allow"),
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
            &KeyRef::edge("x", "y", "allow"),
            Agg {
                first: 1,
                last: 1,
                count: i64::MAX,
            },
        );
        p.merge(
            &KeyRef::edge("x", "y", "allow"),
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
                &KeyRef::edge("a", "b", "allow"),
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
                &KeyRef::edge("a", "b", "allow"),
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
                &KeyRef::edge("a", "c", "allow"),
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
            &KeyRef::edge("a", "b", "allow"),
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
        // Issue 13: ids belong to Goldmane (a restart hands out new ones for the same flow):
        // the fingerprint is content only.
        let b = fr(2, "a", "b", 1, 100, 115);
        assert!(d.insert(fingerprint(&a), 100));
        assert!(!d.insert(fingerprint(&a), 100));
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert!(!d.insert(fingerprint(&b), 100));
        // Another bucket, another side or another staged verdict is another observation.
        assert_ne!(fingerprint(&a), fingerprint(&fr(1, "a", "b", 1, 115, 130)));
        let mut dst = a.clone();
        dst.flow.as_mut().unwrap().key.as_mut().unwrap().reporter = 2;
        assert_ne!(fingerprint(&a), fingerprint(&dst));
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
            resume_point(Some(now - 100), Some(now - 50), now, 3570, 15),
            (now - 100, ResumeSource::Stream)
        );
        assert_eq!(
            resume_point(None, Some(now - 100), now, 3570, 15),
            (now - 115, ResumeSource::Db)
        );
        assert_eq!(
            resume_point(None, None, now, 3570, 15),
            (now - 3570, ResumeSource::Default)
        );
        assert_eq!(
            resume_point(Some(now - 99_999), None, now, 3570, 15),
            (now - 3570, ResumeSource::Stream)
        );
        // Issue 13: never a start inside the last 30 s (it would wrap around the ring).
        assert_eq!(
            resume_point(None, Some(now + 999), now, 3570, 15),
            (now - 30, ResumeSource::Db)
        );
        assert_eq!(
            resume_point(Some(now - 5), None, now, 3570, 15),
            (now - 30, ResumeSource::Stream)
        );
        assert_eq!(
            resume_point(None, None, now, 10, 15),
            (now - 30, ResumeSource::Default)
        );
        // Live only: upstream's 0.
        assert_eq!(
            resume_point(Some(now - 100), Some(now - 50), now, 0, 15),
            (0, ResumeSource::Default)
        );
        assert_eq!(reconcile_window(now, 0), (now - 3570, now - 30));
        assert_eq!(reconcile_window(now, 600), (now - 600, now - 30));
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
            reporter: "src".into(),
            egress: None,
            first: 1,
            last: 2,
            count: 1,
            pending_action: None,
            pending_deny_last: None,
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

        /// The fields classification must not consult for a workload-to-workload flow (names,
        /// port, protocol, id, connection count). Endpoint types and the reporter decide the
        /// table and the side since issue 13.
        #[derive(Debug, Clone)]
        struct Ignored {
            id: i64,
            source_name: String,
            dest_name: String,
            dest_port: i64,
            proto: String,
            conns: i64,
        }

        fn any_ignored() -> impl Strategy<Value = Ignored> {
            (
                any::<i64>(),
                ".{0,20}",
                ".{0,20}",
                any::<i64>(),
                ".{0,8}",
                any::<i64>(),
            )
                .prop_map(|(id, source_name, dest_name, dest_port, proto, conns)| {
                    Ignored {
                        id,
                        source_name,
                        dest_name,
                        dest_port,
                        proto,
                        conns,
                    }
                })
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
                        source_type: 1,
                        dest_name: ig.dest_name.clone(),
                        dest_namespace: dst.into(),
                        dest_type: 1,
                        dest_port: ig.dest_port,
                        proto: ig.proto.clone(),
                        reporter: 1,
                        action,
                        policies: None,
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
                } else if no_namespace(&src) {
                    Some(DropReason::EmptyNamespace)
                } else if !valid_namespace(&src) {
                    Some(DropReason::InvalidNamespace)
                } else if no_namespace(&dst) {
                    Some(DropReason::EmptyNamespace)
                } else if !valid_namespace(&dst) {
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
                        prop_assert_eq!(o.reporter, "src");
                        prop_assert_eq!(&o.external, &None);
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
                        prop_assert_ne!(p.merge(&KeyRef::edge(s, d, a), *g), MergeOutcome::Full);
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
                    p.merge(&KeyRef::edge(s, d, a), *g);
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
                    let out = p.merge(&KeyRef::edge(&s, &d, "allow"), Agg { first: 1, last: 2, count: 1 });
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
