//! The requests the IB provider sends, each through the layers of [`super`]: bars
//! (coalesce the range → segments → coalesce each segment's IB request → pacing
//! permit → `historical_data` with a timeout and cancellation), head timestamps
//! (cached, coalesced, paced) and contract details.
//!
//! **Cancellation reaches IB by dropping.** `ibapi`'s `fetch()` future owns the
//! request's subscription; dropping it before IB's end-of-data frame makes `ibapi`
//! spawn `cancelHistoricalData` for the request id (after that frame, or after an
//! error that ends the request, it sends nothing — there is nothing left to
//! cancel). Here the future is raced against the work's cancellation token and the
//! request timeout in one `select!`, so when either wins the future is dropped there
//! and then. The work's token fires when every caller of the coalesced range has
//! gone (cancelled or dropped its `bars()` future); the same holds for head
//! timestamps and contract details (`ibapi` cancels those on drop too, contract
//! details from server version 215).
//!
//! A segment is asked for as the IB window of `convert::ib_window` (its end a
//! second early) and the answer trimmed to the segment.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use ibapi::contracts::ContractDetails;
use ibapi::market_data::TradingHours;
use lru::LruCache;
use polars::prelude::DataFrame;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::coalesce::{CoalesceError, Coalescer};
use super::config::IbConfig;
use super::connection::Connection;
use super::contract::IbContract;
use super::convert::{convert, ib_window, offset_time};
use super::errors::{self, Answer, IbError};
use super::pacing::{ContractKey, PacingPermit, PacingScheduler, RequestKey};
use super::segment::{DurationUnit, IbDuration, Segment, WhatToShow, ib_bar_size, split};
use crate::bars::{Bar, bars_to_frame};
use crate::timeframe::Timeframe;

/// How long a head timestamp is reused: IB's earliest bar of a contract does not move.
const HEAD_TTL: Duration = Duration::from_secs(600);

/// The most head timestamps kept. Each one cost a paced IB request, so at IB's
/// default budget (60 per 10 minutes, the TTL) fewer are ever alive; the cap holds
/// whatever budget is configured.
const HEAD_CACHE_ENTRIES: NonZeroUsize = NonZeroUsize::new(1024).expect("non-zero");

/// A whole bars request, as coalesced.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RangeKey {
    contract: ContractKey,
    what_to_show: WhatToShow,
    timeframe: Timeframe,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// What IB's head timestamp depends on: the contract and what-to-show (not the bar
/// size).
type HeadKey = (ContractKey, WhatToShow);

/// Head timestamps with the instant they were asked, least recently used out first.
type HeadCache = LruCache<HeadKey, (Instant, Option<DateTime<Utc>>)>;

/// Counters for `/health/detailed`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bars_calls: AtomicU64,
    pub(crate) head_calls: AtomicU64,
    pub(crate) validate_calls: AtomicU64,
    pub(crate) historical_sent: AtomicU64,
    pub(crate) head_sent: AtomicU64,
    pub(crate) contract_sent: AtomicU64,
    pub(crate) no_data: AtomicU64,
    pub(crate) errors: AtomicU64,
}

pub(crate) fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Everything the provider's requests share.
pub(crate) struct Inner {
    pub(crate) config: IbConfig,
    pub(crate) connection: Connection,
    pub(crate) pacing: PacingScheduler,
    pub(crate) ranges: Coalescer<RangeKey, Result<DataFrame, IbError>>,
    pub(crate) segments: Coalescer<RequestKey, Result<Arc<Vec<Bar>>, IbError>>,
    heads: Coalescer<HeadKey, Result<Option<DateTime<Utc>>, IbError>>,
    head_cache: Mutex<HeadCache>,
    pub(crate) counters: Counters,
}

fn coalesced<T>(outcome: Result<Result<T, IbError>, CoalesceError>) -> Result<T, IbError> {
    match outcome {
        Ok(result) => result,
        Err(CoalesceError::Cancelled) => Err(IbError::Cancelled),
        Err(CoalesceError::WorkFailed) => Err(IbError::Internal(
            "the shared request ended without a result".to_owned(),
        )),
    }
}

impl Inner {
    pub(crate) fn new(config: IbConfig) -> Self {
        Self {
            connection: Connection::start(config.clone()),
            pacing: PacingScheduler::new(config.pacing),
            config,
            ranges: Coalescer::new(),
            segments: Coalescer::new(),
            heads: Coalescer::new(),
            head_cache: Mutex::new(LruCache::new(HEAD_CACHE_ENTRIES)),
            counters: Counters::default(),
        }
    }

    fn context<'a>(&'a self, contract: &'a IbContract) -> errors::Context<'a> {
        errors::Context {
            symbol: contract.symbol().as_str(),
            gateway: self.connection.gateway(),
            timeout: self.config.request_timeout,
        }
    }

    /// Races `request` against `cancel` and the request timeout; the loser is
    /// dropped (which cancels an `ibapi` request at IB).
    async fn answer<T>(
        &self,
        contract: &IbContract,
        cancel: &CancellationToken,
        request: impl Future<Output = Result<T, ibapi::Error>>,
    ) -> Result<Option<T>, IbError> {
        let timeout = self.config.request_timeout;
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(IbError::Cancelled),
            answer = tokio::time::timeout(timeout, request) => match answer {
                Err(_) => Err(IbError::Timeout(timeout)),
                Ok(Ok(value)) => Ok(Some(value)),
                Ok(Err(error)) => match errors::classify(&error, self.context(contract)) {
                    Answer::NoData => {
                        bump(&self.counters.no_data);
                        Ok(None)
                    }
                    Answer::Failed(e) => Err(e),
                },
            },
        }
    }

    /// Releases a permit whose request was abandoned (cancelled, timed out): a
    /// margin later, since the cancel `ibapi` spawns reaches IB only after the drop,
    /// and until then IB still counts the request open.
    fn release_later(&self, permit: PacingPermit) {
        let hold = self.pacing.limits().margin;
        if hold.is_zero() {
            drop(permit);
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            drop(permit);
        });
    }

    /// Bars of `contract` at `timeframe` in `[start, end)`, one frame sorted and
    /// unique by time. Identical concurrent calls share one fetch.
    pub(crate) async fn bars(
        self: &Arc<Self>,
        contract: IbContract,
        timeframe: Timeframe,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        cancel: &CancellationToken,
    ) -> Result<DataFrame, IbError> {
        let key = RangeKey {
            contract: contract.key.clone(),
            what_to_show: contract.what_to_show,
            timeframe,
            start,
            end,
        };
        let this = Arc::clone(self);
        let outcome = self
            .ranges
            .run(key, cancel, move |token| async move {
                this.fetch_range(&contract, timeframe, start, end, &token)
                    .await
            })
            .await;
        coalesced(outcome)
    }

    async fn fetch_range(
        self: &Arc<Self>,
        contract: &IbContract,
        timeframe: Timeframe,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        cancel: &CancellationToken,
    ) -> Result<DataFrame, IbError> {
        let segments = split(timeframe, start, end);
        let parts: Vec<(Segment, Arc<Vec<Bar>>)> = futures::stream::iter(segments)
            .map(|segment| async move {
                let bars = self.segment(contract, timeframe, segment, cancel).await?;
                Ok::<_, IbError>((segment, bars))
            })
            .buffered(self.config.segment_concurrency.max(1))
            .try_collect()
            .await?;
        let mut bars: Vec<Bar> = parts
            .iter()
            .flat_map(|(segment, bars)| bars.iter().filter(|b| segment.contains(b.timestamp)))
            .copied()
            .collect();
        bars.sort_by_key(|bar| bar.timestamp);
        bars.dedup_by_key(|bar| bar.timestamp);
        bars_to_frame(&bars).map_err(|e| IbError::Internal(e.to_string()))
    }

    /// IB's whole answer for one segment's request (not yet trimmed to the segment:
    /// two segments can ask the same request).
    async fn segment(
        self: &Arc<Self>,
        contract: &IbContract,
        timeframe: Timeframe,
        segment: Segment,
        cancel: &CancellationToken,
    ) -> Result<Arc<Vec<Bar>>, IbError> {
        let (end, duration) = ib_window(&segment);
        let key = RequestKey {
            contract: contract.key.clone(),
            timeframe,
            what_to_show: contract.what_to_show,
            end: Some(end),
            duration,
        };
        let (this, contract, request) = (Arc::clone(self), contract.clone(), key.clone());
        let outcome = self
            .segments
            .run(key, cancel, move |token| async move {
                this.fetch_segment(&contract, &request, &token).await
            })
            .await;
        coalesced(outcome)
    }

    async fn fetch_segment(
        &self,
        contract: &IbContract,
        key: &RequestKey,
        cancel: &CancellationToken,
    ) -> Result<Arc<Vec<Bar>>, IbError> {
        let end = offset_time(key.end.unwrap_or_else(Utc::now))?;
        // Connected (or the attempt under way done) before a pacing slot is spent.
        self.connection.client(cancel).await?;
        let permit = self.pacing.acquire(key, cancel).await?;
        // The pacing wait may have outlived that client: take the current one.
        let client = self.connection.client(cancel).await?;
        bump(&self.counters.historical_sent);
        let request = client
            .historical_data(&contract.contract, ib_bar_size(key.timeframe))
            .what_to_show(key.what_to_show.to_ibapi())
            .trading_hours(if self.config.use_rth {
                TradingHours::Regular
            } else {
                TradingHours::Extended
            })
            .ending(end)
            .duration(key.duration.to_ibapi())
            .fetch();
        let answer = self.answer(contract, cancel, request).await;
        match &answer {
            Err(IbError::Cancelled | IbError::Timeout(_)) => self.release_later(permit),
            _ => drop(permit),
        }
        let data = answer?;
        let bars = data.map_or_else(Vec::new, |d| d.bars.iter().filter_map(convert).collect());
        Ok(Arc::new(bars))
    }

    /// The earliest data point IB has for `contract` (`None`: no data). Cached for
    /// [`HEAD_TTL`], coalesced, and paced like a historical request.
    pub(crate) async fn head_timestamp(
        self: &Arc<Self>,
        contract: &IbContract,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, IbError> {
        let key: HeadKey = (contract.key.clone(), contract.what_to_show);
        let cached = {
            let mut cache = self
                .head_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            cache
                .get(&key)
                .filter(|(at, _)| at.elapsed() < HEAD_TTL)
                .map(|(_, head)| *head)
        };
        if let Some(head) = cached {
            return Ok(head);
        }
        let (this, c) = (Arc::clone(self), contract.clone());
        let outcome = self
            .heads
            .run(key.clone(), cancel, move |token| async move {
                this.fetch_head(&c, &token).await
            })
            .await;
        let head = coalesced(outcome)?;
        let mut cache = self
            .head_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Expired entries go here (from the least recently used end, where the oldest
        // answers sit), so the cache mostly holds recently asked contracts; the capacity
        // bounds it in any case.
        while cache
            .peek_lru()
            .is_some_and(|(_, (at, _))| at.elapsed() >= HEAD_TTL)
        {
            cache.pop_lru();
        }
        cache.put(key, (Instant::now(), head));
        Ok(head)
    }

    async fn fetch_head(
        &self,
        contract: &IbContract,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, IbError> {
        self.connection.client(cancel).await?;
        // Paced by a key of its own: no end time, a nominal duration. Two head
        // timestamps of one contract count as identical requests.
        let key = RequestKey {
            contract: contract.key.clone(),
            timeframe: Timeframe::D1,
            what_to_show: contract.what_to_show,
            end: None,
            duration: IbDuration::new(1, DurationUnit::Seconds),
        };
        let permit = self.pacing.acquire(&key, cancel).await?;
        let client = self.connection.client(cancel).await?;
        bump(&self.counters.head_sent);
        let hours = if self.config.use_rth {
            TradingHours::Regular
        } else {
            TradingHours::Extended
        };
        let request =
            client.head_timestamp(&contract.contract, contract.what_to_show.to_ibapi(), hours);
        let answer = self.answer(contract, cancel, request).await;
        match &answer {
            Err(IbError::Cancelled | IbError::Timeout(_)) => self.release_later(permit),
            _ => drop(permit),
        }
        // A head timestamp outside chrono's range is as good as none.
        Ok(answer?.and_then(|at| {
            i64::try_from(at.unix_timestamp_nanos())
                .ok()
                .map(DateTime::from_timestamp_nanos)
        }))
    }

    /// IB's contract details for `contract` (empty: IB knows none).
    pub(crate) async fn contract_details(
        &self,
        contract: &IbContract,
        cancel: &CancellationToken,
    ) -> Result<Vec<ContractDetails>, IbError> {
        let client = self.connection.client(cancel).await?;
        bump(&self.counters.contract_sent);
        let details = self
            .answer(
                contract,
                cancel,
                client.contract_details(&contract.contract),
            )
            .await?;
        Ok(details.unwrap_or_default())
    }
}
