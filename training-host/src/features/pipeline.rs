//! The feature pipeline: bars → indicators → fuzzy memberships → (multi-timeframe
//! alignment) → lookback lags → complete rows → labels → split → scaling.
//!
//! Per timeframe of the strategy, every indicator a fuzzy input reads is computed on
//! that timeframe's bars and fuzzified; columns of a timeframe other than the base are
//! re-indexed onto the base rows by [`super::align`] (closed bars only). Feature names
//! are `{key}_{set}` (`rsi_14_oversold`, `macd_12_26_9.histogram_rising`), prefixed
//! `{timeframe}_` when the strategy lists several timeframes, then the lags
//! `{name}_lag{j}`. Rows with any NaN (warm-up, no closed higher bar) are dropped, as
//! are rows without a label. Training and inference share every step up to the scaler.

use std::collections::{BTreeMap, HashMap};

use data_host::{Symbol, Timeframe};
use polars::prelude::DataFrame;

use super::align::align_columns;
use super::dataset::{Dataset, InferenceFeatures, Split, SymbolCounts, SymbolSegment};
use super::error::FeatureError;
use super::frame::{FeatureFrame, Ohlc};
use super::fuzzy::fuzzify;
use super::indicators::compute;
use super::lags::add_lags;
use super::scaling::Scaler;
use crate::labels::zigzag_labels;
use crate::split::{SplitRanges, purge, split_ranges};
use crate::strategy::{DateRange, Strategy};

/// Feature names the strategy produces, in column order (lags included).
pub fn feature_names(strategy: &Strategy) -> Vec<String> {
    let mut names = Vec::new();
    for tf in &strategy.training_data.timeframes {
        let prefix = prefix(strategy, *tf);
        for input in &strategy.fuzzy_sets {
            for set in &input.sets {
                names.push(format!("{prefix}{}_{}", input.key, set.name));
            }
        }
    }
    let base = names.len();
    for lag in 1..=strategy.model.features.lookback_periods {
        for j in 0..base {
            names.push(format!("{}_lag{lag}", names[j]));
        }
    }
    names
}

fn prefix(strategy: &Strategy, tf: Timeframe) -> String {
    if strategy.is_multi_timeframe() {
        format!("{tf}_")
    } else {
        String::new()
    }
}

/// Unscaled features of one symbol on EVERY base bar (warm-up rows hold NaN); `bars`
/// holds a data-host bars frame per timeframe of the strategy.
pub fn compute_features(
    strategy: &Strategy,
    bars: &BTreeMap<Timeframe, DataFrame>,
) -> Result<FeatureFrame, FeatureError> {
    let ohlc = read_bars(strategy, |tf| bars.get(&tf), &DateRange::default())?;
    features_from_ohlc(strategy, &ohlc)
}

/// Same as [`compute_features`] on already-read price columns.
pub fn features_from_ohlc(
    strategy: &Strategy,
    bars: &BTreeMap<Timeframe, Ohlc>,
) -> Result<FeatureFrame, FeatureError> {
    let mut frame = unlagged_features(strategy, bars)?;
    add_lags(&mut frame, strategy.model.features.lookback_periods);
    Ok(frame)
}

/// [`features_from_ohlc`] without the lag columns, which are shifted copies: the
/// dataset reads them from these columns instead of allocating them (issue 16).
fn unlagged_features(
    strategy: &Strategy,
    bars: &BTreeMap<Timeframe, Ohlc>,
) -> Result<FeatureFrame, FeatureError> {
    let base_tf = strategy.training_data.base_timeframe;
    let base = bars
        .get(&base_tf)
        .ok_or(FeatureError::MissingBars { timeframe: base_tf })?;
    let mut frame = FeatureFrame {
        timestamps: base.timestamps.clone(),
        ..FeatureFrame::default()
    };
    for &tf in &strategy.training_data.timeframes {
        let ohlc = bars
            .get(&tf)
            .ok_or(FeatureError::MissingBars { timeframe: tf })?;
        let outputs = indicator_columns(strategy, ohlc);
        let prefix = prefix(strategy, tf);
        let mut names = Vec::new();
        let mut columns = Vec::new();
        for input in &strategy.fuzzy_sets {
            let values = outputs
                .get(&input.column)
                .ok_or_else(|| FeatureError::UnknownColumn {
                    key: input.key.clone(),
                    column: input.column.clone(),
                })?;
            for (name, column) in fuzzify(input, values, &prefix) {
                names.push(name);
                columns.push(column);
            }
        }
        if tf != base_tf {
            columns = align_columns(&base.timestamps, &ohlc.timestamps, tf, &columns);
        }
        for (name, column) in names.into_iter().zip(columns) {
            frame.push(name, column);
        }
    }
    Ok(frame)
}

/// Outputs of the indicators some fuzzy input reads, keyed by column name; the others
/// are not computed.
fn indicator_columns(strategy: &Strategy, bars: &Ohlc) -> HashMap<String, Vec<f64>> {
    let mut out = HashMap::new();
    for spec in &strategy.indicators {
        let outputs = spec.indicator.outputs();
        let needed = strategy
            .fuzzy_sets
            .iter()
            .any(|f| outputs.iter().any(|o| spec.column(o) == f.column));
        if !needed {
            continue;
        }
        for (output, values) in compute(&spec.indicator, bars) {
            out.insert(spec.column(output), values);
        }
    }
    out
}

/// Reads the frame of every timeframe of the strategy and restricts it to `range`.
fn read_bars<'a>(
    strategy: &Strategy,
    frame_of: impl Fn(Timeframe) -> Option<&'a DataFrame>,
    range: &DateRange,
) -> Result<BTreeMap<Timeframe, Ohlc>, FeatureError> {
    let mut out = BTreeMap::new();
    for &tf in &strategy.training_data.timeframes {
        let frame = frame_of(tf).ok_or(FeatureError::MissingBars { timeframe: tf })?;
        out.insert(tf, Ohlc::from_frame(frame, tf)?.restrict(range));
    }
    Ok(out)
}

/// Complete, labelled rows of one symbol (columns in feature order).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LabelledRows {
    pub(crate) bars: usize,
    pub(crate) timestamps: Vec<i64>,
    pub(crate) columns: Vec<Vec<f64>>,
    pub(crate) labels: Vec<u32>,
}

/// Features and zigzag labels of one symbol, joined row for row on the base bars.
///
/// The same rows and columns as [`features_from_ohlc`] filtered to complete, labelled
/// rows, but lag `j` of a column is read as the column `j` rows earlier instead of from
/// a materialised copy: on a million bars that saves allocating (and faulting in)
/// `lookback × columns` vectors, the pipeline's largest cost (issue 16).
pub(crate) fn labelled_rows(
    strategy: &Strategy,
    bars: &BTreeMap<Timeframe, Ohlc>,
) -> Result<LabelledRows, FeatureError> {
    let frame = unlagged_features(strategy, bars)?;
    let base_tf = strategy.training_data.base_timeframe;
    let close = bars
        .get(&base_tf)
        .map(|b| b.close.as_slice())
        .unwrap_or(&[]);
    let config = strategy.training.labels;
    let labels = zigzag_labels(close, config.zigzag_threshold, config.label_lookahead);
    let lookback = strategy.model.features.lookback_periods;
    // Row i is complete with its lags when rows i - lookback ..= i are complete.
    let mut run = 0usize;
    let complete: Vec<bool> = frame
        .complete_rows()
        .into_iter()
        .map(|ok| {
            run = if ok { run + 1 } else { 0 };
            run > lookback
        })
        .collect();
    let keep: Vec<(usize, u32)> = labels
        .iter()
        .enumerate()
        .filter_map(|(i, label)| Some((i, (*label)?.index())))
        .filter(|&(i, _)| complete.get(i).copied().unwrap_or(false))
        .collect();
    if keep.is_empty() {
        return Err(FeatureError::NoRows {
            timeframe: base_tf,
            bars: frame.len(),
            lookahead: config.label_lookahead,
        });
    }
    // Columns in feature order: every column, then every column lagged 1, 2, ...; a
    // kept row has i >= lookback, so i - lag never underflows.
    let columns = (0..=lookback)
        .flat_map(|lag| {
            let keep = &keep;
            frame
                .columns
                .iter()
                .map(move |c| keep.iter().map(|&(i, _)| c[i - lag]).collect())
        })
        .collect();
    Ok(LabelledRows {
        bars: frame.len(),
        timestamps: keep.iter().map(|&(i, _)| frame.timestamps[i]).collect(),
        columns,
        labels: keep.iter().map(|&(_, y)| y).collect(),
    })
}

/// Builds the training dataset: features and labels per symbol (inside the strategy's
/// date range), each symbol split chronologically, the parts concatenated across
/// symbols in strategy order, then scaled with statistics of the train part only.
pub fn build_dataset(
    strategy: &Strategy,
    bars: &BTreeMap<(Symbol, Timeframe), DataFrame>,
) -> Result<Dataset, FeatureError> {
    let mut symbols = Vec::new();
    for symbol in &strategy.training_data.symbols {
        let rows = read_bars(
            strategy,
            |tf| bars.get(&(symbol.clone(), tf)),
            &strategy.date_range,
        )
        .and_then(|ohlc| labelled_rows(strategy, &ohlc))
        .map_err(|e| e.for_symbol(symbol))?;
        let ranges = purge(
            split_ranges(rows.labels.len(), &strategy.training.data_split),
            strategy.training.labels.label_lookahead,
        );
        tracing::debug!(%symbol, bars = rows.bars, rows = rows.labels.len(), "features built");
        symbols.push((symbol.clone(), rows, ranges));
    }
    let names = feature_names(strategy);
    let train_rows: usize = symbols.iter().map(|(_, _, r)| r.train.len()).sum();
    if train_rows == 0 {
        let rows = symbols.iter().map(|(_, r, _)| r.labels.len()).sum();
        return Err(FeatureError::EmptyTrain { rows });
    }
    let scaler = if strategy.model.features.scale_features {
        let parts: Vec<Vec<&[f64]>> = symbols
            .iter()
            .map(|(_, rows, r)| rows.columns.iter().map(|c| &c[r.train.clone()]).collect())
            .collect();
        Scaler::fit(names.clone(), &parts)
    } else {
        Scaler::identity(names.clone())
    };
    let assemble = |part: fn(&SplitRanges) -> std::ops::Range<usize>| {
        let mut split = Split {
            n_features: names.len(),
            ..Split::default()
        };
        for (symbol, rows, ranges) in &symbols {
            let range = part(ranges);
            split.segments.push(SymbolSegment {
                symbol: symbol.clone(),
                start: split.y.len(),
                len: range.len(),
            });
            scaler.append_rows(&rows.columns, range.clone(), &mut split.x);
            split.y.extend_from_slice(&rows.labels[range.clone()]);
            split.timestamps.extend_from_slice(&rows.timestamps[range]);
        }
        split
    };
    let train = assemble(|r| r.train.clone());
    let validation = assemble(|r| r.validation.clone());
    let test = assemble(|r| r.test.clone());
    let per_symbol = symbols
        .iter()
        .map(|(symbol, rows, r)| SymbolCounts {
            symbol: symbol.clone(),
            bars: rows.bars,
            rows: rows.labels.len(),
            train: r.train.len(),
            validation: r.validation.len(),
            test: r.test.len(),
            first_timestamp: rows.timestamps.first().copied(),
            last_timestamp: rows.timestamps.last().copied(),
        })
        .collect();
    Ok(Dataset {
        feature_names: names,
        base_timeframe: strategy.training_data.base_timeframe,
        train,
        validation,
        test,
        scaler,
        per_symbol,
    })
}

/// Features of new bars of one symbol for a predictor: the training pipeline up to the
/// complete rows (no labels, no date range), scaled with the model's `scaler`.
pub fn features_for_inference(
    strategy: &Strategy,
    scaler: &Scaler,
    bars: &BTreeMap<Timeframe, DataFrame>,
) -> Result<InferenceFeatures, FeatureError> {
    let names = feature_names(strategy);
    scaler.check_features(&names)?;
    let frame = compute_features(strategy, bars)?;
    let mut out = InferenceFeatures {
        feature_names: names,
        ..InferenceFeatures::default()
    };
    let complete = frame.complete_rows();
    for i in (0..frame.len()).filter(|&i| complete[i]) {
        scaler.append_row(&frame.columns, i, &mut out.x);
        out.timestamps.push(frame.timestamps[i]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
