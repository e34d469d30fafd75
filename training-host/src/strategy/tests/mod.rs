//! Strategy parsing, validation and override tests: every rule has a test asserting
//! the key path of its error.

use std::path::PathBuf;

use data_host::{Symbol, Timeframe};

use super::*;

mod limits;
mod overrides;
mod rules;

pub(super) const BASE: &str = r#"
name: test_strategy
description: unit test
version: "2.0"
training_data:
  symbols: { mode: multi_symbol, list: [AAPL, MSFT] }
  timeframes: { mode: multi_timeframe, list: [1h, 1d], base_timeframe: 1h }
  history_required: 200
indicators:
  - { name: rsi, feature_id: rsi_14, period: 14, source: close }
  - { name: macd, feature_id: macd_12_26_9, fast_period: 12, slow_period: 26, signal_period: 9 }
  - { name: bbands, feature_id: bb_20, period: 20, multiplier: 2.0 }
  - { name: stochastic, feature_id: stoch, k_period: 14, d_period: 3 }
fuzzy_sets:
  rsi_14:
    oversold: { type: triangular, parameters: [0, 20, 35] }
    overbought: { type: trapezoidal, parameters: [65, 75, 100, 100] }
    neutral: { type: gaussian, parameters: [50, 10] }
  macd_12_26_9:
    up: { type: triangular, parameters: [0, 1, 2] }
  macd_12_26_9.signal:
    up: { type: triangular, parameters: [0, 1, 2] }
  bb_20:
    mid: { type: gaussian, parameters: [100, 5] }
  stoch:
    low: { type: trapezoidal, parameters: [0, 0, 20, 30] }
model:
  type: mlp
  architecture: { hidden_layers: [50, 25], activation: relu, dropout: 0.2 }
  features: { lookback_periods: 2, scale_features: true }
  training: { learning_rate: 0.001, batch_size: 32, epochs: 100, optimizer: adam, early_stopping: { enabled: true, patience: 15, min_delta: 0.001 } }
decisions: { confidence_threshold: 0.6 }
deployment: { anything: [1, 2, 3] }
training:
  labels: { source: zigzag, zigzag_threshold: 0.03, label_lookahead: 20 }
  data_split: { train: 0.7, validation: 0.15, test: 0.15 }
"#;

/// `BASE` with `from` replaced by `to` (which must occur).
pub(super) fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE lacks {from:?}");
    BASE.replacen(from, to, 1)
}

/// The errors of an invalid document.
pub(super) fn errors(yaml: &str) -> StrategyError {
    parse_strategy(yaml).expect_err("document should be invalid")
}

/// Asserts that `yaml` fails with exactly `expected` (`path: message`) among its errors.
pub(super) fn assert_error(yaml: &str, expected: &str) {
    let err = errors(yaml);
    assert!(
        err.errors.iter().any(|e| e.to_string() == expected),
        "expected {expected:?} in:\n{err}"
    );
}

/// Asserts that `yaml` fails with an error at `path` whose message contains `part`.
pub(super) fn assert_path(yaml: &str, path: &str, part: &str) {
    let err = errors(yaml);
    assert!(
        err.errors
            .iter()
            .any(|e| e.path == path && e.message.contains(part)),
        "expected `{path}: ...{part}...` in:\n{err}"
    );
}

pub(super) fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

#[test]
fn shipped_strategies_parse_and_validate() {
    let s = load_strategy(&repo_file("strategies/rsi_macd_mlp.yaml")).expect("rsi_macd_mlp");
    assert_eq!(s.name, "rsi_macd_mlp");
    assert_eq!(
        s.training_data.symbols,
        [Symbol::parse("AAPL").expect("sym")]
    );
    assert_eq!(s.training_data.timeframes, [Timeframe::D1]);
    assert_eq!(s.model.architecture.hidden_layers, [50, 25]);
    assert_eq!(s.indicators.len(), 2);
    assert!(!s.is_multi_timeframe());

    let m = load_strategy(&repo_file("strategies/multi_tf_example.yaml")).expect("multi_tf");
    assert_eq!(m.training_data.timeframes, [Timeframe::H1, Timeframe::D1]);
    assert_eq!(m.training_data.base_timeframe, Timeframe::H1);
    assert!(m.is_multi_timeframe());
}

#[test]
fn parses_the_v2_layout_into_typed_structs() {
    let s = parse_strategy(BASE).expect("valid");
    assert_eq!(s.description.as_deref(), Some("unit test"));
    assert_eq!(s.version.as_deref(), Some("2.0"));
    assert_eq!(
        s.training_data.symbols_mode.as_deref(),
        Some("multi_symbol")
    );
    assert_eq!(s.training_data.history_required, Some(200));
    assert_eq!(
        s.indicators[1].indicator,
        Indicator::Macd {
            fast_period: 12,
            slow_period: 26,
            signal_period: 9,
            source: PriceSource::Close
        }
    );
    // Document order is kept, and bare multi-output keys read the primary output.
    let keys: Vec<(&str, &str)> = s
        .fuzzy_sets
        .iter()
        .map(|f| (f.key.as_str(), f.column.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("rsi_14", "rsi_14"),
            ("macd_12_26_9", "macd_12_26_9.macd"),
            ("macd_12_26_9.signal", "macd_12_26_9.signal"),
            ("bb_20", "bb_20.middle"),
            ("stoch", "stoch.k"),
        ]
    );
    let sets: Vec<&str> = s.fuzzy_sets[0]
        .sets
        .iter()
        .map(|x| x.name.as_str())
        .collect();
    assert_eq!(sets, ["oversold", "overbought", "neutral"]);
    assert_eq!(
        s.fuzzy_sets[0].sets[2].membership,
        Membership::Gaussian {
            mu: 50.0,
            sigma: 10.0
        }
    );
    assert_eq!(s.model.architecture.activation, Activation::Relu);
    assert_eq!(s.model.training.optimizer, Optimizer::Adam);
    assert_eq!(
        s.model.training.early_stopping,
        Some(EarlyStopping {
            patience: 15,
            min_delta: 0.001
        })
    );
    assert_eq!(s.training.labels.label_lookahead, 20);
    // The typed strategy round-trips through JSON (a model store saves it).
    let json = serde_json::to_string(&s).expect("serialise");
    let back: Strategy = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, s);
}

#[test]
fn defaults_and_single_item_spellings() {
    let yaml = edit(
        "  symbols: { mode: multi_symbol, list: [AAPL, MSFT] }\n  timeframes: { mode: multi_timeframe, list: [1h, 1d], base_timeframe: 1h }",
        "  symbols: { mode: single, symbol: aapl }\n  timeframes: { mode: single, timeframe: 1d }",
    )
    .replace("{ name: rsi, feature_id: rsi_14, period: 14, source: close }", "{ name: RSI, feature_id: rsi_14 }")
    .replace("  features: { lookback_periods: 2, scale_features: true }\n", "")
    .replace(", optimizer: adam, early_stopping: { enabled: true, patience: 15, min_delta: 0.001 }", "");
    let s = parse_strategy(&yaml).expect("valid");
    assert_eq!(s.training_data.symbols[0].as_str(), "AAPL");
    assert_eq!(s.training_data.base_timeframe, Timeframe::D1);
    assert_eq!(
        s.indicators[0].indicator,
        Indicator::Rsi {
            period: 14,
            source: PriceSource::Close
        }
    );
    assert_eq!(s.model.features.lookback_periods, 0);
    assert!(s.model.features.scale_features);
    assert_eq!(s.model.training.optimizer, Optimizer::Adam);
    assert_eq!(s.model.training.early_stopping, None);
}

#[test]
fn every_error_is_reported_at_once() {
    let yaml = edit("epochs: 100", "epochs: 0")
        .replace("name: bbands", "name: foo")
        .replace("test: 0.15", "test: 0.05")
        .replace("activation: relu", "activation: swish");
    let err = errors(&yaml);
    for path in [
        "model.training.epochs",
        "indicators[2].name",
        "training.data_split",
        "model.architecture.activation",
    ] {
        assert!(err.has_path(path), "{path} missing in:\n{err}");
    }
    let text = err.to_string();
    assert!(text.starts_with("invalid strategy (4 errors):"), "{text}");
    assert!(text.contains("\n  - model.training.epochs: must be a positive integer, got 0"));
    // The feature_id of an indicator with an unknown kind is still known, so its fuzzy
    // set does not add a cascading "unknown feature_id" error.
    assert!(!err.has_path("fuzzy_sets.bb_20"), "{text}");
}

#[test]
fn missing_sections_are_named() {
    let err = errors("name: x\n");
    for path in [
        "training_data",
        "indicators",
        "fuzzy_sets",
        "model",
        "training",
    ] {
        assert!(err.has_path(path), "{path} missing in:\n{err}");
    }
    assert!(errors(&edit("name: test_strategy", "name: ../evil")).has_path("name"));
    assert!(errors("").errors[0].message.contains("empty"));
}

#[test]
fn yaml_errors_carry_line_and_column_and_key_path() {
    let err = errors("name: x\ntraining_data:\n  symbols: [unclosed\n");
    let e = &err.errors[0];
    assert!(e.line.is_some() && e.column.is_some(), "{e:?}");
    assert!(e.to_string().contains("(line "), "{e}");

    let yaml = edit("epochs: 100", "epochs: many");
    let line = yaml
        .lines()
        .position(|l| l.contains("epochs: many"))
        .map(|i| i + 1);
    let err = errors(&yaml);
    let e = &err.errors[0];
    assert_eq!(e.path, "model.training.epochs");
    assert!(e.message.contains("invalid type"), "{e}");
    assert_eq!(e.line, line, "{e:?}");

    let err = errors(&edit("hidden_layers: [50, 25]", "hidden_layers: [50, x]"));
    assert_eq!(err.errors[0].path, "model.architecture.hidden_layers[1]");
}
