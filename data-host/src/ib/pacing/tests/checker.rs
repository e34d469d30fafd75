//! The independent checker: IB's rules written out again, and random bursts of
//! requests run through the scheduler and checked against them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_service_base::SplitMix64;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{key, secs};
use crate::ib::pacing::{PacingLimits, PacingScheduler, PacingStats, RequestKey};
use crate::ib::segment::WhatToShow;
use crate::timeframe::Timeframe;

/// One event of a run: a grant or a release, in the order they happened.
#[derive(Debug, Clone)]
enum Event {
    Grant {
        id: usize,
        at: Instant,
        key: RequestKey,
    },
    Release {
        id: usize,
    },
}

/// IB's rules written out again, deliberately not using the scheduler's types or
/// code: returns every violation found in `log`.
fn ib_violations(log: &[Event]) -> Vec<String> {
    const WINDOW: Duration = Duration::from_secs(600);
    const MAX_WINDOW: u32 = 60;
    const IDENTICAL: Duration = Duration::from_secs(15);
    const BURST: Duration = Duration::from_secs(2);
    const MAX_BURST: u32 = 5;
    const MAX_OPEN: usize = 50;
    let weight = |k: &RequestKey| {
        if k.what_to_show == WhatToShow::BidAsk {
            2
        } else {
            1
        }
    };
    let grants: Vec<(Instant, &RequestKey)> = log
        .iter()
        .filter_map(|e| match e {
            Event::Grant { at, key, .. } => Some((*at, key)),
            Event::Release { .. } => None,
        })
        .collect();
    let mut out = Vec::new();
    // Every window [t, t + len) that starts at a grant: the maximal ones.
    for &(t, k) in &grants {
        let in_window: u32 = grants
            .iter()
            .filter(|(s, _)| *s >= t && *s < t + WINDOW)
            .map(|(_, k)| weight(k))
            .sum();
        if in_window > MAX_WINDOW {
            out.push(format!(
                "{in_window} request units in the 10 min from {t:?}"
            ));
        }
        let same_group = |o: &RequestKey| {
            o.contract.symbol == k.contract.symbol
                && o.contract.instrument == k.contract.instrument
                && o.contract.exchange == k.contract.exchange
                && o.what_to_show == k.what_to_show
        };
        let in_burst: u32 = grants
            .iter()
            .filter(|(s, o)| *s >= t && *s < t + BURST && same_group(o))
            .map(|(_, o)| weight(o))
            .sum();
        if in_burst > MAX_BURST {
            out.push(format!(
                "{in_burst} units for {} {} in the 2 s from {t:?}",
                k.contract.symbol, k.what_to_show
            ));
        }
        let repeats = grants
            .iter()
            .filter(|(s, o)| *s > t && *s < t + IDENTICAL && *o == k)
            .count();
        if repeats > 0 {
            out.push(format!("{repeats} identical repeats within 15 s of {t:?}"));
        }
    }
    let mut open = HashSet::new();
    for e in log {
        match e {
            Event::Grant { id, at, .. } => {
                open.insert(*id);
                if open.len() > MAX_OPEN {
                    out.push(format!("{} requests open at {at:?}", open.len()));
                }
            }
            Event::Release { id } => {
                open.remove(id);
            }
        }
    }
    out
}

/// 200 random requests: 4 symbols, mostly on SMART (a tenth on ARCA), random
/// what-to-show (mostly TRADES, over a quarter BID_ASK), a third exact repeats of an
/// earlier request; 30 % arrive within the first second, the rest over a minute;
/// each is held open 1..120 s as if IB were answering (`slow`: 8..25 min, so that
/// the open-requests cap binds).
fn random_burst(seed: u64, slow: bool) -> Vec<(Duration, Duration, RequestKey)> {
    let mut rng = SplitMix64::new(seed);
    let symbols = ["AAPL", "MSFT", "EURUSD", "SPY"];
    let whats = [
        WhatToShow::Trades,
        WhatToShow::Trades,
        WhatToShow::Trades,
        WhatToShow::Midpoint,
        WhatToShow::Bid,
        WhatToShow::BidAsk,
        WhatToShow::BidAsk,
    ];
    let timeframes = [Timeframe::M1, Timeframe::M5, Timeframe::H1];
    let mut keys: Vec<RequestKey> = Vec::new();
    let mut out = Vec::new();
    for _ in 0..200 {
        let k = if !keys.is_empty() && rng.below(3) == 0 {
            rng.pick(&keys).expect("keys is not empty").clone()
        } else {
            let end_hour = i64::try_from(rng.below(6)).expect("small");
            let symbol = symbols[usize::try_from(rng.below(4)).expect("small")];
            let mut k = key(
                symbol,
                *rng.pick(&whats).expect("a constant list"),
                end_hour,
            );
            if rng.below(10) == 0 {
                k.contract.exchange = "ARCA".to_owned();
            }
            k.timeframe = *rng.pick(&timeframes).expect("a constant list");
            k
        };
        keys.push(k.clone());
        let arrive = if rng.below(10) < 3 {
            Duration::from_millis(rng.below(1_000))
        } else {
            Duration::from_millis(rng.below(60_000))
        };
        let hold = if slow {
            Duration::from_millis(480_000 + rng.below(1_020_000))
        } else {
            Duration::from_millis(1_000 + rng.below(119_000))
        };
        out.push((arrive, hold, k));
    }
    out
}

/// Runs the burst through a scheduler with `limits`, logging grants and releases.
async fn run_burst(
    limits: PacingLimits,
    seed: u64,
    slow: bool,
) -> (Vec<Event>, PacingStats, Duration) {
    let scheduler = PacingScheduler::new(limits);
    let log = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (id, (arrive, hold, k)) in random_burst(seed, slow).into_iter().enumerate() {
        let (scheduler, log) = (scheduler.clone(), Arc::clone(&log));
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(arrive).await;
            let permit = scheduler
                .acquire(&k, &CancellationToken::new())
                .await
                .expect("never cancelled");
            let at = Instant::now();
            assert_eq!(
                permit.granted_at(),
                at,
                "the grant is recorded when it is handed out"
            );
            log.lock()
                .expect("log")
                .push(Event::Grant { id, at, key: k });
            tokio::time::sleep(hold).await;
            log.lock().expect("log").push(Event::Release { id });
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.expect("task ok");
    }
    let log = log.lock().expect("log").clone();
    let grant_span = log
        .iter()
        .filter_map(|e| match e {
            Event::Grant { at, .. } => Some(at.duration_since(start)),
            Event::Release { .. } => None,
        })
        .max()
        .unwrap_or_default();
    (log, scheduler.stats(), grant_span)
}

fn units(log: &[Event]) -> u32 {
    log.iter()
        .map(|e| match e {
            Event::Grant { key, .. } if key.what_to_show == WhatToShow::BidAsk => 2,
            Event::Grant { .. } => 1,
            Event::Release { .. } => 0,
        })
        .sum()
}

/// How close a log came to each limit: the most units in any 10 min, the most
/// units of one group in any 2 s, the most requests open, the shortest interval
/// between identical requests. Shows the burst really ran against every rule.
fn peaks(log: &[Event]) -> (u32, u32, usize, Option<Duration>) {
    let weight = |k: &RequestKey| {
        if k.what_to_show == WhatToShow::BidAsk {
            2
        } else {
            1
        }
    };
    let grants: Vec<(Instant, &RequestKey)> = log
        .iter()
        .filter_map(|e| match e {
            Event::Grant { at, key, .. } => Some((*at, key)),
            Event::Release { .. } => None,
        })
        .collect();
    let (mut window, mut burst, mut gap) = (0, 0, None::<Duration>);
    for &(t, k) in &grants {
        let after = |len: Duration| grants.iter().filter(move |(s, _)| *s >= t && *s < t + len);
        window = window.max(after(secs(600)).map(|(_, o)| weight(o)).sum());
        let group = |o: &&RequestKey| o.contract == k.contract && o.what_to_show == k.what_to_show;
        burst = burst.max(
            after(secs(2))
                .filter(|(_, o)| group(o))
                .map(|(_, o)| weight(o))
                .sum(),
        );
        for (s, _) in grants.iter().filter(|(s, o)| *s > t && *o == k) {
            let d = s.duration_since(t);
            gap = Some(gap.map_or(d, |g| g.min(d)));
        }
    }
    let (mut open, mut most) = (0_usize, 0);
    for e in log {
        match e {
            Event::Grant { .. } => open += 1,
            Event::Release { .. } => open -= 1,
        }
        most = most.max(open);
    }
    (window, burst, most, gap)
}

#[tokio::test(start_paused = true)]
async fn random_burst_breaks_no_rule_exact_limits() {
    for seed in [1, 2, 3] {
        let (log, stats, span) = run_burst(PacingLimits::ib_exact(), seed, false).await;
        let violations = ib_violations(&log);
        assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
        assert_eq!(stats.granted, 200);
        assert!(stats.delayed > 0, "the burst must have been paced");
        assert_eq!((stats.open, stats.waiting), (0, 0));
        let (window, burst, _, gap) = peaks(&log);
        assert_eq!(
            (window, burst, gap),
            (60, 5, Some(secs(15))),
            "seed {seed}: limits reached exactly"
        );
        // Not needlessly slow: the 60-per-10-min budget is the bottleneck, so the
        // last grant comes within the window in which the last unit fits.
        let windows = u64::from(units(&log).div_ceil(60));
        assert!(
            span <= secs(600 * (windows - 1) + 240),
            "seed {seed}: {span:?} for {windows} windows"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn slow_answers_hit_the_open_cap_and_break_no_rule() {
    for seed in [4, 5] {
        let (log, stats, _) = run_burst(PacingLimits::ib_exact(), seed, true).await;
        let violations = ib_violations(&log);
        assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
        assert_eq!(stats.granted, 200);
        let (window, _, open, _) = peaks(&log);
        assert_eq!(
            (window, open),
            (60, 50),
            "seed {seed}: limits reached exactly"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn random_burst_breaks_no_rule_default_limits() {
    for slow in [false, true] {
        let (log, stats, _) = run_burst(PacingLimits::default(), 7, slow).await;
        let violations = ib_violations(&log);
        assert!(violations.is_empty(), "{violations:#?}");
        assert_eq!(stats.granted, 200);
    }
}

#[tokio::test(start_paused = true)]
async fn the_checker_catches_an_unpaced_burst() {
    let (log, stats, span) = run_burst(PacingLimits::disabled(), 1, false).await;
    assert_eq!(stats.delayed, 0);
    assert!(span < secs(60));
    let violations = ib_violations(&log);
    let has = |what: &str| violations.iter().any(|v| v.contains(what));
    assert!(has("in the 10 min"), "{violations:#?}");
    assert!(has("identical"), "{violations:#?}");
    assert!(has("in the 2 s"), "{violations:#?}");
    assert!(has("open at"), "{violations:#?}");
}

#[tokio::test(start_paused = true)]
async fn the_checker_counts_each_rule() {
    // Hand-made logs: exactly at the limits pass, one more fails.
    let t = Instant::now();
    let grant = |id, at, key| Event::Grant { id, at, key };
    let k = key("AAPL", WhatToShow::Trades, 0);
    let ok = vec![grant(0, t, k.clone()), grant(1, t + secs(15), k.clone())];
    assert!(ib_violations(&ok).is_empty());
    let bad = vec![grant(0, t, k.clone()), grant(1, t + secs(14), k.clone())];
    assert_eq!(ib_violations(&bad).len(), 1);
    let burst: Vec<Event> = (0..5)
        .map(|i| grant(i, t, key("AAPL", WhatToShow::Trades, i as i64)))
        .collect();
    assert!(ib_violations(&burst).is_empty());
    let mut six = burst.clone();
    six.push(grant(
        5,
        t + Duration::from_millis(1999),
        key("AAPL", WhatToShow::Trades, 5),
    ));
    assert!(!ib_violations(&six).is_empty());
    let bid_ask: Vec<Event> = (0..3)
        .map(|i| grant(i, t, key("AAPL", WhatToShow::BidAsk, i as i64)))
        .collect();
    assert!(!ib_violations(&bid_ask).is_empty(), "3 BID_ASK are 6 units");
}
