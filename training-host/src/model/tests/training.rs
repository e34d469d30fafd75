//! The training loop: real learning, progress, determinism, early stopping,
//! cancellation and absent classes.

use candle_core::Device;
use tokio_util::sync::CancellationToken;

use super::{config, planted, spec};
use crate::features::Split;
use crate::model::{Progress, TrainError, TrainRun, evaluate, train};
use crate::strategy::Activation;
use crate::strategy::EarlyStopping;

fn no_progress(_: &Progress) {}

#[test]
fn learns_a_planted_signal() {
    let (tr, va, te) = planted();
    let mut calls = Vec::new();
    let run = train(
        &spec(4, Activation::Relu, 0.0),
        &config(25, 1),
        &tr,
        &va,
        &Device::Cpu,
        &CancellationToken::new(),
        &mut |p: &Progress| calls.push(*p),
    )
    .expect("train");
    let TrainRun::Completed(model) = run else {
        panic!("not cancelled")
    };
    let test = evaluate(
        &model.network(&Device::Cpu).expect("net"),
        &te,
        &model.class_weights,
    )
    .expect("evaluate")
    .expect("test rows");
    let first = &model.history[0];
    let last = model.history.last().expect("epochs");
    println!(
        "planted: train {} val {} test {}; epoch 1 loss {:.4} acc {:.3}; epoch {} loss {:.4} acc {:.3} val_acc {:?}; test acc {:.4} loss {:.4} f1 {:.4}",
        tr.len(),
        va.len(),
        te.len(),
        first.train_loss,
        first.train_accuracy,
        last.epoch,
        last.train_loss,
        last.train_accuracy,
        last.val_accuracy,
        test.test_accuracy,
        test.test_loss,
        test.f1_score
    );
    assert!(
        test.test_accuracy >= 0.9,
        "test accuracy {}",
        test.test_accuracy
    );
    assert!(last.train_loss < first.train_loss);
    // Progress after every batch, counting rows over all epochs.
    let per_epoch = tr.len().div_ceil(64);
    assert_eq!(calls.len(), 25 * per_epoch);
    assert_eq!(calls[0].batch, 1);
    assert_eq!(calls[0].total_batches, per_epoch);
    let end = calls.last().expect("calls");
    assert_eq!((end.epoch, end.batch), (25, per_epoch));
    assert_eq!(end.items_processed, end.items_total);
    assert_eq!(end.items_total, 25 * tr.len());
    assert_eq!(end.percent(), 100.0);
    assert!(
        calls
            .windows(2)
            .all(|w| w[0].items_processed < w[1].items_processed)
    );
    // The second epoch's batches report the first epoch's metrics.
    assert_eq!(calls[per_epoch].last_epoch, Some(model.history[0]));
    // The kept weights are the best epoch's.
    let best = model.best_epoch.expect("best");
    let best_val = model.history[best - 1].val_loss.expect("val");
    assert!(
        model
            .history
            .iter()
            .all(|e| e.val_loss.expect("val") >= best_val)
    );
}

#[test]
fn same_seed_same_weights_and_history() {
    let (tr, va, _) = planted();
    let tr = Split {
        x: tr.x[..600 * 4].to_vec(),
        y: tr.y[..600].to_vec(),
        ..tr
    };
    let run = |seed| {
        let model = train(
            &spec(4, Activation::Relu, 0.3),
            &config(3, seed),
            &tr,
            &va,
            &Device::Cpu,
            &CancellationToken::new(),
            &mut no_progress,
        )
        .expect("train")
        .model()
        .clone();
        let losses: Vec<_> = model
            .history
            .iter()
            .map(|e| (e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy))
            .collect();
        (model.weights.to_vecs().expect("weights"), losses)
    };
    let (a, b, c) = (run(11), run(11), run(12));
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
}

#[test]
fn early_stopping_ends_training_and_keeps_the_best_epoch() {
    let (tr, va, _) = planted();
    let mut cfg = config(200, 3);
    // A large learning rate on a tiny validation split stalls quickly.
    cfg.early_stopping = Some(EarlyStopping {
        patience: 2,
        min_delta: 0.05,
    });
    let model = train(
        &spec(4, Activation::Tanh, 0.0),
        &cfg,
        &tr,
        &va,
        &Device::Cpu,
        &CancellationToken::new(),
        &mut no_progress,
    )
    .expect("train")
    .model()
    .clone();
    assert!(model.early_stopped);
    assert!(model.history.len() < 200);
    let best = model.best_epoch.expect("best");
    let min = model
        .history
        .iter()
        .map(|e| e.monitored_loss())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(model.history[best - 1].monitored_loss(), min);
    assert_eq!(model.summary().epochs_trained, model.history.len());
}

#[test]
fn cancelling_stops_within_one_batch_and_keeps_the_best_epoch() {
    let (tr, va, _) = planted();
    let token = CancellationToken::new();
    let mut after_cancel = 0;
    let mut seen = 0;
    let run = train(
        &spec(4, Activation::Relu, 0.2),
        &config(50, 2),
        &tr,
        &va,
        &Device::Cpu,
        &token,
        &mut |p: &Progress| {
            seen += 1;
            if token.is_cancelled() {
                after_cancel += 1;
            }
            if p.epoch == 3 && p.batch == 5 {
                token.cancel();
            }
        },
    )
    .expect("train");
    let TrainRun::Stopped { best_so_far } = run else {
        panic!("cancelled run completed")
    };
    assert!(after_cancel <= 1, "{after_cancel} batches after the cancel");
    assert_eq!(seen, 2 * tr.len().div_ceil(64) + 5);
    assert_eq!(best_so_far.history.len(), 2);
    assert!(matches!(best_so_far.best_epoch, Some(1 | 2)));
    let net = best_so_far.network(&Device::Cpu).expect("net");
    assert_eq!(net.predict(&va.x).expect("predict").len(), va.len());
}

#[test]
fn cancelling_from_another_thread() {
    let (tr, va, _) = planted();
    let token = CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            if rx.recv().is_ok() {
                token.cancel();
            }
        })
    };
    let mut after_cancel = 0;
    let mut tx = Some(tx);
    let run = train(
        &spec(4, Activation::Relu, 0.0),
        &config(50, 2),
        &tr,
        &va,
        &Device::Cpu,
        &token,
        &mut |p: &Progress| {
            if token.is_cancelled() {
                after_cancel += 1;
            }
            if p.batch == 3 {
                // Dropping the sender after one message: later batches send nothing.
                if let Some(tx) = tx.take() {
                    tx.send(()).expect("send");
                }
            }
        },
    )
    .expect("train");
    canceller.join().expect("join");
    assert!(run.is_stopped());
    assert!(after_cancel <= 1, "{after_cancel} batches after the cancel");
    // Cancelled in the first epoch: the partly trained weights are kept, loadable.
    let model = run.model();
    assert_eq!(model.best_epoch, None);
    assert!(model.network(&Device::Cpu).is_ok());
}

#[test]
fn a_class_absent_from_train_gives_finite_losses() {
    let (tr, va, te) = planted();
    // Drop every HOLD row from train; validation and test keep theirs.
    let keep: Vec<usize> = (0..tr.len()).filter(|&i| tr.y[i] != 1).collect();
    let tr = Split {
        x: keep
            .iter()
            .flat_map(|&i| tr.row(i).expect("row").to_vec())
            .collect(),
        y: keep.iter().map(|&i| tr.y[i]).collect(),
        timestamps: keep.iter().map(|&i| tr.timestamps[i]).collect(),
        ..tr
    };
    assert_eq!(tr.class_counts()[1], 0);
    let model = train(
        &spec(4, Activation::Relu, 0.2),
        &config(3, 4),
        &tr,
        &va,
        &Device::Cpu,
        &CancellationToken::new(),
        &mut no_progress,
    )
    .expect("train")
    .model()
    .clone();
    assert_eq!(model.class_weights[1], 1.0);
    for e in &model.history {
        assert!(
            e.train_loss.is_finite() && e.val_loss.is_some_and(f64::is_finite),
            "{e:?}"
        );
    }
    let test = evaluate(
        &model.network(&Device::Cpu).expect("net"),
        &te,
        &model.class_weights,
    )
    .expect("evaluate")
    .expect("rows");
    assert!(test.test_loss.is_finite());
}

#[test]
fn bad_inputs_are_errors() {
    let (tr, va, _) = planted();
    let never = CancellationToken::new();
    let go = |spec, cfg, tr: &Split| {
        train(&spec, &cfg, tr, &va, &Device::Cpu, &never, &mut no_progress).map(|_| ())
    };
    let mut cfg = config(1, 1);
    cfg.learning_rate = 0.0;
    assert!(matches!(
        go(spec(4, Activation::Relu, 0.0), cfg, &tr),
        Err(TrainError::InvalidConfig(_))
    ));
    assert!(matches!(
        go(spec(5, Activation::Relu, 0.0), config(1, 1), &tr),
        Err(TrainError::InvalidInput(_))
    ));
    let empty = Split {
        n_features: 4,
        ..Split::default()
    };
    assert!(matches!(
        go(spec(4, Activation::Relu, 0.0), config(1, 1), &empty),
        Err(TrainError::InvalidInput(_))
    ));
    let mut bad_label = tr.clone();
    bad_label.y[0] = 7;
    assert!(matches!(
        go(spec(4, Activation::Relu, 0.0), config(1, 1), &bad_label),
        Err(TrainError::InvalidInput(_))
    ));
    // An absurd learning rate diverges: a clear error, not NaN metrics.
    let mut cfg = config(3, 1);
    cfg.learning_rate = 1e30;
    cfg.optimizer = crate::strategy::Optimizer::Sgd;
    assert!(matches!(
        go(spec(4, Activation::Relu, 0.0), cfg, &tr),
        Err(TrainError::NonFiniteLoss { .. })
    ));
}
