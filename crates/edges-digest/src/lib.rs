//! edges-digest: the daily Slack digest of new namespace edges (spec `edges-digest.md`).
//!
//! `run` wires config → database snapshot → pure decisions → one Slack post → commit, and owns
//! the exit-code mapping (§7): 0 posted/empty/dry-run/skipped, 1 internal, 2 config, 3 database,
//! 4 Slack refused, 5 Slack transient or ambiguous.

pub mod cli;
pub mod config;
pub mod db;
pub mod decide;
pub mod entry;
pub mod graph;
pub mod policy;
pub mod render;
pub mod report;
pub mod tls;
pub mod tool;
pub mod trail;

use crate::cli::Command;
use crate::config::{Config, StateMode};
use crate::decide::{compute_window, exit_code, order_counts, Failure, Label, WindowSpec};
use crate::report::{error, info, warn, Sink, Summary};
use homelab_core::slack::{self, Outcome, Pacer, RetryPolicy};
use std::time::Duration;

/// The side effects `run` needs besides the DB and HTTP: output streams and sleeping.
pub struct World<'a> {
    pub sink: &'a mut dyn Sink,
    /// Sleeps of the lock wait and the Slack retries (tests record instead of sleeping).
    pub sleep: &'a mut dyn FnMut(Duration),
}

/// Pacer for `homelab_core::slack::post`: logs L-RETRY, sleeps through the world.
struct LogPacer<'w, 'a> {
    world: &'w mut World<'a>,
    secrets: Vec<String>,
}

impl Pacer for LogPacer<'_, '_> {
    fn sleep(&mut self, d: Duration) {
        (self.world.sleep)(d);
    }
    fn on_retry(&mut self, attempt: u32, max: u32, reason: &str, after: Duration) {
        let reason = homelab_core::http::scrub(reason, &self.secrets);
        warn(
            self.world.sink,
            &report::l_retry(attempt, max, &reason, after.as_secs()),
        );
    }
}

/// Run with the real streams and sleeps.
pub fn run(cfg: &Config) -> i32 {
    let mut sink = report::StdSink;
    let mut sleep = |d: Duration| std::thread::sleep(d);
    run_with(
        cfg,
        &mut World {
            sink: &mut sink,
            sleep: &mut sleep,
        },
    )
}

/// Everything except config parsing; returns the exit code.
pub fn run_with(cfg: &Config, world: &mut World<'_>) -> i32 {
    if matches!(cfg.command, Command::Policy | Command::Graph) {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        return tool::run(cfg, world.sink, &mut lock);
    }
    let webhook_shown = cfg.webhook.as_ref().map_or_else(
        || "none".to_string(),
        |w| homelab_core::redact_url(w.expose()),
    );
    info(
        world.sink,
        &report::l_start(
            cfg.state.as_str(),
            &cfg.window.text,
            cfg.channel_shown(),
            &webhook_shown,
            cfg.dry_run,
        ),
    );
    let mut sum = Summary {
        result: "failed",
        channel: cfg.channel.clone(),
        ..Summary::default()
    };
    let failure = digest(cfg, world, &mut sum);
    let code = exit_code(failure.as_ref());
    if cfg.command == Command::Migrate {
        return code;
    }
    if cfg.json {
        world.sink.stdout(&sum.to_json().to_string());
    }
    let metrics =
        !cfg.dry_run && sum.result != "skipped" && !matches!(failure, Some(Failure::Config));
    if metrics {
        push_metrics(cfg, world, &sum);
    }
    code
}

fn push_metrics(cfg: &Config, world: &mut World<'_>, sum: &Summary) {
    let Some(url) = &cfg.pushgateway_url else {
        return;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let result = if sum.result == "posted" || sum.result == "empty" {
        sum.result
    } else {
        "failed"
    };
    let body = report::render_metrics(result, now, sum.new_edges);
    if let Err(e) = homelab_core::pushgateway::push(
        url.expose(),
        "edges_digest",
        &[],
        &body,
        homelab_core::pushgateway::Method::Post,
        Duration::from_secs(5),
    ) {
        let reason = homelab_core::http::scrub(&e.to_string(), &[url.expose().to_string()]);
        warn(world.sink, &report::l_push(&reason));
    }
}

fn db_fail(world: &mut World<'_>, cfg: &Config, e: &postgres::Error) -> Option<Failure> {
    error(
        world.sink,
        &report::l_db(&db::scrubbed(&db::full_error(e), &cfg.database_url).0),
    );
    Some(Failure::Database)
}

/// The decision flow of §5.1. Fills `sum`; returns the failure, if any.
fn digest(cfg: &Config, world: &mut World<'_>, sum: &mut Summary) -> Option<Failure> {
    let mut client = match db::connect(&cfg.database_url) {
        Ok(c) => c,
        Err(e) => {
            error(world.sink, &report::l_db(&e.0));
            return Some(Failure::Database);
        }
    };
    let use_state = cfg.state == StateMode::Table;
    if cfg.command == Command::Migrate && cfg.dry_run {
        // W2.5: decide and report, mutate nothing.
        return match db::state_tables_exist(&mut client) {
            Ok(true) => {
                info(world.sink, report::L_MIGRATED);
                None
            }
            Ok(false) => {
                info(world.sink, report::L_MIGRATE_DRYRUN);
                None
            }
            Err(e) => db_fail(world, cfg, &e),
        };
    }
    if cfg.command == Command::Migrate || (use_state && !cfg.dry_run) {
        if let Err(e) = db::ensure_state_tables(&mut client) {
            error(
                world.sink,
                &report::l_statemig(&db::scrubbed(&db::full_error(&e), &cfg.database_url).0),
            );
            return Some(Failure::Database);
        }
        if cfg.command == Command::Migrate {
            info(world.sink, report::L_MIGRATED);
            return None;
        }
    }
    if !cfg.dry_run {
        let mut tries = 0;
        loop {
            match db::try_lock(&mut client) {
                Ok(true) => break,
                Ok(false) if tries < 60 => {
                    tries += 1;
                    (world.sleep)(Duration::from_secs(1));
                }
                Ok(false) => {
                    info(world.sink, report::L_SKIP);
                    sum.result = "skipped";
                    return None;
                }
                Err(e) => return db_fail(world, cfg, &e),
            }
        }
    }
    let mut tx = match db::begin(&mut client) {
        Ok(t) => t,
        Err(e) => return db_fail(world, cfg, &e),
    };
    let probe = match db::probe(&mut tx, use_state) {
        Ok(p) => p,
        Err(e) => return db_fail(world, cfg, &e),
    };
    if !probe.edge_exists {
        error(world.sink, report::L_NOTABLE);
        return Some(Failure::Database);
    }
    if !probe.per_side_schema {
        error(world.sink, report::L_OLDSCHEMA);
        return Some(Failure::Database);
    }
    if let Some(s) = cfg.since {
        if s > probe.now {
            error(
                world.sink,
                &format!(
                    "config DIGEST_SINCE: {} is later than the database's now() {}",
                    report::ts(s),
                    report::ts(probe.now)
                ),
            );
            return Some(Failure::Config);
        }
    }
    let spec = WindowSpec {
        window: cfg.window.value,
        grace: cfg.grace.value,
        max_catchup: cfg.max_catchup.value,
        since: cfg.since,
    };
    let w = compute_window(probe.now, probe.last_end, &spec);
    sum.since = Some(w.since);
    sum.until = Some(w.until);
    sum.catchup = w.catchup;
    if let Some((last_end, since)) = w.clipped {
        warn(
            world.sink,
            &report::l_clip(&cfg.max_catchup.text, last_end, since),
        );
    }
    if let Err(e) = db::materialize(&mut tx, w.since, probe.state_tables) {
        return db_fail(world, cfg, &e);
    }
    let all = match db::counts(&mut tx) {
        Ok(c) => c,
        Err(e) => return db_fail(world, cfg, &e),
    };
    let of_kind = |k: &str| {
        order_counts(
            all.iter()
                .filter(|(kind, _, _)| kind == k)
                .map(|(_, a, n)| (a.clone(), *n))
                .collect(),
        )
    };
    let (counts, egress_counts, staged_counts) =
        (of_kind("edge"), of_kind("egress"), of_kind("staged"));
    let total = |c: &[(String, i64)]| c.iter().map(|(_, n)| n).sum::<i64>();
    let (n_edges, n_egress, n_staged) =
        (total(&counts), total(&egress_counts), total(&staged_counts));
    // Every announced key: the ledger insert must match this (§3.4c).
    let n = n_edges + n_egress + n_staged;
    sum.new_edges = n_edges;
    sum.new_egress = n_egress;
    sum.staged_denies = n_staged;
    sum.by_action = counts.clone();
    info(
        world.sink,
        &report::l_window(w.since, w.until, w.catchup, n),
    );
    let record = use_state && !cfg.dry_run;
    if n == 0 && !cfg.post_empty {
        if record {
            if let Err(e) = db::record(&mut tx, w.since, w.until, 0, false) {
                return db_fail(world, cfg, &e);
            }
        }
        if let Err(e) = tx.commit() {
            return db_fail(world, cfg, &e);
        }
        info(world.sink, &report::l_empty(w.since));
        sum.result = "empty";
        return None;
    }
    let limit = i64::from(cfg.max_edges);
    let mut fetch = |kind: &str, n: i64| {
        if n == 0 {
            Ok(Vec::new())
        } else {
            db::lines(&mut tx, kind, limit)
        }
    };
    let (edge_items, egress_rows, staged_rows) = match (
        fetch("edge", n_edges),
        fetch("egress", n_egress),
        fetch("staged", n_staged),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return db_fail(world, cfg, &e),
    };
    let rows: Vec<decide::EdgeRow> = edge_items.iter().map(decide::Item::to_edge_row).collect();
    let label = if w.since_label {
        Label::Since(w.since)
    } else {
        Label::Last(cfg.window.text.clone())
    };
    let egress = decide::Section {
        counts: egress_counts,
        rows: egress_rows,
        total: n_egress,
    };
    let staged = decide::Section {
        counts: staged_counts,
        rows: staged_rows,
        total: n_staged,
    };
    let (r, _, _) = decide::render_digest(
        (&counts, &rows, n_edges),
        &egress,
        &staged,
        &label,
        cfg.max_edges as usize,
    );
    sum.egress = egress
        .rows
        .into_iter()
        .take(cfg.max_edges as usize)
        .collect();
    sum.staged = staged
        .rows
        .into_iter()
        .take(cfg.max_edges as usize)
        .collect();
    sum.shown = r.shown;
    sum.more = r.more;
    sum.edges = rows.into_iter().take(r.shown).collect();
    sum.text = Some(r.text.clone());
    if cfg.dry_run {
        if !cfg.json {
            world.sink.stdout(&r.text);
        }
        drop(tx);
        info(world.sink, &report::l_dryrun(n));
        sum.result = "dry_run";
        return None;
    }
    if record {
        match db::record(&mut tx, w.since, w.until, n, true) {
            Ok(k) if k as i64 == n => {}
            Ok(k) => {
                error(
                    world.sink,
                    &report::l_db(&format!(
                        "recorded {k} announced keys but counted {n}; rolled back"
                    )),
                );
                return Some(Failure::Database);
            }
            Err(e) => return db_fail(world, cfg, &e),
        }
    }
    let Some(webhook) = cfg.webhook.as_ref() else {
        // parse_config refuses this (L-NOWEBHOOK); reaching it is a bug, never a silent success.
        error(
            world.sink,
            "internal error: no SLACK_WEBHOOK_URL outside dry-run; nothing posted or recorded",
        );
        return Some(Failure::Internal);
    };
    let secrets = webhook_secrets(webhook.expose());
    let payload = slack::payload(&r.text, cfg.channel.as_deref());
    let policy = RetryPolicy {
        attempt_timeout: cfg.slack_timeout,
        ..RetryPolicy::default()
    };
    let outcome = slack::post(
        webhook,
        &payload,
        &policy,
        None,
        &mut LogPacer {
            world: &mut *world,
            secrets: secrets.clone(),
        },
    );
    sum.http_status = outcome.http_status();
    let scrub = |s: &str| homelab_core::http::scrub(s, &secrets);
    match &outcome {
        Outcome::Delivered {
            status,
            unexpected_body,
            ..
        } => {
            if let Some(b) = unexpected_body {
                // One line, bounded, scrubbed: the body is whatever the server sent.
                let b = homelab_core::http::excerpt(b, 200, &secrets);
                warn(world.sink, &report::l_2xxbody(*status, &b));
            }
            if let Err(e) = tx.commit() {
                let err = db::scrubbed(&db::full_error(&e), &cfg.database_url).0;
                error(world.sink, &report::l_commitfail(&err, n));
                return Some(Failure::Database);
            }
            info(
                world.sink,
                &report::l_posted(n, cfg.channel_shown(), *status, r.shown, r.more),
            );
            sum.result = "posted";
            None
        }
        Outcome::Refused {
            status,
            body,
            error: err,
            ..
        } => {
            drop(tx);
            let body = scrub(body);
            sum.slack_error = Some(scrub(err.code()));
            let hint = decide::slack_hint(*status, &body, cfg.channel_shown());
            error(world.sink, &report::l_slack(*status, &body, &hint, n));
            if let (true, true, Some(ch)) = (
                err.is_channel_problem(),
                cfg.failure_notice,
                cfg.channel.as_deref(),
            ) {
                let notice = decide::failure_notice(ch, *status, err.code(), n);
                let np = slack::payload(&notice, None);
                match slack::post(
                    webhook,
                    &np,
                    &RetryPolicy::single(Duration::from_secs(5)),
                    None,
                    &mut slack::RealPacer,
                ) {
                    Outcome::Delivered { .. } => info(world.sink, report::L_NOTICE_OK),
                    o => warn(
                        world.sink,
                        &report::l_notice_failed(&scrub(&outcome_reason(&o))),
                    ),
                }
            }
            Some(Failure::Slack(outcome.clone()))
        }
        Outcome::Unreachable {
            reason, attempts, ..
        } => {
            drop(tx);
            let reason = scrub(reason);
            sum.slack_error = Some(reason.clone());
            error(world.sink, &report::l_slacktx(*attempts, &reason, n));
            Some(Failure::Slack(outcome.clone()))
        }
        Outcome::Ambiguous { reason, .. } => {
            drop(tx);
            let reason = scrub(reason);
            sum.slack_error = Some(reason.clone());
            error(world.sink, &report::l_ambig(&reason, n));
            Some(Failure::Slack(outcome.clone()))
        }
    }
}

fn outcome_reason(o: &Outcome) -> String {
    match o {
        Outcome::Delivered { status, .. } => format!("HTTP {status}"),
        Outcome::Refused { status, body, .. } => format!("HTTP {status} {body}"),
        Outcome::Unreachable { reason, .. } | Outcome::Ambiguous { reason, .. } => reason.clone(),
    }
}

/// The webhook URL, its path and the path's identifying segments (team, bot, token): none may
/// appear in any line, even when an answer or error echoes only a part of it.
pub fn webhook_secrets(url: &str) -> Vec<String> {
    let mut v = vec![url.to_string()];
    if let Some(p) = homelab_core::http::UrlParts::parse(url) {
        if p.path.len() > 1 {
            v.push(p.path.clone());
            v.extend(
                p.path
                    .split('/')
                    .filter(|seg| seg.len() >= 8 && *seg != "services")
                    .map(str::to_string),
            );
        }
    }
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secrets_cover_url_path_and_segments() {
        let s = webhook_secrets(
            "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/xyzTOKENxyzTOKENxyz",
        );
        let scrubbed = homelab_core::http::scrub(
            "x https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/xyzTOKENxyzTOKENxyz y /services/T0AAAAAAA/B0BBBBBBB/xyzTOKENxyzTOKENxyz z xyzTOKENxyzTOKENxyz T0AAAAAAA no_service",
            &s,
        );
        assert_eq!(scrubbed, "x *** y *** z *** *** no_service");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// SLACK_WEBHOOK_URL: never panics, longest secret first, and a line echoing the
            /// URL, its path or any token segment comes out without them.
            #[test]
            fn webhook_secrets_scrub_url_path_and_tokens(
                host in "[a-z]{1,10}(\\.[a-z]{2,5})?(:[0-9]{1,5})?",
                team in "T[A-Z0-9]{7,10}",
                bot in "B[A-Z0-9]{7,10}",
                token in "[A-Za-z0-9]{8,24}",
                (a, b) in ("[^*]{0,10}", "[^*]{0,10}"),
                junk in ".{0,40}",
                pick in 0usize..4,
            ) {
                let _ = webhook_secrets(&junk);
                let path = format!("/services/{team}/{bot}/{token}");
                let url = format!("https://{host}{path}");
                let s = webhook_secrets(&url);
                prop_assert!(s.windows(2).all(|w| w[0].len() >= w[1].len()));
                let echoed = [url.as_str(), path.as_str(), token.as_str(), team.as_str()][pick];
                let out = homelab_core::http::scrub(&format!("{a}{echoed}{b}"), &s);
                for secret in [&url, &path, &team, &bot, &token] {
                    prop_assert!(!out.contains(secret.as_str()), "{}", out);
                }
            }
        }
    }
}
