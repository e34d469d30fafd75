//! Strategy configuration: the KTRDR v2 strategy YAML as typed, validated structs.
//!
//! Loading is two stages. `parse` turns YAML into raw sections with serde
//! (`serde_path_to_error` names the key path of a type error; a syntax error carries
//! its line and column). `validate` then checks every semantic rule and reports ALL
//! problems at once, each naming its key path, e.g.
//! `model.training.epochs: must be a positive integer, got 0`. Unknown top-level
//! sections (`decisions`, `deployment`, `date_range`, ...) and unknown keys inside
//! sections are ignored; unknown indicator parameters are errors. Every size a
//! strategy or a request controls has a ceiling in [`limits`].

mod error;
mod indicator;
pub mod limits;
mod model;
mod network;
mod overrides;
mod parse;
mod validate;
mod validate_fuzzy;
mod validate_indicators;
mod validate_model;

use std::path::Path;

pub use error::{FieldError, StrategyError};
pub use indicator::{Indicator, IndicatorSpec, PriceSource};
pub use model::{
    DataSplit, DateRange, FuzzyInput, FuzzySet, LabelConfig, Membership, Strategy, TrainingConfig,
    TrainingData,
};
pub use network::{
    Activation, Architecture, EarlyStopping, FeatureConfig, Hyperparameters, ModelConfig, Optimizer,
};
pub use overrides::{Overrides, apply_overrides};

/// Parses and validates a strategy document.
pub fn parse_strategy(yaml: &str) -> Result<Strategy, StrategyError> {
    validate::validate(parse::parse_raw(yaml)?)
}

/// Reads and validates a strategy file.
pub fn load_strategy(path: &Path) -> Result<Strategy, StrategyError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        StrategyError::single(FieldError::new(
            "",
            format!("cannot read strategy file {}: {e}", path.display()),
        ))
    })?;
    parse_strategy(&text)
}

#[cfg(test)]
mod tests;
