//! The model store: versions, the latest pointer, checkpoints, concurrency, path
//! safety, and loading with bit-identical predictions.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Device;
use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe};
use tokio_util::sync::CancellationToken;

use super::repo;
use crate::features::{Dataset, build_dataset};
use crate::model::{
    CONFIG_FILE, LoadedModel, MlpSpec, ModelArtifacts, ModelStore, TrainConfig, TrainError,
    TrainedModel, WEIGHTS_FILE, evaluate, train, validate_name,
};
use crate::pipeline::model_artifacts;
use crate::strategy::{Strategy, load_strategy};

/// rsi_macd_mlp on AAPL daily, trained for one epoch.
fn trained() -> (Strategy, Dataset, TrainedModel) {
    let strategy = load_strategy(&repo("strategies/rsi_macd_mlp.yaml")).expect("strategy");
    let symbol = Symbol::parse("AAPL").expect("symbol");
    let frame = Store::new(repo("data"), StoreFormat::Csv)
        .load(&symbol, Timeframe::D1)
        .expect("store")
        .expect("file");
    let bars = BTreeMap::from([((symbol, Timeframe::D1), frame)]);
    let dataset = build_dataset(&strategy, &bars).expect("dataset");
    let spec = MlpSpec::new(&strategy.model.architecture, dataset.n_features());
    let mut config = TrainConfig::from_hyperparameters(&strategy.model.training, 5);
    config.epochs = 1;
    let model = train(
        &spec,
        &config,
        &dataset.train,
        &dataset.validation,
        &Device::Cpu,
        &CancellationToken::new(),
        &mut |_| {},
    )
    .expect("train")
    .model()
    .clone();
    (strategy, dataset, model)
}

fn artifacts(checkpoint: bool) -> (Dataset, TrainedModel, ModelArtifacts) {
    let (strategy, dataset, model) = trained();
    let test = evaluate(
        &model.network(&Device::Cpu).expect("net"),
        &dataset.test,
        &model.class_weights,
    )
    .expect("evaluate");
    let a = model_artifacts(&strategy, &dataset, &model, test, checkpoint);
    (dataset, model, a)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn saves_versions_moves_latest_and_loads_bit_identical() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = ModelStore::new(tmp.path().join("models"));
    let (dataset, model, a) = artifacts(false);
    assert_eq!(store.latest("rsi_macd_mlp", "1d").expect("latest"), None);
    let first = store.save(&a).expect("save");
    assert_eq!((first.version, first.name.as_str()), (1, "1d_v1"));
    assert_eq!(first.path, tmp.path().join("models/rsi_macd_mlp/1d_v1"));
    assert_eq!(
        store.latest("rsi_macd_mlp", "1d").expect("latest"),
        Some(first.path.clone())
    );
    let second = store.save(&a).expect("save again");
    assert_eq!(second.name, "1d_v2");
    assert_eq!(
        store.latest("rsi_macd_mlp", "1d").expect("latest"),
        Some(second.path.clone())
    );
    assert_eq!(
        store.versions("rsi_macd_mlp", "1d").expect("versions"),
        [1, 2]
    );
    // Nothing but the versions and the pointer: no temp leftovers.
    assert_eq!(
        entries(&tmp.path().join("models/rsi_macd_mlp")),
        ["1d_v1", "1d_v2", "latest_1d"]
    );
    assert_eq!(
        entries(&first.path),
        [
            "config.json",
            "features.json",
            "metadata.json",
            "metrics.json",
            "model.safetensors"
        ]
    );

    let loaded = LoadedModel::load_on(&first.path, &Device::Cpu).expect("load");
    let net = model.network(&Device::Cpu).expect("net");
    let x = &dataset.test.x;
    assert_eq!(
        loaded.predict(x).expect("predict"),
        net.predict(x).expect("predict")
    );
    let bits = |p: Vec<[f32; 3]>| p.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(loaded.predict_proba(x).expect("proba")),
        bits(net.predict_proba(x).expect("proba"))
    );
    assert_eq!(loaded.features.scaler, dataset.scaler);
    assert_eq!(loaded.config, a.config);
    assert_eq!(loaded.metrics, a.metrics);
    assert_eq!(loaded.metadata, a.metadata);
    assert!(!loaded.metadata.checkpoint);
    assert_eq!(loaded.metadata.data_summary.feature_count, 24);
}

#[test]
fn checkpoints_are_versions_that_do_not_move_latest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = ModelStore::new(tmp.path());
    let (_, _, finished) = artifacts(false);
    let (_, _, checkpoint) = artifacts(true);
    let v1 = store.save(&finished).expect("save");
    let v2 = store.save(&checkpoint).expect("checkpoint");
    assert_eq!(v2.version, 2);
    assert_eq!(
        store.latest("rsi_macd_mlp", "1d").expect("latest"),
        Some(v1.path)
    );
    let loaded = LoadedModel::load(&v2.path).expect("load checkpoint");
    assert!(loaded.metadata.checkpoint);
}

#[test]
fn concurrent_saves_get_distinct_versions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = ModelStore::new(tmp.path());
    let (_, _, a) = artifacts(false);
    let saved: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| store.save(&a).expect("save").version))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    let mut versions = saved.clone();
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3, 4]);
    for v in 1..=4 {
        LoadedModel::load(&tmp.path().join(format!("rsi_macd_mlp/1d_v{v}"))).expect("complete");
    }
    let latest = store
        .latest("rsi_macd_mlp", "1d")
        .expect("latest")
        .expect("some");
    assert!(LoadedModel::load(&latest).is_ok());
}

#[test]
fn names_must_be_path_safe() {
    for ok in ["rsi_macd_mlp", "a.b-c_1", "X"] {
        assert!(validate_name("strategy name", ok).is_ok(), "{ok}");
    }
    for bad in ["", ".hidden", "..", "../x", "a/b", "a\\b", "a b", "é"] {
        assert!(validate_name("strategy name", bad).is_err(), "{bad:?}");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = ModelStore::new(tmp.path());
    let (_, _, mut a) = artifacts(false);
    a.config.strategy_name = "../escape".into();
    let err = store.save(&a).expect_err("unsafe name");
    assert!(matches!(err, TrainError::InvalidConfig(_)), "{err}");
    assert!(err.to_string().contains("../escape"), "{err}");
    assert!(store.latest("../x", "1d").is_err());
    assert!(entries(tmp.path()).is_empty());
}

#[test]
fn a_tampered_pointer_is_ignored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("s");
    std::fs::create_dir_all(&dir).expect("dir");
    let store = ModelStore::new(tmp.path());
    for content in ["../../etc", "1d_v", "1h_v3", "1d_vx", ""] {
        std::fs::write(dir.join("latest_1d"), content).expect("write");
        assert_eq!(
            store.latest("s", "1d").expect("latest"),
            None,
            "{content:?}"
        );
    }
    std::fs::write(dir.join("latest_1d"), "1d_v7\n").expect("write");
    assert_eq!(
        store.latest("s", "1d").expect("latest"),
        Some(dir.join("1d_v7"))
    );
}

#[test]
fn loading_a_broken_directory_names_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = ModelStore::new(tmp.path());
    let (_, _, a) = artifacts(false);
    let saved = store.save(&a).expect("save");
    let missing = LoadedModel::load(&tmp.path().join("nope")).expect_err("missing");
    assert!(matches!(missing, TrainError::Store { .. }), "{missing}");
    assert!(missing.to_string().contains(CONFIG_FILE), "{missing}");
    std::fs::write(saved.path.join(WEIGHTS_FILE), b"not safetensors").expect("write");
    let err = LoadedModel::load(&saved.path).expect_err("corrupt weights");
    assert!(
        matches!(err, TrainError::Corrupt { .. }) && err.to_string().contains(WEIGHTS_FILE),
        "{err}"
    );
    std::fs::write(saved.path.join(CONFIG_FILE), b"{").expect("write");
    let err = LoadedModel::load(&saved.path).expect_err("corrupt config");
    assert!(
        matches!(err, TrainError::Corrupt { .. }) && err.to_string().contains(CONFIG_FILE),
        "{err}"
    );
}
