//! Lookback lags: for `lookback_periods: k`, every feature also appears as it was 1..k
//! rows (base bars) earlier, named `{name}_lag{j}`. Lags shift by rows, so they only
//! ever read the past; the first `j` rows of a lag are NaN and are dropped later.

use super::frame::FeatureFrame;

/// Appends `{name}_lag1..{name}_lag{k}` for every current column: all lag-1 columns,
/// then all lag-2 columns, and so on.
pub fn add_lags(frame: &mut FeatureFrame, k: usize) {
    let base = frame.columns.len();
    for lag in 1..=k {
        for j in 0..base {
            let column = &frame.columns[j];
            // NaN for the first `lag` rows, then the column itself: two bulk copies.
            let head = lag.min(column.len());
            let mut shifted = Vec::with_capacity(column.len());
            shifted.resize(head, f64::NAN);
            shifted.extend_from_slice(&column[..column.len() - head]);
            let name = format!("{}_lag{lag}", frame.names[j]);
            frame.push(name, shifted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lags_shift_by_rows() {
        let mut frame = FeatureFrame {
            timestamps: vec![1, 2, 3, 4],
            names: vec!["a".into(), "b".into()],
            columns: vec![vec![1.0, 2.0, 3.0, 4.0], vec![10.0, 20.0, 30.0, 40.0]],
        };
        add_lags(&mut frame, 2);
        assert_eq!(
            frame.names,
            ["a", "b", "a_lag1", "b_lag1", "a_lag2", "b_lag2"]
        );
        let a2 = frame.column("a_lag2").expect("a_lag2");
        assert!(a2[0].is_nan() && a2[1].is_nan());
        assert_eq!(&a2[2..], &[1.0, 2.0]);
        let b1 = frame.column("b_lag1").expect("b_lag1");
        assert!(b1[0].is_nan());
        assert_eq!(&b1[1..], &[10.0, 20.0, 30.0]);
        assert!(!frame.is_complete(1) && frame.is_complete(2));
    }
}
