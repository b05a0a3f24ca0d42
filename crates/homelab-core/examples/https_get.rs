//! GET a URL with the default agent settings (test helper: the trust store is per process).

fn main() {
    let url = std::env::args().nth(1).expect("usage: https_get URL");
    let client = homelab_core::http::Client::new(&homelab_core::http::HttpConfig::default())
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    match client.request("GET", &url, &[], None) {
        Ok(r) => println!("{} {}", r.status, r.text()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}
