//! Reconciliation (issue 13): a paged, stateless `Flows.List` over the look-back window after
//! every (re)connect and every `GEA_RECONCILE_SECS`, so flows the stream never carried (a flow
//! that landed late in an already-streamed bucket, the gap of a reconnect, Felix re-sending its
//! cache after a Goldmane restart) still reach the tables. Live streaming sends each completed
//! bucket once and nothing that lands in it later (projectcalico/calico v3.30.7
//! `goldmane/pkg/storage/bucket_ring.go` `flushToStreams`); `List` totals each flow over the
//! window (`goldmane/pkg/storage/ring_index.go` `List`).
//!
//! A pass runs on the session's own HTTP/2 connection (no second stream, no second connection)
//! and hands one batch to the flusher, which merges first/last seen for known keys and inserts
//! the keys only List found (`db::RECONCILE`). A failing List leaves the stream alone; the pass
//! is retried at the next period (or the next connect when the period is off).

use crate::decide::{
    classify, key_fingerprint, reconcile_window, Agg, Classified, KeyRef, Pend, Pending,
};
use crate::proto::FlowListRequest;
use crate::report::{log, ts, Level};
use crate::{stream, unix_now, Ctx, ReconcileBatch};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// First page size: a power of two, so halving it after an oversized page keeps the offset of
/// the flows already read a multiple of the page size. ~300 B per flow → ~1.2 MiB per page.
pub const PAGE_SIZE: i64 = 4096;
/// After a (re)connect, wait until the backfill has drained (the stream quiet this long, at
/// most `SETTLE_MAX`) so that List never counts a key the backfill is about to deliver.
const SETTLE_QUIET: f64 = 1.0;
const SETTLE_MAX: Duration = Duration::from_secs(10);

/// The reconciliation task: one pass after each new connection, then every period.
pub async fn run(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut rx = ctx.chan.subscribe();
    let mut done_gen = 0u64;
    loop {
        // Wait for an open session.
        let (gen, ch) = loop {
            if let Some(v) = rx.borrow_and_update().clone() {
                break v;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = stop.changed() => return,
            }
        };
        if gen != done_gen {
            // Post-connect pass, once the backfill has drained.
            let t0 = Instant::now();
            while t0.elapsed() < SETTLE_MAX {
                let quiet = ctx.mono() - ctx.lock().ready.last_stream_activity;
                if quiet >= SETTLE_QUIET {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => return,
                }
            }
        } else {
            // Periodic pass, or wait for the next connect when the period is off.
            match ctx.cfg.reconcile {
                Some(period) => tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    r = rx.changed() => { if r.is_err() { return } continue; }
                    _ = stop.changed() => return,
                },
                None => tokio::select! {
                    r = rx.changed() => { if r.is_err() { return } continue; }
                    _ = stop.changed() => return,
                },
            }
        }
        done_gen = gen;
        let res = tokio::select! {
            r = pass(&ctx, ch) => r,
            _ = stop.changed() => return,
        };
        match res {
            Ok(batch) => {
                {
                    let mut s = ctx.lock();
                    s.stats.reconcile_ok += 1;
                    s.stats.reconcile_flows += batch.flows;
                    s.reconcile.push_back(batch);
                }
                ctx.flush_notify.notify_one();
            }
            Err(e) => {
                ctx.lock().stats.reconcile_error += 1;
                let when = match ctx.cfg.reconcile {
                    Some(p) => format!("retry in {}s", p.as_secs()),
                    None => "retry after the next connect".to_string(),
                };
                log(
                    Level::Warn,
                    "L-RECONFAIL",
                    &format!("reconcile failed: {e}; the stream continues, {when}"),
                );
            }
        }
    }
}

/// One paged List pass over the look-back window, reduced to rows.
async fn pass(ctx: &Ctx, ch: tonic::transport::Channel) -> Result<ReconcileBatch, String> {
    let t0 = Instant::now();
    let now = unix_now();
    let (lo, hi) = reconcile_window(now, ctx.cfg.backfill_secs);
    let mut size = PAGE_SIZE;
    let mut offset: i64 = 0;
    let (mut pages, mut flows) = (0u64, 0u64);
    // Id-free identity of each Goldmane key already counted in this pass (pages can overlap
    // when the ring changes between them): 8 bytes per key.
    let mut seen: HashSet<u64> = HashSet::new();
    let mut acc = Pending::new(usize::MAX);
    // One page in flight ahead of the one being processed: Goldmane builds page n+1 while
    // this side decodes and classifies page n.
    type Fetch = tokio::task::JoinHandle<Result<crate::proto::FlowListResult, tonic::Status>>;
    let fetch = |offset: i64, size: i64| -> Fetch {
        let req = FlowListRequest {
            start_time_gte: lo,
            start_time_lt: hi,
            page: offset / size,
            page_size: size,
        };
        tokio::spawn(stream::list_page(ch.clone(), req, Duration::from_secs(30)))
    };
    let mut ahead: Option<(i64, i64, Fetch)> = None;
    loop {
        let page = offset / size;
        let got = match ahead.take() {
            Some((o, sz, h)) if o == offset && sz == size => h.await,
            other => {
                if let Some((_, _, h)) = other {
                    h.abort();
                }
                fetch(offset, size).await
            }
        };
        let res = match got {
            Ok(Ok(r)) => r,
            Ok(Err(st)) if stream::too_large(&st) && size > 1 => {
                size /= 2;
                log(
                    Level::Warn,
                    "L-RECONPAGE",
                    &format!(
                        "reconcile: List page {page} over the 4 MiB message limit ({}); asking for {size} flows per page",
                        st.message().replace('\n', " ")
                    ),
                );
                continue;
            }
            Ok(Err(st)) => {
                return Err(format!(
                    "List [{}, {}) page {page}: {:?}: {}",
                    ts(lo),
                    ts(hi),
                    st.code(),
                    st.message().replace('\n', " ")
                ))
            }
            Err(e) => return Err(format!("List page {page}: task failed: {e}")),
        };
        pages += 1;
        let n = res.flows.len() as i64;
        let total = res.meta.map_or(0, |m| m.total_results);
        if n > 0 && offset + n < total {
            ahead = Some((offset + n, size, fetch(offset + n, size)));
            // Let the request go out before this page is processed.
            tokio::task::yield_now().await;
        }
        for f in &res.flows {
            flows += 1;
            let Some(fl) = f.flow.as_ref() else { continue };
            // A key with no window ending inside the range comes back with zero times
            // (`goldmane/pkg/storage/diachronic_flow.go` `Within` vs `GetWindows`): nothing to add.
            if fl.start_time <= 0 || fl.end_time <= 0 {
                continue;
            }
            let Some(k) = fl.key.as_ref() else { continue };
            if !seen.insert(key_fingerprint(k)) {
                continue;
            }
            if let Classified::Edge(o) = classify(f, now) {
                let agg = Agg {
                    first: o.first,
                    last: o.last,
                    count: 1,
                };
                acc.merge_pend(&KeyRef::of(&o), agg, Pend::of(o.pending, o.last));
            }
        }
        offset += n;
        if n == 0 || offset >= total {
            break;
        }
    }
    if let Some((_, _, h)) = ahead {
        h.abort();
    }
    Ok(ReconcileBatch {
        rows: acc.take(),
        window: (lo, hi),
        pages,
        flows,
        took_ms: t0.elapsed().as_millis() as u64,
    })
}
