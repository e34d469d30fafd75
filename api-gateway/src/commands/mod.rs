//! Commands in: with `KAFKA_COMMANDS_TOPIC` set, the gateway consumes
//! `data.load.requested` and `training.start.requested` envelopes through an
//! event-stream [`StreamService`]: dedup by command id (a local LRU, Redis with
//! `REDIS_URL`), retries while a host is down, `{topic}.dlq` for what cannot be done,
//! offsets committed only once a command's outcome is final. The operation a command
//! starts has the command's id, so a command delivered again (a crash between start and
//! commit) starts nothing new even without Redis. Every dead-lettered command is also
//! published as a `command.rejected` event, so its requester learns of it.

pub mod config;
pub mod handler;

use std::sync::{Arc, Mutex, PoisonError};

use event_stream::Envelope;
use event_stream::StreamError;
use event_stream::stream::dead_letter::{self, DeadLetter};
use event_stream::stream::dedup::{DEFAULT_LOCAL_CAPACITY, DEFAULT_TTL};
use event_stream::stream::{
    Consume, Dedup, KafkaTransport, RedisStore, RunningService, ServiceReport, StreamService,
};
use serde_json::{Value, json};

pub use config::CommandSettings;
pub use handler::{CommandHandler, LOAD_REQUESTED, TRAINING_REQUESTED};

use crate::events::Events;
use crate::events::translate::SOURCE;
use crate::gateway::Gateway;

/// The event published for every dead-lettered command.
pub const REJECTED: &str = "command.rejected";

/// The consumer's name (dedup scope, metrics label `consumer`).
pub const CONSUMER_NAME: &str = "commands";

/// The commands consumer of a gateway: started with the server, stopped before it
/// drains.
#[derive(Debug, Clone)]
pub struct Commands {
    settings: Arc<CommandSettings>,
    running: Arc<Mutex<Option<RunningService>>>,
    /// The report at the stop, for the health route after it.
    last: Arc<Mutex<Option<ServiceReport>>>,
}

impl Commands {
    /// A consumer to be started with [`Commands::start`].
    pub fn new(settings: CommandSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            running: Arc::default(),
            last: Arc::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &CommandSettings {
        &self.settings
    }

    /// Starts consuming (joining the group happens in the background).
    pub fn start(&self, gateway: &Gateway) -> Result<(), StreamError> {
        let s = &*self.settings;
        let transport = KafkaTransport::new(s.kafka.clone(), s.producer.clone())
            .with_session_timeout_ms(s.session_timeout_ms);
        let mut dedup = Dedup::local(DEFAULT_LOCAL_CAPACITY);
        if let Some(url) = &s.redis_url {
            let store = RedisStore::new(url)
                .map_err(|e| StreamError::config(config::REDIS_URL, e.message))?;
            dedup = dedup.with_shared(Arc::new(store), s.on_store_failure, DEFAULT_TTL);
        }
        let events = gateway.events().clone();
        let service = StreamService::builder("gateway-commands")
            .transport(Arc::new(transport))
            .dedup(dedup)
            .retry(s.retry)
            .on_dead_letter(move |letter, command| publish_rejection(&events, letter, command))
            .consumer(
                Consume::new(
                    CONSUMER_NAME,
                    s.group.clone(),
                    &[s.topic.as_str()],
                    CommandHandler::new(gateway.clone()),
                )
                .concurrency(s.concurrency),
            )
            .build()?
            .start()?;
        tracing::info!(topic = %s.topic, group = %s.group, redis = s.redis_url.is_some(),
            "consuming commands");
        tokio::spawn(ensure_topics(s.kafka.clone(), s.topic.clone()));
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) = Some(service);
        Ok(())
    }

    /// Stops fetching, finishes the commands in flight, commits.
    pub async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(service) = running {
            match service.stop().await {
                Ok(report) => {
                    *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(report);
                }
                Err(error) => tracing::warn!(%error, "commands consumer stopped with an error"),
            }
        }
    }

    /// The `events.commands` object of `/api/v1/health`.
    pub fn health(&self) -> Value {
        let s = &*self.settings;
        let (running, report) = {
            let live = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            match &*live {
                Some(service) => (true, Some(service.report())),
                None => (
                    false,
                    self.last
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone(),
                ),
            }
        };
        let consumer = report.as_ref().and_then(|r| r.consumers.first());
        json!({
            "topic": s.topic,
            "group": s.group,
            "dead_letter_topic": dead_letter::topic_for(&s.topic),
            "running": running,
            "consumer": consumer,
            "dedup": report.as_ref().map(|r| &r.dedup),
        })
    }

    /// Whether the consumer can work: Redis up or the policy fail-open.
    pub fn healthy(&self) -> bool {
        let live = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        live.as_ref().is_none_or(|s| {
            let dedup = s.report().dedup;
            dedup.store_up || dedup.on_store_failure == "open"
        })
    }
}

/// Creates the commands topic and its dead-letter topic as the catalogue wants them
/// when they are missing (a command sent before them would otherwise go to a topic the
/// broker makes with its defaults). Tries for a while, then leaves it to `hostbridge
/// topics setup`; never changes a topic that exists.
async fn ensure_topics(kafka: event_stream::kafka::KafkaConfig, topic: String) {
    use event_stream::kafka::catalogue::{EVENTS_TOPIC, MARKET_DATA_TOPIC, ensure};
    use event_stream::kafka::{Catalogue, KafkaAdmin};
    let catalogue = Catalogue::new(EVENTS_TOPIC, &topic, MARKET_DATA_TOPIC);
    let Ok(admin) = KafkaAdmin::new(&kafka) else {
        return;
    };
    for name in [topic.clone(), dead_letter::topic_for(&topic)] {
        let Some(spec) = catalogue.get(&name) else {
            continue;
        };
        let mut delay = std::time::Duration::from_millis(500);
        for attempt in 1..=8 {
            match ensure(&admin, spec, 1).await {
                Ok(status) => {
                    tracing::info!(topic = %name, ?status, "commands topic ready");
                    break;
                }
                Err(error) if attempt == 8 => {
                    tracing::warn!(topic = %name, %error, "could not create the topic; run `hostbridge topics setup`");
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(10));
                }
            }
        }
    }
}

/// The `command.rejected` event of a dead letter: subject = the command id (when the
/// message decoded), its correlation id, and why.
pub fn rejection(letter: &DeadLetter, command: Option<&Envelope>) -> Option<Envelope> {
    let data = json!({
        "command_id": letter.event_id,
        "command_type": command.map(|c| c.event_type.as_str()),
        "error_class": letter.class,
        "error": letter.message,
        "attempts": letter.attempts,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "dead_letter_topic": letter.topic.as_deref().map(dead_letter::topic_for),
    });
    let mut event = Envelope::new(REJECTED, SOURCE, data)
        .ok()?
        .with_correlation_id(letter.correlation_id.clone());
    if let Some(id) = &letter.event_id {
        event = event.with_subject(id.clone());
    }
    Some(event)
}

fn publish_rejection(events: &Events, letter: &DeadLetter, command: Option<&Envelope>) {
    if let Some(event) = rejection(letter, command) {
        events.publish(event);
    }
}
