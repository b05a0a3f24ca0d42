//! Recording fake commands: shell scripts placed first on PATH that append their argv to a
//! shared log and answer from a table (exact argument string → stdout, exit code, optional
//! shell side effect).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Rule {
    pub args: String,
    pub stdout: String,
    pub code: i32,
    pub effect: Option<String>,
}

pub struct Fakes {
    pub dir: PathBuf,
    pub calls: PathBuf,
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Fakes {
    pub fn new(dir: &Path) -> Fakes {
        fs::create_dir_all(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        let calls = dir.join("calls.log");
        fs::write(&calls, "").unwrap();
        Fakes {
            dir: dir.to_path_buf(),
            calls,
        }
    }

    /// (Re)write the fake `name` with its rules; unmatched calls exit `default`.
    pub fn script(&self, name: &str, rules: &[Rule], default: i32) {
        let mut s = format!(
            "#!/bin/sh\nprintf '%s\\n' \"{name} $*\" >> {}\ncase \"$*\" in\n",
            sh_quote(&self.calls.display().to_string())
        );
        for r in rules {
            let pat: Vec<String> = r.args.split('*').map(sh_quote).collect();
            s.push_str(&format!("  {})\n", pat.join("*")));
            if let Some(e) = &r.effect {
                s.push_str(&format!("    {e}\n"));
            }
            if !r.stdout.is_empty() {
                s.push_str(&format!("    printf '%s\\n' {}\n", sh_quote(&r.stdout)));
            }
            s.push_str(&format!("    exit {};;\n", r.code));
        }
        s.push_str(&format!("  *) exit {default};;\nesac\n"));
        let p = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, s).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&tmp, &p).unwrap();
    }

    /// Every recorded call, `<cmd> <args>`, in order.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(&self.calls)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// PATH value: the fakes first, then the system (for sh, printf, touch).
    pub fn path(&self) -> String {
        format!("{}:/usr/bin:/bin", self.dir.display())
    }
}

pub fn rule(args: &str, stdout: &str, code: i32) -> Rule {
    Rule {
        args: args.into(),
        stdout: stdout.into(),
        code,
        effect: None,
    }
}

pub fn rule_fx(args: &str, stdout: &str, code: i32, effect: &str) -> Rule {
    Rule {
        args: args.into(),
        stdout: stdout.into(),
        code,
        effect: Some(effect.into()),
    }
}
