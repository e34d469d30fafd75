//! Ceilings on every size a training request controls, in one place (README, section
//! "training-host API", lists them). A request over one is refused with 400 naming the
//! key (`model.architecture.hidden_layers[0]`, `symbols`, `strategy_yaml`) before
//! anything starts; the two ceilings that depend on the bars found
//! ([`MAX_SESSION_BARS`], [`MAX_FEATURE_VALUES`]) fail the session with a message
//! instead of letting it exhaust memory. They are generous for real strategies (a
//! KTRDR strategy has a few KiB, 2-3 timeframes, layers of tens of units) and keep one
//! session's memory in the low GiB on the worst input.

use super::error::Errors;
use super::model::Strategy;
use crate::model::MlpSpec;

/// Largest strategy document (`strategy_yaml`), in bytes.
pub const MAX_STRATEGY_YAML_BYTES: usize = 256 * 1024;
/// Most symbols one session trains on (`training_data.symbols`, `symbols`).
pub const MAX_SYMBOLS: usize = 50;
/// Most timeframes one session reads (`training_data.timeframes`, `timeframes`).
pub const MAX_TIMEFRAMES: usize = 6;
/// Most hidden layers (`model.architecture.hidden_layers`).
pub const MAX_HIDDEN_LAYERS: usize = 10;
/// Widest hidden layer (`model.architecture.hidden_layers[i]`).
pub const MAX_LAYER_WIDTH: usize = 4096;
/// Most network parameters (weights and biases). Training holds about 20 bytes per
/// parameter (weights, gradients, two Adam moments, the best epoch's copy): 10 M is
/// about 200 MB.
pub const MAX_PARAMETERS: usize = 10_000_000;
/// Most feature columns: timeframes × fuzzy sets × (1 + `lookback_periods`).
pub const MAX_FEATURES: usize = 4096;
/// Most lagged copies per feature (`model.features.lookback_periods`).
pub const MAX_LOOKBACK: usize = 1000;
/// Most epochs (`model.training.epochs`).
pub const MAX_EPOCHS: usize = 10_000;
/// Largest batch (`model.training.batch_size`).
pub const MAX_BATCH_SIZE: usize = 4096;
/// Longest indicator period; windows are recomputed per row, so unbounded periods
/// would make feature building quadratic for no trading purpose.
pub const MAX_PERIOD: usize = 10_000;
/// Longest label window (`training.labels.label_lookahead`), in bars.
pub const MAX_LABEL_LOOKAHEAD: usize = 10_000;
/// Most bars one session loads, all symbols and timeframes together (about 48 bytes
/// each as a frame); a session over it fails naming its range.
pub const MAX_SESSION_BARS: usize = 10_000_000;
/// Most feature values one session builds: base bars × feature columns, summed over
/// symbols (about 20 bytes each through the pipeline: 50 M is about 1 GB).
pub const MAX_FEATURE_VALUES: usize = 50_000_000;

/// Records a problem when `count` items at `path` are more than `max`; `what` names
/// them in the message.
pub(crate) fn at_most(
    errors: &mut Errors,
    path: &str,
    count: usize,
    max: usize,
    what: &str,
) -> bool {
    if count > max {
        errors.push(
            path,
            format!("at most {max} {what} are accepted, got {count}"),
        );
        false
    } else {
        true
    }
}

/// Checks the sizes that only the whole strategy determines: feature columns and
/// network parameters (after overrides, which may change the timeframes).
pub(crate) fn check_network(errors: &mut Errors, strategy: &Strategy) {
    let features = strategy.feature_count();
    if features > MAX_FEATURES {
        let lookback = strategy.model.features.lookback_periods;
        let path = if lookback > 0 {
            "model.features.lookback_periods"
        } else {
            "fuzzy_sets"
        };
        errors.push(
            path,
            format!(
                "the strategy makes {features} feature columns ({} timeframes × {} fuzzy sets × {} with lookback {lookback}); at most {MAX_FEATURES} are accepted",
                strategy.training_data.timeframes.len(),
                strategy.fuzzy_set_count(),
                lookback.saturating_add(1),
            ),
        );
        return;
    }
    let spec = MlpSpec::new(&strategy.model.architecture, features);
    let parameters = spec.parameters_count();
    if parameters > MAX_PARAMETERS {
        errors.push(
            "model.architecture.hidden_layers",
            format!(
                "the network {} has {parameters} parameters; at most {MAX_PARAMETERS} are accepted",
                spec.architecture()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_accepted_network_cannot_overflow_the_parameter_count() {
        // Every dimension at its ceiling: the count is computed without overflow (and
        // refused), so no ceiling can be bypassed by wrapping arithmetic.
        let widest = MAX_FEATURES * MAX_LAYER_WIDTH
            + MAX_LAYER_WIDTH * MAX_LAYER_WIDTH * (MAX_HIDDEN_LAYERS - 1);
        assert!(widest.checked_mul(2).is_some());
        assert!(widest > MAX_PARAMETERS);
    }
}
