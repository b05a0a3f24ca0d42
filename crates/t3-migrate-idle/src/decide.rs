//! Pure decisions over plain data: the idle-gate verdict (§5.5), timestamp parsing (§5.4),
//! name/version validation (§4 6a/6f), USER_MAP lookup (§2.3), systemctl/t3 output parsing
//! (§2.5) and the dispatch cookie test (§7.3). No I/O, no clock.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// What the gate read from `projection_thread_sessions` (§5.3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reading {
    pub rows: i64,
    pub active: i64,
    /// `max(updated_at)` as text; `None` when the table is empty or the maximum is NULL.
    pub latest: Option<String>,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Safe {
        idle: Option<i64>,
    },
    /// A turn is running, or not quiet long enough; `idle` as computed (None when no threads
    /// or unparseable).
    NotIdle {
        active: i64,
        idle: Option<i64>,
    },
    /// Any doubt: reading failed, unparseable timestamp, clock skew.
    Error(String),
}

impl Verdict {
    pub fn is_safe(&self) -> bool {
        matches!(self, Verdict::Safe { .. })
    }
}

/// §5.5, in order. `now` is the current UTC instant.
pub fn verdict(reading: Result<&Reading, &str>, now: OffsetDateTime, quiet: u64) -> Verdict {
    let r = match reading {
        Ok(r) => r,
        Err(e) => return Verdict::Error(e.to_string()),
    };
    if r.active != 0 {
        let idle = r.latest.as_deref().and_then(|l| idle_seconds(l, now));
        return Verdict::NotIdle {
            active: r.active,
            idle,
        };
    }
    if r.rows == 0 {
        return Verdict::Safe { idle: None };
    }
    let Some(latest) = r.latest.as_deref() else {
        return Verdict::Error("threads present but no updated_at".into());
    };
    let Some(idle) = idle_seconds(latest, now) else {
        return Verdict::Error(format!(
            "unparseable updated_at {}",
            outside(latest.as_bytes())
        ));
    };
    if idle < 0 {
        return Verdict::Error(format!(
            "updated_at is {}s in the future (clock skew)",
            -idle
        ));
    }
    if idle as u64 >= quiet {
        Verdict::Safe { idle: Some(idle) }
    } else {
        Verdict::NotIdle {
            active: 0,
            idle: Some(idle),
        }
    }
}

/// The original's text pair `<active>|<idle>` (§5.6) mapped onto the verdict: active must be
/// all digits, idle empty (= no threads) or a signed integer. Used for the §9.1 table.
pub fn verdict_from_pair(pair: &str, quiet: u64) -> bool {
    let Some((a, i)) = pair.split_once('|') else {
        return false;
    };
    if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(active) = a.parse::<i64>() else {
        return false;
    };
    if active != 0 {
        return false;
    }
    if i.is_empty() {
        return true;
    }
    match i.parse::<i64>() {
        Ok(idle) => idle >= 0 && idle as u64 >= quiet,
        Err(_) => false,
    }
}

/// Parse a t3 timestamp (§5.4): `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH:MM]`; no zone = UTC.
pub fn parse_ts(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if s.len() < 19 || !s.is_ascii() {
        return None;
    }
    let norm = s.replacen(' ', "T", 1);
    if let Ok(t) = OffsetDateTime::parse(&norm, &Rfc3339) {
        return Some(t);
    }
    // No zone at all: read as UTC (what SQLite's julianday does).
    let fmt = format_description!(
        version = 2,
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(&norm, &fmt)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Whole seconds from `latest` to `now`, truncated toward zero; None if unparseable.
pub fn idle_seconds(latest: &str, now: OffsetDateTime) -> Option<i64> {
    let t = parse_ts(latest)?;
    let d = now - t;
    Some(d.whole_seconds())
}

/// §4 6a: `^[a-z_][a-z0-9_-]{0,31}$`, and never `root`.
pub fn valid_user_name(name: &[u8]) -> Result<&str, &'static str> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && matches!(name[0], b'a'..=b'z' | b'_')
        && name[1..]
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    if !ok {
        return Err("not a valid user name");
    }
    let s = std::str::from_utf8(name).map_err(|_| "not a valid user name")?;
    if s == "root" {
        return Err("root is never migrated");
    }
    Ok(s)
}

/// §4 6f: `^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$`.
pub fn valid_version(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'_' | b'-'))
}

/// Issue 15 item 2: outside free text (DB text, marker contents, command output, HTTP
/// answers) in a log line. Quoting cannot defuse a plain word like `FROZEN`, so only the
/// length and a projection appear: ASCII digits and `:.-+TZ` kept (enough to read a
/// timestamp), everything else `?`, at most 40 characters. No alert phrase or catalogue
/// prefix can be spelled from that alphabet.
pub fn outside(b: &[u8]) -> String {
    const KEEP: &str = ":.-+TZ";
    let s = String::from_utf8_lossy(b);
    let proj: String = s
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_digit() || KEEP.contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    let more = if s.chars().count() > 40 { "…" } else { "" };
    format!("{} bytes [{proj}{more}]", b.len())
}

/// A marker name for a log line: a valid user name as it is, anything else projected.
pub fn shown_name(b: &[u8]) -> String {
    match valid_user_name(b) {
        Ok(n) => n.to_string(),
        Err(_) if b == b"root" => "root".to_string(),
        Err(_) => outside(b),
    }
}

/// What `systemctl show -p Type,ActiveState,SubState <sibling>` said (issue 15 item 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sibling {
    /// Nothing in progress (a daemon, an `active (exited)` RemainAfterExit unit, inactive).
    Quiet,
    /// A oneshot job is running: stand down.
    InProgress(String),
    /// Unknown or missing state/type, or the query failed: stand down (fail closed).
    Unknown(String),
}

/// `ActiveState` values: systemd `src/basic/unit-def.c` `unit_active_state_table`
/// (systemd/systemd v257).
const ACTIVE_STATES: [&str; 8] = [
    "active",
    "reloading",
    "inactive",
    "failed",
    "activating",
    "deactivating",
    "maintenance",
    "refreshing",
];
/// Service `Type=` values: systemd `src/core/service.c` `service_type_table` (v257).
const SERVICE_TYPES: [&str; 8] = [
    "simple",
    "exec",
    "forking",
    "oneshot",
    "dbus",
    "notify",
    "notify-reload",
    "idle",
];

/// Issue 15 item 3 (supersedes spec §4 step 3, which stood down for `active` too): stand
/// down only while a sibling oneshot is a job in progress (`activating`/`deactivating`);
/// never for a long-running daemon or an `active (exited)` unit. Anything unknown stands
/// down. The `seen` text names the state with outside values projected.
pub fn sibling(answer: Result<&str, &str>) -> Sibling {
    let out = match answer {
        Ok(o) => o,
        // `Output::reason` is already safe (fixed texts, projected stderr).
        Err(e) => return Sibling::Unknown(format!("systemctl show failed: {e}")),
    };
    let get = |k: &str| {
        out.lines()
            .filter_map(|l| l.trim_end().split_once('='))
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    };
    let (ty, active, sub) = (get("Type"), get("ActiveState"), get("SubState"));
    let word = |v: &Option<String>, known: &dyn Fn(&str) -> bool| match v {
        None => "(missing)".to_string(),
        Some(x) if known(x) => x.clone(),
        Some(x) => outside(x.as_bytes()),
    };
    let sub_ok = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    let seen = format!(
        "Type={} ActiveState={} SubState={}",
        word(&ty, &|x| x.is_empty() || SERVICE_TYPES.contains(&x)),
        word(&active, &|x| ACTIVE_STATES.contains(&x)),
        word(&sub, &sub_ok)
    );
    let Some(active) = active.filter(|a| ACTIVE_STATES.contains(&a.as_str())) else {
        return Sibling::Unknown(seen);
    };
    if sub.as_deref().is_some_and(|s| !sub_ok(s)) {
        return Sibling::Unknown(seen);
    }
    if matches!(active.as_str(), "inactive" | "failed") {
        return Sibling::Quiet;
    }
    match ty.as_deref() {
        Some("oneshot") if matches!(active.as_str(), "activating" | "deactivating") => {
            Sibling::InProgress(seen)
        }
        Some(t) if SERVICE_TYPES.contains(&t) => Sibling::Quiet,
        _ => Sibling::Unknown(seen),
    }
}

/// All whitespace removed (marker content, last-good).
pub fn strip_ws(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Printable form of a directory entry name: control characters and non-UTF-8 bytes escaped.
pub fn escape_name(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out = String::new();
    if s.as_bytes() != b {
        for &c in b {
            if c.is_ascii_graphic() || c == b' ' {
                out.push(c as char);
            } else {
                out.push_str(&format!("\\x{c:02x}"));
            }
        }
        return out;
    }
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// §2.3 reverse lookup: the authentik name of OS user `u`, or None.
pub fn authentik_name(map: &str, u: &str) -> Option<String> {
    for line in map.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.matches('=').count() != 1 {
            continue;
        }
        let (l, r) = line.split_once('=')?;
        if strip_ws(r) == u {
            let l = strip_ws(l);
            return if l.is_empty() { None } else { Some(l) };
        }
    }
    None
}

/// §2.5 `t3 --version`: last whitespace-separated token, one leading `v` removed.
pub fn parse_t3_version(out: &str) -> Option<String> {
    let tok = out.split_whitespace().last()?;
    let v = tok.strip_prefix('v').unwrap_or(tok);
    if v.is_empty() {
        None
    } else {
        Some(v.to_string())
    }
}

/// §2.5 start time from `--timestamp=unix` output (`@<epoch>`).
pub fn parse_start_unix(out: &str) -> Option<i64> {
    let v = out.trim().strip_prefix('@')?;
    let n: i64 = v.parse().ok()?;
    (n > 0).then_some(n)
}

/// §2.5 fallback: `Www YYYY-MM-DD HH:MM:SS UTC`.
pub fn parse_start_text(out: &str) -> Option<i64> {
    let parts: Vec<&str> = out.split_whitespace().collect();
    let [_wd, date, clock, zone] = parts.as_slice() else {
        return None;
    };
    if *zone != "UTC" {
        return None;
    }
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let t = PrimitiveDateTime::parse(&format!("{date} {clock}"), &fmt).ok()?;
    Some(t.assume_utc().unix_timestamp())
}

/// §6.3/§4 6d: seconds after the deferral the unit was restarted, when that makes the marker
/// obsolete (start strictly after mtime).
pub fn obsolete_after(start: Option<i64>, mtime: i64) -> Option<i64> {
    let s = start?;
    (s > mtime).then_some(s - mtime)
}

/// §7.3: a `Set-Cookie` value that sets `t3_session` (after optional whitespace, ASCII
/// case-insensitive). `t3_session_<port>_<hash>` is not it.
pub fn is_t3_session_cookie(value: &str) -> bool {
    let v = value.trim_start().as_bytes();
    let want = b"t3_session=";
    v.len() >= want.len() && v[..want.len()].eq_ignore_ascii_case(want)
}

/// What a pass would do with one marker (status, JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Clear,
    SkipNotIdle,
    SkipError,
    Migrate,
    Ignore,
    Failed,
    Migrated,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Clear => "clear",
            Action::SkipNotIdle => "skip-not-idle",
            Action::SkipError => "skip-error",
            Action::Migrate => "migrate",
            Action::Ignore => "ignore",
            Action::Failed => "failed",
            Action::Migrated => "migrated",
        }
    }
}

#[cfg(test)]
mod sibling_tests {
    use super::*;

    #[test]
    fn sibling_states() {
        let a = |t: &str, s: &str, u: &str| format!("Type={t}\nActiveState={s}\nSubState={u}\n");
        assert_eq!(
            sibling(Ok(&a("simple", "active", "running"))),
            Sibling::Quiet
        );
        assert_eq!(
            sibling(Ok(&a("oneshot", "active", "exited"))),
            Sibling::Quiet
        );
        assert_eq!(
            sibling(Ok(&a("oneshot", "inactive", "dead"))),
            Sibling::Quiet
        );
        assert_eq!(sibling(Ok(&a("", "inactive", "dead"))), Sibling::Quiet);
        assert_eq!(
            sibling(Ok(&a("oneshot", "failed", "failed"))),
            Sibling::Quiet
        );
        assert_eq!(
            sibling(Ok(&a("oneshot", "activating", "start"))),
            Sibling::InProgress("Type=oneshot ActiveState=activating SubState=start".into())
        );
        assert!(matches!(
            sibling(Ok(&a("oneshot", "deactivating", "stop"))),
            Sibling::InProgress(_)
        ));
        assert!(matches!(
            sibling(Ok(&a("weird", "activating", "start"))),
            Sibling::Unknown(_)
        ));
        assert!(matches!(
            sibling(Ok(&a("oneshot", "zombie", "x"))),
            Sibling::Unknown(_)
        ));
        assert!(matches!(sibling(Ok("")), Sibling::Unknown(_)));
        assert!(matches!(sibling(Err("timed out")), Sibling::Unknown(_)));
        // Property order does not matter (systemctl prints its own order).
        assert_eq!(
            sibling(Ok("SubState=start\nActiveState=activating\nType=oneshot\n")),
            Sibling::InProgress("Type=oneshot ActiveState=activating SubState=start".into())
        );
    }

    #[test]
    fn outside_projection() {
        assert_eq!(
            outside(b"2026-06-21T01:02:03.000Z"),
            "24 bytes [2026-06-21T01:02:03.000Z]"
        );
        assert_eq!(outside("zzz FROZEN".as_bytes()), "10 bytes [???????Z??]");
        assert_eq!(shown_name(b"wizard"), "wizard");
        assert_eq!(shown_name(b"root"), "root");
        assert_eq!(shown_name(b"FROZEN"), "6 bytes [???Z??]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-21 12:00:00 UTC);

    fn r(rows: i64, active: i64, latest: Option<&str>) -> Reading {
        Reading {
            rows,
            active,
            latest: latest.map(str::to_string),
        }
    }

    // §9.1 #1-#6 over the original's text pair.
    #[test]
    fn original_pair_table() {
        assert!(verdict_from_pair("0|1000", 900), "#1");
        assert!(!verdict_from_pair("1|1000", 900), "#2");
        assert!(!verdict_from_pair("0|100", 900), "#3");
        assert!(verdict_from_pair("0|", 900), "#4");
        assert!(!verdict_from_pair("x|1000", 900), "#5");
        assert!(!verdict_from_pair("0|-30", 900), "#6");
        assert!(!verdict_from_pair("|1000", 900));
        assert!(!verdict_from_pair("garbage", 900));
    }

    // The same six cases through the real verdict over readings.
    #[test]
    fn verdict_table() {
        let ago = |s: i64| (NOW - time::Duration::seconds(s)).format(&Rfc3339).unwrap();
        assert!(verdict(Ok(&r(2, 0, Some(&ago(1000)))), NOW, 900).is_safe());
        assert!(!verdict(Ok(&r(2, 1, Some(&ago(1000)))), NOW, 900).is_safe());
        assert!(!verdict(Ok(&r(2, 0, Some(&ago(100)))), NOW, 900).is_safe());
        assert_eq!(
            verdict(Ok(&r(0, 0, None)), NOW, 900),
            Verdict::Safe { idle: None }
        );
        assert!(matches!(verdict(Err("boom"), NOW, 900), Verdict::Error(_)));
        assert!(matches!(
            verdict(Ok(&r(1, 0, Some(&ago(-30)))), NOW, 900),
            Verdict::Error(_)
        ));
    }

    // §9.2.1 boundaries.
    #[test]
    fn boundaries() {
        let ago = |s: i64| (NOW - time::Duration::seconds(s)).format(&Rfc3339).unwrap();
        assert!(verdict(Ok(&r(1, 0, Some(&ago(900)))), NOW, 900).is_safe());
        assert!(!verdict(Ok(&r(1, 0, Some(&ago(899)))), NOW, 900).is_safe());
        assert!(verdict(Ok(&r(1, 0, Some(&ago(0)))), NOW, 0).is_safe());
    }

    // §9.2.2 garbage timestamp is not safe (deviation from the original).
    #[test]
    fn garbage_timestamp_not_safe() {
        assert!(matches!(
            verdict(Ok(&r(1, 0, Some("garbage"))), NOW, 900),
            Verdict::Error(_)
        ));
        assert!(matches!(
            verdict(Ok(&r(1, 0, None)), NOW, 900),
            Verdict::Error(_)
        ));
    }

    // §9.2.3 formats.
    #[test]
    fn timestamp_forms_agree() {
        let z = idle_seconds("2026-06-21T10:00:00.000Z", NOW).unwrap();
        assert_eq!(z, 7200);
        assert_eq!(idle_seconds("2026-06-21T10:00:00Z", NOW), Some(z));
        assert_eq!(idle_seconds("2026-06-21T12:00:00+02:00", NOW), Some(z));
        assert_eq!(idle_seconds("2026-06-21T12:00:00.000+02:00", NOW), Some(z));
        assert_eq!(idle_seconds("2026-06-21 10:00:00", NOW), Some(z));
        assert_eq!(idle_seconds("2026-06-21T10:00:00", NOW), Some(z));
        // Truncation toward zero.
        assert_eq!(idle_seconds("2026-06-21T11:59:59.400Z", NOW), Some(0));
        assert_eq!(idle_seconds("2026-06-21T12:00:00.600Z", NOW), Some(0));
        assert_eq!(idle_seconds("2026-06-21T12:00:01.600Z", NOW), Some(-1));
        assert_eq!(idle_seconds("garbage", NOW), None);
        assert_eq!(idle_seconds("", NOW), None);
    }

    #[test]
    fn user_names() {
        assert_eq!(valid_user_name(b"wizard"), Ok("wizard"));
        assert!(valid_user_name(b"_svc-1").is_ok());
        for bad in [
            &b"../x"[..],
            b"a/b",
            b".hidden",
            b"Foo Bar",
            b"root",
            b"\xff\xfe",
            b"",
            b"1abc",
            b"abcdefghijabcdefghijabcdefghijabc",
        ] {
            assert!(valid_user_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions() {
        assert!(valid_version("0.0.34-nightly.20260621.613"));
        assert!(valid_version("1.2.3+build_4"));
        assert!(!valid_version("../../x"));
        assert!(!valid_version(""));
        assert!(!valid_version("-1"));
        assert!(!valid_version(&"a".repeat(129)));
        assert_eq!(strip_ws(" 0.1 \n\t"), "0.1");
    }

    // §9.2.9
    #[test]
    fn user_map_lookup() {
        let m = "# comment\n\n  # indented comment=wizard\nx=y=wizard\n alice = wizard \nbob=wizard\n=carol\n";
        assert_eq!(authentik_name(m, "wizard").as_deref(), Some("alice"));
        assert_eq!(authentik_name(m, "carol"), None);
        assert_eq!(authentik_name(m, "nobody"), None);
        assert_eq!(authentik_name("", "wizard"), None);
    }

    #[test]
    fn t3_version_output() {
        assert_eq!(parse_t3_version("t3 v0.0.34\n").as_deref(), Some("0.0.34"));
        assert_eq!(
            parse_t3_version("0.0.35-nightly.1").as_deref(),
            Some("0.0.35-nightly.1")
        );
        assert_eq!(parse_t3_version("vv1").as_deref(), Some("v1"));
        assert_eq!(parse_t3_version("  \n"), None);
        assert_eq!(parse_t3_version("v"), None);
    }

    #[test]
    fn start_times() {
        assert_eq!(parse_start_unix("@1750500000\n"), Some(1_750_500_000));
        assert_eq!(parse_start_unix("\n"), None);
        assert_eq!(parse_start_unix("@0"), None);
        assert_eq!(parse_start_unix("n/a"), None);
        assert_eq!(
            parse_start_text("Sat 2026-06-21 10:00:00 UTC"),
            Some(datetime!(2026-06-21 10:00:00 UTC).unix_timestamp())
        );
        assert_eq!(parse_start_text("Sat 2026-06-21 10:00:00 CEST"), None);
        assert_eq!(parse_start_text(""), None);
        assert_eq!(obsolete_after(Some(10), 5), Some(5));
        assert_eq!(obsolete_after(Some(5), 5), None);
        assert_eq!(obsolete_after(None, 5), None);
        assert_eq!(obsolete_after(Some(4), 5), None);
    }

    #[test]
    fn cookie_names() {
        assert!(is_t3_session_cookie("t3_session=abc; Path=/; HttpOnly"));
        assert!(is_t3_session_cookie("  T3_SESSION=x"));
        assert!(!is_t3_session_cookie("t3_session_3773_ab=x"));
        assert!(!is_t3_session_cookie("other=1"));
        assert!(!is_t3_session_cookie("t3_session"));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_name(b"a\nb"), "a\\nb");
        assert_eq!(escape_name(b"\xffx"), "\\xffx");
        assert_eq!(escape_name(b"Foo Bar"), "Foo Bar");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-21 12:00:00 UTC);

    /// §4 6a without the `root` exclusion.
    fn user() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_-]{0,31}"
    }

    fn version() -> impl Strategy<Value = String> {
        "[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}"
    }

    /// An instant between 1970 and 2100, with milliseconds.
    fn instant() -> impl Strategy<Value = OffsetDateTime> {
        (0i64..4_102_444_800, 0u16..1000).prop_map(|(s, ms)| {
            OffsetDateTime::from_unix_timestamp(s).unwrap()
                + time::Duration::milliseconds(ms.into())
        })
    }

    fn insert_at(s: &str, at: prop::sample::Index, bad: &[u8]) -> Vec<u8> {
        let mut b = s.as_bytes().to_vec();
        let i = at.index(b.len() + 1);
        b.splice(i..i, bad.iter().copied());
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Issue 15 item 2: whatever outside text comes in, its projection spells no alert
        /// phrase and no catalogue prefix, and stays one short line.
        #[test]
        fn outside_is_inert(b in proptest::collection::vec(any::<u8>(), 0..200), s in "\\PC{0,80}") {
            for out in [outside(&b), outside(s.as_bytes()), shown_name(&b)] {
                for w in crate::report::ALERT_WORDS.iter().chain(["WARN:", "ERROR:", "migrated", "restarted", "restored", "skipping", "clearing"].iter()) {
                    prop_assert!(!out.contains(w) || valid_user_name(&b).is_ok(), "{}", out);
                }
                prop_assert!(!out.contains('\n') && out.chars().count() < 64);
            }
        }
        /// Any bytes: no panic; accepted exactly when ≤ 32 bytes of `[a-z_][a-z0-9_-]*`, never
        /// `root`, and the name comes back unchanged.
        #[test]
        fn user_name_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let pattern = !b.is_empty() && b.len() <= 32 && (b[0].is_ascii_lowercase() || b[0] == b'_')
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
            match valid_user_name(&b) {
                Ok(s) => {
                    prop_assert!(pattern && s != "root");
                    prop_assert_eq!(s.as_bytes(), &b[..]);
                }
                Err(_) => prop_assert!(!pattern || b == b"root"),
            }
        }

        /// Every name of the pattern is accepted as itself; a path separator, dot, NUL,
        /// whitespace, upper case or non-ASCII byte anywhere, a leading digit or dash, or a
        /// 33rd byte makes it invalid.
        #[test]
        fn user_name_accepts_exactly_the_pattern(
            u in user(), at in any::<prop::sample::Index>(),
            bad in prop_oneof![Just(&b"/"[..]), Just(&b"."[..]), Just(&b".."[..]), Just(&b"\0"[..]), Just(&b" "[..]),
                Just(&b"\n"[..]), Just(&b"A"[..]), Just(&b"@"[..]), Just("é".as_bytes()), Just(&b"\xff"[..])],
            lead in "[0-9-]", pad in "[a-z0-9_-]{32}",
        ) {
            prop_assume!(u != "root");
            prop_assert_eq!(valid_user_name(u.as_bytes()), Ok(u.as_str()));
            prop_assert!(valid_user_name(&insert_at(&u, at, bad)).is_err());
            let led = format!("{lead}{u}");
            prop_assert!(valid_user_name(led.as_bytes()).is_err());
            let long = format!("{u}{pad}");
            prop_assert!(valid_user_name(&long.as_bytes()[..33]).is_err());
            prop_assert_eq!(valid_user_name(b"root"), Err("root is never migrated"));
            prop_assert!(valid_user_name(b"").is_err());
        }

        /// Marker content: a version spread over whitespace strips back to itself and is valid;
        /// any junk character, a leading separator or a 129th byte is refused; no panic.
        #[test]
        fn version_round_trips_and_rejects_junk(
            v in version(), ws in proptest::collection::vec("[ \t\r\n\u{a0}\u{2003}]{0,2}", 1..130),
            at in any::<prop::sample::Index>(), bad in "[^0-9A-Za-z.+_\\-]", lead in "[.+_-]", any_s in "\\PC{0,140}",
        ) {
            let spread: String = v.chars().zip(ws.iter().cycle()).map(|(c, w)| format!("{w}{c}")).collect();
            let stripped = strip_ws(&format!("{spread}\n"));
            prop_assert_eq!(&stripped, &v);
            prop_assert!(valid_version(&stripped));
            let mut cs: Vec<char> = v.chars().collect();
            cs.insert(at.index(cs.len() + 1), bad.chars().next().unwrap());
            prop_assert!(!valid_version(&cs.into_iter().collect::<String>()));
            let led = format!("{lead}{v}");
            prop_assert!(!valid_version(&led));
            let long = format!("{v}{}", "0".repeat(129));
            prop_assert!(!valid_version(&long));
            // Any accepted string is ASCII, has no whitespace and is ≤ 128 bytes.
            if valid_version(&any_s) {
                prop_assert!(any_s.is_ascii() && any_s.len() <= 128 && strip_ws(&any_s) == any_s);
            }
        }

        /// Timestamps (§5.4): every rendering of an instant — `T` or space, with or without
        /// milliseconds, `Z`, an offset, or no zone (= UTC) — parses back to it.
        #[test]
        fn timestamp_round_trips(t in instant(), off_min in -(14i32 * 60)..=(14 * 60), pad in "[ \t\n]{0,2}") {
            let off = time::UtcOffset::from_whole_seconds(off_min * 60).unwrap();
            let local = t.to_offset(off);
            let d = local.date();
            let (h, m, s, ms) = local.time().as_hms_milli();
            let base = format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
            let clock = format!("{h:02}:{m:02}:{s:02}");
            let sign = if off_min < 0 { '-' } else { '+' };
            let zone = format!("{sign}{:02}:{:02}", off_min.abs() / 60, off_min.abs() % 60);
            let whole = t - time::Duration::milliseconds(ms.into());
            for sep in ['T', ' '] {
                prop_assert_eq!(parse_ts(&format!("{pad}{base}{sep}{clock}.{ms:03}{zone}{pad}")), Some(t));
                prop_assert_eq!(parse_ts(&format!("{base}{sep}{clock}{zone}")), Some(whole));
                if off_min == 0 {
                    prop_assert_eq!(parse_ts(&format!("{base}{sep}{clock}.{ms:03}Z")), Some(t));
                    prop_assert_eq!(parse_ts(&format!("{base}{sep}{clock}.{ms:03}")), Some(t));
                    prop_assert_eq!(parse_ts(&format!("{base}{sep}{clock}")), Some(whole));
                }
            }
        }

        /// Any text as `max(updated_at)`: no panic, and garbage never makes the gate safe.
        #[test]
        fn timestamp_garbage_never_safe(s in "\\PC{0,40}|[0-9T:. +Z-]{0,40}", rows in 1i64.., quiet in any::<u64>()) {
            let v = verdict(Ok(&Reading { rows, active: 0, latest: Some(s.clone()) }), NOW, quiet);
            match parse_ts(&s) {
                None => prop_assert!(matches!(v, Verdict::Error(_)), "{:?}", v),
                Some(t) => prop_assert_eq!(v.is_safe(), (NOW - t).whole_seconds() >= 0 && (NOW - t).whole_seconds() as u64 >= quiet),
            }
        }

        /// The gate (§5.5) over any reading: safe only with no running turn and either no
        /// threads or idle ≥ quiet; idle is exact whole seconds; raising quiet never turns an
        /// unsafe answer safe.
        #[test]
        fn gate_invariants(
            rows in -2i64..5, active in prop_oneof![Just(0i64), any::<i64>()], t in proptest::option::of(instant()),
            quiet in 0u64..10_000_000_000, more in 0u64..1_000_000,
        ) {
            let latest = t.map(|t| t.format(&Rfc3339).unwrap());
            let r = Reading { rows, active, latest };
            let v = verdict(Ok(&r), NOW, quiet);
            let idle = t.map(|t| (NOW - t).whole_seconds());
            match &v {
                Verdict::Safe { idle: i } => {
                    prop_assert_eq!(active, 0);
                    if rows == 0 { prop_assert_eq!(*i, None) } else {
                        prop_assert_eq!(*i, idle);
                        prop_assert!(i.unwrap() >= 0 && i.unwrap() as u64 >= quiet);
                    }
                }
                Verdict::NotIdle { active: a, idle: i } => {
                    prop_assert_eq!(*a, active);
                    prop_assert_eq!(*i, idle);
                }
                Verdict::Error(_) => prop_assert!(active == 0 && rows != 0 && idle.is_none_or(|i| i < 0)),
            }
            if !v.is_safe() {
                prop_assert!(!verdict(Ok(&r), NOW, quiet + more).is_safe());
            }
        }

        /// The original's `<active>|<idle>` text (§5.6): no panic on any text; for rendered pairs
        /// safe exactly when active is 0 and idle is empty or ≥ quiet (negative never).
        #[test]
        fn pair_text(any_s in "\\PC{0,20}|[0-9|+-]{0,12}", a in 0u32..3, idle in proptest::option::of(any::<i64>()), quiet in any::<u64>()) {
            let _ = verdict_from_pair(&any_s, quiet);
            let pair = format!("{a}|{}", idle.map(|i| i.to_string()).unwrap_or_default());
            let want = a == 0 && idle.is_none_or(|i| i >= 0 && i as u64 >= quiet);
            prop_assert_eq!(verdict_from_pair(&pair, quiet), want);
        }

        /// systemctl / t3 outputs (§2.5): no panic; `@<n>` and `Www date time UTC` round-trip;
        /// `t3 --version` gives the last token without one leading `v`.
        #[test]
        fn command_outputs(any_s in "\\PC{0,40}", n in 1i64.., t in instant(), pre in "[a-z0-9 ]{0,12}", v in version()) {
            let _ = (parse_start_unix(&any_s), parse_start_text(&any_s), parse_t3_version(&any_s));
            prop_assert_eq!(parse_start_unix(&format!("@{n}\n")), Some(n));
            prop_assert_eq!(parse_start_unix(&format!("@-{n}")), None);
            prop_assert_eq!(parse_start_unix(&n.to_string()), None);
            let fmt = format_description!("[weekday repr:short] [year]-[month]-[day] [hour]:[minute]:[second] UTC");
            let whole = OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap();
            prop_assert_eq!(parse_start_text(&format!("{}\n", whole.format(&fmt).unwrap())), Some(whole.unix_timestamp()));
            prop_assert_eq!(parse_t3_version(&format!("{pre} v{v}\n")), Some(v.clone()));
            // Without the `v` prefix, a version that itself starts with `v` loses that one.
            let bare = v.strip_prefix('v').unwrap_or(&v);
            prop_assert_eq!(parse_t3_version(&format!("{pre} {v}")), Some(bare.to_string()).filter(|b| !b.is_empty()));
            if let Some(out) = parse_t3_version(&any_s) {
                prop_assert!(!out.is_empty() && !out.chars().any(char::is_whitespace));
            }
        }

        /// `escape_name` (shown in WARN lines) never lets a control character or a non-UTF-8
        /// byte through, and leaves printable UTF-8 untouched.
        #[test]
        fn escape_name_is_inert(b in proptest::collection::vec(any::<u8>(), 0..40), s in "\\PC{0,20}") {
            let out = escape_name(&b);
            prop_assert!(!out.chars().any(char::is_control));
            if std::str::from_utf8(&b).is_err() {
                prop_assert!(out.is_ascii());
            }
            prop_assert_eq!(escape_name(s.as_bytes()), s);
        }

        /// USER_MAP (§2.3): no panic on any text; a generated map finds the first non-comment
        /// line whose right side is `u`, whitespace ignored.
        #[test]
        fn user_map_lookup_round_trips(
            any_s in "\\PC{0,60}", u in user(), names in proptest::collection::vec("[a-z][a-z0-9.]{0,8}", 1..4),
            others in proptest::collection::vec(user(), 0..4),
        ) {
            let _ = authentik_name(&any_s, &u);
            prop_assume!(!others.contains(&u));
            let mut map = String::from("# header\n");
            for (o, n) in others.iter().zip(&names) { map.push_str(&format!("{n}={o}\n")); }
            map.push_str(&format!("# {}={u}\n x=y={u}\n", names[0]));
            for n in &names { map.push_str(&format!("  {n} = {u} \n")); }
            prop_assert_eq!(authentik_name(&map, &u), Some(names[0].clone()));
        }

        /// `Set-Cookie` test (§7.3): no panic; true exactly for `t3_session=` in any case
        /// after leading whitespace, never for `t3_session_<port>_<hash>`.
        #[test]
        fn session_cookie(any_s in "\\PC{0,30}", pad in "[ \t]{0,3}", val in "[!-~]{0,20}", suffix in "_[0-9]{1,5}_[a-f0-9]{1,8}", upper in proptest::collection::vec(any::<bool>(), 11)) {
            let _ = is_t3_session_cookie(&any_s);
            let name: String = "t3_session=".chars().zip(&upper).map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c }).collect();
            let good = format!("{pad}{name}{val}");
            prop_assert!(is_t3_session_cookie(&good));
            let other = format!("{pad}t3_session{suffix}={val}");
            prop_assert!(!is_t3_session_cookie(&other));
        }
    }
}
