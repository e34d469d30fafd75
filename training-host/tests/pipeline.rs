//! End-to-end training runs on the sample store: dataset → train → evaluate → save →
//! load, stopping with and without a checkpoint, and determinism of a whole run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use data_host::store::{Store, StoreFormat};
use data_host::{Symbol, Timeframe};
use polars::prelude::DataFrame;
use training_host::features::build_dataset;
use training_host::model::{LoadedModel, ModelStore, Progress, TrainError, WEIGHTS_FILE};
use training_host::pipeline::model_label;
use training_host::strategy::{Strategy, load_strategy};
use training_host::{RunOptions, StopHandle, run_training};

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// rsi_macd_mlp with `epochs` epochs, and AAPL daily bars.
fn setup(epochs: usize) -> (Strategy, BTreeMap<(Symbol, Timeframe), DataFrame>) {
    let mut strategy = load_strategy(&repo("strategies/rsi_macd_mlp.yaml")).expect("strategy");
    strategy.model.training.epochs = epochs;
    let symbol = Symbol::parse("AAPL").expect("symbol");
    let frame = Store::new(repo("data"), StoreFormat::Csv)
        .load(&symbol, Timeframe::D1)
        .expect("store")
        .expect("sample file");
    (strategy, BTreeMap::from([((symbol, Timeframe::D1), frame)]))
}

#[tokio::test]
async fn trains_saves_and_reloads_rsi_macd_mlp_in_spawn_blocking() {
    let (strategy, bars) = setup(12);
    let tmp = tempfile::tempdir().expect("tempdir");
    let models = tmp.path().join("models");
    let batches = Arc::new(Mutex::new(0usize));
    let options = RunOptions {
        seed: 1,
        progress: Some(Box::new({
            let batches = batches.clone();
            move |_: &Progress| *batches.lock().expect("lock") += 1
        })),
        ..RunOptions::default()
    };
    let outcome = tokio::task::spawn_blocking({
        let (strategy, bars, models) = (strategy.clone(), bars.clone(), models.clone());
        move || run_training(&strategy, &bars, &models, options)
    })
    .await
    .expect("join")
    .expect("training");

    let first = outcome.history[0];
    let last = *outcome.history.last().expect("epochs");
    let test = outcome.test_metrics.clone().expect("test rows");
    println!(
        "rsi_macd_mlp AAPL 1d: {} rows ({} train), {} features, class counts {:?}; epoch 1 train loss {:.4} acc {:.3} val loss {:.4?}; epoch {} train loss {:.4} acc {:.3} val loss {:.4?} val acc {:.3?}; best epoch {:?}; test acc {:.4} loss {:.4} f1 {:.4}; {}",
        outcome.data_summary.total_samples,
        outcome.data_summary.train_samples,
        outcome.data_summary.feature_count,
        outcome.data_summary.train_class_counts,
        first.train_loss,
        first.train_accuracy,
        first.val_loss,
        last.epoch,
        last.train_loss,
        last.train_accuracy,
        last.val_loss,
        last.val_accuracy,
        outcome.training.best_epoch,
        test.test_accuracy,
        test.test_loss,
        test.f1_score,
        outcome.model_info.architecture,
    );
    assert!(last.train_loss < first.train_loss, "{first:?} -> {last:?}");
    assert!(!outcome.stopped);
    assert_eq!(outcome.history.len(), 12);
    assert_eq!(
        *batches.lock().expect("lock"),
        12 * outcome.data_summary.train_samples.div_ceil(32)
    );
    assert_eq!(
        outcome.model_info.parameters_count,
        24 * 50 + 50 + 50 * 25 + 25 + 25 * 3 + 3
    );
    assert_eq!(outcome.model_info.device, "cpu");
    assert_eq!(outcome.model_path, models.join("rsi_macd_mlp/1d_v1"));
    assert_eq!(outcome.data_summary.symbols, ["AAPL"]);
    assert!(outcome.data_summary.start_date < outcome.data_summary.end_date);
    let store = ModelStore::new(&models);
    assert_eq!(
        store
            .latest(&strategy.name, &model_label(&strategy))
            .expect("latest"),
        Some(outcome.model_path.clone())
    );

    // The loaded model reproduces the test metrics exactly, from the stored scaler
    // and strategy alone.
    let loaded = LoadedModel::load(&outcome.model_path).expect("load");
    let dataset = build_dataset(&strategy, &bars).expect("dataset");
    let predicted = loaded.predict(&dataset.test.x).expect("predict");
    let correct = predicted
        .iter()
        .zip(&dataset.test.y)
        .filter(|(p, y)| p == y)
        .count();
    assert_eq!(
        correct as f64 / dataset.test.len() as f64,
        test.test_accuracy
    );
    let daily = BTreeMap::from([(Timeframe::D1, bars.values().next().expect("bars").clone())]);
    let fresh = loaded.features_for(&daily).expect("inference features");
    let t0 = dataset.test.timestamps[0];
    let at = fresh
        .timestamps
        .iter()
        .position(|&t| t == t0)
        .expect("test row present");
    let n = loaded.n_features();
    assert_eq!(
        &fresh.x[at * n..(at + 1) * n],
        dataset.test.row(0).expect("row")
    );
    assert_eq!(
        loaded
            .predict(&fresh.x[at * n..(at + 1) * n])
            .expect("one row")[0],
        predicted[0]
    );
    assert_eq!(loaded.metrics.training, outcome.training);
}

#[test]
fn stop_with_checkpoint_saves_a_loadable_checkpoint() {
    let (strategy, bars) = setup(30);
    let tmp = tempfile::tempdir().expect("tempdir");
    let stop = StopHandle::default();
    let after_stop = Arc::new(Mutex::new(0usize));
    let options = RunOptions {
        seed: 2,
        stop: stop.clone(),
        progress: Some(Box::new({
            let (stop, after_stop) = (stop.clone(), after_stop.clone());
            move |p: &Progress| {
                if stop.is_stopped() {
                    *after_stop.lock().expect("lock") += 1;
                }
                if p.epoch == 3 && p.batch == 4 {
                    stop.stop(true);
                }
            }
        })),
        ..RunOptions::default()
    };
    let outcome = run_training(&strategy, &bars, tmp.path(), options).expect("checkpoint");
    assert!(outcome.stopped);
    assert!(*after_stop.lock().expect("lock") <= 1);
    assert_eq!(outcome.history.len(), 2);
    let loaded = LoadedModel::load(&outcome.model_path).expect("load checkpoint");
    assert!(loaded.metadata.checkpoint);
    assert!(matches!(loaded.metadata.best_epoch, Some(1 | 2)));
    let dataset = build_dataset(&strategy, &bars).expect("dataset");
    assert_eq!(
        loaded.predict(&dataset.test.x).expect("predict").len(),
        dataset.test.len()
    );
    // A checkpoint is a version, but not the latest finished model.
    let store = ModelStore::new(tmp.path());
    assert_eq!(store.versions("rsi_macd_mlp", "1d").expect("versions"), [1]);
    assert_eq!(store.latest("rsi_macd_mlp", "1d").expect("latest"), None);
}

#[test]
fn stop_without_checkpoint_saves_nothing() {
    let (strategy, bars) = setup(30);
    let tmp = tempfile::tempdir().expect("tempdir");
    let stop = StopHandle::default();
    let options = RunOptions {
        stop: stop.clone(),
        progress: Some(Box::new(move |p: &Progress| {
            if p.batch == 2 {
                stop.stop(false);
            }
        })),
        ..RunOptions::default()
    };
    let err = run_training(&strategy, &bars, tmp.path(), options).expect_err("cancelled");
    assert!(matches!(err, TrainError::Cancelled), "{err}");
    assert_eq!(std::fs::read_dir(tmp.path()).expect("dir").count(), 0);
    // Stopped before it started: not even the dataset is built.
    let stop = StopHandle::default();
    stop.stop(true);
    let options = RunOptions {
        stop,
        ..RunOptions::default()
    };
    assert!(matches!(
        run_training(&strategy, &bars, tmp.path(), options),
        Err(TrainError::Cancelled)
    ));
}

#[test]
fn same_seed_same_model_file() {
    let (strategy, bars) = setup(2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = |seed| {
        let options = RunOptions {
            seed,
            ..RunOptions::default()
        };
        run_training(&strategy, &bars, tmp.path(), options).expect("train")
    };
    let (a, b, c) = (run(9), run(9), run(10));
    assert_eq!((a.version, b.version, c.version), (1, 2, 3));
    assert_eq!(
        a.history.iter().map(|e| e.train_loss).collect::<Vec<_>>(),
        b.history.iter().map(|e| e.train_loss).collect::<Vec<_>>()
    );
    let weights = |o: &training_host::TrainingOutcome| {
        std::fs::read(o.model_path.join(WEIGHTS_FILE)).expect("weights")
    };
    assert_eq!(weights(&a), weights(&b));
    assert_ne!(weights(&a), weights(&c));
}

#[test]
fn a_bad_strategy_name_fails_before_training() {
    let (mut strategy, bars) = setup(1);
    strategy.name = "../../etc".into();
    let err = run_training(
        &strategy,
        &bars,
        std::path::Path::new("/nonexistent"),
        RunOptions::default(),
    )
    .expect_err("unsafe name");
    assert!(matches!(err, TrainError::InvalidConfig(_)), "{err}");
}
