//! Merging fetched bars into stored ones: every stored bar is kept unless a fetched bar
//! has the same timestamp (then the fetched, newer value wins); the result is sorted.

use polars::prelude::DataFrame;

use crate::bars::{self, FrameError, VALUE_COLUMNS};

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct MergeReport {
    /// Bars stored before.
    pub before: usize,
    /// Bars with new timestamps.
    pub added: usize,
    /// Stored bars whose values a fetched bar replaced.
    pub replaced: usize,
    /// Bars stored after.
    pub after: usize,
}

struct Columns {
    ts: Vec<i64>,
    values: [Vec<f64>; 5],
}

impl Columns {
    fn of(frame: &DataFrame) -> Result<Self, FrameError> {
        let ts = bars::timestamps_ms(frame)?;
        let [a, b, c, d, e] = VALUE_COLUMNS.map(|n| bars::value_column(frame, n));
        Ok(Self {
            ts,
            values: [a?, b?, c?, d?, e?],
        })
    }

    fn sorted_dedup(self) -> Self {
        // Stable sort by time, then keep the LAST row of each timestamp (the newest).
        let mut order: Vec<usize> = (0..self.ts.len()).collect();
        order.sort_by_key(|&i| self.ts[i]);
        let mut keep: Vec<usize> = Vec::with_capacity(order.len());
        for i in order {
            match keep.last_mut() {
                Some(last) if self.ts[*last] == self.ts[i] => *last = i,
                _ => keep.push(i),
            }
        }
        Self {
            ts: keep.iter().map(|&i| self.ts[i]).collect(),
            values: std::array::from_fn(|c| keep.iter().map(|&i| self.values[c][i]).collect()),
        }
    }

    fn push_row(&mut self, from: &Self, i: usize) {
        self.ts.push(from.ts[i]);
        for c in 0..5 {
            self.values[c].push(from.values[c][i]);
        }
    }
}

/// Sorts `frame` by time and keeps the last row of each duplicated timestamp.
pub fn normalize(frame: &DataFrame) -> Result<DataFrame, FrameError> {
    let cols = Columns::of(frame)?.sorted_dedup();
    bars::frame_from_columns(cols.ts, cols.values)
}

/// Merges `fetched` into `stored`.
pub fn merge(
    stored: &DataFrame,
    fetched: &DataFrame,
) -> Result<(DataFrame, MergeReport), FrameError> {
    let old = Columns::of(stored)?.sorted_dedup();
    let new = Columns::of(fetched)?.sorted_dedup();
    let mut out = Columns {
        ts: Vec::with_capacity(old.ts.len() + new.ts.len()),
        values: Default::default(),
    };
    let mut report = MergeReport {
        before: old.ts.len(),
        ..MergeReport::default()
    };
    let (mut i, mut j) = (0, 0);
    while i < old.ts.len() || j < new.ts.len() {
        match (old.ts.get(i), new.ts.get(j)) {
            (Some(a), Some(b)) if a == b => {
                out.push_row(&new, j);
                report.replaced += 1;
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                out.push_row(&old, i);
                i += 1;
            }
            (Some(_), None) => {
                out.push_row(&old, i);
                i += 1;
            }
            _ => {
                out.push_row(&new, j);
                report.added += 1;
                j += 1;
            }
        }
    }
    report.after = out.ts.len();
    Ok((bars::frame_from_columns(out.ts, out.values)?, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rows: &[(i64, f64)]) -> DataFrame {
        let ts = rows.iter().map(|r| r.0 * 86_400_000).collect();
        let v: Vec<f64> = rows.iter().map(|r| r.1).collect();
        bars::frame_from_columns(ts, std::array::from_fn(|_| v.clone())).expect("frame")
    }

    #[test]
    fn keeps_every_stored_bar_and_prefers_fetched_values() {
        let stored = frame(&[(1, 1.0), (3, 3.0), (5, 5.0)]);
        let fetched = frame(&[(5, 50.0), (2, 20.0), (6, 60.0)]);
        let (merged, report) = merge(&stored, &fetched).expect("merge");
        assert_eq!(
            merged,
            frame(&[(1, 1.0), (2, 20.0), (3, 3.0), (5, 50.0), (6, 60.0)])
        );
        assert_eq!(
            report,
            MergeReport {
                before: 3,
                added: 2,
                replaced: 1,
                after: 5
            }
        );
    }

    #[test]
    fn randomised_merges_never_lose_a_timestamp() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i64
        };
        for _ in 0..200 {
            let stored: Vec<(i64, f64)> = (0..next() % 40).map(|_| (next() % 60, 1.0)).collect();
            let fetched: Vec<(i64, f64)> = (0..next() % 40).map(|_| (next() % 60, 2.0)).collect();
            let (merged, _) = merge(&frame(&stored), &frame(&fetched)).expect("merge");
            let ts = bars::timestamps_ms(&merged).expect("ts");
            assert!(ts.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
            for (t, _) in stored.iter().chain(&fetched) {
                assert!(ts.contains(&(t * 86_400_000)), "lost {t}");
            }
            let close = bars::value_column(&merged, "close").expect("close");
            for (t, _) in &fetched {
                let at = ts
                    .iter()
                    .position(|x| *x == t * 86_400_000)
                    .expect("present");
                assert_eq!(close[at], 2.0, "fetched wins at {t}");
            }
        }
    }
}
