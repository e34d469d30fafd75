//! The assembled gateway: configuration → data manager, training manager, operations
//! registry and health probes; [`Gateway::serve`] runs it on the shared server
//! scaffold.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use data_host::client::DataHostClient;
use data_host::ib::{IbConfig, IbProvider};
use data_host::local::LocalProvider;
use data_host::provider::DataProvider;
use data_host::store::{Store, StoreFormat};
use host_service_base::AsyncHostService;
use host_service_base::operations::{Operations, OperationsConfig, OperationsError};
use host_service_base::server::{ServeError, Server, ServerConfig, ShutdownReport};
use host_service_base::telemetry::TelemetryError;
use host_service_base::{CancellationToken, HostError};
use serde::Serialize;
use tokio::net::TcpListener;
use training_host::model::PathStyle;
use training_host::sessions::{SessionConfig, SessionManager};
use training_host::trainer::CandleTrainer;

use crate::commands::{CommandSettings, Commands};
use crate::config::{GatewayConfig, ServiceMode};
use crate::data::DataManager;
use crate::data::pooled::{DATA_HOST, PooledDataHost};
use crate::events::{EventSettings, Events};
use crate::pool::{HostPool, InstanceReport};
use crate::training::{Backend, TRAINING_HOST, TrainingManager};

/// How long shutdown waits for the event sinks to send what they hold.
pub const EVENT_FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything the gateway is built from.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Routing and access.
    pub config: GatewayConfig,
    /// The store the gateway loads into and serves from.
    pub data_dir: PathBuf,
    /// The model store of in-process training.
    pub models_dir: PathBuf,
    /// Strategies by name.
    pub strategies_dir: PathBuf,
    /// File keeping operations across restarts; `None` keeps them in memory.
    pub state: Option<PathBuf>,
    /// The IB Gateway the in-process data provider talks to (fallback mode).
    pub ib: IbConfig,
    /// In-process training sessions at once (fallback mode).
    pub max_sessions: usize,
    /// How long finished operations are kept before they are pruned.
    pub operations_retention: Duration,
    /// Longest a load waits for a lost upstream link before it fails.
    pub load_reconnect_wait: Duration,
    /// How in-process training results name model directories.
    pub model_paths: PathStyle,
    /// Event sinks and throttling.
    pub events: EventSettings,
    /// The commands consumer (`KAFKA_COMMANDS_TOPIC`); `None` consumes nothing.
    pub commands: Option<CommandSettings>,
}

impl GatewaySettings {
    /// Settings for the embedded default around `data_dir` and `models_dir`.
    pub fn new(config: GatewayConfig, data_dir: PathBuf, models_dir: PathBuf) -> Self {
        Self {
            config,
            data_dir,
            models_dir,
            strategies_dir: PathBuf::from("strategies"),
            state: None,
            ib: IbConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 4002)), 2),
            max_sessions: 2,
            operations_retention: OperationsConfig::default().retention,
            load_reconnect_wait: crate::data::DEFAULT_RECONNECT_WAIT,
            model_paths: PathStyle::Relative,
            events: EventSettings::off(),
            commands: None,
        }
    }
}

/// Why the gateway could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The operations store could not be opened.
    #[error("operations store: {0}")]
    Operations(#[from] OperationsError),
    /// A host service client could not be built (bad URL).
    #[error(transparent)]
    Host(#[from] HostError),
    /// A directory could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Metrics could not be installed.
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    /// The server failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The commands consumer could not start.
    #[error("commands consumer: {0}")]
    Commands(#[from] event_stream::StreamError),
}

/// One service in `/api/v1/health`.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceHealth {
    /// `host` or `local`.
    pub mode: &'static str,
    /// Whether calls that need it can be served now.
    pub healthy: bool,
    /// Round trip of the last probe (host mode; 0 in-process).
    pub latency_ms: Option<f64>,
    /// Why it is not healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Host instances (host mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<InstanceReport>>,
    /// Service-specific figures.
    pub details: serde_json::Value,
}

/// The gateway. Cloned for every request (it is the routes' state), so a clone is one
/// reference count, not a copy of its configuration and managers.
#[derive(Debug, Clone)]
pub struct Gateway {
    parts: Arc<GatewayParts>,
}

impl std::ops::Deref for Gateway {
    type Target = GatewayParts;

    fn deref(&self) -> &GatewayParts {
        &self.parts
    }
}

/// What a [`Gateway`] holds (reached through it; its fields are private).
#[derive(Debug)]
pub struct GatewayParts {
    config: GatewayConfig,
    ops: Operations,
    data: DataManager,
    training: TrainingManager,
    data_pool: Option<Arc<HostPool<DataHostClient>>>,
    events: Events,
    commands: Option<Commands>,
    started: Instant,
}

impl Gateway {
    /// Builds the gateway (opens the operations store, builds clients; connects nothing).
    pub fn build(settings: GatewaySettings) -> Result<Self, GatewayError> {
        for dir in [&settings.data_dir, &settings.models_dir] {
            std::fs::create_dir_all(dir).map_err(|source| GatewayError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let kept = OperationsConfig::default().with_retention(settings.operations_retention);
        let ops = match &settings.state {
            Some(path) => Operations::open(OperationsConfig {
                store_path: Some(path.clone()),
                ..kept.clone()
            })?,
            None => Operations::in_memory_with(kept.clone()),
        };
        let store = Store::new(&settings.data_dir, StoreFormat::Csv);

        let (provider, data_pool): (Arc<dyn DataProvider>, _) = match &settings.config.data {
            ServiceMode::Host(urls) => {
                let pooled = PooledDataHost::new(urls)?;
                let pool = pooled.pool().clone();
                (Arc::new(pooled), Some(pool))
            }
            ServiceMode::Local => (Arc::new(IbProvider::new(settings.ib.clone())), None),
        };
        let data = DataManager::with_reconnect_wait(
            store.clone(),
            provider,
            ops.clone(),
            settings.load_reconnect_wait,
        );

        let backend = match &settings.config.training {
            ServiceMode::Host(urls) => Backend::host(urls)?,
            ServiceMode::Local => Backend::Local(SessionManager::new(
                // The gateway operation is the persisted record; the in-process session
                // lives only as long as the process, like the work it does, and is
                // forgotten with it.
                Operations::in_memory_with(kept),
                Arc::new(LocalProvider::new(store)),
                Arc::new(CandleTrainer::default()),
                SessionConfig {
                    max_sessions: settings.max_sessions.max(1),
                    models_dir: settings.models_dir.clone(),
                    model_paths: settings.model_paths,
                },
            )),
        };
        let training = TrainingManager::new(backend, ops.clone(), &settings.strategies_dir);
        let events = Events::new(settings.events.clone(), &ops);
        // The namespace exists before any event can be emitted (the first probe's
        // health changes come before the router is built).
        let _ = events.socketio_service(settings.config.api_key.clone());
        Ok(Self {
            parts: Arc::new(GatewayParts {
                config: settings.config,
                ops,
                data,
                training,
                data_pool,
                events,
                commands: settings.commands.map(Commands::new),
                started: Instant::now(),
            }),
        })
    }

    /// Routing and access settings.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The operations registry.
    pub fn operations(&self) -> &Operations {
        &self.ops
    }

    /// The data manager.
    pub fn data(&self) -> &DataManager {
        &self.data
    }

    /// Fails fast with 503 naming data-host when every data-host instance is down
    /// (host mode); always fine in-process.
    pub fn require_data_provider(&self) -> Result<(), HostError> {
        match &self.data_pool {
            Some(pool) if !pool.any_up() => Err(pool.all_down()),
            _ => Ok(()),
        }
    }

    /// Starts a data load; when its mode fetches and data-host is down (host mode),
    /// refuses at once with 503 naming data-host instead of starting a doomed load.
    pub fn start_load(
        &self,
        request: &crate::data::LoadRequest,
        origin: crate::Origin,
    ) -> Result<host_service_base::operations::OperationInfo, HostError> {
        let mut spec = request.validate()?;
        spec.correlation_id = origin.correlation_id;
        spec.operation_id = origin.operation_id;
        if spec.mode != crate::data::LoadMode::Local {
            self.require_data_provider()?;
        }
        self.data.start_load(spec)
    }

    /// The event publisher.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// The commands consumer, when `KAFKA_COMMANDS_TOPIC` is set.
    pub fn commands(&self) -> Option<&Commands> {
        self.commands.as_ref()
    }

    /// The training manager.
    pub fn training(&self) -> &TrainingManager {
        &self.training
    }

    /// Seconds since the gateway was built.
    pub fn uptime_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Probes every host pool once (the health route does this before the first
    /// prober round has finished).
    pub async fn probe_hosts(&self) {
        if let Some(pool) = &self.data_pool {
            pool.probe_all().await;
        }
        if let Backend::Host(pool) = self.training.backend() {
            pool.probe_all().await;
        }
    }

    /// Starts the background probers of the host pools; they stop with `stop`.
    pub fn spawn_probers(&self, stop: &CancellationToken) {
        if let Some(pool) = &self.data_pool {
            pool.spawn_prober(stop.child_token());
        }
        if let Backend::Host(pool) = self.training.backend() {
            pool.spawn_prober(stop.child_token());
        }
    }

    fn probed_yet(&self) -> bool {
        let data = self.data_pool.as_ref().is_none_or(|p| {
            p.members()
                .iter()
                .all(|m| m.health_cache().last().is_some())
        });
        let training = match self.training.backend() {
            Backend::Host(p) => p
                .members()
                .iter()
                .all(|m| m.health_cache().last().is_some()),
            Backend::Local(_) => true,
        };
        data && training
    }

    /// The health of the data and training services (cached probes; waits only
    /// before the very first probe).
    pub async fn health(&self) -> (ServiceHealth, ServiceHealth) {
        if !self.probed_yet() {
            self.probe_hosts().await;
        }
        let data = match &self.data_pool {
            // The pool's instances are the whole story; the provider's status would
            // only repeat them.
            Some(pool) => pool_health(pool, DATA_HOST),
            None => self.local_data_health().await,
        };
        let training = match self.training.backend() {
            Backend::Host(pool) => pool_health(pool, TRAINING_HOST),
            Backend::Local(sessions) => {
                // Measured like a probe: the models directory is where a session
                // writes, so it is what an in-process training needs besides the CPU.
                let started = Instant::now();
                let models = directory_check(sessions.models_dir()).await;
                let details = serde_json::json!({
                    "device": sessions.device(),
                    "active_sessions": sessions.active(),
                });
                ServiceHealth {
                    mode: "local",
                    healthy: models.is_ok(),
                    latency_ms: Some(millis(started.elapsed())),
                    error: models.err(),
                    instances: None,
                    details,
                }
            }
        };
        (data, training)
    }

    /// The in-process data service: healthy while its provider can fetch (an IB
    /// Gateway link that is down is down, as a data-host would report it) and its store
    /// directory is there; the latency is this check's, measured.
    async fn local_data_health(&self) -> ServiceHealth {
        let started = Instant::now();
        let status = self.data.provider().status();
        let store = directory_check(self.data.store().dir()).await;
        let error = match (status.ready(), store) {
            (Ok(()), Ok(())) => None,
            (Err(provider), Ok(())) => Some(format!(
                "{provider}; bars already in the store are still served"
            )),
            (Ok(()), Err(store)) => Some(store),
            (Err(provider), Err(store)) => Some(format!("{provider}; {store}")),
        };
        ServiceHealth {
            mode: "local",
            healthy: error.is_none(),
            latency_ms: Some(millis(started.elapsed())),
            error,
            instances: None,
            details: serde_json::json!({
                "store": self.data.store().dir(),
                "provider": status,
            }),
        }
    }

    /// The server: the API router plus the scaffold's standard routes and middleware;
    /// shutdown cancels running operations (stopping their host sessions).
    pub fn server(&self) -> Result<Server, GatewayError> {
        let router = crate::api::router(self.clone())?;
        Ok(
            Server::new(ServerConfig::new(crate::SERVICE_NAME), router)
                .operations(self.ops.clone()),
        )
    }

    /// Serves on `listener` until `shutdown` fires, probing host services meanwhile.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<ShutdownReport, GatewayError> {
        // Watched before the probers start, so their first findings are announced.
        if let Some(pool) = &self.data_pool {
            self.events
                .forward_health(pool.watch_changes(), shutdown.child_token());
        }
        if let Backend::Host(pool) = self.training.backend() {
            self.events
                .forward_health(pool.watch_changes(), shutdown.child_token());
        }
        self.spawn_probers(&shutdown);
        if let Backend::Local(sessions) = self.training.backend() {
            // The scaffold prunes the gateway's own operations; the in-process sessions
            // behind them are a registry of their own.
            let ops = sessions.operations();
            ops.spawn_pruner(ops.config().prune_interval(), shutdown.child_token());
        }
        let event_tasks = self.events.spawn();
        let events = self.events.clone();
        let closing = shutdown.clone();
        tokio::spawn(async move {
            closing.cancelled().await;
            events.close_clients().await;
        });
        let orphans = self.ops.interrupted_at_open().to_vec();
        if !orphans.is_empty() {
            let training = self.training.clone();
            tokio::spawn(async move { training.stop_orphans(&orphans).await });
        }
        // Commands stop before the server drains: no new operation starts while the
        // running ones are cancelled, and what is in flight is committed.
        let commands = match &self.commands {
            Some(commands) => {
                commands.start(&self)?;
                let commands = commands.clone();
                let closing = shutdown.clone();
                Some(tokio::spawn(async move {
                    closing.cancelled().await;
                    commands.stop().await;
                }))
            }
            None => None,
        };
        let server = self.server()?;
        let report = server.serve(listener, shutdown).await?;
        if let Some(stopping) = commands {
            let _ = stopping.await;
        }
        // After the drain: the cancellations of the shutdown are published too.
        if let Some(tasks) = event_tasks
            && !tasks.shutdown(EVENT_FLUSH_DEADLINE).await
        {
            tracing::warn!("event sinks did not finish sending within {EVENT_FLUSH_DEADLINE:?}");
        }
        Ok(report)
    }
}

fn pool_health<C: host_service_base::AsyncHostService + 'static>(
    pool: &HostPool<C>,
    service: &str,
) -> ServiceHealth {
    let instances = pool.report();
    let healthy: Vec<&InstanceReport> = instances
        .iter()
        .filter(|i| i.healthy == Some(true))
        .collect();
    let latency_ms = healthy
        .iter()
        .filter_map(|i| i.latency_ms)
        .min_by(f64::total_cmp);
    let error = healthy.is_empty().then(|| {
        let reasons: Vec<String> = instances
            .iter()
            .map(|i| {
                format!(
                    "{}: {}",
                    i.url,
                    i.error.as_deref().unwrap_or("not probed yet")
                )
            })
            .collect();
        format!("{service} is down ({})", reasons.join("; "))
    });
    ServiceHealth {
        mode: "host",
        healthy: !healthy.is_empty(),
        latency_ms,
        error,
        instances: Some(instances),
        details: serde_json::json!({}),
    }
}

/// `Ok` when `dir` is a directory, else why not (off the async threads).
async fn directory_check(dir: &std::path::Path) -> Result<(), String> {
    match tokio::fs::metadata(dir).await {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

fn millis(elapsed: std::time::Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}
