//! Composition: [`StreamService::builder`] puts a transport, the dedup store, a retry
//! policy, the dead-letter topics, any number of consumers and producers together;
//! [`StreamService::start`] runs them as one and [`RunningService::stop`] stops them as
//! one (stop fetching, finish what is in flight within the deadline, commit, flush the
//! producers and dead-letter writers).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::consume::{self, Live, Pace};
use super::dead_letter::DeadLetter;
use super::dedup::{DEFAULT_LOCAL_CAPACITY, Dedup, DedupReport};
use super::handler::Handler;
use super::producer::Producer;
use super::reliable::{Consumer, DeadLetterHook, DeadLetters, Reliability};
use super::retry::RetryPolicy;
use super::stats::{ConsumerReport, Recorder};
use super::transport::Transport;
use crate::Envelope;
use crate::error::StreamError;

/// One consumer of a service: a name (dedup scope and metrics label), a group, topics,
/// a handler.
pub struct Consume {
    name: String,
    group: String,
    topics: Vec<String>,
    handler: Arc<dyn Handler>,
    concurrency: usize,
}

impl std::fmt::Debug for Consume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consume")
            .field("name", &self.name)
            .field("group", &self.group)
            .field("topics", &self.topics)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Consume {
    /// `handler` for the envelopes of `topics`, as a member of `group`; one message at
    /// a time until [`Consume::concurrency`] says more.
    pub fn new(
        name: impl Into<String>,
        group: impl Into<String>,
        topics: &[&str],
        handler: impl Handler,
    ) -> Self {
        Self {
            name: name.into(),
            group: group.into(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            handler: Arc::new(handler),
            concurrency: 1,
        }
    }

    /// Messages handled at once (they may finish out of order; commits stay safe).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }
}

/// Assembles a [`StreamService`].
pub struct StreamServiceBuilder {
    name: String,
    transport: Option<Arc<dyn Transport>>,
    dedup: Option<Dedup>,
    retry: RetryPolicy,
    hook: Option<DeadLetterHook>,
    consumers: Vec<Consume>,
    producers: Vec<Producer>,
    commit_interval: Duration,
    stop_deadline: Duration,
}

impl std::fmt::Debug for StreamServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamServiceBuilder")
            .field("name", &self.name)
            .field("consumers", &self.consumers)
            .finish_non_exhaustive()
    }
}

impl StreamServiceBuilder {
    /// Where the service reads and writes (required).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The dedup stage (default: a local LRU of 100,000 ids).
    pub fn dedup(mut self, dedup: Dedup) -> Self {
        self.dedup = Some(dedup);
        self
    }

    /// Retries of transient failures (default [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Called after each dead letter is delivered.
    pub fn on_dead_letter(
        mut self,
        hook: impl Fn(&DeadLetter, Option<&Envelope>) + Send + Sync + 'static,
    ) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Adds a consumer.
    pub fn consumer(mut self, consume: Consume) -> Self {
        self.consumers.push(consume);
        self
    }

    /// Adds a producer the service flushes and closes when it stops.
    pub fn producer(mut self, producer: Producer) -> Self {
        self.producers.push(producer);
        self
    }

    /// How often progress is committed while running (default 500 ms; a stop always
    /// commits).
    pub fn commit_interval(mut self, every: Duration) -> Self {
        self.commit_interval = every;
        self
    }

    /// How long a stop waits for messages in flight (default 10 s).
    pub fn stop_deadline(mut self, deadline: Duration) -> Self {
        self.stop_deadline = deadline;
        self
    }

    /// The service, or what is missing or wrong (named).
    pub fn build(self) -> Result<StreamService, StreamError> {
        let transport = self
            .transport
            .ok_or_else(|| StreamError::config("transport", "a stream service needs one"))?;
        if self.consumers.is_empty() {
            return Err(StreamError::config(
                "consumers",
                "a stream service needs at least one consumer",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for c in &self.consumers {
            if c.name.is_empty() || !names.insert(c.name.as_str()) {
                return Err(StreamError::config(
                    "consumer name",
                    format!("`{}` is empty or used twice", c.name),
                ));
            }
            if c.topics.is_empty() || c.topics.iter().any(String::is_empty) {
                return Err(StreamError::config(
                    "topics",
                    format!("consumer `{}` needs non-empty topic names", c.name),
                ));
            }
            if c.group.is_empty() {
                return Err(StreamError::config(
                    "group",
                    format!("consumer `{}` needs a group", c.name),
                ));
            }
            if c.concurrency == 0 {
                return Err(StreamError::config(
                    "concurrency",
                    format!("consumer `{}`: at least 1", c.name),
                ));
            }
        }
        if self.retry.max_attempts == 0 {
            return Err(StreamError::config("max_attempts", "at least 1"));
        }
        let layer = Arc::new(Reliability {
            dedup: Arc::new(
                self.dedup
                    .unwrap_or_else(|| Dedup::local(DEFAULT_LOCAL_CAPACITY)),
            ),
            retry: self.retry,
            dead_letters: DeadLetters::new(transport.clone(), self.hook),
        });
        Ok(StreamService {
            name: self.name,
            transport,
            layer,
            consumers: self.consumers,
            producers: self.producers,
            commit_interval: self.commit_interval,
            stop_deadline: self.stop_deadline,
        })
    }
}

/// Consumers, producers and the reliability layer, ready to run.
pub struct StreamService {
    name: String,
    transport: Arc<dyn Transport>,
    layer: Arc<Reliability>,
    consumers: Vec<Consume>,
    producers: Vec<Producer>,
    commit_interval: Duration,
    stop_deadline: Duration,
}

impl std::fmt::Debug for StreamService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamService")
            .field("name", &self.name)
            .field("consumers", &self.consumers)
            .finish_non_exhaustive()
    }
}

impl StreamService {
    /// A builder for the service called `name`.
    pub fn builder(name: impl Into<String>) -> StreamServiceBuilder {
        StreamServiceBuilder {
            name: name.into(),
            transport: None,
            dedup: None,
            retry: RetryPolicy::default(),
            hook: None,
            consumers: Vec::new(),
            producers: Vec::new(),
            commit_interval: Duration::from_millis(500),
            stop_deadline: Duration::from_secs(10),
        }
    }

    /// Opens every consumer's reader and starts them. A reader that cannot be opened
    /// fails the start (and the readers opened before it are released).
    pub fn start(self) -> Result<RunningService, StreamError> {
        let fetch = CancellationToken::new();
        let stop = CancellationToken::new();
        let mut opened = Vec::new();
        for c in self.consumers {
            let reader = self
                .transport
                .reader(&c.group, &c.topics, fetch.child_token())?;
            opened.push((c, reader));
        }
        let mut tasks = JoinSet::new();
        let mut consumers = Vec::new();
        for (c, reader) in opened {
            let consumer = Arc::new(Consumer {
                recorder: Recorder::new(&c.name),
                name: c.name,
                group: c.group,
                handler: c.handler,
            });
            let live = Arc::new(Live::default());
            let pace = Pace {
                concurrency: c.concurrency,
                commit_interval: self.commit_interval,
                stop_deadline: self.stop_deadline,
            };
            tasks.spawn(consume::run(
                reader,
                consumer.clone(),
                self.layer.clone(),
                pace,
                stop.clone(),
                live.clone(),
            ));
            consumers.push((consumer, c.topics, live));
        }
        tracing::info!(service = %self.name, consumers = consumers.len(), "stream service started");
        Ok(RunningService {
            name: self.name,
            fetch,
            stop,
            tasks,
            consumers,
            layer: self.layer,
            producers: self.producers,
        })
    }
}

/// What a running service reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceReport {
    /// The service's name.
    pub service: String,
    /// Its consumers.
    pub consumers: Vec<ConsumerReport>,
    /// The dedup stage.
    pub dedup: DedupReport,
}

/// A started service; [`RunningService::stop`] stops it as one.
pub struct RunningService {
    name: String,
    fetch: CancellationToken,
    stop: CancellationToken,
    tasks: JoinSet<()>,
    consumers: Vec<(Arc<Consumer>, Vec<String>, Arc<Live>)>,
    layer: Arc<Reliability>,
    producers: Vec<Producer>,
}

impl std::fmt::Debug for RunningService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningService")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RunningService {
    /// Counters of every consumer and of the dedup stage.
    pub fn report(&self) -> ServiceReport {
        ServiceReport {
            service: self.name.clone(),
            consumers: self
                .consumers
                .iter()
                .map(|(c, topics, live)| {
                    let in_flight = live.in_flight.load(std::sync::atomic::Ordering::Relaxed);
                    c.recorder.report(&c.group, topics, in_flight)
                })
                .collect(),
            dedup: self.layer.dedup.report(),
        }
    }

    /// Stops fetching, lets what is in flight finish (retries waiting for a delay are
    /// left: read again after a restart), commits, then flushes and closes the
    /// producers and dead-letter writers. Returns the final report, or the first
    /// flush error.
    pub async fn stop(mut self) -> Result<ServiceReport, StreamError> {
        self.fetch.cancel();
        // Retry and dedup waits end now; handler calls in progress run on.
        self.stop.cancel();
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = joined {
                tracing::error!(service = %self.name, %error, "a consumer task ended abnormally");
            }
        }
        let mut first_error = self.layer.dead_letters.close().await.err();
        for producer in &self.producers {
            if let Err(e) = producer.close().await {
                first_error.get_or_insert(e);
            }
        }
        let report = self.report();
        tracing::info!(service = %self.name, ?report, "stream service stopped");
        first_error.map_or(Ok(report), Err)
    }
}
