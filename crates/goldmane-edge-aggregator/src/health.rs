//! `/healthz`, `/readyz`, `/metrics` on hyper's HTTP/1 server (§8), no web framework.

use crate::decide::readiness;
use crate::report::{log, render_metrics, Level};
use crate::Ctx;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

fn reply(status: StatusCode, ctype: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    r
}

/// The answer for one path: (status, body).
pub fn answer(ctx: &Ctx, path: &str) -> Response<Full<Bytes>> {
    match path {
        "/healthz" => {
            if ctx.heartbeat_age() < Duration::from_secs(30) {
                reply(StatusCode::OK, "text/plain", "ok\n".into())
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "runtime stalled\n".into(),
                )
            }
        }
        "/readyz" => {
            let s = ctx.lock();
            match readiness(&s.ready, ctx.mono(), ctx.cfg.stall_timeout.as_secs_f64()) {
                Ok(()) => reply(StatusCode::OK, "text/plain", "ready\n".into()),
                Err(reason) => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("{reason}\n"),
                ),
            }
        }
        "/metrics" => {
            let text = {
                let mut s = ctx.lock();
                s.stats.pending_edges = s.pending.len() as u64;
                s.stats.dedup_entries = s.dedup.len() as u64;
                render_metrics(&s.stats, crate::VERSION)
            };
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text,
            )
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Bind and serve in the background; a bind failure is logged (L-HEALTHBIND) and ignored.
pub async fn spawn(ctx: Arc<Ctx>, addr: SocketAddr) {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            log(
                Level::Error,
                "L-HEALTHBIND",
                &format!(
                    "health listener {addr}: {e}; continuing without /healthz /readyz /metrics"
                ),
            );
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let r = answer(&ctx, req.uri().path());
                    async move { Ok::<_, Infallible>(r) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
}
