//! Issue 15: sibling unit states (item 3) and log forging (item 2) against the real binary,
//! real SQLite DBs read as a throwaway user, recording fakes for systemctl/t3/npm.

use super::binary::{cmd, run, Syslog};
use super::common::*;
use super::fakecmd::{rule, rule_fx};
use proptest::prelude::*;
use std::fs;
use t3_migrate_idle::report::Log;
use t3_migrate_idle::{drain, PassResult};

fn pass(lab: &Lab) -> (t3_migrate_idle::Summary, Vec<String>) {
    let cfg = lab.cfg(&[]);
    let log = Log::capture();
    let world = FakeWorld::new();
    let s = drain(&cfg, &log, &world, &t3_migrate_idle::commands(&cfg));
    (s, log.lines())
}

/// Item 3: a long-running daemon sibling or an `active (exited)` RemainAfterExit oneshot is
/// not a job in progress: the pass goes on. A oneshot `activating` stands down; unknown
/// states and a failing `systemctl show` stand down too (fail closed), naming what was seen.
#[test]
fn siblings_stand_down_only_for_a_job_in_progress_or_doubt() {
    let lab = Lab::new();
    let cleared = "clearing marker for gone: t3-serve@gone.service not active";
    let cases: Vec<(Vec<super::fakecmd::Rule>, Option<&str>)> = vec![
        (
            vec![sibling_rule("t3-watchdog.service", "simple", "active", "running")],
            None,
        ),
        (
            vec![sibling_rule("t3-autoupdate.service", "oneshot", "active", "exited")],
            None,
        ),
        (
            vec![sibling_rule("t3-watchdog.service", "notify", "activating", "auto-restart")],
            None,
        ),
        (
            vec![sibling_rule("t3-autoupdate.service", "oneshot", "activating", "start")],
            Some("skipping: t3-autoupdate.service is running (Type=oneshot ActiveState=activating SubState=start)"),
        ),
        (
            vec![sibling_rule("t3-autoupdate.service", "oneshot", "zombie", "FROZEN")],
            Some("skipping: cannot tell whether t3-autoupdate.service is running (Type=oneshot ActiveState=6 bytes [??????] SubState=6 bytes [???Z??]) \u{2014} standing down"),
        ),
        (
            vec![rule("show -p Type,ActiveState,SubState t3-watchdog.service", "ActiveState=active", 0)],
            Some("skipping: cannot tell whether t3-watchdog.service is running (Type=(missing) ActiveState=active SubState=(missing)) \u{2014} standing down"),
        ),
        (
            vec![rule_fx(
                "show -p Type,ActiveState,SubState t3-watchdog.service",
                "",
                1,
                "echo 'Failed to connect to bus: ROLLBACK FAILED' >&2",
            )],
            Some("skipping: cannot tell whether t3-watchdog.service is running (systemctl show failed: stderr 41 bytes [????????????????????????:???????????????…]) \u{2014} standing down"),
        ),
    ];
    for (rules, want) in cases {
        let m = lab.marker("gone", "1.0\n", now() - 60);
        lab.systemd_with(&[("gone", false, None)], &rules);
        let (s, lines) = pass(&lab);
        match want {
            None => {
                assert_eq!(lines[0], cleared, "{lines:?}");
                assert_eq!(s.result, PassResult::Ok);
                assert!(!m.exists());
            }
            Some(w) => {
                assert_eq!(lines, vec![w.to_string()]);
                assert_eq!((s.result, s.exit_code), (PassResult::Skipped, 0));
                assert!(m.exists());
            }
        }
    }
}

/// The phrases Loki alerts on (spec §3.2, runbook: T3AutoUpdateRolledBack,
/// T3AutoUpdateRollbackFailed, T3AutoUpdateFrozen) and the catalogue's line prefixes.
const PHRASES: &[&str] = &[
    "FROZEN",
    "rolling back",
    "rolled back",
    "ROLLBACK FAILED",
    "HEALTH-CHECK FAILED",
    "migrate FAILED",
    "migrated ",
    "restarted ",
    "restored ",
    "clearing marker for",
    "DRY_RUN:",
    "WARN:",
    "ERROR:",
    "skipping",
    "idle-migrate pass complete",
    "no authentik mapping",
    "t3-migrate-idle:",
    "<13>",
];

fn phrase_counts(text: &str) -> Vec<usize> {
    PHRASES.iter().map(|p| text.matches(p).count()).collect()
}

/// One pass with `v` injected everywhere outside text enters: a thread's `updated_at` (real
/// SQLite), a marker name, a marker's content, `t3 --version` output, a failing
/// `systemctl is-active`'s stderr, and the Pushgateway's error answer. Returns what reached
/// stdout, stderr and syslog.
fn injected_pass(lab: &Lab, u: &TestUser, sl: &Syslog, v: &str, json: bool) -> [String; 3] {
    fs::remove_dir_all(&lab.defer).ok();
    fs::create_dir_all(&lab.defer).unwrap();
    fs::remove_file(lab.db_path(&u.name)).ok();
    make_db(lab, u, &[(None, &format!("zzz {v}"))], false);
    lab.marker(&u.name, "0.0.36\n", now() - 3600);
    // Always an invalid user name (a valid one is shown as it is, by design).
    lab.marker(
        &format!("X{}", v.replace(['/', '\0'], "_")),
        "1.0\n",
        now() - 60,
    );
    lab.marker("junkver", &format!("{v}\n"), now() - 60);
    let sh = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    lab.systemd_with(
        &[(&u.name, true, Some(now() - 86400))],
        &[rule_fx(
            "is-active --quiet t3-serve@junkver.service",
            "",
            5,
            &format!("printf '%s\\n' {} >&2", sh(v)),
        )],
    );
    lab.fakes
        .script("t3", &[rule("--version", &format!("t3 v{v}"), 0)], 1);
    let body = v.to_string();
    let pg = testkit::HttpServer::start(move |_| {
        testkit::Reply::new(500).body(body.clone().into_bytes())
    });
    let mut c = cmd(lab, Some(&sl.path), if json { &["--json"] } else { &[] });
    c.args(["--pushgateway-url", &pg.url()]);
    let (_, out, err) = run(c);
    [out, err, sl.datagrams().join("\n")]
}

fn lab_with_user() -> (Lab, TestUser, Syslog) {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let sl = Syslog::bind(&lab);
    (lab, u, sl)
}

/// Item 2: no injected value — each alert phrase and catalogue prefix, alone, decorated,
/// after a newline — produces one: on stdout, stderr and syslog every phrase occurs exactly
/// as often as with a harmless value, and the line count is the same.
#[test]
fn injected_values_never_forge_an_alert_or_a_catalogue_line() {
    let (lab, u, sl) = lab_with_user();
    let baseline: Vec<[String; 3]> = [false, true]
        .iter()
        .map(|j| injected_pass(&lab, &u, &sl, "x", *j))
        .collect();
    for b in &baseline {
        assert!(
            b[0].contains("idle gate error") || b[1].contains("idle gate error"),
            "{b:?}"
        );
        assert!(b[2].contains("unparseable updated_at"), "{b:?}");
        assert!(
            b[0].contains("cannot query") || b[1].contains("cannot query"),
            "{b:?}"
        );
    }
    let phrase = proptest::sample::select(PHRASES.to_vec());
    let value = (phrase, "[a-z ]{0,3}", "[a-z\\n ]{0,3}", any::<bool>())
        .prop_map(|(p, a, b, nl)| format!("{}{a}{p}{b}", if nl { "\n" } else { "" }));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
    runner
        .run(&(value, any::<bool>()), |(v, json)| {
            let got = injected_pass(&lab, &u, &sl, &v, json);
            let base = &baseline[usize::from(json)];
            for (i, ch) in ["stdout", "stderr", "syslog"].iter().enumerate() {
                prop_assert_eq!(
                    phrase_counts(&got[i]),
                    phrase_counts(&base[i]),
                    "{} with {:?}:\n{}\nbaseline:\n{}",
                    ch,
                    v,
                    got[i],
                    base[i]
                );
                prop_assert_eq!(
                    got[i].lines().count(),
                    base[i].lines().count(),
                    "{} {:?}",
                    ch,
                    v
                );
            }
            Ok(())
        })
        .unwrap();
}

/// The case verbatim: `updated_at = 'zzz ROLLBACK FAILED — FROZEN'`.
#[test]
fn forged_updated_at_shows_length_and_projection_only() {
    let (lab, u, sl) = lab_with_user();
    make_db(
        &lab,
        &u,
        &[(None, "zzz ROLLBACK FAILED \u{2014} FROZEN")],
        false,
    );
    lab.marker(&u.name, "0.0.36\n", now() - 3600);
    lab.systemd(&[(&u.name, true, Some(now() - 86400))]);
    let (code, out, _) = run(cmd(&lab, Some(&sl.path), &[]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "t3-migrate-idle: skipping t3-serve@{}.service: idle gate error \u{2014} fail closed (unparseable updated_at 30 bytes [?????????????????????????Z??]",
            u.name
        )),
        "{out}"
    );
    for w in ["FROZEN", "ROLLBACK FAILED"] {
        assert!(!out.contains(w), "{out}");
        assert!(!sl.datagrams().join("\n").contains(w));
    }
}
