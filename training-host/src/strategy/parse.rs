//! Stage one of loading a strategy: YAML → raw, loosely typed sections.
//!
//! Nearly every field is an `Option` so that a missing key becomes a semantic error
//! with its path (reported together with all others by `validate`) instead of serde
//! stopping at the first one. Only genuine type errors (`epochs: many`) and YAML syntax
//! errors stop here; `serde_path_to_error` names their key path and serde_yaml_ng their
//! line and column. Unknown keys are ignored: KTRDR files carry sections and keys
//! (`decisions`, `deployment`, `output_activation`, ...) training does not use.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_yaml_ng::Value;

use super::error::{FieldError, StrategyError};
use super::limits::MAX_STRATEGY_YAML_BYTES;

/// A YAML mapping kept in document order (feature column order follows the YAML).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderedMap<T>(pub(crate) Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrderedMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for MapVisitor<T> {
            type Value = OrderedMap<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, T>()? {
                    entries.push((key, value));
                }
                Ok(OrderedMap(entries))
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

/// The whole document.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawStrategy {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) training_data: Option<RawTrainingData>,
    /// Each entry is a mapping: `name`, `feature_id`, and the parameters, which differ
    /// per kind and are therefore checked by hand.
    pub(crate) indicators: Option<Vec<OrderedMap<Value>>>,
    pub(crate) fuzzy_sets: Option<OrderedMap<OrderedMap<RawFuzzySet>>>,
    pub(crate) model: Option<RawModel>,
    pub(crate) training: Option<RawTraining>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawTrainingData {
    pub(crate) symbols: Option<RawSymbols>,
    pub(crate) timeframes: Option<RawTimeframes>,
    pub(crate) history_required: Option<i64>,
    /// First day or instant of training data (KTRDR's spelling; the request's
    /// `start_date` replaces it).
    pub(crate) start_date: Option<String>,
    /// Last day (inclusive) or first excluded instant.
    pub(crate) end_date: Option<String>,
}

/// `symbols`: `list`, or KTRDR's single-symbol spelling `symbol`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawSymbols {
    pub(crate) mode: Option<String>,
    pub(crate) list: Option<Vec<String>>,
    pub(crate) symbol: Option<String>,
}

/// `timeframes`: `list`, or KTRDR's single-timeframe spelling `timeframe`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawTimeframes {
    pub(crate) mode: Option<String>,
    pub(crate) list: Option<Vec<String>>,
    pub(crate) timeframe: Option<String>,
    pub(crate) base_timeframe: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawFuzzySet {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) parameters: Option<Vec<f64>>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawModel {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) architecture: Option<RawArchitecture>,
    pub(crate) features: Option<RawFeatures>,
    pub(crate) training: Option<RawHyperparameters>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawArchitecture {
    pub(crate) hidden_layers: Option<Vec<i64>>,
    pub(crate) activation: Option<String>,
    pub(crate) dropout: Option<f64>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawFeatures {
    pub(crate) lookback_periods: Option<i64>,
    pub(crate) scale_features: Option<bool>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawHyperparameters {
    pub(crate) learning_rate: Option<f64>,
    pub(crate) batch_size: Option<i64>,
    pub(crate) epochs: Option<i64>,
    pub(crate) optimizer: Option<String>,
    pub(crate) early_stopping: Option<RawEarlyStopping>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawEarlyStopping {
    pub(crate) enabled: Option<bool>,
    pub(crate) patience: Option<i64>,
    pub(crate) min_delta: Option<f64>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawTraining {
    pub(crate) labels: Option<RawLabels>,
    pub(crate) data_split: Option<RawDataSplit>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawLabels {
    pub(crate) source: Option<String>,
    pub(crate) zigzag_threshold: Option<f64>,
    pub(crate) label_lookahead: Option<i64>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RawDataSplit {
    pub(crate) train: Option<f64>,
    pub(crate) validation: Option<f64>,
    pub(crate) test: Option<f64>,
}

/// Parses the YAML text into raw sections.
pub(crate) fn parse_raw(yaml: &str) -> Result<RawStrategy, StrategyError> {
    // Named after the request field that carries the document: its size is the
    // request's, and nothing of it is parsed.
    if yaml.len() > MAX_STRATEGY_YAML_BYTES {
        return Err(StrategyError::single(FieldError::new(
            "strategy_yaml",
            format!(
                "the strategy document is {} bytes; at most {MAX_STRATEGY_YAML_BYTES} are accepted",
                yaml.len()
            ),
        )));
    }
    if yaml.trim().is_empty() {
        return Err(StrategyError::single(FieldError::new(
            "",
            "strategy document is empty",
        )));
    }
    let deserializer = serde_yaml_ng::Deserializer::from_str(yaml);
    serde_path_to_error::deserialize(deserializer)
        .map_err(|e| StrategyError::single(field_error(&e)))
}

/// Turns a serde error into a [`FieldError`] with the key path from
/// `serde_path_to_error` and the position from serde_yaml_ng.
fn field_error(error: &serde_path_to_error::Error<serde_yaml_ng::Error>) -> FieldError {
    let inner = error.inner();
    let path = error.path().to_string();
    // "." is serde_path_to_error's spelling of the root: a document-level problem.
    let path = if path == "." { String::new() } else { path };
    let location = inner.location();
    let mut message = inner.to_string();
    // serde_yaml_ng appends " at line L column C" and may prefix its own copy of the
    // path; both are reported in their own fields, so strip them from the message.
    if let Some(l) = &location {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(head) = message.strip_suffix(&suffix) {
            message = head.to_owned();
        }
    }
    if !path.is_empty()
        && let Some(rest) = message.strip_prefix(&format!("{path}: "))
    {
        message = rest.to_owned();
    }
    FieldError {
        path,
        message,
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
    }
}
