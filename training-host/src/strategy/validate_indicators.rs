//! Validation of `indicators[]`: kind, `feature_id`, and the parameters of each kind
//! (with the usual defaults), reported as `indicators[i].key`.
//!
//! Parameters are checked by hand rather than by serde because they differ per kind
//! and because an unknown parameter (`perod: 14`) must be an error, not silently the
//! default period.

use host_service_base::names::{First, NameRule, printable};
use serde_yaml_ng::Value;

use super::error::Errors;
use super::indicator::{Indicator, IndicatorSpec, PriceSource};
use super::limits::MAX_PERIOD;
use super::parse::OrderedMap;
use super::validate::{positive_at_most, required};

/// A feature id and a fuzzy set name (the two join to a feature name, `rsi_14_low`):
/// no `.`, which separates a feature id from an output name in `fuzzy_sets` keys.
pub(crate) const FEATURE_NAME: NameRule = NameRule {
    punctuation: "_-",
    max_len: 100,
    first: First::Any,
};

/// An indicator as far as fuzzy-set validation needs it, including indicators that
/// are themselves invalid (so one mistake does not cascade into "unknown feature_id").
#[derive(Debug, Clone)]
pub(crate) struct KnownIndicator {
    pub(crate) feature_id: String,
    /// `None` when the kind is missing or unknown.
    pub(crate) kind: Option<&'static str>,
    /// Index in `indicators[]`.
    pub(crate) index: usize,
    /// The validated spec, when the entry is valid.
    pub(crate) spec: Option<IndicatorSpec>,
}

/// Validates the list; returns the valid specs' view for fuzzy validation.
pub(crate) fn indicators(
    errors: &mut Errors,
    raw: Option<Vec<OrderedMap<Value>>>,
) -> (Vec<IndicatorSpec>, Vec<KnownIndicator>) {
    let Some(raw) = required(errors, "indicators", raw) else {
        return (Vec::new(), Vec::new());
    };
    if raw.is_empty() {
        errors.push("indicators", "must not be empty");
    }
    let mut known: Vec<KnownIndicator> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let base = format!("indicators[{index}]");
        let get = |key: &str| entry.0.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let kind = get("name").and_then(|v| kind_of(errors, &format!("{base}.name"), v));
        if get("name").is_none() {
            errors.push(format!("{base}.name"), "is required");
        }
        let feature_id = match get("feature_id") {
            None => {
                errors.push(
                    format!("{base}.feature_id"),
                    "is required (the id fuzzy_sets refer to)",
                );
                None
            }
            Some(v) => feature_id(errors, &format!("{base}.feature_id"), v, &known),
        };
        let params = Params {
            base: &base,
            entries: &entry.0,
        };
        let indicator = kind.and_then(|k| params.build(errors, k));
        if let Some(feature_id) = feature_id {
            let spec = indicator.map(|indicator| IndicatorSpec {
                feature_id: feature_id.clone(),
                indicator,
            });
            known.push(KnownIndicator {
                feature_id,
                kind,
                index,
                spec,
            });
        }
    }
    let specs = known.iter().filter_map(|k| k.spec.clone()).collect();
    (specs, known)
}

fn kind_of(errors: &mut Errors, path: &str, value: &Value) -> Option<&'static str> {
    let Value::String(text) = value else {
        errors.push(path, format!("must be a string, got {}", describe(value)));
        return None;
    };
    let lower = text.trim().to_ascii_lowercase();
    let found = Indicator::NAMES.into_iter().find(|n| *n == lower);
    if found.is_none() {
        errors.push(
            path,
            format!(
                "unknown indicator {text:?}; expected one of {}",
                Indicator::NAMES.join(", ")
            ),
        );
    }
    found
}

fn feature_id(
    errors: &mut Errors,
    path: &str,
    value: &Value,
    known: &[KnownIndicator],
) -> Option<String> {
    let Value::String(id) = value else {
        errors.push(path, format!("must be a string, got {}", describe(value)));
        return None;
    };
    if let Err(e) = FEATURE_NAME.check(id) {
        errors.push(
            path,
            format!(
                "\"{}\" is {e}: use {}",
                printable(id),
                FEATURE_NAME.allowed()
            ),
        );
        return None;
    }
    if let Some(first) = known.iter().find(|k| k.feature_id == *id) {
        errors.push(
            path,
            format!(
                "duplicate feature_id {id:?} (already used by indicators[{}])",
                first.index
            ),
        );
        return None;
    }
    Some(id.clone())
}

/// The parameter keys of one entry.
struct Params<'a> {
    base: &'a str,
    entries: &'a [(String, Value)],
}

impl Params<'_> {
    /// Checks the keys against `kind` and builds the indicator.
    fn build(&self, errors: &mut Errors, kind: &'static str) -> Option<Indicator> {
        let allowed: &[&str] = match kind {
            "macd" => &["fast_period", "slow_period", "signal_period", "source"],
            "bbands" => &["period", "multiplier", "source"],
            "atr" => &["period"],
            "stochastic" => &["k_period", "d_period"],
            _ => &["period", "source"],
        };
        let before = errors.len();
        for (key, _) in self.entries {
            if key != "name" && key != "feature_id" && !allowed.contains(&key.as_str()) {
                errors.push(
                    format!("{}.{key}", self.base),
                    format!(
                        "unknown parameter for {kind}; expected one of {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
        let indicator = match kind {
            "rsi" => Indicator::Rsi {
                period: self.period(errors, "period", 14)?,
                source: self.source(errors)?,
            },
            "sma" => Indicator::Sma {
                period: self.period(errors, "period", 20)?,
                source: self.source(errors)?,
            },
            "ema" => Indicator::Ema {
                period: self.period(errors, "period", 20)?,
                source: self.source(errors)?,
            },
            "macd" => self.macd(errors)?,
            "bbands" => Indicator::Bbands {
                period: self.period(errors, "period", 20)?,
                multiplier: self.multiplier(errors)?,
                source: self.source(errors)?,
            },
            "atr" => Indicator::Atr {
                period: self.period(errors, "period", 14)?,
            },
            "roc" => Indicator::Roc {
                period: self.period(errors, "period", 10)?,
                source: self.source(errors)?,
            },
            "stochastic" => Indicator::Stochastic {
                k_period: self.period(errors, "k_period", 14)?,
                d_period: self.period(errors, "d_period", 3)?,
            },
            _ => return None,
        };
        (errors.len() == before).then_some(indicator)
    }

    fn macd(&self, errors: &mut Errors) -> Option<Indicator> {
        let fast = self.period(errors, "fast_period", 12);
        let slow = self.period(errors, "slow_period", 26);
        let signal = self.period(errors, "signal_period", 9);
        let source = self.source(errors);
        let (fast_period, slow_period) = (fast?, slow?);
        if fast_period >= slow_period {
            errors.push(
                format!("{}.fast_period", self.base),
                format!(
                    "must be less than slow_period, got fast_period {fast_period} >= slow_period {slow_period}"
                ),
            );
            return None;
        }
        Some(Indicator::Macd {
            fast_period,
            slow_period,
            signal_period: signal?,
            source: source?,
        })
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn period(&self, errors: &mut Errors, key: &str, default: usize) -> Option<usize> {
        let path = format!("{}.{key}", self.base);
        let Some(value) = self.get(key) else {
            return Some(default);
        };
        let Some(n) = value.as_i64() else {
            errors.push(
                path,
                format!("must be a positive integer, got {}", describe(value)),
            );
            return None;
        };
        positive_at_most(errors, &path, n, MAX_PERIOD)
    }

    fn multiplier(&self, errors: &mut Errors) -> Option<f64> {
        let Some(value) = self.get("multiplier") else {
            return Some(2.0);
        };
        match value.as_f64() {
            Some(m) if m.is_finite() && m > 0.0 => Some(m),
            _ => {
                errors.push(
                    format!("{}.multiplier", self.base),
                    format!("must be a number > 0, got {}", describe(value)),
                );
                None
            }
        }
    }

    fn source(&self, errors: &mut Errors) -> Option<PriceSource> {
        let Some(value) = self.get("source") else {
            return Some(PriceSource::Close);
        };
        let found = value
            .as_str()
            .and_then(|s| PriceSource::parse(&s.trim().to_ascii_lowercase()));
        if found.is_none() {
            errors.push(
                format!("{}.source", self.base),
                format!(
                    "unknown source {}; expected one of {}",
                    describe(value),
                    PriceSource::NAMES.join(", ")
                ),
            );
        }
        found
    }
}

/// A short rendering of a YAML value for messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(_) => "a tagged value".into(),
    }
}
