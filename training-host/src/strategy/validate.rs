//! Stage two of loading a strategy: raw sections → the typed [`Strategy`], checking
//! every rule and collecting every problem with its key path.
//!
//! Indicators, fuzzy sets and the `model`/`training` sections have their own files;
//! this one holds the document walk, `training_data`, and the small helpers all of
//! them share.

use data_host::{Symbol, Timeframe};
use host_service_base::names::{First, NameRule, printable};

use super::error::{Errors, StrategyError, num};
use super::limits::{MAX_SYMBOLS, MAX_TIMEFRAMES, at_most, check_network};
use super::model::{DateRange, Strategy, TrainingData};
use super::overrides::parse_range;
use super::parse::{RawStrategy, RawTrainingData};
use super::{validate_fuzzy, validate_indicators, validate_model};

/// Validates a parsed document.
pub(crate) fn validate(raw: RawStrategy) -> Result<Strategy, StrategyError> {
    let mut errors = Errors::default();
    let name = strategy_name(&mut errors, raw.name);
    let date_range = raw
        .training_data
        .as_ref()
        .map_or(Some(DateRange::default()), |t| {
            parse_range(
                &mut errors,
                ("training_data.start_date", t.start_date.as_deref()),
                ("training_data.end_date", t.end_date.as_deref()),
            )
        });
    let training_data = training_data(&mut errors, raw.training_data);
    let (indicators, known) = validate_indicators::indicators(&mut errors, raw.indicators);
    let fuzzy_sets = validate_fuzzy::fuzzy_sets(&mut errors, raw.fuzzy_sets, &known);
    let model = validate_model::model(&mut errors, raw.model);
    let training = validate_model::training(&mut errors, raw.training);
    match (name, training_data, model, training, date_range) {
        (Some(name), Some(training_data), Some(model), Some(training), Some(date_range)) => {
            let strategy = Strategy {
                name,
                description: raw.description,
                version: raw.version,
                training_data,
                indicators,
                fuzzy_sets,
                model,
                training,
                date_range,
            };
            // The sizes the whole strategy determines, once each part is valid.
            if errors.len() == 0 {
                check_network(&mut errors, &strategy);
            }
            errors.finish(strategy)
        }
        _ => {
            if errors.len() == 0 {
                // Every `None` above records why; this is a guard, not a path.
                errors.push("", "strategy is incomplete");
            }
            Err(errors.into_error())
        }
    }
}

/// A strategy's `name`: a directory of the model store, so a safe name (one path
/// component), and stricter than the store's own rule at the start (no `_`, `-`).
const STRATEGY_NAME: NameRule = NameRule {
    punctuation: "_-.",
    max_len: 100,
    first: First::LetterOrDigit,
};

/// `name`: it becomes a directory of the model store, so only safe characters.
fn strategy_name(errors: &mut Errors, raw: Option<String>) -> Option<String> {
    let name = required(errors, "name", raw)?;
    if let Err(e) = STRATEGY_NAME.check(&name) {
        errors.push(
            "name",
            format!(
                "\"{}\" is {e}: use {}",
                printable(&name),
                STRATEGY_NAME.allowed()
            ),
        );
        return None;
    }
    Some(name)
}

fn training_data(errors: &mut Errors, raw: Option<RawTrainingData>) -> Option<TrainingData> {
    let raw = required(errors, "training_data", raw)?;
    let symbols_raw = required(errors, "training_data.symbols", raw.symbols);
    let timeframes_raw = required(errors, "training_data.timeframes", raw.timeframes);
    let history_required = raw.history_required.and_then(|v| {
        let ok = u32::try_from(v).ok();
        if ok.is_none() {
            errors.push(
                "training_data.history_required",
                format!("must be a non-negative integer, got {v}"),
            );
        }
        ok
    });

    let symbols = symbols_raw.as_ref().and_then(|s| {
        let (path, items) = list_or_single(
            errors,
            "training_data.symbols",
            "symbol",
            s.list.as_deref(),
            s.symbol.as_deref(),
        )?;
        parse_symbols(errors, &path, &items)
    });
    let tf = timeframes_raw.as_ref();
    let timeframes = tf.and_then(|t| {
        let (path, items) = list_or_single(
            errors,
            "training_data.timeframes",
            "timeframe",
            t.list.as_deref(),
            t.timeframe.as_deref(),
        )?;
        parse_timeframes(errors, &path, &items)
    });
    let base_path = "training_data.timeframes.base_timeframe";
    let base = match tf.and_then(|t| t.base_timeframe.as_deref()) {
        Some(text) => match text.parse::<Timeframe>() {
            Ok(base) => Some(base),
            Err(e) => {
                errors.push(base_path, e.to_string());
                None
            }
        },
        // Without an explicit base the first listed timeframe is the base, the same
        // rule runtime overrides use.
        None => timeframes.as_ref().and_then(|l| l.first().copied()),
    };
    let (symbols, timeframes, base) = (symbols?, timeframes?, base?);
    if !timeframes.contains(&base) {
        let listed: Vec<&str> = timeframes.iter().map(|t| t.as_str()).collect();
        errors.push(
            base_path,
            format!(
                "{base} is not in training_data.timeframes [{}]",
                listed.join(", ")
            ),
        );
        return None;
    }
    Some(TrainingData {
        symbols_mode: symbols_raw.and_then(|s| s.mode),
        symbols,
        timeframes_mode: timeframes_raw.and_then(|t| t.mode),
        timeframes,
        base_timeframe: base,
        history_required,
    })
}

/// Items of a list, each with its key path (`training_data.symbols.list[1]`).
pub(crate) type Items = Vec<(String, String)>;

/// Pairs the items of the list at `path` with their key paths `{path}[i]`.
pub(crate) fn indexed(path: &str, list: &[String]) -> Items {
    list.iter()
        .enumerate()
        .map(|(i, item)| (format!("{path}[{i}]"), item.clone()))
        .collect()
}

/// KTRDR writes one item either as `list: [X]` or as `symbol: X` / `timeframe: X`;
/// returns the path of the list and its items.
fn list_or_single(
    errors: &mut Errors,
    section: &str,
    single_key: &str,
    list: Option<&[String]>,
    single: Option<&str>,
) -> Option<(String, Items)> {
    match (list, single) {
        (Some(_), Some(_)) => {
            errors.push(
                section,
                format!("give either `list` or `{single_key}`, not both"),
            );
            None
        }
        (Some(list), None) => {
            let path = format!("{section}.list");
            let items = indexed(&path, list);
            Some((path, items))
        }
        (None, Some(one)) => {
            let path = format!("{section}.{single_key}");
            Some((path.clone(), vec![(path, one.to_owned())]))
        }
        (None, None) => {
            errors.push(format!("{section}.list"), "is required");
            None
        }
    }
}

/// Parses a non-empty, duplicate-free symbol list at `path`.
pub(crate) fn parse_symbols(errors: &mut Errors, path: &str, items: &Items) -> Option<Vec<Symbol>> {
    if items.is_empty() {
        errors.push(path, "must not be empty");
        return None;
    }
    if !at_most(errors, path, items.len(), MAX_SYMBOLS, "symbols") {
        return None;
    }
    let before = errors.len();
    let mut out: Vec<Symbol> = Vec::with_capacity(items.len());
    for (item_path, text) in items {
        match Symbol::parse(text) {
            Ok(s) if out.contains(&s) => {
                errors.push(item_path, format!("duplicate symbol {s}"));
            }
            Ok(s) => out.push(s),
            Err(e) => errors.push(item_path, e.to_string()),
        }
    }
    (errors.len() == before).then_some(out)
}

/// Parses a non-empty, duplicate-free timeframe list at `path`.
pub(crate) fn parse_timeframes(
    errors: &mut Errors,
    path: &str,
    items: &Items,
) -> Option<Vec<Timeframe>> {
    if items.is_empty() {
        errors.push(path, "must not be empty");
        return None;
    }
    if !at_most(errors, path, items.len(), MAX_TIMEFRAMES, "timeframes") {
        return None;
    }
    let before = errors.len();
    let mut out: Vec<Timeframe> = Vec::with_capacity(items.len());
    for (item_path, text) in items {
        match text.parse::<Timeframe>() {
            Ok(tf) if out.contains(&tf) => {
                errors.push(item_path, format!("duplicate timeframe {tf}"));
            }
            Ok(tf) => out.push(tf),
            Err(e) => errors.push(item_path, e.to_string()),
        }
    }
    (errors.len() == before).then_some(out)
}

/// `value`, or records "is required" at `path`.
pub(crate) fn required<T>(errors: &mut Errors, path: &str, value: Option<T>) -> Option<T> {
    if value.is_none() {
        errors.push(path, "is required");
    }
    value
}

/// A required integer in `1..=max`.
pub(crate) fn bounded(
    errors: &mut Errors,
    path: &str,
    value: Option<i64>,
    max: usize,
) -> Option<usize> {
    let v = required(errors, path, value)?;
    positive_at_most(errors, path, v, max)
}

/// `value` as a count in `1..=max`, or records why not (the ceiling named).
pub(crate) fn positive_at_most(
    errors: &mut Errors,
    path: &str,
    value: i64,
    max: usize,
) -> Option<usize> {
    let v = positive_int(errors, path, value)?;
    if v > max {
        errors.push(path, format!("must be at most {max}, got {v}"));
        return None;
    }
    Some(v)
}

/// `value` as a count >= 1, or records why not.
pub(crate) fn positive_int(errors: &mut Errors, path: &str, value: i64) -> Option<usize> {
    match usize::try_from(value) {
        Ok(v) if v >= 1 => Some(v),
        _ => {
            errors.push(path, format!("must be a positive integer, got {value}"));
            None
        }
    }
}

/// `value` as a finite number > 0, or records why not.
pub(crate) fn positive_float(errors: &mut Errors, path: &str, value: f64) -> Option<f64> {
    if value.is_finite() && value > 0.0 {
        Some(value)
    } else {
        errors.push(path, format!("must be a number > 0, got {}", num(value)));
        None
    }
}
