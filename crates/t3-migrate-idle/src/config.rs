//! Validated configuration (§2.1): flags win, then legacy unprefixed env names, then `T3_*`,
//! then defaults. An empty variable counts as unset. Invalid values name the variable (§2.1.1).

use crate::cli::Cli;
use homelab_core::Secret;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub quiet: u64,
    pub dry_run: bool,
    pub freeze_file: PathBuf,
    pub state_dir: PathBuf,
    pub last_good_file: PathBuf,
    pub defer_dir: PathBuf,
    pub backup_dir: PathBuf,
    pub dispatch: String,
    pub user_map: PathBuf,
    pub backup_timeout: Duration,
    pub metrics_textfile: Option<PathBuf>,
    /// May carry basic-auth userinfo: never printed.
    pub pushgateway_url: Option<Secret>,
    pub home_root: PathBuf,
    pub lock_file: PathBuf,
    pub syslog_socket: PathBuf,
    pub helper_exe: PathBuf,
    pub json: bool,
    /// Timeouts of external commands and the gate child (§2.5.1, §5.2).
    pub systemctl_timeout: Duration,
    pub version_timeout: Duration,
    pub npm_timeout: Duration,
    pub gate_timeout: Duration,
    /// PATH given to the external commands; None = inherit.
    pub path: Option<std::ffi::OsString>,
}

/// `invalid <VAR>=<value>` (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: String,
    pub value: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid {}={}", self.var, self.value)
    }
}

fn bad(var: &str, value: &str) -> ConfigError {
    ConfigError {
        var: var.into(),
        value: crate::decide::escape_name(value.as_bytes()),
    }
}

impl Config {
    /// Build from the command line and an environment lookup (`std::env::var` in production).
    pub fn from_cli(
        cli: &Cli,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        // Legacy unprefixed name wins over the T3_* one (§2.1).
        let pick = |legacy: Option<&str>, t3: &str| -> Option<(String, String)> {
            if let Some(l) = legacy {
                if let Some(v) = get(l) {
                    return Some((l.to_string(), v));
                }
            }
            get(t3).map(|v| (t3.to_string(), v))
        };
        let path_of =
            |flag: &Option<PathBuf>, legacy: Option<&str>, t3: &str, def: &str| -> PathBuf {
                flag.clone()
                    .or_else(|| pick(legacy, t3).map(|(_, v)| PathBuf::from(v)))
                    .unwrap_or_else(|| PathBuf::from(def))
            };

        let (qvar, qval) = match &cli.quiet_seconds {
            Some(v) => ("--quiet-seconds".to_string(), Some(v.clone())),
            None => (
                "T3_MIGRATE_QUIET_SECONDS".to_string(),
                get("T3_MIGRATE_QUIET_SECONDS"),
            ),
        };
        let quiet = match qval {
            None => 900,
            Some(v) => parse_uint(&v).ok_or_else(|| bad(&qvar, &v))?,
        };
        let (bvar, bval) = match &cli.backup_timeout {
            Some(v) => ("--backup-timeout".to_string(), Some(v.clone())),
            None => ("T3_BACKUP_TIMEOUT".to_string(), get("T3_BACKUP_TIMEOUT")),
        };
        let backup_timeout = match bval {
            None => 900,
            Some(v) => parse_uint(&v)
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(&bvar, &v))?,
        };
        let (dvar, dispatch) = match &cli.dispatch {
            Some(v) => ("--dispatch".to_string(), v.clone()),
            None => pick(Some("DISPATCH"), "T3_DISPATCH")
                .unwrap_or_else(|| ("T3_DISPATCH".into(), "127.0.0.1:3780".into())),
        };
        if !valid_host_port(&dispatch) {
            return Err(bad(&dvar, &dispatch));
        }
        let dry_run = cli.dry_run || env("T3_DRY_RUN").as_deref() == Some("1");
        let state_dir = path_of(
            &cli.state_dir,
            Some("STATE_DIR"),
            "T3_STATE_DIR",
            "/var/lib/t3-autoupdate",
        );
        let last_good_file = cli
            .last_good_file
            .clone()
            .or_else(|| get("LAST_GOOD_FILE").map(PathBuf::from))
            .unwrap_or_else(|| state_dir.join("last-good"));
        let defer_dir = cli
            .defer_dir
            .clone()
            .or_else(|| get("DEFER_DIR").map(PathBuf::from))
            .unwrap_or_else(|| state_dir.join("deferred"));
        let pushgateway_url = cli
            .pushgateway_url
            .clone()
            .or_else(|| get("T3_PUSHGATEWAY_URL"))
            .map(Secret::new);
        if let Some(u) = &pushgateway_url {
            if homelab_core::http::UrlParts::parse(u.expose()).is_none() {
                return Err(ConfigError {
                    var: "T3_PUSHGATEWAY_URL".into(),
                    value: "*** (not an http(s) URL)".into(),
                });
            }
        }
        Ok(Config {
            quiet,
            dry_run,
            freeze_file: path_of(
                &cli.freeze_file,
                Some("FREEZE_FILE"),
                "T3_FREEZE_FILE",
                "/etc/t3-autoupdate.freeze",
            ),
            state_dir,
            last_good_file,
            defer_dir,
            backup_dir: path_of(
                &cli.backup_dest,
                Some("BACKUP_DIR"),
                "T3_BACKUP_DEST",
                "/var/backups/t3-state",
            ),
            dispatch,
            user_map: path_of(
                &cli.user_map,
                Some("USER_MAP"),
                "T3_USER_MAP",
                "/etc/ttyd-user-map",
            ),
            backup_timeout: Duration::from_secs(backup_timeout),
            metrics_textfile: cli
                .metrics_textfile
                .clone()
                .or_else(|| get("T3_METRICS_TEXTFILE").map(PathBuf::from)),
            pushgateway_url,
            home_root: path_of(&cli.home_root, None, "T3_HOME_ROOT", "/home"),
            lock_file: path_of(
                &cli.lock_file,
                None,
                "T3_MIGRATE_LOCK_FILE",
                "/run/t3-migrate-idle.lock",
            ),
            syslog_socket: path_of(&cli.syslog_socket, None, "T3_SYSLOG_SOCKET", "/dev/log"),
            // This very binary, re-executed as the user; not configurable (tests set the field).
            helper_exe: PathBuf::from("/proc/self/exe"),
            json: cli.json,
            systemctl_timeout: Duration::from_secs(120),
            version_timeout: Duration::from_secs(30),
            npm_timeout: Duration::from_secs(600),
            gate_timeout: Duration::from_secs(30),
            path: None,
        })
    }

    /// `<home_root>/<u>/.t3/userdata/state.sqlite` (§5.1); `u` is already validated.
    pub fn db_path(&self, u: &str) -> PathBuf {
        self.home_root.join(u).join(".t3/userdata/state.sqlite")
    }
}

fn parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `host:port` with a non-empty host of safe characters (or `[v6]`) and a port 1-65535.
pub fn valid_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = parse_uint(port).is_some_and(|p| (1..=65535).contains(&p));
    let host_ok = if let Some(h) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::HashMap;

    fn cfg(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut a = vec!["t3-migrate-idle"];
        a.extend_from_slice(args);
        let cli = Cli::try_parse_from(a).unwrap();
        let m: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_cli(&cli, &move |k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[], &[]).unwrap();
        assert_eq!(c.quiet, 900);
        assert!(!c.dry_run);
        assert_eq!(c.freeze_file, PathBuf::from("/etc/t3-autoupdate.freeze"));
        assert_eq!(
            c.last_good_file,
            PathBuf::from("/var/lib/t3-autoupdate/last-good")
        );
        assert_eq!(
            c.defer_dir,
            PathBuf::from("/var/lib/t3-autoupdate/deferred")
        );
        assert_eq!(c.backup_dir, PathBuf::from("/var/backups/t3-state"));
        assert_eq!(c.dispatch, "127.0.0.1:3780");
        assert_eq!(c.user_map, PathBuf::from("/etc/ttyd-user-map"));
        assert_eq!(c.backup_timeout, Duration::from_secs(900));
        assert_eq!(c.lock_file, PathBuf::from("/run/t3-migrate-idle.lock"));
    }

    #[test]
    fn empty_is_unset_and_legacy_wins_and_flag_wins() {
        let c = cfg(
            &[],
            &[
                ("T3_MIGRATE_QUIET_SECONDS", ""),
                ("T3_STATE_DIR", "/s"),
                ("FREEZE_FILE", "/legacy"),
                ("T3_FREEZE_FILE", "/t3"),
            ],
        )
        .unwrap();
        assert_eq!(c.quiet, 900);
        assert_eq!(c.defer_dir, PathBuf::from("/s/deferred"));
        assert_eq!(c.freeze_file, PathBuf::from("/legacy"));
        let c = cfg(
            &["--freeze-file", "/flag", "--quiet-seconds", "5"],
            &[
                ("FREEZE_FILE", "/legacy"),
                ("T3_MIGRATE_QUIET_SECONDS", "7"),
            ],
        )
        .unwrap();
        assert_eq!(c.freeze_file, PathBuf::from("/flag"));
        assert_eq!(c.quiet, 5);
        let c = cfg(
            &[],
            &[
                ("DEFER_DIR", "/d"),
                ("STATE_DIR", "/x"),
                ("T3_STATE_DIR", "/y"),
            ],
        )
        .unwrap();
        assert_eq!(c.defer_dir, PathBuf::from("/d"));
        assert_eq!(c.last_good_file, PathBuf::from("/x/last-good"));
    }

    #[test]
    fn dry_run_only_exactly_one() {
        assert!(cfg(&[], &[("T3_DRY_RUN", "1")]).unwrap().dry_run);
        assert!(!cfg(&[], &[("T3_DRY_RUN", "true")]).unwrap().dry_run);
        assert!(!cfg(&[], &[("T3_DRY_RUN", "0")]).unwrap().dry_run);
        assert!(cfg(&["--dry-run"], &[]).unwrap().dry_run);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let e = cfg(&[], &[("T3_MIGRATE_QUIET_SECONDS", "15m")]).unwrap_err();
        assert_eq!(e.to_string(), "invalid T3_MIGRATE_QUIET_SECONDS=15m");
        let e = cfg(&[], &[("T3_MIGRATE_QUIET_SECONDS", "-1")]).unwrap_err();
        assert_eq!(e.to_string(), "invalid T3_MIGRATE_QUIET_SECONDS=-1");
        let e = cfg(&[], &[("T3_BACKUP_TIMEOUT", "0")]).unwrap_err();
        assert_eq!(e.to_string(), "invalid T3_BACKUP_TIMEOUT=0");
        let e = cfg(&[], &[("T3_DISPATCH", "localhost")]).unwrap_err();
        assert_eq!(e.to_string(), "invalid T3_DISPATCH=localhost");
        let e = cfg(&[], &[("DISPATCH", "h:99999")]).unwrap_err();
        assert_eq!(e.to_string(), "invalid DISPATCH=h:99999");
        let e = cfg(&["--dispatch", "a/b:1"], &[]).unwrap_err();
        assert_eq!(e.to_string(), "invalid --dispatch=a/b:1");
        assert!(cfg(&[], &[("T3_DISPATCH", "[::1]:3780")]).is_ok());
        let e = cfg(&[], &[("T3_PUSHGATEWAY_URL", "ftp://u:hunter2@x")]).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use clap::Parser;
    use proptest::prelude::*;

    fn cfg(env: Vec<(&'static str, String)>) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(["t3-migrate-idle"]).unwrap();
        Config::from_cli(&cli, &move |k| {
            env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// `parse_uint`: decimal digits only (no sign, blanks or empty), round-trips every u64,
        /// refuses overflow instead of wrapping.
        #[test]
        fn uint_round_trips(n in any::<u64>(), zeros in "0{0,3}", s in "\\PC{0,24}|[0-9 +-]{0,24}", over in 1u128..1_000) {
            prop_assert_eq!(parse_uint(&format!("{zeros}{n}")), Some(n));
            if let Some(v) = parse_uint(&s) {
                prop_assert!(s.bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(v, s.parse::<u64>().unwrap());
            }
            for t in [format!("+{n}"), format!(" {n}"), format!("{n} "), format!("-{n}"), (u128::from(u64::MAX) + over).to_string()] {
                prop_assert_eq!(parse_uint(&t), None);
            }
        }

        /// `host:port`: names, IPv4 and bracketed IPv6 with a port in 1..=65535 pass; port 0,
        /// > 65535, a missing port, an empty host or any unsafe byte in the host fail.
        #[test]
        fn host_port_rule(
            host in "[A-Za-z0-9][A-Za-z0-9.-]{0,20}|\\[[0-9a-f:.]{1,20}\\]", port in 1u32..=65535, big in 65536u32..,
            bad in "[^A-Za-z0-9.\\-\\[\\]:]", at in any::<prop::sample::Index>(), s in "\\PC{0,30}",
        ) {
            let ok = format!("{host}:{port}");
            prop_assert!(valid_host_port(&ok));
            for t in [format!("{host}:0"), format!("{host}:{big}"), host.clone(), format!("{host}:"), format!(":{port}"), format!("{host}:+{port}")] {
                prop_assert!(!valid_host_port(&t), "{}", t);
            }
            if !host.starts_with('[') {
                let mut cs: Vec<char> = host.chars().collect();
                cs.insert(at.index(cs.len() + 1), bad.chars().next().unwrap());
                let h: String = cs.into_iter().collect();
                let t = format!("{h}:{port}");
                prop_assert!(!valid_host_port(&t), "{}", t);
            }
            if valid_host_port(&s) {
                let (h, p) = s.rsplit_once(':').unwrap();
                prop_assert!(!h.is_empty() && p.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p)));
                prop_assert!(!s.chars().any(|c| c.is_whitespace() || c == '/' || c == '@'));
            }
        }

        /// Env numbers (§2.1.1): T3_MIGRATE_QUIET_SECONDS any u64 (0 allowed), T3_BACKUP_TIMEOUT
        /// any positive u64, round-trip; anything else is `invalid <VAR>=<value>` with the value
        /// escaped onto one line; empty means unset.
        #[test]
        fn env_numbers(
            q in any::<u64>(), b in 1u64..=u64::MAX / 2, junk in "\\PC{1,16}|[0-9]{0,3}[ .+-][0-9]{0,3}|[\\x00-\\x1f]{1,4}",
        ) {
            let c = cfg(vec![("T3_MIGRATE_QUIET_SECONDS", q.to_string()), ("T3_BACKUP_TIMEOUT", b.to_string())]).unwrap();
            prop_assert_eq!(c.quiet, q);
            prop_assert_eq!(c.backup_timeout, Duration::from_secs(b));
            let empty = cfg(vec![("T3_MIGRATE_QUIET_SECONDS", String::new()), ("T3_BACKUP_TIMEOUT", String::new())]).unwrap();
            prop_assert_eq!((empty.quiet, empty.backup_timeout), (900, Duration::from_secs(900)));
            let e = cfg(vec![("T3_BACKUP_TIMEOUT", "0".into())]).unwrap_err();
            prop_assert_eq!(e.to_string(), "invalid T3_BACKUP_TIMEOUT=0");
            for var in ["T3_MIGRATE_QUIET_SECONDS", "T3_BACKUP_TIMEOUT"] {
                match cfg(vec![(var, junk.clone())]) {
                    Ok(_) => prop_assert!(parse_uint(&junk).is_some()),
                    Err(e) => {
                        prop_assert_eq!(&e.var, var);
                        prop_assert!(!e.to_string().contains('\n') && !e.to_string().chars().any(char::is_control));
                    }
                }
            }
        }

        /// Dispatch address from env (legacy DISPATCH wins over T3_DISPATCH) is validated the
        /// same way as `valid_host_port`; T3_DRY_RUN is on exactly for `1`.
        #[test]
        fn env_dispatch_and_dry_run(legacy in "\\PC{0,20}|[a-z.]{1,8}:[0-9]{1,6}", t3 in "[a-z.]{1,8}:[0-9]{1,5}", dry in "\\PC{0,3}|1|0|true") {
            let r = cfg(vec![("DISPATCH", legacy.clone()), ("T3_DISPATCH", t3.clone()), ("T3_DRY_RUN", dry.clone())]);
            let chosen = if legacy.is_empty() { &t3 } else { &legacy };
            match r {
                Ok(c) => {
                    prop_assert!(valid_host_port(chosen));
                    prop_assert_eq!(&c.dispatch, chosen);
                    prop_assert_eq!(c.dry_run, dry == "1");
                }
                Err(e) => {
                    prop_assert!(!valid_host_port(chosen));
                    prop_assert_eq!(e.var, if legacy.is_empty() { "T3_DISPATCH" } else { "DISPATCH" });
                }
            }
        }
    }
}
