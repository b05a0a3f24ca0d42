//! The image's one binary: six tools behind one static executable, so the image stays under
//! 16 MiB (six static binaries measure 25.8 MiB; one multicall binary shares std, rustls,
//! ring, tokio and clap once).
//!
//! `argv[0]`'s basename picks the tool (`/usr/local/bin/edges-digest` is a hard link to the
//! same file); `homelab-ops <tool> args…` works too, for a bundle run without the links.

pub mod sbom;

use std::ffi::OsString;
use std::path::Path;

/// Entry point of one tool: args with argv[0] first, returns the exit code.
pub type Entry = fn(Vec<OsString>) -> i32;

/// The clap definition of one tool (completions, man pages).
pub type Definition = fn() -> clap::Command;

/// The six tools, in install order: name, entry, clap definition.
pub const TOOLS: [(&str, Entry, Definition); 6] = [
    (
        "vault-token-renew",
        vault_token_renew::entry::run,
        vault_token_renew::entry::command,
    ),
    (
        "t3-migrate-idle",
        t3_migrate_idle::entry::run,
        t3_migrate_idle::entry::command,
    ),
    (
        "goldmane-edge-aggregator",
        goldmane_edge_aggregator::entry::run,
        goldmane_edge_aggregator::entry::command,
    ),
    (
        "edges-digest",
        edges_digest::entry::run,
        edges_digest::entry::command,
    ),
    (
        "compat-gate",
        compat_gate::entry::run,
        compat_gate::entry::command,
    ),
    (
        "nightly-report",
        nightly_report::entry::run,
        nightly_report::entry::command,
    ),
];

/// What to run for these args: a tool and the args it sees, or the multicall's own answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Dispatch {
    Tool(usize, Vec<OsString>),
    /// `homelab-ops --help` (or no args): stdout, exit 0.
    Help,
    /// `homelab-ops --version`: stdout, exit 0.
    Version,
    /// Unknown name: one line on stderr, exit 2.
    Unknown(String),
}

fn tool_index(name: &str) -> Option<usize> {
    TOOLS.iter().position(|(n, _, _)| *n == name)
}

/// Pure decision: argv[0]'s basename first, then `homelab-ops <tool>`.
pub fn decide(mut args: Vec<OsString>) -> Dispatch {
    let argv0 = args.first().cloned().unwrap_or_default();
    let base = Path::new(&argv0)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(i) = tool_index(&base) {
        return Dispatch::Tool(i, args);
    }
    if args.len() < 2 {
        return Dispatch::Help;
    }
    let sub = args[1].to_string_lossy().into_owned();
    match sub.as_str() {
        "-h" | "--help" | "help" => Dispatch::Help,
        "-V" | "--version" => Dispatch::Version,
        _ => match tool_index(&sub) {
            Some(i) => {
                args.remove(0);
                Dispatch::Tool(i, args)
            }
            None => Dispatch::Unknown(sub),
        },
    }
}

fn help() -> String {
    let mut s = format!(
        "homelab-ops {}\nOne binary, six tools: run as one of these names (a link), or `homelab-ops <tool> [ARGS]...`.\n\nTools:\n",
        homelab_core::build_info::VERSION_LINE
    );
    for (n, _, _) in TOOLS {
        s.push_str(&format!("  {n}\n"));
    }
    s
}

/// Dispatch and run; returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    match decide(args) {
        Dispatch::Tool(i, args) => (TOOLS[i].1)(args),
        Dispatch::Help => {
            print!("{}", help());
            0
        }
        Dispatch::Version => {
            println!("homelab-ops {}", homelab_core::build_info::VERSION_LINE);
            0
        }
        Dispatch::Unknown(name) => {
            let names: Vec<&str> = TOOLS.iter().map(|t| t.0).collect();
            eprintln!(
                "ERROR: homelab-ops: unknown tool {name:?}; run one of: {}",
                names.join(", ")
            );
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn argv0_basename_picks_the_tool_and_keeps_all_args() {
        assert_eq!(
            decide(a(&["/usr/local/bin/edges-digest", "run", "--dry-run"])),
            Dispatch::Tool(3, a(&["/usr/local/bin/edges-digest", "run", "--dry-run"]))
        );
        // A tool name as argv[0] wins even if argv[1] names another tool.
        assert_eq!(
            decide(a(&["compat-gate", "nightly-report"])),
            Dispatch::Tool(4, a(&["compat-gate", "nightly-report"]))
        );
    }

    #[test]
    fn first_arg_picks_the_tool_under_any_other_name() {
        assert_eq!(
            decide(a(&["/x/homelab-ops", "goldmane-edge-aggregator", "check"])),
            Dispatch::Tool(2, a(&["goldmane-edge-aggregator", "check"]))
        );
        assert_eq!(
            decide(a(&["renamed", "vault-token-renew"])),
            Dispatch::Tool(0, a(&["vault-token-renew"]))
        );
    }

    #[test]
    fn own_flags_and_unknown_names() {
        assert_eq!(decide(a(&["homelab-ops"])), Dispatch::Help);
        assert_eq!(decide(a(&[])), Dispatch::Help);
        assert_eq!(decide(a(&["homelab-ops", "--help"])), Dispatch::Help);
        assert_eq!(decide(a(&["homelab-ops", "-V"])), Dispatch::Version);
        assert_eq!(
            decide(a(&["homelab-ops", "vault-token-renew-x"])),
            Dispatch::Unknown("vault-token-renew-x".into())
        );
        // Only the basename counts: a directory named like a tool does not match.
        assert_eq!(
            decide(a(&["/edges-digest/homelab-ops", "--version"])),
            Dispatch::Version
        );
    }

    #[test]
    fn every_tool_definition_carries_the_commit_version() {
        for (name, _, cmd) in TOOLS {
            let c = cmd();
            assert_eq!(c.get_name(), name);
            assert_eq!(
                c.get_version(),
                Some(homelab_core::build_info::VERSION_LINE),
                "{name}"
            );
        }
    }
}
