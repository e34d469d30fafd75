//! One test per validation rule, each asserting the key path of its error.

use super::{assert_error, assert_path, edit};
use crate::strategy::parse_strategy;

#[test]
fn epochs_batch_size_and_learning_rate_must_be_positive() {
    assert_error(
        &edit("epochs: 100", "epochs: 0"),
        "model.training.epochs: must be a positive integer, got 0",
    );
    assert_error(
        &edit("batch_size: 32", "batch_size: -4"),
        "model.training.batch_size: must be a positive integer, got -4",
    );
    assert_error(
        &edit("learning_rate: 0.001", "learning_rate: 0"),
        "model.training.learning_rate: must be a number > 0, got 0",
    );
    assert_path(
        &edit("learning_rate: 0.001", "learning_rate: -0.5"),
        "model.training.learning_rate",
        "got -0.5",
    );
    assert_path(
        &edit("patience: 15", "patience: 0"),
        "model.training.early_stopping.patience",
        "positive integer",
    );
}

#[test]
fn activation_optimizer_dropout_and_model_type() {
    assert_error(
        &edit("activation: relu", "activation: swish"),
        "model.architecture.activation: unknown activation \"swish\"; expected one of relu, tanh, sigmoid, leaky_relu, gelu",
    );
    assert_error(
        &edit("optimizer: adam", "optimizer: rmsprop"),
        "model.training.optimizer: unknown optimizer \"rmsprop\"; expected one of adam, adamw, sgd",
    );
    assert_error(
        &edit("dropout: 0.2", "dropout: 1.0"),
        "model.architecture.dropout: must be in [0, 1), got 1",
    );
    assert_path(
        &edit("dropout: 0.2", "dropout: -0.1"),
        "model.architecture.dropout",
        "got -0.1",
    );
    assert_path(
        &edit("type: mlp", "type: lstm"),
        "model.type",
        "expected mlp",
    );
    assert_path(
        &edit("hidden_layers: [50, 25]", "hidden_layers: [50, 0]"),
        "model.architecture.hidden_layers[1]",
        "must be a positive integer, got 0",
    );
    assert_path(
        &edit("hidden_layers: [50, 25]", "hidden_layers: []"),
        "model.architecture.hidden_layers",
        "must not be empty",
    );
    assert_path(
        &edit("lookback_periods: 2", "lookback_periods: -1"),
        "model.features.lookback_periods",
        "got -1",
    );
}

#[test]
fn fuzzy_parameters_must_be_ordered() {
    assert_error(
        &edit("parameters: [0, 20, 35]", "parameters: [40, 30, 50]"),
        "fuzzy_sets.rsi_14.oversold.parameters: triangular needs a <= b <= c, got [40, 30, 50]",
    );
    assert_error(
        &edit(
            "parameters: [65, 75, 100, 100]",
            "parameters: [65, 75, 70, 100]",
        ),
        "fuzzy_sets.rsi_14.overbought.parameters: trapezoidal needs a <= b <= c <= d, got [65, 75, 70, 100]",
    );
    assert_error(
        &edit("parameters: [50, 10]", "parameters: [50, 0]"),
        "fuzzy_sets.rsi_14.neutral.parameters: gaussian needs sigma > 0, got [50, 0]",
    );
    assert_path(
        &edit("parameters: [0, 20, 35]", "parameters: [0, 20]"),
        "fuzzy_sets.rsi_14.oversold.parameters",
        "triangular needs 3 parameters",
    );
    assert_path(
        &edit("parameters: [0, 20, 35]", "parameters: [5, 5, 5]"),
        "fuzzy_sets.rsi_14.oversold.parameters",
        "needs a < c",
    );
    assert_path(
        &edit("oversold: { type: triangular", "oversold: { type: sigmoid"),
        "fuzzy_sets.rsi_14.oversold.type",
        "unknown membership type \"sigmoid\"",
    );
    // Degenerate shoulders are allowed.
    parse_strategy(&edit("parameters: [0, 20, 35]", "parameters: [0, 0, 35]")).expect("a == b");
}

#[test]
fn fuzzy_keys_must_name_an_indicator_output() {
    assert_path(
        &edit("  bb_20:\n    mid:", "  bb_21:\n    mid:"),
        "fuzzy_sets.bb_21",
        "no indicator has feature_id \"bb_21\"",
    );
    assert_path(
        &edit("macd_12_26_9.signal:", "macd_12_26_9.slow:"),
        "fuzzy_sets.macd_12_26_9.slow",
        "macd has no output \"slow\"; expected one of macd, signal, histogram",
    );
    assert_path(
        &edit(
            "  stoch:\n    low: { type: trapezoidal, parameters: [0, 0, 20, 30] }",
            "  stoch: {}",
        ),
        "fuzzy_sets.stoch",
        "at least one set",
    );
}

#[test]
fn indicators_are_checked() {
    assert_error(
        &edit("name: bbands", "name: foo"),
        "indicators[2].name: unknown indicator \"foo\"; expected one of rsi, sma, ema, macd, bbands, atr, roc, stochastic",
    );
    assert_path(
        &edit("feature_id: bb_20", "feature_id: rsi_14"),
        "indicators[2].feature_id",
        "duplicate feature_id \"rsi_14\" (already used by indicators[0])",
    );
    assert_path(
        &edit(
            "feature_id: rsi_14, period: 14",
            "feature_id: rsi_14, period: 0",
        ),
        "indicators[0].period",
        "must be a positive integer, got 0",
    );
    assert_path(
        &edit("fast_period: 12", "fast_period: 26"),
        "indicators[1].fast_period",
        "must be less than slow_period",
    );
    assert_path(
        &edit("source: close }", "source: typical }"),
        "indicators[0].source",
        "unknown source \"typical\"",
    );
    assert_path(
        &edit("k_period: 14", "kperiod: 14"),
        "indicators[3].kperiod",
        "unknown parameter for stochastic; expected one of k_period, d_period",
    );
    assert_path(
        &edit("multiplier: 2.0", "multiplier: 0"),
        "indicators[2].multiplier",
        "must be a number > 0",
    );
    assert_path(
        &edit("{ name: rsi, feature_id: rsi_14,", "{ name: rsi,"),
        "indicators[0].feature_id",
        "is required",
    );
    assert_path(
        &edit("feature_id: bb_20", "feature_id: bb.20"),
        "indicators[2].feature_id",
        "letters, digits",
    );
}

#[test]
fn training_data_is_checked() {
    assert_error(
        &edit("list: [1h, 1d]", "list: [1h, 2d]"),
        "training_data.timeframes.list[1]: unknown timeframe `2d`; expected one of 1m, 5m, 15m, 30m, 1h, 2h, 3h, 4h, 1d, 1w, 1M",
    );
    assert_path(
        &edit("base_timeframe: 1h", "base_timeframe: 4h"),
        "training_data.timeframes.base_timeframe",
        "4h is not in training_data.timeframes [1h, 1d]",
    );
    assert_path(
        &edit("list: [AAPL, MSFT]", "list: []"),
        "training_data.symbols.list",
        "must not be empty",
    );
    assert_path(
        &edit("list: [AAPL, MSFT]", "list: [AAPL, \"../etc\"]"),
        "training_data.symbols.list[1]",
        "may contain only letters",
    );
    assert_path(
        &edit("list: [AAPL, MSFT]", "list: [AAPL, aapl]"),
        "training_data.symbols.list[1]",
        "duplicate symbol AAPL",
    );
    assert_path(
        &edit("history_required: 200", "history_required: -1"),
        "training_data.history_required",
        "non-negative",
    );
}

#[test]
fn training_section_is_checked() {
    assert_error(
        &edit("test: 0.15", "test: 0.05"),
        "training.data_split: train + validation + test must be 1.0, got 0.9",
    );
    assert_path(
        &edit(
            "train: 0.7, validation: 0.15",
            "train: 0.0, validation: 0.85",
        ),
        "training.data_split.train",
        "greater than 0",
    );
    assert_path(
        &edit("test: 0.15", "test: -0.15"),
        "training.data_split.test",
        "[0, 1]",
    );
    assert_path(
        &edit("zigzag_threshold: 0.03", "zigzag_threshold: 0"),
        "training.labels.zigzag_threshold",
        "must be a number > 0",
    );
    assert_path(
        &edit("label_lookahead: 20", "label_lookahead: 0"),
        "training.labels.label_lookahead",
        "positive integer",
    );
    assert_path(
        &edit("source: zigzag", "source: triple_barrier"),
        "training.labels.source",
        "expected zigzag",
    );
}
