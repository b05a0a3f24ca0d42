//! Workspace-level checks live in `workspace.rs`.
