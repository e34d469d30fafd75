//! Shared by the training-host integration tests: the shipped strategy with a chosen
//! length, and training-host on 127.0.0.1:0 over the sample bars.

#![allow(dead_code, unreachable_pub)] // Each test binary uses its own subset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use data_host::local::LocalProvider;
use data_host::store::{Store, StoreFormat};
use host_service_base::CancellationToken;
use host_service_base::operations::Operations;
use training_host::model::PathStyle;
use training_host::sessions::{SessionConfig, SessionManager};
use training_host::trainer::CandleTrainer;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped rsi_macd_mlp strategy with `epochs` and, optionally, no early stopping
/// and small batches (so a long run has many batch boundaries to stop at).
pub fn strategy(epochs: u32, long: bool) -> String {
    let yaml = std::fs::read_to_string(repo().join("strategies/rsi_macd_mlp.yaml"))
        .expect("shipped strategy");
    let mut yaml = yaml.replace("    epochs: 100", &format!("    epochs: {epochs}"));
    if long {
        yaml = yaml
            .replace("      enabled: true", "      enabled: false")
            .replace("    batch_size: 32", "    batch_size: 8");
    }
    yaml
}

pub struct Host {
    pub base: String,
    pub models: tempfile::TempDir,
    pub shutdown: CancellationToken,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start_host(max_sessions: usize) -> Host {
    let models = tempfile::tempdir().expect("models dir");
    let data = Arc::new(LocalProvider::new(Store::new(
        repo().join("data"),
        StoreFormat::Csv,
    )));
    let config = SessionConfig {
        max_sessions,
        models_dir: models.path().to_path_buf(),
        model_paths: PathStyle::Relative,
    };
    let sessions = SessionManager::new(
        Operations::in_memory(),
        data,
        Arc::new(CandleTrainer::default()),
        config,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    tokio::spawn(training_host::service::serve(
        listener,
        sessions,
        max_sessions,
        shutdown.clone(),
    ));
    Host {
        base,
        models,
        shutdown,
    }
}
