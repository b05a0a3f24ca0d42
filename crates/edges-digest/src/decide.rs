//! Pure decisions (spec §3.3, §4, §5.2, §6.1, §7): the window, ordering, the message text, the
//! failure notice and the exit code. No I/O and no clock: `now` is always handed in (the DB's).

use homelab_core::slack::{self, HintContext, Outcome};
use time::{Duration, OffsetDateTime};

/// Secret holding the webhook in the cluster, named in hints.
pub const SECRET_NAME: &str = "goldmane-edges-slack";
/// The binary, named in hints.
pub const BINARY: &str = "edges-digest";
/// `esc` cap for DB strings (§4.2).
pub const NAME_CAP: usize = 63;
/// Byte budget for header + edge lines (§4.3); 120 more are reserved for the tail.
pub const MAX_TEXT_BYTES: usize = 3380;

/// Settings `compute_window` needs (durations as configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    pub window: Duration,
    pub grace: Duration,
    pub max_catchup: Duration,
    pub since: Option<OffsetDateTime>,
}

/// The digest window (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
    pub catchup: bool,
    /// Catch-up clipped by `MAX_CATCHUP`: `(last_end, since)` bounds the unannounced gap.
    pub clipped: Option<(OffsetDateTime, OffsetDateTime)>,
    /// Header wording: `since <ts>` instead of `in last <W>`.
    pub since_label: bool,
}

/// §3.3: the window from the DB's `now` and the last recorded `window_end`.
pub fn compute_window(
    now: OffsetDateTime,
    last_end: Option<OffsetDateTime>,
    spec: &WindowSpec,
) -> Window {
    let gap = last_end.map(|l| now - l);
    let catchup = gap.is_some_and(|g| g > spec.window + spec.grace);
    let clipped_gap = gap.is_some_and(|g| catchup && g + spec.grace > spec.max_catchup);
    let since = match (spec.since, gap) {
        (Some(s), _) => s,
        (None, None) => now - spec.window,
        (None, Some(g)) => now - spec.max_catchup.min(spec.window.max(g) + spec.grace),
    };
    let clipped = match last_end {
        Some(l) if clipped_gap => Some((l, since)),
        _ => None,
    };
    Window {
        since,
        until: now,
        catchup,
        clipped,
        since_label: spec.since.is_some() || catchup,
    }
}

/// §3.4b order: deny first, unknown actions last.
pub fn action_rank(action: &str) -> u8 {
    match action {
        "deny" => 0,
        "allow" => 1,
        "pass" => 2,
        "unspecified" => 3,
        _ => 4,
    }
}

/// One candidate edge as read from the DB (legacy tables may hold NULL `flow_count`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRow {
    pub src_ns: String,
    pub dst_ns: String,
    pub action: String,
    pub first_seen: OffsetDateTime,
    pub flow_count: Option<i64>,
}

/// Sort `(action, count)` pairs by rank, then by name (unknown actions), dropping zeros.
pub fn order_counts(mut counts: Vec<(String, i64)>) -> Vec<(String, i64)> {
    counts.retain(|(_, n)| *n > 0);
    counts.sort_by(|a, b| {
        action_rank(&a.0)
            .cmp(&action_rank(&b.0))
            .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
    });
    counts
}

/// The header label (§4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// `in last <WINDOW>`; the tail arg is the window as configured.
    Last(String),
    /// `since <YYYY-MM-DDTHH:MM:SSZ>`; the tail arg is the date.
    Since(OffsetDateTime),
}

impl Label {
    pub fn text(&self) -> String {
        match self {
            Label::Last(w) => format!("in last {w}"),
            Label::Since(t) => format!("since {}", zulu(*t)),
        }
    }
    fn tail_arg(&self) -> String {
        match self {
            Label::Last(w) => w.clone(),
            Label::Since(t) => {
                let t = t.to_offset(time::UtcOffset::UTC);
                format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn zulu(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn minute(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The rendered message and how many lines it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub shown: usize,
    pub more: i64,
}

/// One edge line (§4.3).
pub fn edge_line(r: &EdgeRow) -> String {
    let action = if r.action == "deny" {
        "*deny*".to_string()
    } else {
        slack::esc(&r.action, NAME_CAP)
    };
    let flows = match r.flow_count {
        None => "? flows".to_string(),
        Some(n) => plural(n, "flow", "flows"),
    };
    format!(
        "• `{}` → `{}`  {} · {} · first {}Z",
        slack::esc(&r.src_ns, NAME_CAP),
        slack::esc(&r.dst_ns, NAME_CAP),
        action,
        flows,
        minute(r.first_seen)
    )
}

/// Byte budget of the `(deny 1, allow 7)` part. The four known actions always fit; a legacy
/// table full of distinct unknown actions is summed up as `other actions <n>` past this, so the
/// message stays within its cap for any content.
pub const COUNTS_MAX_BYTES: usize = 600;

/// `<action> <n>` in the given (rank) order, `, `-joined, bounded by [`COUNTS_MAX_BYTES`].
pub fn counts_text(counts: &[(String, i64)]) -> String {
    counts_text_capped(counts, COUNTS_MAX_BYTES)
}

/// [`counts_text`] within `cap` bytes (≥ 60).
pub fn counts_text_capped(counts: &[(String, i64)], cap: usize) -> String {
    let mut out = String::new();
    let mut rest = 0i64;
    for (a, n) in counts {
        let part = format!("{} {n}", slack::esc(a, NAME_CAP));
        // Keep room for the summary (`, other actions <n>` ≤ 40 bytes).
        if rest == 0 && out.len() + 2 + part.len() + 40 <= cap {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(&part);
        } else {
            rest += n;
        }
    }
    if rest > 0 {
        out.push_str(&format!(", other actions {rest}"));
    }
    out
}

/// §4.3: header, edge lines while they fit, tail iff some are left out. `counts` in rank order.
pub fn render_text(
    counts: &[(String, i64)],
    rows: &[EdgeRow],
    total: i64,
    label: &Label,
    max_edges: usize,
    max_bytes: usize,
) -> Rendered {
    let noun = if total == 1 { "edge" } else { "edges" };
    let mut text = if total == 0 {
        format!("*0 new edges {}*", label.text())
    } else {
        format!(
            "*{total} new {noun} {}*  ({})",
            label.text(),
            counts_text(counts)
        )
    };
    let mut shown = 0;
    for r in rows {
        if shown >= max_edges {
            break;
        }
        let line = edge_line(r);
        if text.len() + 1 + line.len() > max_bytes {
            break;
        }
        text.push('\n');
        text.push_str(&line);
        shown += 1;
    }
    let more = total - shown as i64;
    if more > 0 {
        text.push_str(&format!(
            "\n+{more} more — `homelab edges --new-since {}`",
            label.tail_arg()
        ));
    }
    Rendered {
        text,
        shown,
        more: more.max(0),
    }
}

/// One row of the egress or staged section (see `db::cte`). For an in-cluster destination
/// `dst_ns` is set and `dst_type` empty; for external egress the reverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub src_ns: String,
    pub dst_ns: String,
    pub dst_type: String,
    pub dst_name: String,
    pub proto: String,
    pub dst_port: i32,
    pub action: String,
    /// Egress: first seen; staged: the last time staged policy would have denied it.
    pub at: OffsetDateTime,
    pub flow_count: Option<i64>,
}

impl Item {
    pub fn to_edge_row(&self) -> EdgeRow {
        EdgeRow {
            src_ns: self.src_ns.clone(),
            dst_ns: self.dst_ns.clone(),
            action: self.action.clone(),
            first_seen: self.at,
            flow_count: self.flow_count,
        }
    }

    /// `` `dbaas` `` or ``network `pub` tcp/443`` (escaped).
    pub fn dst_text(&self) -> String {
        if self.dst_type.is_empty() {
            return format!("`{}`", slack::esc(&self.dst_ns, NAME_CAP));
        }
        let port = if self.dst_port > 0 {
            format!("/{}", self.dst_port)
        } else {
            String::new()
        };
        format!(
            "{} `{}` {}{port}",
            slack::esc(&self.dst_type, NAME_CAP),
            slack::esc(&self.dst_name, NAME_CAP),
            slack::esc(&self.proto, 16)
        )
    }
}

fn action_text(a: &str) -> String {
    if a == "deny" {
        "*deny*".to_string()
    } else {
        slack::esc(a, NAME_CAP)
    }
}

/// A line of the "new external egress" section.
pub fn egress_line(r: &Item) -> String {
    let flows = match r.flow_count {
        None => "? flows".to_string(),
        Some(n) => plural(n, "flow", "flows"),
    };
    format!(
        "• `{}` → {}  {} · {} · first {}Z",
        slack::esc(&r.src_ns, NAME_CAP),
        r.dst_text(),
        action_text(&r.action),
        flows,
        minute(r.at)
    )
}

/// A line of the "would be denied by staged policy" section; the action is today's verdict.
pub fn staged_line(r: &Item) -> String {
    format!(
        "• `{}` → {}  {} today · staged deny last {}Z",
        slack::esc(&r.src_ns, NAME_CAP),
        r.dst_text(),
        action_text(&r.action),
        minute(r.at)
    )
}

/// Bytes kept free for each later section (header ≤ 160 with its 100-byte counts, tail ≤ 120):
/// sections after the first can never push the text past the cap.
pub const SECTION_RESERVE: usize = 300;
const SECTION_COUNTS_MAX: usize = 100;

/// A further digest section.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// `(action, n)` in rank order.
    pub counts: Vec<(String, i64)>,
    pub rows: Vec<Item>,
    pub total: i64,
}

/// Shown/more of each further section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SectionShown {
    pub shown: usize,
    pub more: i64,
}

/// The whole digest: §4.3's edge part, then "new external egress" and "would be denied by
/// staged policy" when they have rows. Edge lines keep §4.3's budget when no section follows;
/// each following section reserves [`SECTION_RESERVE`] bytes, so the text stays ≤ 3 500 bytes.
pub fn render_digest(
    edges: (&[(String, i64)], &[EdgeRow], i64),
    egress: &Section,
    staged: &Section,
    label: &Label,
    max_edges: usize,
) -> (Rendered, SectionShown, SectionShown) {
    let extras = [egress, staged].iter().filter(|s| s.total > 0).count();
    let mut r = render_text(
        edges.0,
        edges.1,
        edges.2,
        label,
        max_edges,
        MAX_TEXT_BYTES - SECTION_RESERVE * extras,
    );
    let mut later = extras;
    let mut out = [SectionShown::default(); 2];
    for (i, sec) in [egress, staged].into_iter().enumerate() {
        if sec.total == 0 {
            continue;
        }
        later -= 1;
        let limit = MAX_TEXT_BYTES - SECTION_RESERVE * later;
        let title = if i == 0 {
            "new external egress"
        } else {
            "would be denied by staged policy"
        };
        r.text.push_str(&format!(
            "\n*{} {title}*  ({})",
            sec.total,
            counts_text_capped(&sec.counts, SECTION_COUNTS_MAX)
        ));
        let mut shown = 0;
        for row in &sec.rows {
            if shown >= max_edges {
                break;
            }
            let line = if i == 0 {
                egress_line(row)
            } else {
                staged_line(row)
            };
            if r.text.len() + 1 + line.len() > limit {
                break;
            }
            r.text.push('\n');
            r.text.push_str(&line);
            shown += 1;
        }
        let more = sec.total - shown as i64;
        if more > 0 {
            let hint = if i == 0 {
                format!("edges-digest graph --since {}", label.tail_arg())
            } else {
                "edges-digest policy --check --namespace <ns>".to_string()
            };
            r.text.push_str(&format!("\n+{more} more — `{hint}`"));
        }
        out[i] = SectionShown {
            shown,
            more: more.max(0),
        };
    }
    (r, out[0], out[1])
}

/// §6.1, parameterised for this binary.
pub fn slack_hint(status: u16, body: &str, channel: &str) -> String {
    slack::hint(
        status,
        body,
        &HintContext {
            channel,
            secret_name: SECRET_NAME,
            binary: BINARY,
        },
    )
}

/// §4.6: the notice posted to the webhook's own channel.
pub fn failure_notice(channel: &str, status: u16, error: &str, n: i64) -> String {
    let noun = if n == 1 { "edge" } else { "edges" };
    format!(
        ":warning: edges-digest could not post to {channel}: HTTP {status} {error} — {}. {n} new {noun} NOT delivered.",
        slack_hint(status, error, channel)
    )
}

/// §7: every failure the run can end in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Internal,
    Config,
    Database,
    Slack(Outcome),
}

/// §7 exit codes.
pub fn exit_code(f: Option<&Failure>) -> i32 {
    match f {
        None => 0,
        Some(Failure::Internal) => 1,
        Some(Failure::Config) => 2,
        Some(Failure::Database) => 3,
        Some(Failure::Slack(o)) => o.exit_code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use homelab_core::slack::SlackError;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-28 07:00:00 UTC);

    fn spec() -> WindowSpec {
        WindowSpec {
            window: Duration::hours(24),
            grace: Duration::hours(2),
            max_catchup: Duration::days(7),
            since: None,
        }
    }

    #[test]
    fn window_first_run_is_parity_24h_without_grace() {
        let w = compute_window(NOW, None, &spec());
        assert_eq!(w.since, NOW - Duration::hours(24));
        assert!(!w.catchup && !w.since_label && w.clipped.is_none());
        assert_eq!(w.until, NOW);
    }

    #[test]
    fn window_normal_23h_25h_rescan_grace_without_catchup() {
        for (gap, back) in [(24, 26), (23, 26), (25, 27)] {
            let w = compute_window(NOW, Some(NOW - Duration::hours(gap)), &spec());
            assert_eq!(w.since, NOW - Duration::hours(back), "gap {gap}h");
            assert!(!w.catchup && !w.since_label, "gap {gap}h");
        }
    }

    #[test]
    fn window_three_failed_days_catch_up() {
        let last = NOW - Duration::days(3);
        let w = compute_window(NOW, Some(last), &spec());
        assert_eq!(w.since, last - Duration::hours(2));
        assert!(w.catchup && w.since_label && w.clipped.is_none());
    }

    #[test]
    fn window_clipped_at_max_catchup() {
        let last = NOW - Duration::days(7);
        let w = compute_window(NOW, Some(last), &spec());
        assert_eq!(w.since, NOW - Duration::days(7));
        assert!(w.catchup);
        assert_eq!(w.clipped, Some((last, NOW - Duration::days(7))));
        let last = NOW - Duration::days(20);
        let w = compute_window(NOW, Some(last), &spec());
        assert_eq!(w.since, NOW - Duration::days(7));
        assert_eq!(w.clipped, Some((last, NOW - Duration::days(7))));
    }

    #[test]
    fn window_since_overrides() {
        let s = datetime!(2026-06-20 00:00:00 UTC);
        let mut sp = spec();
        sp.since = Some(s);
        for last in [
            None,
            Some(NOW - Duration::hours(24)),
            Some(NOW - Duration::days(3)),
        ] {
            let w = compute_window(NOW, last, &sp);
            assert_eq!(w.since, s);
            assert!(w.since_label);
        }
    }

    #[test]
    fn ranks() {
        assert_eq!(
            ["deny", "allow", "pass", "unspecified", "weird"].map(action_rank),
            [0, 1, 2, 3, 4]
        );
        let c = order_counts(vec![
            ("zz".into(), 1),
            ("allow".into(), 7),
            ("deny".into(), 1),
            ("pass".into(), 0),
            ("aa".into(), 2),
        ]);
        assert_eq!(
            c,
            vec![
                ("deny".into(), 1),
                ("allow".into(), 7),
                ("aa".into(), 2),
                ("zz".into(), 1)
            ]
        );
    }

    fn row(src: &str, dst: &str, action: &str, flows: Option<i64>, t: OffsetDateTime) -> EdgeRow {
        EdgeRow {
            src_ns: src.into(),
            dst_ns: dst.into(),
            action: action.into(),
            first_seen: t,
            flow_count: flows,
        }
    }

    #[test]
    fn render_example_4_4_byte_exact() {
        let rows = vec![
            row(
                "recruiter-responder",
                "dbaas",
                "deny",
                Some(3),
                datetime!(2026-06-28 07:42:31 UTC),
            ),
            row(
                "monitoring",
                "immich",
                "allow",
                Some(12),
                datetime!(2026-06-27 09:05:00 UTC),
            ),
        ];
        let counts = vec![("deny".into(), 1), ("allow".into(), 1)];
        let r = render_text(
            &counts,
            &rows,
            2,
            &Label::Last("24h".into()),
            40,
            MAX_TEXT_BYTES,
        );
        assert_eq!(
            r.text,
            "*2 new edges in last 24h*  (deny 1, allow 1)\n\
             • `recruiter-responder` → `dbaas`  *deny* · 3 flows · first 2026-06-28 07:42Z\n\
             • `monitoring` → `immich`  allow · 12 flows · first 2026-06-27 09:05Z"
        );
        assert_eq!((r.shown, r.more), (2, 0));
    }

    #[test]
    fn render_singular_null_flows_and_since_label() {
        let rows = vec![row("a", "b", "pass", None, datetime!(2026-06-28 00:00 UTC))];
        let lbl = Label::Since(datetime!(2026-06-25 05:00:00 UTC));
        let r = render_text(&[("pass".into(), 1)], &rows, 1, &lbl, 40, MAX_TEXT_BYTES);
        assert_eq!(r.text, "*1 new edge since 2026-06-25T05:00:00Z*  (pass 1)\n• `a` → `b`  pass · ? flows · first 2026-06-28 00:00Z");
        let rows = vec![row(
            "a",
            "b",
            "allow",
            Some(1),
            datetime!(2026-06-28 00:00 UTC),
        )];
        let r = render_text(&[("allow".into(), 1)], &rows, 1, &lbl, 40, MAX_TEXT_BYTES);
        assert!(
            r.text.ends_with("allow · 1 flow · first 2026-06-28 00:00Z"),
            "{}",
            r.text
        );
    }

    #[test]
    fn render_empty_for_post_empty() {
        let r = render_text(&[], &[], 0, &Label::Last("24h".into()), 40, MAX_TEXT_BYTES);
        assert_eq!(r.text, "*0 new edges in last 24h*");
    }

    #[test]
    fn render_41_of_40_gives_plus_one_more() {
        let t = datetime!(2026-06-28 01:02 UTC);
        let rows: Vec<EdgeRow> = (0..40)
            .map(|i| row(&format!("ns{i:02}"), "x", "allow", Some(2), t))
            .collect();
        let r = render_text(
            &[("allow".into(), 41)],
            &rows,
            41,
            &Label::Last("24h".into()),
            40,
            MAX_TEXT_BYTES,
        );
        assert_eq!((r.shown, r.more), (40, 1));
        assert!(
            r.text
                .ends_with("\n+1 more — `homelab edges --new-since 24h`"),
            "{}",
            r.text
        );
        let lbl = Label::Since(datetime!(2026-06-25 05:00:00 UTC));
        let r = render_text(&[("allow".into(), 41)], &rows, 41, &lbl, 40, MAX_TEXT_BYTES);
        assert!(r
            .text
            .ends_with("\n+1 more — `homelab edges --new-since 2026-06-25`"));
        let r = render_text(
            &[("allow".into(), 40)],
            &rows,
            40,
            &Label::Last("24h".into()),
            40,
            MAX_TEXT_BYTES,
        );
        assert_eq!(r.more, 0);
        assert!(!r.text.contains("more"));
    }

    #[test]
    fn render_byte_cap_with_63_char_names() {
        let t = datetime!(2026-06-28 01:02 UTC);
        let long = "é".repeat(200);
        let rows: Vec<EdgeRow> = (0..200)
            .map(|_| row(&long, &long, "deny", Some(1_000_000), t))
            .collect();
        let r = render_text(
            &[("deny".into(), 30_000)],
            &rows,
            30_000,
            &Label::Last("24h".into()),
            200,
            MAX_TEXT_BYTES,
        );
        assert!(r.text.len() <= 3500, "{}", r.text.len());
        let body_lines = r.text.lines().count();
        assert_eq!(body_lines, r.shown + 2);
        assert!(r.shown < 200 && r.shown > 5);
        assert_eq!(r.more, 30_000 - r.shown as i64);
        assert!(r.text.ends_with(&format!(
            "+{} more — `homelab edges --new-since 24h`",
            r.more
        )));
        // The next line would have crossed the 3 380-byte budget.
        let head_len = r.text.len() - r.text.rsplit('\n').next().unwrap().len() - 1;
        assert!(
            head_len <= MAX_TEXT_BYTES && head_len + 1 + edge_line(&rows[0]).len() > MAX_TEXT_BYTES
        );
        assert!(r.text.contains(&format!("`{}…`", "é".repeat(63))));
    }

    #[test]
    fn render_escapes_db_strings() {
        let t = datetime!(2026-06-28 01:02 UTC);
        let rows = vec![
            row("a&b", "<!channel>", "allow", Some(2), t),
            row("x`y", "new\nline", "*_~", Some(2), t),
        ];
        let r = render_text(
            &[("allow".into(), 1), ("*_~".into(), 1)],
            &rows,
            2,
            &Label::Last("24h".into()),
            40,
            MAX_TEXT_BYTES,
        );
        assert_eq!(
            r.text,
            "*2 new edges in last 24h*  (allow 1, *_~ 1)\n\
             • `a&amp;b` → `&lt;!channel&gt;`  allow · 2 flows · first 2026-06-28 01:02Z\n\
             • `x'y` → `new\u{FFFD}line`  *_~ · 2 flows · first 2026-06-28 01:02Z"
        );
        assert!(!r.text.contains("<!"));
    }

    #[test]
    fn many_distinct_unknown_actions_are_summed_up() {
        let counts: Vec<(String, i64)> = (0..500)
            .map(|i| (format!("{i:03}{}", "x".repeat(70)), 2))
            .collect();
        let t = datetime!(2026-06-28 01:02 UTC);
        let rows: Vec<EdgeRow> = counts
            .iter()
            .take(200)
            .map(|(a, _)| row("a", "b", a, Some(1), t))
            .collect();
        let r = render_text(
            &counts,
            &rows,
            1000,
            &Label::Last("24h".into()),
            200,
            MAX_TEXT_BYTES,
        );
        assert!(r.text.len() <= 3500, "{}", r.text.len());
        let header = r.text.lines().next().unwrap();
        assert!(header.len() <= COUNTS_MAX_BYTES + 80, "{}", header.len());
        let shown_actions = header.matches("… 2").count();
        assert!(
            header.ends_with(&format!(", other actions {})", 2 * (500 - shown_actions))),
            "{header}"
        );
        assert!(r.shown > 0);
        // The usual case is untouched.
        assert_eq!(
            counts_text(&[("deny".into(), 1), ("allow".into(), 7)]),
            "deny 1, allow 7"
        );
    }

    #[test]
    fn esc_cases_from_12_2() {
        assert_eq!(slack::esc("a&b<c>", NAME_CAP), "a&amp;b&lt;c&gt;");
        assert_eq!(slack::esc("&amp;", NAME_CAP), "&amp;amp;");
        assert_eq!(slack::esc("a`b", NAME_CAP), "a'b");
        assert_eq!(slack::esc("a\nb", NAME_CAP), "a\u{FFFD}b");
        assert_eq!(
            slack::esc(&"x".repeat(64), NAME_CAP),
            format!("{}…", "x".repeat(63))
        );
    }

    #[test]
    fn hints_and_notice() {
        assert_eq!(
            slack_hint(404, "channel_not_found", "#security"),
            "the webhook's Slack app is not a member of #security or it does not exist (the 2026-06 #security failure); invite the app or change SLACK_CHANNEL"
        );
        assert_eq!(
            slack_hint(410, "channel_is_archived", "#alerts"),
            "#alerts is archived"
        );
        for b in ["no_service", "invalid_token", "no_team", "team_disabled"] {
            assert_eq!(
                slack_hint(403, b, "#a"),
                "webhook revoked or disabled; rotate the goldmane-edges-slack secret"
            );
        }
        assert_eq!(
            slack_hint(403, "action_prohibited", "#a"),
            "workspace policy blocks this webhook"
        );
        for b in ["invalid_payload", "no_text", "whatever"] {
            assert_eq!(
                slack_hint(400, b, "#a"),
                "payload rejected — bug in edges-digest"
            );
        }
        assert_eq!(slack_hint(302, "", "#a"), "webhook URL redirects");
        assert_eq!(slack_hint(418, "", "#a"), "unexpected answer");
        assert_eq!(
            failure_notice("#alerts", 410, "channel_is_archived", 3),
            ":warning: edges-digest could not post to #alerts: HTTP 410 channel_is_archived — #alerts is archived. 3 new edges NOT delivered."
        );
        assert!(failure_notice("#a", 404, "channel_not_found", 1)
            .ends_with(". 1 new edge NOT delivered."));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(None), 0);
        assert_eq!(exit_code(Some(&Failure::Internal)), 1);
        assert_eq!(exit_code(Some(&Failure::Config)), 2);
        assert_eq!(exit_code(Some(&Failure::Database)), 3);
        let refused = Outcome::Refused {
            status: 404,
            body: "channel_not_found".into(),
            error: SlackError::ChannelNotFound,
            attempts: 1,
        };
        assert_eq!(exit_code(Some(&Failure::Slack(refused))), 4);
        let lost = Outcome::Ambiguous {
            reason: "timeout".into(),
            attempts: 1,
        };
        assert_eq!(exit_code(Some(&Failure::Slack(lost))), 5);
        let tx = Outcome::Unreachable {
            status: Some(503),
            reason: "HTTP 503".into(),
            attempts: 3,
        };
        assert_eq!(exit_code(Some(&Failure::Slack(tx))), 5);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn any_row() -> impl Strategy<Value = EdgeRow> {
            (
                ".{0,120}",
                ".{0,120}",
                prop_oneof![
                    Just("deny".to_string()),
                    Just("allow".to_string()),
                    ".{0,20}"
                ],
                proptest::option::of(0i64..i64::MAX),
            )
                .prop_map(|(src_ns, dst_ns, action, flow_count)| EdgeRow {
                    src_ns,
                    dst_ns,
                    action,
                    first_seen: datetime!(2026-06-28 07:42:31 UTC),
                    flow_count,
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            /// §4.2/§4.3 for any DB content: ≤ 3 500 bytes, one line per shown edge, the tail
            /// iff something is left out, no raw `<`/`>`, no backtick inside a name.
            #[test]
            fn render_is_bounded_and_escaped(
                rows in proptest::collection::vec(any_row(), 0..250),
                extra in 0i64..1_000_000,
                max_edges in 1usize..=200,
            ) {
                let total = rows.len() as i64 + extra;
                let counts = vec![("allow".to_string(), total)];
                let r = render_text(&counts, &rows, total, &Label::Last("24h".into()), max_edges, MAX_TEXT_BYTES);
                prop_assert!(r.text.len() <= 3500, "{} bytes", r.text.len());
                prop_assert!(r.shown <= max_edges && r.shown <= rows.len());
                prop_assert_eq!(r.more, total - r.shown as i64);
                let lines: Vec<&str> = r.text.split('\n').collect();
                let tail = usize::from(r.more > 0);
                prop_assert_eq!(lines.len(), 1 + r.shown + tail);
                prop_assert!(!r.text.contains('<') && !r.text.contains('>'));
                for l in &lines[1..=r.shown] {
                    prop_assert!(l.starts_with("• `"));
                    prop_assert_eq!(l.matches('`').count(), 4, "{}", l);
                }
                // Greedy: the next row would not have fitted or the cap was reached.
                if r.shown < rows.len() && r.shown < max_edges {
                    let head = lines[..=r.shown].join("\n");
                    prop_assert!(head.len() + 1 + edge_line(&rows[r.shown]).len() > MAX_TEXT_BYTES);
                }
            }

            /// §6.1: Slack's answer body is outside input; the hint and the notice never echo
            /// it (only the channel and a fixed text), stay on one line and never panic.
            #[test]
            fn slack_hint_never_echoes_the_body(
                status in prop_oneof![100u16..600, Just(400u16), Just(404u16), Just(302u16)],
                body in prop_oneof![
                    Just("channel_not_found".to_string()),
                    Just("invalid_token".to_string()),
                    Just("no_text".to_string()),
                    ".{0,40}",
                ],
                marker in "BODYSECRET[a-z0-9]{4}",
                channel in "#[a-z0-9_-]{1,20}",
                n in 0i64..1000,
            ) {
                for b in [body.clone(), format!("{body}{marker}"), format!("{marker}\n{body}")] {
                    let h = slack_hint(status, &b, &channel);
                    prop_assert!(!h.contains("BODYSECRET") && !h.contains('\n'), "{}", h);
                    let notice = failure_notice(&channel, status, "channel_not_found", n);
                    prop_assert!(!notice.contains('\n'));
                    let count = format!("{n} new edge");
                    prop_assert!(notice.contains(&count));
                }
            }
        }
    }
}
