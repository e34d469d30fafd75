//! Shared helpers: a copy of the sample store, and data-host on an ephemeral port.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use data_host::local::LocalProvider;
use data_host::provider::DataProvider;
use data_host::store::{Store, StoreFormat};
use host_service_base::CancellationToken;

/// The repository's sample store.
pub(crate) fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// A private copy of the sample store (tests may write to it).
pub(crate) fn sample_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(sample_dir()).expect("sample data") {
        let entry = entry.expect("entry");
        if entry.path().extension().is_some_and(|e| e == "csv") {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
        }
    }
    dir
}

/// A running data-host.
pub(crate) struct RunningHost {
    pub(crate) base: String,
    pub(crate) shutdown: CancellationToken,
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts data-host over `provider` on 127.0.0.1:0.
pub(crate) async fn start_host(provider: Arc<dyn DataProvider>) -> RunningHost {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    tokio::spawn(data_host::service::serve(
        listener,
        provider,
        Duration::from_secs(60),
        shutdown.clone(),
    ));
    RunningHost { base, shutdown }
}

/// A local provider over `dir`.
pub(crate) fn local(dir: &Path) -> Arc<dyn DataProvider> {
    Arc::new(LocalProvider::new(Store::new(dir, StoreFormat::Csv)))
}

/// Fetches `request` from the host with an Arrow client and with a JSON client and
/// checks what each decodes: Arrow carries every bit of `expected`; JSON carries what
/// pandas writes for it (ten decimals at most, as KTRDR's host sends).
pub(crate) async fn assert_both_clients_get(
    base: &str,
    request: &data_host::provider::BarsRequest,
    expected: &polars::prelude::DataFrame,
) {
    use data_host::api::wire;
    use data_host::client::{DataHostClient, Format};
    let as_pandas_writes =
        wire::from_pandas_json(&wire::to_pandas_json(expected).expect("json")).expect("decode");
    let cancel = CancellationToken::new();
    for (format, expected) in [(Format::Arrow, expected), (Format::Json, &as_pandas_writes)] {
        let client = DataHostClient::new(base).expect("client").format(format);
        let got = client.bars(request, &cancel).await.expect("bars");
        assert_eq!(
            &got, expected,
            "{:?} via {format:?}: every row, every column",
            request.timeframe
        );
    }
}
