//! Tests of the pacing scheduler, rule by rule, and (in [`checker`]) random bursts
//! checked against an independent statement of IB's rules.

mod checker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::ib::Cancelled;
use crate::ib::segment::{IbDuration, WhatToShow};
use crate::symbol::{InstrumentType, Symbol};
use crate::timeframe::Timeframe;

fn contract(symbol: &str, exchange: &str) -> ContractKey {
    let symbol = Symbol::parse(symbol).expect("test symbol");
    let instrument = InstrumentType::guess(&symbol);
    ContractKey::new(symbol, instrument, exchange)
}

fn key(symbol: &str, what: WhatToShow, end_hour: i64) -> RequestKey {
    let end = DateTime::<Utc>::from_timestamp(1_700_000_000 + end_hour * 3600, 0).expect("valid");
    RequestKey {
        contract: contract(symbol, "SMART"),
        timeframe: Timeframe::M1,
        what_to_show: what,
        end: Some(end),
        duration: IbDuration::covering(chrono::TimeDelta::days(1)),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Acquires now and returns how long it took (paused clock: virtual time).
async fn timed(s: &PacingScheduler, k: &RequestKey) -> (PacingPermit, Duration) {
    let t0 = Instant::now();
    let p = s
        .acquire(k, &CancellationToken::new())
        .await
        .expect("not cancelled");
    (p, t0.elapsed())
}

// ---- single rules ------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn identical_request_waits_fifteen_seconds() {
    let s = PacingScheduler::new(PacingLimits::ib_exact());
    let k = key("AAPL", WhatToShow::Trades, 0);
    let (_p1, w1) = timed(&s, &k).await;
    assert_eq!(w1, Duration::ZERO);
    let (_p2, w2) = timed(&s, &k).await;
    assert_eq!(w2, secs(15));
    // A different end time is a different request.
    let (_p3, w3) = timed(&s, &key("AAPL", WhatToShow::Trades, 1)).await;
    assert_eq!(w3, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn margin_is_added_to_every_interval() {
    let s = PacingScheduler::new(PacingLimits::ib());
    let k = key("AAPL", WhatToShow::Trades, 0);
    let _p1 = timed(&s, &k).await;
    let (_p2, w2) = timed(&s, &k).await;
    assert_eq!(w2, secs(15) + Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn sixth_request_for_a_contract_waits_out_the_burst_window() {
    let s = PacingScheduler::new(PacingLimits::ib_exact());
    let mut permits = Vec::new();
    for h in 0..5 {
        let (p, w) = timed(&s, &key("AAPL", WhatToShow::Trades, h)).await;
        assert_eq!(w, Duration::ZERO);
        permits.push(p);
    }
    // Other what-to-show, other exchange, other symbol: other groups.
    let (_a, wa) = timed(&s, &key("AAPL", WhatToShow::Midpoint, 0)).await;
    let mut other_exchange = key("AAPL", WhatToShow::Trades, 9);
    other_exchange.contract.exchange = "ARCA".into();
    let (_b, wb) = timed(&s, &other_exchange).await;
    let (_c, wc) = timed(&s, &key("MSFT", WhatToShow::Trades, 0)).await;
    assert_eq!(
        (wa, wb, wc),
        (Duration::ZERO, Duration::ZERO, Duration::ZERO)
    );
    let (_d, wd) = timed(&s, &key("AAPL", WhatToShow::Trades, 5)).await;
    assert_eq!(wd, secs(2));
}

#[tokio::test(start_paused = true)]
async fn bid_ask_counts_twice() {
    let s = PacingScheduler::new(PacingLimits::ib_exact());
    let (_p1, w1) = timed(&s, &key("EURUSD", WhatToShow::BidAsk, 0)).await;
    let (_p2, w2) = timed(&s, &key("EURUSD", WhatToShow::BidAsk, 1)).await;
    let (_p3, w3) = timed(&s, &key("EURUSD", WhatToShow::BidAsk, 2)).await;
    assert_eq!(
        (w1, w2, w3),
        (Duration::ZERO, Duration::ZERO, secs(2)),
        "2 + 2 + 2 > 5"
    );

    // Against the 10-minute budget too: 30 BID_ASK fill it.
    let s = PacingScheduler::new(PacingLimits {
        max_per_burst: u32::MAX,
        ..PacingLimits::ib_exact()
    });
    let mut permits = Vec::new();
    for h in 0..30 {
        let (p, w) = timed(&s, &key("EURUSD", WhatToShow::BidAsk, h)).await;
        assert_eq!(w, Duration::ZERO);
        permits.push(p);
    }
    let (_p, w) = timed(&s, &key("MSFT", WhatToShow::Trades, 0)).await;
    assert_eq!(w, secs(600));
}

#[tokio::test(start_paused = true)]
async fn sixty_per_ten_minutes() {
    let s = PacingScheduler::new(PacingLimits {
        max_per_burst: u32::MAX,
        ..PacingLimits::ib_exact()
    });
    let mut permits = Vec::new();
    for h in 0..60 {
        let (p, w) = timed(&s, &key("SPY", WhatToShow::Trades, h)).await;
        assert_eq!(w, Duration::ZERO);
        permits.push(p);
        tokio::time::sleep(secs(1)).await;
        permits.clear();
    }
    // The first went at t=0, so the 61st may go at t=600 s; it is now t=60 s.
    let (_p, w) = timed(&s, &key("SPY", WhatToShow::Trades, 60)).await;
    assert_eq!(w, secs(540));
    assert_eq!(s.stats().granted, 61);
}

#[tokio::test(start_paused = true)]
async fn open_requests_are_capped_until_a_permit_drops() {
    let s = PacingScheduler::new(PacingLimits {
        max_open: 2,
        ..PacingLimits::ib_exact()
    });
    let (p1, _) = timed(&s, &key("AAPL", WhatToShow::Trades, 0)).await;
    let (_p2, _) = timed(&s, &key("MSFT", WhatToShow::Trades, 0)).await;
    assert_eq!(s.stats().open, 2);
    let s2 = s.clone();
    let third = tokio::spawn(async move { timed(&s2, &key("SPY", WhatToShow::Trades, 0)).await.1 });
    tokio::time::sleep(secs(30)).await;
    assert_eq!(s.stats().waiting, 1);
    drop(p1);
    assert_eq!(third.await.expect("task"), secs(30));
    assert_eq!(
        s.stats().open,
        1,
        "the third's permit was dropped with its task"
    );
}

#[tokio::test(start_paused = true)]
async fn disabled_limits_grant_everything_at_once() {
    let s = PacingScheduler::new(PacingLimits::disabled());
    let k = key("AAPL", WhatToShow::BidAsk, 0);
    let mut permits = Vec::new();
    for _ in 0..500 {
        let (p, w) = timed(&s, &k).await;
        assert_eq!(w, Duration::ZERO);
        permits.push(p);
    }
    assert_eq!(s.stats().open, 500);
}

#[tokio::test(start_paused = true)]
async fn time_divided_limits_scale_every_interval() {
    let limits = PacingLimits::ib().time_divided_by(60);
    assert_eq!(limits.window, secs(10));
    assert_eq!(limits.identical_interval, Duration::from_millis(250));
    assert_eq!(limits.max_per_window, 60);
    let s = PacingScheduler::new(limits);
    let k = key("AAPL", WhatToShow::Trades, 0);
    let _p1 = timed(&s, &k).await;
    let (_p2, w) = timed(&s, &k).await;
    // tokio's timer rounds a deadline up to the next millisecond.
    let exact = limits.identical_interval + limits.margin;
    assert!(w >= exact && w <= exact + Duration::from_millis(1), "{w:?}");
}

#[tokio::test(start_paused = true)]
async fn min_interval_spaces_every_grant_and_is_not_scaled() {
    let limits = PacingLimits {
        min_interval: Duration::from_millis(25),
        ..PacingLimits::ib_exact()
    }
    .time_divided_by(60);
    assert_eq!(limits.min_interval, Duration::from_millis(25));
    let s = PacingScheduler::new(PacingLimits {
        max_per_burst: u32::MAX,
        ..limits
    });
    let mut waits = Vec::new();
    let mut permits = Vec::new();
    for h in 0..4 {
        let (p, w) = timed(&s, &key("AAPL", WhatToShow::Trades, h)).await;
        waits.push(w);
        permits.push(p);
    }
    let ms = Duration::from_millis;
    assert_eq!(waits, vec![Duration::ZERO, ms(25), ms(25), ms(25)]);
}

// ---- cancellation and fairness ------------------------------------------------

#[tokio::test(start_paused = true)]
async fn cancelled_waiter_leaves_at_once_and_unblocks_others() {
    let s = PacingScheduler::new(PacingLimits {
        max_per_window: 2,
        ..PacingLimits::ib_exact()
    });
    let _p = timed(&s, &key("AAPL", WhatToShow::Trades, 0)).await;
    // A BID_ASK needs 2 units, only 1 is left: it waits, and (FIFO) holds up the
    // single-unit request behind it.
    let cancel = CancellationToken::new();
    let (s1, c1) = (s.clone(), cancel.clone());
    let heavy = tokio::spawn(async move {
        s1.acquire(&key("MSFT", WhatToShow::BidAsk, 0), &c1)
            .await
            .map(drop)
    });
    tokio::task::yield_now().await;
    let s2 = s.clone();
    let light = tokio::spawn(async move { timed(&s2, &key("SPY", WhatToShow::Trades, 0)).await.1 });
    tokio::time::sleep(secs(5)).await;
    assert_eq!(
        s.stats().waiting,
        2,
        "the light request must not pass the heavy one"
    );
    let t0 = Instant::now();
    cancel.cancel();
    assert_eq!(heavy.await.expect("task"), Err(Cancelled));
    assert_eq!(t0.elapsed(), Duration::ZERO, "cancellation is immediate");
    assert_eq!(
        light.await.expect("task"),
        secs(5),
        "freed by the cancellation"
    );
    let stats = s.stats();
    assert_eq!((stats.cancelled, stats.waiting, stats.granted), (1, 0, 2));
}

#[tokio::test(start_paused = true)]
async fn already_cancelled_token_is_refused_without_recording() {
    let s = PacingScheduler::new(PacingLimits::ib_exact());
    let cancel = CancellationToken::new();
    cancel.cancel();
    let k = key("AAPL", WhatToShow::Trades, 0);
    assert_eq!(s.acquire(&k, &cancel).await.map(drop), Err(Cancelled));
    let (_p, w) = timed(&s, &k).await;
    assert_eq!(w, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn dropped_acquire_leaves_the_queue() {
    let s = PacingScheduler::new(PacingLimits {
        max_open: 1,
        ..PacingLimits::ib_exact()
    });
    let (p, _) = timed(&s, &key("AAPL", WhatToShow::Trades, 0)).await;
    let k = key("MSFT", WhatToShow::Trades, 0);
    let r = tokio::time::timeout(secs(1), s.acquire(&k, &CancellationToken::new())).await;
    assert!(r.is_err(), "times out while the slot is taken");
    assert_eq!(s.stats().waiting, 0);
    drop(p);
    assert_eq!(s.stats().open, 0);
    let (_p, w) = timed(&s, &k).await;
    assert_eq!(w, Duration::ZERO, "the dropped acquire recorded nothing");
}

#[tokio::test(start_paused = true)]
async fn a_repeat_waiting_for_its_interval_does_not_hold_up_others() {
    let s = PacingScheduler::new(PacingLimits::ib_exact());
    let k = key("AAPL", WhatToShow::Trades, 0);
    let _p = timed(&s, &k).await;
    let s1 = s.clone();
    let repeat = tokio::spawn(async move { timed(&s1, &k).await.1 });
    tokio::task::yield_now().await;
    // Same group, other request: passes the waiting repeat.
    let (_q, w) = timed(&s, &key("AAPL", WhatToShow::Trades, 1)).await;
    assert_eq!(w, Duration::ZERO);
    assert_eq!(repeat.await.expect("task"), secs(15));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_stops_holding_others_as_soon_as_the_shared_budget_frees() {
    // The repeat of A is held by the 5 s window (shared) until t=5 and by its own
    // 15 s interval until t=15: from t=5 on it must let the request behind it go.
    let limits = PacingLimits {
        window: secs(5),
        max_per_window: 2,
        ..PacingLimits::ib_exact()
    };
    let s = PacingScheduler::new(limits);
    let a = key("AAPL", WhatToShow::Trades, 0);
    let _p1 = timed(&s, &a).await;
    tokio::time::sleep(secs(1)).await;
    let _p2 = timed(&s, &key("MSFT", WhatToShow::Trades, 0)).await;
    let s1 = s.clone();
    let repeat = tokio::spawn(async move { timed(&s1, &a).await.1 });
    tokio::task::yield_now().await;
    let (_p3, w) = timed(&s, &key("SPY", WhatToShow::Trades, 0)).await;
    assert_eq!(w, secs(4), "goes when A's send leaves the window, at t=5");
    assert_eq!(repeat.await.expect("task"), secs(14), "A's repeat at t=15");
}

#[tokio::test(start_paused = true)]
async fn burst_held_group_does_not_hold_up_other_groups_but_keeps_its_order() {
    let s = PacingScheduler::new(PacingLimits {
        max_per_burst: 1,
        ..PacingLimits::ib_exact()
    });
    let _first = timed(&s, &key("AAPL", WhatToShow::Trades, 0)).await;
    let waits = Arc::new(Mutex::new(HashMap::new()));
    let mut tasks = Vec::new();
    for (n, (sym, h)) in [("AAPL", 10), ("MSFT", 0), ("AAPL", 11), ("SPY", 0)]
        .into_iter()
        .enumerate()
    {
        let (s, waits) = (s.clone(), Arc::clone(&waits));
        tasks.push(tokio::spawn(async move {
            let (_p, w) = timed(&s, &key(sym, WhatToShow::Trades, h)).await;
            waits.lock().expect("waits").insert(n, w);
        }));
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.expect("task");
    }
    let waits = waits.lock().expect("waits").clone();
    // Other groups pass the held AAPL requests; within AAPL, arrival order.
    let want = HashMap::from([
        (0, secs(2)),
        (1, Duration::ZERO),
        (2, secs(4)),
        (3, Duration::ZERO),
    ]);
    assert_eq!(waits, want);
}

#[tokio::test(start_paused = true)]
async fn waiters_for_the_shared_budget_are_served_in_arrival_order() {
    let s = PacingScheduler::new(PacingLimits {
        max_per_window: 3,
        ..PacingLimits::ib_exact()
    });
    let t0 = Instant::now();
    let granted = Arc::new(Mutex::new(HashMap::new()));
    let mut tasks = Vec::new();
    for n in 0..12_i64 {
        let (s, granted) = (s.clone(), Arc::clone(&granted));
        let sym = ["AAPL", "MSFT", "SPY", "QQQ"][usize::try_from(n % 4).expect("small")];
        tasks.push(tokio::spawn(async move {
            let p = s
                .acquire(&key(sym, WhatToShow::Trades, n), &CancellationToken::new())
                .await;
            granted
                .lock()
                .expect("granted")
                .insert(n, Instant::now().duration_since(t0));
            drop(p);
        }));
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.expect("task");
    }
    let granted = granted.lock().expect("granted").clone();
    for n in 0..12_i64 {
        let window = u32::try_from(n / 3).expect("small");
        assert_eq!(granted[&n], secs(600) * window, "request {n}");
    }
}
