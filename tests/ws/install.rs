use crate::{bin_dir, binaries, root};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// `scripts/install.sh` puts every binary and unit under DESTDIR/PREFIX and `--uninstall`
/// takes them away again.
#[test]
fn install_into_a_temporary_root_and_uninstall() {
    let bins = binaries();
    for b in &bins {
        crate::bin(b);
    }
    let dest = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new("bash")
            .arg(root().join("scripts/install.sh"))
            .args(["--prefix", "/opt/homelab", "--destdir"])
            .arg(dest.path())
            .args(extra)
            .current_dir(root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "install.sh {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["--from", bin_dir().to_str().unwrap()]);
    let prefix = dest.path().join("opt/homelab");
    for b in &bins {
        let p = prefix.join("bin").join(b);
        let mode = std::fs::metadata(&p)
            .unwrap_or_else(|_| panic!("{} missing", p.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{}", p.display());
    }
    let mut units = 0;
    for e in std::fs::read_dir(root().join("systemd")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".service") || name.ends_with(".timer")) {
            continue;
        }
        let sys = prefix.join("lib/systemd/system").join(&name);
        let user = prefix.join("lib/systemd/user").join(&name);
        let installed = if sys.is_file() { sys } else { user };
        let text =
            std::fs::read_to_string(&installed).unwrap_or_else(|_| panic!("{name} not installed"));
        assert!(
            !text.contains("/usr/local/bin/"),
            "{name}: ExecStart not rewritten to the prefix"
        );
        units += 1;
    }
    run(&["--uninstall"]);
    for b in &bins {
        assert!(
            !prefix.join("bin").join(b).exists(),
            "{b} left after uninstall"
        );
    }
    let left: usize = ["lib/systemd/system", "lib/systemd/user"]
        .iter()
        .map(|d| {
            std::fs::read_dir(prefix.join(d))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(left, 0, "units left after uninstall ({units} installed)");
}
