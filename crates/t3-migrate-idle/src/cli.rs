//! Command line. Every option has an environment twin (read in `config.rs`, where the
//! "empty = unset" rule and the legacy unprefixed names of the bash lib are applied); a flag
//! always wins over the environment.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

const AFTER: &str = "\
Exit codes:
  0  pass done, frozen, nothing to do, or another pass/sibling unit is running
  1  a restart failed verification: recovery (DB restore, binary rollback) ran and the freeze file was created
  2  configuration or precondition error (invalid variable, not root, unreadable DEFER_DIR, lock error)

Environment (empty = unset = default; legacy unprefixed names win over T3_*, a flag wins over both):
  T3_MIGRATE_QUIET_SECONDS, T3_DRY_RUN (exactly 1 = dry run), T3_FREEZE_FILE | FREEZE_FILE,
  T3_STATE_DIR | STATE_DIR, LAST_GOOD_FILE, DEFER_DIR, T3_BACKUP_DEST | BACKUP_DIR,
  T3_DISPATCH | DISPATCH, T3_USER_MAP | USER_MAP, T3_BACKUP_TIMEOUT, T3_METRICS_TEXTFILE,
  T3_PUSHGATEWAY_URL, T3_HOME_ROOT, T3_MIGRATE_LOCK_FILE, T3_SYSLOG_SOCKET.
  PATH is used to find systemctl, npm and t3.";

/// Restart deferred t3-serve@<user> instances onto the installed t3 binary, only when no agent
/// turn is in flight and the instance has been quiet for a while (fail closed on any doubt).
#[derive(Debug, Parser)]
#[command(name = "t3-migrate-idle", version = homelab_core::build_info::VERSION_LINE, after_help = AFTER, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Required quiet time in seconds, integer >= 0 [env: T3_MIGRATE_QUIET_SECONDS] [default: 900]
    #[arg(
        long,
        value_name = "SECONDS",
        global = true,
        allow_hyphen_values = true
    )]
    pub quiet_seconds: Option<String>,

    /// Decide and log, act on nothing (no restart, no marker deleted) [env: T3_DRY_RUN=1]
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// Freeze switch shared by the t3 tooling [env: T3_FREEZE_FILE or FREEZE_FILE] [default: /etc/t3-autoupdate.freeze]
    #[arg(long, value_name = "PATH", global = true)]
    pub freeze_file: Option<PathBuf>,

    /// Holds last-good and deferred/ [env: T3_STATE_DIR or STATE_DIR] [default: /var/lib/t3-autoupdate]
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,

    /// Rollback target file [env: LAST_GOOD_FILE] [default: <STATE_DIR>/last-good]
    #[arg(long, value_name = "PATH", global = true)]
    pub last_good_file: Option<PathBuf>,

    /// Marker directory [env: DEFER_DIR] [default: <STATE_DIR>/deferred]
    #[arg(long, value_name = "DIR", global = true)]
    pub defer_dir: Option<PathBuf>,

    /// Pre-restart backups go to <DIR>/<user>/ [env: T3_BACKUP_DEST or BACKUP_DIR] [default: /var/backups/t3-state]
    #[arg(long, value_name = "DIR", global = true)]
    pub backup_dest: Option<PathBuf>,

    /// host:port of t3-dispatch [env: T3_DISPATCH or DISPATCH] [default: 127.0.0.1:3780]
    #[arg(long, value_name = "HOST:PORT", global = true)]
    pub dispatch: Option<String>,

    /// authentik=os_user map [env: T3_USER_MAP or USER_MAP] [default: /etc/ttyd-user-map]
    #[arg(long, value_name = "PATH", global = true)]
    pub user_map: Option<PathBuf>,

    /// Seconds allowed for one backup, integer > 0 [env: T3_BACKUP_TIMEOUT] [default: 900]
    #[arg(
        long,
        value_name = "SECONDS",
        global = true,
        allow_hyphen_values = true
    )]
    pub backup_timeout: Option<String>,

    /// Atomically rewrite this node-exporter textfile after each pass [env: T3_METRICS_TEXTFILE] [default: none]
    #[arg(long, value_name = "PATH", global = true)]
    pub metrics_textfile: Option<PathBuf>,

    /// Push job t3_migrate_idle here after each pass [env: T3_PUSHGATEWAY_URL] [default: none]
    #[arg(long, value_name = "URL", global = true)]
    pub pushgateway_url: Option<String>,

    /// Root of the user homes; the DB is <ROOT>/<user>/.t3/userdata/state.sqlite [env: T3_HOME_ROOT] [default: /home]
    #[arg(long, value_name = "DIR", global = true)]
    pub home_root: Option<PathBuf>,

    /// Single-instance lock file [env: T3_MIGRATE_LOCK_FILE] [default: /run/t3-migrate-idle.lock]
    #[arg(long, value_name = "PATH", global = true)]
    pub lock_file: Option<PathBuf>,

    /// Syslog socket for the journal copy of each line [env: T3_SYSLOG_SOCKET] [default: /dev/log]
    #[arg(long, value_name = "PATH", global = true)]
    pub syslog_socket: Option<PathBuf>,

    /// Print one JSON summary on stdout; the human lines go to stderr
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read-only report: freeze, versions, and per marker what a pass would do (no syslog)
    Status,
    /// Internal: runs as the DB owner (privileges already dropped by the parent).
    #[command(name = "__as-user", hide = true)]
    AsUser {
        #[command(subcommand)]
        op: UserOp,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserOp {
    /// Print the gate reading of <db> as JSON.
    Read { db: PathBuf },
    /// VACUUM INTO <dest>.
    Backup { db: PathBuf, dest: PathBuf },
    /// Copy <src> over <db> atomically, then delete <db>-wal and <db>-shm.
    Restore { src: PathBuf, db: PathBuf },
}
