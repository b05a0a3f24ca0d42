//! Slack incoming-webhook capture for the demo: records every post and answers from a script.
//!
//! ```text
//! slack-capture --out DIR [--port N] [--port-file F] [--reply STATUS:BODY[:RETRY_AFTER] | --reply hang]...
//! ```
//! Each POST body is written to `DIR/NNN.json` and its `text` appended to `DIR/posts.txt`
//! (posts separated by a line `----`). Replies are used in order, then 200 `ok`. The webhook
//! URL to configure is printed on stdout: `http://127.0.0.1:<port>/services/T0/B0/demo`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use testkit::{HttpServer, Reply};

fn usage() -> ! {
    eprintln!("usage: slack-capture --out DIR [--port-file F] [--reply STATUS:BODY[:RETRY_AFTER]|hang]...");
    std::process::exit(2)
}

fn parse_reply(s: &str) -> Reply {
    if s == "hang" {
        return Reply::hang();
    }
    let mut it = s.splitn(3, ':');
    let status: u16 = it
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| usage());
    let body = it.next().unwrap_or("");
    let mut r = Reply::text(status, body);
    if let Some(ra) = it.next() {
        r = r.header("Retry-After", ra);
    }
    r
}

fn main() {
    let mut out: Option<PathBuf> = None;
    let mut port_file: Option<PathBuf> = None;
    let mut script = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().map(PathBuf::from),
            "--port-file" => port_file = args.next().map(PathBuf::from),
            "--reply" => script.push(parse_reply(&args.next().unwrap_or_else(|| usage()))),
            "--help" | "-h" => {
                println!("slack-capture --out DIR [--port-file F] [--reply STATUS:BODY[:RETRY_AFTER]|hang]...\nRecords Slack webhook posts to DIR/NNN.json and DIR/posts.txt; prints the webhook URL.");
                return;
            }
            _ => usage(),
        }
    }
    let out = out.unwrap_or_else(|| usage());
    std::fs::create_dir_all(&out).expect("create --out dir");
    let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
    let n = Arc::new(AtomicUsize::new(0));
    let dir = out.clone();
    let server = HttpServer::start(move |req| {
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = std::fs::write(dir.join(format!("{i:03}.json")), &req.body);
        let text = serde_json::from_slice::<serde_json::Value>(&req.body)
            .ok()
            .and_then(|v| v["text"].as_str().map(str::to_string))
            .unwrap_or_else(|| req.body_str());
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("posts.txt"))
        {
            let _ = writeln!(f, "{text}\n----");
        }
        script
            .lock()
            .expect("script lock")
            .pop_front()
            .unwrap_or_else(testkit::slack::ok)
    });
    if let Some(pf) = port_file {
        std::fs::write(pf, server.port().to_string()).expect("write --port-file");
    }
    println!("{}/services/T0/B0/demo", server.url());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
