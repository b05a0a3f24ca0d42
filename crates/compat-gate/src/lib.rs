//! `compat_gate`: the preflight gate for Kubernetes upgrades (spec `compat-gate.md`).
//!
//! Library API for `nightly-report` (§13.1): [`parse_target`], [`load_matrix`],
//! [`GateOptions::defaults`], [`evaluate`] → [`Report`] (`verdict`, `blockers`, `exit_code()`,
//! `to_json()`, `stdout_lines()`, `gauges()`). `evaluate` is GET-only, never panics and never
//! pushes; the binary (`compat-gate`) is a thin shell around it ([`cli`]).

pub mod aver;
pub mod cli;
pub mod entry;
pub mod gate;
pub mod matrix;
pub mod report;
pub mod scan;
mod strictjson;
pub mod tables;

pub use gate::{evaluate, parse_target, GateOptions, Sources};
pub use homelab_core::kube::ClusterRead;
pub use homelab_core::version::KubeVersion;
pub use matrix::{load_matrix, Matrix, MatrixError};
pub use report::{
    Blocker, CheckKind, CheckResult, Class, ClusterInfo, NodeInfo, Report, Status, UpgradeKind,
    Verdict,
};
pub use tables::{ContainerdFloors, RemovedApiTable};
