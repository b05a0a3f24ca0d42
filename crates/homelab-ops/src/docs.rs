//! `homelab-ops-docs`: release helper. Completions and man pages are generated from the same
//! clap definitions the binaries parse with, so they cannot drift; the SBOM comes from
//! `cargo metadata` (see `sbom.rs` for why not cargo-cyclonedx).
//!
//!   homelab-ops-docs completions DIR   → DIR/{bash,zsh,fish}/…
//!   homelab-ops-docs man DIR           → DIR/<tool>.1
//!   homelab-ops-docs sbom METADATA.json Cargo.lock  → CycloneDX JSON on stdout
use clap_complete::Shell;
use std::path::{Path, PathBuf};

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn completions(dir: &Path) -> Result<(), String> {
    for (name, _, cmd) in homelab_ops::TOOLS {
        for (shell, sub, file) in [
            (Shell::Bash, "bash", name.to_string()),
            (Shell::Zsh, "zsh", format!("_{name}")),
            (Shell::Fish, "fish", format!("{name}.fish")),
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd(), name, &mut buf);
            write(&dir.join(sub).join(file), &buf)?;
        }
    }
    Ok(())
}

fn man(dir: &Path) -> Result<(), String> {
    for (name, _, cmd) in homelab_ops::TOOLS {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd())
            .render(&mut buf)
            .map_err(|e| format!("{name}.1: {e}"))?;
        write(&dir.join(format!("{name}.1")), &buf)?;
    }
    Ok(())
}

fn sbom(metadata: &Path, lock: &Path) -> Result<(), String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let meta: serde_json::Value = serde_json::from_str(&read(metadata)?)
        .map_err(|e| format!("{}: not cargo metadata JSON: {e}", metadata.display()))?;
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bom = homelab_ops::sbom::cyclonedx(&meta, &read(lock)?, "homelab-ops", epoch)?;
    println!("{}", serde_json::to_string_pretty(&bom).expect("json"));
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["completions", dir] => completions(&PathBuf::from(dir)),
        ["man", dir] => man(&PathBuf::from(dir)),
        ["sbom", meta, lock] => sbom(Path::new(meta), Path::new(lock)),
        _ => Err("usage: homelab-ops-docs completions DIR | man DIR | sbom METADATA.json Cargo.lock; see crates/homelab-ops/src/docs.rs".into()),
    };
    if let Err(e) = r {
        eprintln!("ERROR: homelab-ops-docs: {e}");
        std::process::exit(2);
    }
}
