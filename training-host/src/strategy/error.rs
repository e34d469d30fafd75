//! Strategy errors: one [`FieldError`] per problem, each naming the key path
//! (`model.training.epochs`, `indicators[2].name`), all collected in a [`StrategyError`]
//! so a user fixes a file in one round instead of one error at a time.

use std::fmt;

use host_service_base::HostError;
use serde::Serialize;

/// One problem in a strategy, at one key path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Key path in the YAML (`training.data_split`, `fuzzy_sets.rsi_14.oversold`); empty
    /// for problems of the document as a whole (a YAML syntax error).
    pub path: String,
    /// What is wrong, with the offending value.
    pub message: String,
    /// 1-based line of the problem, when the YAML parser knows it.
    pub line: Option<usize>,
    /// 1-based column of the problem, when the YAML parser knows it.
    pub column: Option<usize>,
}

impl FieldError {
    /// A problem at `path` without a source position.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

/// A strategy could not be parsed or is invalid; holds every problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct StrategyError {
    /// The problems, in document order as far as validation can tell.
    pub errors: Vec<FieldError>,
}

impl StrategyError {
    /// An error with a single problem.
    pub fn single(error: FieldError) -> Self {
        Self {
            errors: vec![error],
        }
    }

    /// Whether any problem is reported at exactly `path`.
    pub fn has_path(&self, path: &str) -> bool {
        self.errors.iter().any(|e| e.path == path)
    }
}

impl fmt::Display for StrategyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.as_slice() {
            [one] => write!(f, "invalid strategy: {one}"),
            many => {
                write!(f, "invalid strategy ({} errors):", many.len())?;
                for error in many {
                    write!(f, "\n  - {error}")?;
                }
                Ok(())
            }
        }
    }
}

/// A rejected strategy at an HTTP boundary (training-host's and the gateway's): 400,
/// naming the first problem's key path as the field and listing every problem in the
/// message, so both services answer the same file the same way.
impl From<StrategyError> for HostError {
    fn from(e: StrategyError) -> Self {
        HostError::BadRequest {
            field: e.errors.first().map(|f| f.path.clone()),
            message: e.to_string(),
        }
    }
}

/// Collects problems while validation walks the document.
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    /// Records a problem at `path`.
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }

    /// Number of problems so far (lets a section tell whether it added any).
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok(value)` when nothing was recorded, else every problem.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, StrategyError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.into_error())
        }
    }

    /// The problems recorded so far as an error.
    pub(crate) fn into_error(self) -> StrategyError {
        StrategyError { errors: self.0 }
    }
}

/// Formats a number for a message: integers without a fraction, and sums such as
/// `0.7 + 0.1 + 0.1` shown as `0.9`, not `0.8999999999999999`.
pub(crate) fn num(value: f64) -> String {
    let rounded = (value * 1e9).round() / 1e9;
    if rounded.is_finite() {
        format!("{rounded}")
    } else {
        format!("{value}")
    }
}

/// Formats a list of numbers for a message: `[40, 30, 50]`.
pub(crate) fn nums(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| num(*v)).collect();
    format!("[{}]", items.join(", "))
}
