//! `edges-digest graph` (issue 17): mermaid, dot and an in-process SVG that headless Chromium
//! renders (Debian `chromium`, installed by scripts/setup.sh); injected names; bad input.

use super::support::*;
use std::io::Read;
use std::process::Command;

const CHROMIUM_INSTALL: &str = "apt-get install chromium (scripts/setup.sh installs it)";

/// Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) into RGB pixels.
fn decode_png(b: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut i, mut w, mut h, mut bpp) = (8usize, 0u32, 0u32, 0usize);
    let mut idat = Vec::new();
    while i + 8 <= b.len() {
        let len = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
        let kind = &b[i + 4..i + 8];
        let data = &b[i + 8..i + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap());
                h = u32::from_be_bytes(data[4..8].try_into().unwrap());
                assert_eq!(data[8], 8, "bit depth");
                assert_eq!(data[12], 0, "interlaced");
                bpp = match data[9] {
                    2 => 3,
                    6 => 4,
                    c => panic!("colour type {c}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        i += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = w as usize * bpp;
    let mut prev = vec![0u8; stride];
    let mut px = Vec::with_capacity((w * h) as usize);
    for row in 0..h as usize {
        let f = raw[row * (stride + 1)];
        let mut cur = raw[row * (stride + 1) + 1..(row + 1) * (stride + 1)].to_vec();
        for x in 0..stride {
            let a = if x >= bpp { cur[x - bpp] as i16 } else { 0 };
            let up = prev[x] as i16;
            let c = if x >= bpp { prev[x - bpp] as i16 } else { 0 };
            let add = match f {
                0 => 0,
                1 => a,
                2 => up,
                3 => (a + up) / 2,
                4 => {
                    let p = a + up - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - up).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        up
                    } else {
                        c
                    }
                }
                _ => panic!("filter {f}"),
            };
            cur[x] = cur[x].wrapping_add(add as u8);
        }
        for p in cur.chunks(bpp) {
            px.push([p[0], p[1], p[2]]);
        }
        prev = cur;
    }
    (w, h, px)
}

/// Render `svg` with headless Chromium into a PNG screenshot.
pub fn screenshot(svg_path: &std::path::Path, png: &std::path::Path, w: u32, h: u32) {
    let profile = tempfile::tempdir().unwrap();
    let o = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={w},{h}"))
        .arg(format!("file://{}", svg_path.display()))
        .output()
        .unwrap_or_else(|e| panic!("chromium not runnable ({e}): {CHROMIUM_INSTALL}"));
    assert!(
        o.status.success() && png.exists(),
        "chromium failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn svg_renders_in_chromium_with_labels_nodes_and_red_denies() {
    let env = Env::new();
    seed_demo(&env);
    let (code, svg, err) = tool(&env, &["graph", "--format", "svg"]);
    assert_eq!(code, Some(0), "{err}");
    for label in [
        "monitoring",
        "immich",
        "argocd",
        "recruiter-responder",
        "dbaas",
        "network:pub",
        "network:pvt",
        "networkset:immich/cdn",
    ] {
        assert!(
            svg.contains(&format!(">{label}</text>")),
            "{label} missing:\n{svg}"
        );
    }
    assert!(!svg.contains("old-ns"), "outside the window");
    assert!(svg.contains("stroke=\"#d62728\""), "deny edge red");
    let dir = tempfile::tempdir().unwrap();
    let (svg_path, png) = (dir.path().join("graph.svg"), dir.path().join("graph.png"));
    std::fs::write(&svg_path, &svg).unwrap();
    screenshot(&svg_path, &png, 1400, 700);
    let (w, h, px) = decode_png(&std::fs::read(&png).unwrap());
    assert_eq!((w, h), (1400, 700));
    let non_white = px.iter().filter(|p| p.iter().any(|c| *c < 235)).count();
    assert!(
        non_white * 100 > px.len(),
        "screenshot is blank: {non_white} of {} pixels drawn",
        px.len()
    );
    let red = px
        .iter()
        .filter(|p| p[0] > 180 && p[1] < 90 && p[2] < 90)
        .count();
    assert!(red > 50, "no red deny edge in the screenshot ({red} px)");
    let node_fill = px.iter().filter(|p| **p == [0xe8, 0xf0, 0xfb]).count();
    assert!(
        node_fill > 5 * 1000,
        "namespace boxes not drawn ({node_fill} px)"
    );
    // EDGES_GRAPH_PNG=<file>: keep a screenshot at the SVG's own size (the README picture).
    if let Ok(keep) = std::env::var("EDGES_GRAPH_PNG") {
        let dim = |attr: &str| -> u32 {
            let at = svg.find(&format!(" {attr}=\"")).unwrap() + attr.len() + 3;
            svg[at..].split('"').next().unwrap().parse().unwrap()
        };
        screenshot(
            &svg_path,
            std::path::Path::new(&keep),
            dim("width"),
            dim("height"),
        );
    }
}

#[test]
fn mermaid_and_dot_carry_weights_and_red_denies_and_namespace_filter() {
    let env = Env::new();
    seed_demo(&env);
    let (code, m, err) = tool(&env, &["graph"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(m.starts_with("```mermaid\nflowchart LR\n"), "{m}");
    assert!(m.ends_with("```\n"), "{m}");
    assert!(
        m.contains("[\"recruiter-responder\"]") && m.contains("([\"network:pub\"])"),
        "{m}"
    );
    assert!(m.contains("-->|\"12\"|"), "{m}");
    assert!(
        m.contains("linkStyle ") && m.contains("stroke:#d62728"),
        "{m}"
    );
    let (code, d, _) = tool(&env, &["graph", "--format", "dot"]);
    assert_eq!(code, Some(0));
    assert!(
        d.contains("digraph edges {") && d.contains("[label=\"3\", color=\"#d62728\""),
        "{d}"
    );
    // External egress: one node per destination name, all ports summed (pub: 40 + 2).
    assert!(d.contains("[label=\"42\""), "{d}");
    let (code, f, _) = tool(&env, &["graph", "--namespace", "argocd"]);
    assert_eq!(code, Some(0));
    assert!(
        f.contains("[\"argocd\"]") && f.contains("[\"monitoring\"]") && !f.contains("dbaas"),
        "{f}"
    );
    // Same data, same graph (only the window comment moves).
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("window"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&m), strip(&tool(&env, &["graph"]).1));
}

#[test]
fn injected_names_stay_inside_their_labels() {
    let env = Env::new();
    env.edge_side(
        "a",
        "b\"]; click b href \"javascript:alert(1)\"\nx-->y",
        "deny",
        "dst",
        "1 hour",
        1,
    );
    env.egress(
        "a",
        "networkset",
        "a/</text><script>alert(1)</script>",
        "tcp",
        1,
        "allow",
        "1 hour",
        1,
    );
    let (code, svg, _) = tool(&env, &["graph", "--format", "svg"]);
    assert_eq!(code, Some(0));
    assert!(!svg.contains("<script"), "{svg}");
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    let (_, m, _) = tool(&env, &["graph"]);
    assert!(
        !m.contains("click") || !m.lines().any(|l| l.trim_start().starts_with("click")),
        "{m}"
    );
    assert!(
        !m.lines().any(|l| l.trim_start().starts_with("x-->")),
        "{m}"
    );
    let (_, d, _) = tool(&env, &["graph", "--format", "dot"]);
    assert_eq!(d.lines().count(), 4 + 3 + 2 + 1, "{d}");
}
