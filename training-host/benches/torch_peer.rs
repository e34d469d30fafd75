//! Benchmark: training-host's training loop against PyTorch CPU on the same network,
//! the same data and the same settings, in the same run (issue 16).
//!
//! The dataset is the one the shipped `strategies/rsi_macd_mlp.yaml` trains on (AAPL
//! daily sample bars 2000–2014 from `data/`, rsi + macd fuzzy features, zigzag labels,
//! chronological split, train-split scaling), built exactly as `run_training` builds it.
//! Its train and validation splits are written to a temporary file (layout in
//! `benches/python/torch_mlp.py`) that the PyTorch peer trains on. For batch 32 and 256
//! both sides train the strategy's MLP [in → 50 → 25 → 3] (ReLU, dropout 0.2) with Adam
//! (lr 0.001), balanced class weights from the train split (what `run_training` uses),
//! early stopping off, the same epochs, on the same thread budget (candle's
//! `get_num_threads()`, which `torch.set_num_threads` is set to). The two sides alternate
//! over [`ROUNDS`] rounds and the median samples/s of each is reported with its range.
//! Each side first makes one untimed warm-up run (ours: one `train` per batch size;
//! the peer: one epoch inside its process), because a cold PyTorch process pays ~1.5 s of
//! one-time initialisation on its first training call, which is not throughput. The last
//! peer round also makes a separate profiled run that splits PyTorch's time per batch
//! into batch gather, forward + loss + `loss.item()`, backward, Adam step and read-back.
//!
//! Timed on both sides: model construction plus every epoch (shuffle; per batch forward
//! with dropout, loss, loss read back, backward, Adam step, logits read back for
//! accuracy; then the validation pass and the best-epoch weight copy). Ours is the wall
//! time of the `train` call; PyTorch's is measured inside the peer, so interpreter start,
//! `import torch` and loading the file are not counted. samples/s = train rows × epochs /
//! that time.
//!
//! Run: `cargo bench -p training-host --bench torch_peer`
//!
//! The peer runs under the interpreter named by `TORCH_PYTHON` (default `python3`). When
//! it cannot `import torch` the bench prints "PyTorch half skipped: <reason>" and still
//! reports our side, e.g.
//! `TORCH_PYTHON=/work/scratch/torchenv/bin/python cargo bench -p training-host --bench torch_peer`.

mod support;

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use candle_core::Device;
use host_service_base::CancellationToken;
use serde_json::Value;
use training_host::features::{Dataset, Split, build_dataset};
use training_host::model::{MlpSpec, TrainConfig, TrainRun, class_weights, train};
use training_host::strategy::{Strategy, parse_strategy};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Rounds of (ours, PyTorch) per batch size; the median of each side is reported.
const ROUNDS: usize = 3;
/// (batch size, epochs): enough epochs that every timed run lasts well over 0.5 s on
/// the faster side with 2,250 training rows.
const CASES: [(usize, usize); 2] = [(32, 60), (256, 300)];
/// `RunOptions::default().seed`, the seed a service run uses.
const SEED: u64 = 42;
/// Tag of the data file layout the peer checks.
const FORMAT: &str = "hostbridge-torch-peer-v1";

/// One timed training run of either side.
#[derive(Debug, Clone, Copy)]
struct Timing {
    samples_per_s: f64,
    wall_s: f64,
    first_train_loss: f64,
    final_train_loss: f64,
    final_val_loss: f64,
}

/// The PyTorch peer, or why it does not run.
enum Peer {
    Ready {
        python: String,
        script: PathBuf,
        version: String,
    },
    Skipped(String),
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped strategy and the dataset `run_training` builds from it.
fn shipped_dataset() -> BenchResult<(Strategy, Dataset)> {
    let path = repo().join("strategies/rsi_macd_mlp.yaml");
    let yaml =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let strategy = parse_strategy(&yaml)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The same bars benches/training.rs trains on.
    let bars = support::daily_bars(&strategy, &runtime)?;
    let dataset = build_dataset(&strategy, &bars)?;
    Ok((strategy, dataset))
}

/// Writes a one-line JSON header, then train x (f32 LE), train y (u8), validation x,
/// validation y — the layout `torch_mlp.py` documents and checks.
fn write_splits(
    path: &Path,
    train: &Split,
    validation: &Split,
    weights: [f64; 3],
) -> BenchResult<()> {
    let header = serde_json::json!({
        "format": FORMAT,
        "n_features": train.n_features,
        "train_rows": train.len(),
        "validation_rows": validation.len(),
        "class_weights": weights,
    });
    let mut bytes = serde_json::to_vec(&header)?;
    bytes.push(b'\n');
    for split in [train, validation] {
        bytes.extend(split.x.iter().flat_map(|v| v.to_le_bytes()));
        for &y in &split.y {
            bytes.push(u8::try_from(y).map_err(|_| format!("class {y} does not fit a u8"))?);
        }
    }
    let mut file =
        std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// Whether `TORCH_PYTHON` (default `python3`) can import torch, and its version.
fn find_peer() -> Peer {
    let python = std::env::var("TORCH_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/torch_mlp.py");
    let probe = Command::new(&python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output();
    match probe {
        Err(e) => Peer::Skipped(format!("cannot run {python}: {e}")),
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("no error output").trim();
            Peer::Skipped(format!("{python} cannot import torch ({last})"))
        }
        Ok(out) => Peer::Ready {
            python,
            script,
            version: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        },
    }
}

/// Times our `train` (the whole call: model init and every epoch with its validation
/// pass) with no progress work beyond the loop's own.
fn run_ours(
    spec: &MlpSpec,
    config: &TrainConfig,
    dataset: &Dataset,
    device: &Device,
) -> BenchResult<Timing> {
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let run = train(
        spec,
        config,
        &dataset.train,
        &dataset.validation,
        device,
        &cancel,
        &mut |_| {},
    )?;
    let wall_s = started.elapsed().as_secs_f64();
    let model = match run {
        TrainRun::Completed(m) => m,
        TrainRun::Stopped { .. } => return Err("our run stopped without a cancel".into()),
    };
    if model.history.len() != config.epochs {
        return Err(format!(
            "our run trained {} of {} epochs",
            model.history.len(),
            config.epochs
        )
        .into());
    }
    let (first, last) = match (model.history.first(), model.history.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err("our run has no epochs".into()),
    };
    Ok(Timing {
        samples_per_s: (dataset.train.len() * config.epochs) as f64 / wall_s,
        wall_s,
        first_train_loss: first.train_loss,
        final_train_loss: last.train_loss,
        final_val_loss: last.val_loss.unwrap_or(f64::NAN),
    })
}

/// Runs the peer once; returns its timing and its whole JSON answer.
fn run_torch(
    python: &str,
    script: &Path,
    data: &Path,
    args: &[String],
) -> BenchResult<(Timing, Value)> {
    let out = Command::new(python)
        .arg(script)
        .arg(data)
        .args(args)
        .output()
        .map_err(|e| format!("running {python} {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the PyTorch peer failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let answer: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "the PyTorch peer printed {:?}: {e}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    let num = |k: &str| {
        answer[k]
            .as_f64()
            .ok_or_else(|| format!("the PyTorch peer's answer has no number {k}: {answer}"))
    };
    let timing = Timing {
        samples_per_s: num("samples_per_s")?,
        wall_s: num("wall_s")?,
        first_train_loss: num("first_train_loss")?,
        final_train_loss: num("final_train_loss")?,
        final_val_loss: num("final_val_loss")?,
    };
    Ok((timing, answer))
}

/// Median and (min, max) of samples/s.
fn summary(timings: &[Timing]) -> (f64, f64, f64) {
    let mut rates: Vec<f64> = timings.iter().map(|t| t.samples_per_s).collect();
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied().unwrap_or(f64::NAN);
    let min = rates.first().copied().unwrap_or(f64::NAN);
    let max = rates.last().copied().unwrap_or(f64::NAN);
    (median, min, max)
}

/// `1234567.8` → `1,234,568`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() -> BenchResult<()> {
    let (strategy, dataset) = shipped_dataset()?;
    let spec = MlpSpec::new(&strategy.model.architecture, dataset.n_features());
    let base = TrainConfig::from_hyperparameters(&strategy.model.training, SEED);
    // What `run_training` trains with (RunOptions::default has class weights on).
    let weights = class_weights(dataset.train.class_counts());
    let device = Device::Cpu;
    let threads = candle_core::utils::get_num_threads();

    let dir = tempfile::tempdir().map_err(|e| format!("creating a temp dir: {e}"))?;
    let data = dir.path().join("splits.bin");
    write_splits(&data, &dataset.train, &dataset.validation, weights)?;

    let peer = find_peer();
    let hidden: Vec<String> = spec.hidden_layers.iter().map(ToString::to_string).collect();
    println!(
        "rsi_macd_mlp on AAPL 1d: {} train rows, {} validation rows, {} ({:?}, lr {}), \
         class weights {:?}, early stopping off, CPU, release build",
        dataset.train.len(),
        dataset.validation.len(),
        spec.architecture(),
        base.optimizer,
        base.learning_rate,
        weights,
    );
    match &peer {
        Peer::Ready {
            python, version, ..
        } => println!(
            "PyTorch {version} ({python}); both sides on {threads} threads \
             (candle get_num_threads(); torch.set_num_threads({threads}))"
        ),
        Peer::Skipped(reason) => println!("PyTorch half skipped: {reason}"),
    }

    let mut rows = Vec::new();
    for (batch, epochs) in CASES {
        let mut config = base.clone();
        config.batch_size = batch;
        config.epochs = epochs;
        config.early_stopping = None;
        let peer_args: Vec<String> = vec![
            "--epochs".into(),
            epochs.to_string(),
            "--batch-size".into(),
            batch.to_string(),
            "--lr".into(),
            config.learning_rate.to_string(),
            "--dropout".into(),
            spec.dropout.to_string(),
            "--hidden".into(),
            hidden.join(","),
            "--threads".into(),
            threads.to_string(),
            "--seed".into(),
            SEED.to_string(),
        ];
        let (mut ours, mut torch) = (Vec::new(), Vec::new());
        let mut last_answer = None;
        // Untimed: warms candle's thread pool, the allocator and the caches.
        run_ours(&spec, &config, &dataset, &device)?;
        for round in 0..ROUNDS {
            ours.push(run_ours(&spec, &config, &dataset, &device)?);
            if let Peer::Ready { python, script, .. } = &peer {
                let mut args = peer_args.clone();
                // The profiled run is separate from the timed one inside the peer.
                if round + 1 == ROUNDS {
                    args.push("--profile".into());
                }
                let (timing, answer) = run_torch(python, script, &data, &args)?;
                torch.push(timing);
                last_answer = Some(answer);
            }
        }
        if let Some(answer) = &last_answer
            && answer["threads"].as_u64() != Some(threads as u64)
        {
            return Err(format!(
                "the peer ran on {} threads, not {threads}",
                answer["threads"]
            )
            .into());
        }
        rows.push((batch, epochs, ours, torch, last_answer));
    }

    println!(
        "\nsamples/s = train rows × epochs / wall time of the training loop (model init + \
         every epoch: shuffle, batches with forward/loss/loss read/backward/Adam step/logits \
         read, validation pass, best-epoch copy); median of {ROUNDS} alternating runs, range \
         in brackets\n"
    );
    println!("| batch | epochs | ours samples/s | PyTorch samples/s | ours / PyTorch |");
    println!("|---:|---:|---:|---:|---:|");
    for (batch, epochs, ours, torch, _) in &rows {
        let (om, omin, omax) = summary(ours);
        let ours_cell = format!(
            "{} [{}–{}]",
            thousands(om),
            thousands(omin),
            thousands(omax)
        );
        let (torch_cell, ratio) = if torch.is_empty() {
            ("skipped".to_owned(), "–".to_owned())
        } else {
            let (tm, tmin, tmax) = summary(torch);
            (
                format!(
                    "{} [{}–{}]",
                    thousands(tm),
                    thousands(tmin),
                    thousands(tmax)
                ),
                format!("{:.2}x", om / tm),
            )
        };
        println!("| {batch} | {epochs} | {ours_cell} | {torch_cell} | {ratio} |");
    }

    // Both sides must have learned: the training loss falls from the first epoch.
    println!(
        "\nlosses of the last round (class-weighted cross-entropy; train in training mode):\n"
    );
    println!("| batch | side | wall s | train loss epoch 1 | final train loss | final val loss |");
    println!("|---:|---|---:|---:|---:|---:|");
    for (batch, _, ours, torch, _) in &rows {
        for (side, timings) in [("ours", ours), ("PyTorch", torch)] {
            if let Some(t) = timings.last() {
                println!(
                    "| {batch} | {side} | {:.2} | {:.4} | {:.4} | {:.4} |",
                    t.wall_s, t.first_train_loss, t.final_train_loss, t.final_val_loss
                );
                if t.final_train_loss >= t.first_train_loss {
                    return Err(
                        format!("{side} at batch {batch}: the training loss did not fall").into(),
                    );
                }
            }
        }
    }

    let profiles: Vec<_> = rows
        .iter()
        .filter_map(|(batch, _, _, _, answer)| {
            answer
                .as_ref()
                .map(|a| (batch, a["profile_us_per_batch"].clone()))
        })
        .collect();
    if !profiles.is_empty() {
        println!(
            "\nPyTorch µs per batch (separate profiled run; total includes the validation pass):\n"
        );
        println!(
            "| batch | gather | forward + loss + item | backward | Adam step | read-back | total |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        for (batch, p) in profiles {
            let us = |k: &str| p[k].as_f64().map_or("?".to_owned(), |v| format!("{v:.0}"));
            println!(
                "| {batch} | {} | {} | {} | {} | {} | {} |",
                us("batch_prep"),
                us("forward_loss"),
                us("backward"),
                us("step"),
                us("readback"),
                us("total_incl_validation"),
            );
        }
    }
    Ok(())
}
