//! Every size a request controls has a ceiling, refused with the key named (issue 15):
//! before them `hidden_layers: [1000000000]` validated and aborted the host on
//! allocation.

use super::{BASE, assert_path, edit};
use crate::strategy::limits::{
    MAX_BATCH_SIZE, MAX_EPOCHS, MAX_FEATURES, MAX_HIDDEN_LAYERS, MAX_LABEL_LOOKAHEAD,
    MAX_LAYER_WIDTH, MAX_LOOKBACK, MAX_PARAMETERS, MAX_STRATEGY_YAML_BYTES, MAX_SYMBOLS,
    MAX_TIMEFRAMES,
};
use crate::strategy::{Overrides, apply_overrides, parse_strategy};

fn list(n: usize, item: impl Fn(usize) -> String) -> String {
    let items: Vec<String> = (0..n).map(item).collect();
    format!("[{}]", items.join(", "))
}

#[test]
fn network_and_optimiser_sizes_have_ceilings() {
    assert_path(
        &edit("hidden_layers: [50, 25]", "hidden_layers: [1000000000]"),
        "model.architecture.hidden_layers[0]",
        &format!("must be at most {MAX_LAYER_WIDTH}, got 1000000000"),
    );
    let deep = list(MAX_HIDDEN_LAYERS + 1, |_| "8".to_owned());
    assert_path(
        &edit("hidden_layers: [50, 25]", &format!("hidden_layers: {deep}")),
        "model.architecture.hidden_layers",
        &format!("at most {MAX_HIDDEN_LAYERS} hidden layers"),
    );
    let over = |key: &str, from: &str, max: usize| {
        assert_path(
            &edit(from, &format!("{key}: {}", max + 1)),
            &format!("model.training.{key}"),
            &format!("must be at most {max}"),
        );
    };
    over("epochs", "epochs: 100", MAX_EPOCHS);
    over("batch_size", "batch_size: 32", MAX_BATCH_SIZE);
    assert_path(
        &edit(
            "lookback_periods: 2",
            &format!("lookback_periods: {}", MAX_LOOKBACK + 1),
        ),
        "model.features.lookback_periods",
        &format!("must be at most {MAX_LOOKBACK}"),
    );
    assert_path(
        &edit(
            "label_lookahead: 20",
            &format!("label_lookahead: {}", MAX_LABEL_LOOKAHEAD + 1),
        ),
        "training.labels.label_lookahead",
        &format!("must be at most {MAX_LABEL_LOOKAHEAD}"),
    );
    // At the ceilings themselves everything is accepted.
    let at = edit("epochs: 100", &format!("epochs: {MAX_EPOCHS}"))
        .replace("batch_size: 32", &format!("batch_size: {MAX_BATCH_SIZE}"));
    parse_strategy(&at).expect("ceilings are inclusive");
}

#[test]
fn whole_network_sizes_have_ceilings() {
    // BASE: 2 timeframes × 7 fuzzy sets × (1 + lookback).
    let base = parse_strategy(BASE).expect("valid");
    assert_eq!(base.feature_count(), 2 * 7 * 3);
    let wide = list(3, |_| MAX_LAYER_WIDTH.to_string());
    assert_path(
        &edit("hidden_layers: [50, 25]", &format!("hidden_layers: {wide}")),
        "model.architecture.hidden_layers",
        &format!("at most {MAX_PARAMETERS} are accepted"),
    );
    assert_path(
        &edit("lookback_periods: 2", "lookback_periods: 500"),
        "model.features.lookback_periods",
        &format!("at most {MAX_FEATURES} are accepted"),
    );
    // Overrides are checked again: three timeframes make 3 × 7 × 251 > 4096 columns
    // where the YAML's two made 3514.
    let s = parse_strategy(&edit("lookback_periods: 2", "lookback_periods: 250"))
        .expect("3514 columns are accepted");
    let more = Overrides {
        timeframes: Some(vec!["1h".into(), "4h".into(), "1d".into()]),
        ..Overrides::default()
    };
    let err = apply_overrides(s, &more).expect_err("too many columns");
    assert!(err.has_path("model.features.lookback_periods"), "{err}");
}

#[test]
fn request_lists_and_the_document_have_ceilings() {
    let symbols = list(MAX_SYMBOLS + 1, |i| format!("S{i}"));
    assert_path(
        &edit("list: [AAPL, MSFT]", &format!("list: {symbols}")),
        "training_data.symbols.list",
        &format!("at most {MAX_SYMBOLS} symbols"),
    );
    let timeframes = list(MAX_TIMEFRAMES + 1, |_| "1h".to_owned());
    assert_path(
        &edit(
            "list: [1h, 1d], base_timeframe: 1h",
            &format!("list: {timeframes}, base_timeframe: 1h"),
        ),
        "training_data.timeframes.list",
        &format!("at most {MAX_TIMEFRAMES} timeframes"),
    );
    let s = parse_strategy(BASE).expect("valid");
    let many = Overrides {
        symbols: Some((0..=MAX_SYMBOLS).map(|i| format!("S{i}")).collect()),
        timeframes: Some(vec!["1h".to_owned(); MAX_TIMEFRAMES + 1]),
        ..Overrides::default()
    };
    let err = apply_overrides(s, &many).expect_err("too many");
    assert!(
        err.has_path("symbols") && err.has_path("timeframes"),
        "{err}"
    );
    assert_eq!(
        err.errors.len(),
        2,
        "one error per list, not per item: {err}"
    );

    let padded = format!("{BASE}#{}\n", "x".repeat(MAX_STRATEGY_YAML_BYTES));
    assert_path(
        &padded,
        "strategy_yaml",
        &format!("at most {MAX_STRATEGY_YAML_BYTES} are accepted"),
    );
}
