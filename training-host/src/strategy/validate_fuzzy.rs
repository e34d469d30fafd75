//! Validation of `fuzzy_sets`: each key names an indicator's `feature_id` (or
//! `feature_id.output` for a multi-output indicator), each set a membership function
//! with well-ordered parameters.

use host_service_base::names::printable;

use super::error::{Errors, nums};
use super::indicator::{outputs_of, primary_output_of};
use super::model::{FuzzyInput, FuzzySet, Membership};
use super::parse::{OrderedMap, RawFuzzySet};
use super::validate::required;
use super::validate_indicators::{FEATURE_NAME, KnownIndicator};

/// Validates `fuzzy_sets` against the indicators.
pub(crate) fn fuzzy_sets(
    errors: &mut Errors,
    raw: Option<OrderedMap<OrderedMap<RawFuzzySet>>>,
    known: &[KnownIndicator],
) -> Vec<FuzzyInput> {
    let Some(raw) = required(errors, "fuzzy_sets", raw) else {
        return Vec::new();
    };
    if raw.0.is_empty() {
        errors.push(
            "fuzzy_sets",
            "must define at least one input (the features are fuzzy memberships)",
        );
    }
    let mut inputs = Vec::with_capacity(raw.0.len());
    // Feature names already produced, with the path that produced them.
    let mut names: Vec<(String, String)> = Vec::new();
    for (key, sets) in raw.0 {
        let path = format!("fuzzy_sets.{key}");
        let column = column_for(errors, &path, &key, known);
        if sets.0.is_empty() {
            errors.push(&path, "must define at least one set");
        }
        let mut valid = Vec::with_capacity(sets.0.len());
        for (set_name, set) in sets.0 {
            let set_path = format!("{path}.{set_name}");
            if let Err(e) = FEATURE_NAME.check(&set_name) {
                errors.push(
                    &set_path,
                    format!(
                        "set name \"{}\" is {e}: use {}",
                        printable(&set_name),
                        FEATURE_NAME.allowed()
                    ),
                );
                continue;
            }
            let feature = format!("{key}_{set_name}");
            if let Some((_, other)) = names.iter().find(|(n, _)| *n == feature) {
                errors.push(
                    &set_path,
                    format!("feature name {feature:?} is also produced by {other}"),
                );
            } else {
                names.push((feature, set_path.clone()));
            }
            if let Some(membership) = membership(errors, &set_path, set) {
                valid.push(FuzzySet {
                    name: set_name,
                    membership,
                });
            }
        }
        if let Some(column) = column {
            inputs.push(FuzzyInput {
                key,
                column,
                sets: valid,
            });
        }
    }
    inputs
}

/// The indicator column a key reads, or `None` (with an error unless the indicator
/// itself is already reported invalid).
fn column_for(
    errors: &mut Errors,
    path: &str,
    key: &str,
    known: &[KnownIndicator],
) -> Option<String> {
    let (feature_id, output) = match key.split_once('.') {
        Some((id, out)) => (id, Some(out)),
        None => (key, None),
    };
    let Some(indicator) = known.iter().find(|k| k.feature_id == feature_id) else {
        let ids: Vec<&str> = known.iter().map(|k| k.feature_id.as_str()).collect();
        errors.push(
            path,
            format!(
                "no indicator has feature_id {feature_id:?}; known feature_ids: [{}]",
                ids.join(", ")
            ),
        );
        return None;
    };
    let kind = indicator.kind?;
    let outputs = outputs_of(kind);
    let output = match output {
        None => primary_output_of(kind),
        Some(out) => match outputs.iter().find(|o| **o == out) {
            Some(found) => found,
            None => {
                errors.push(
                    path,
                    format!(
                        "{kind} has no output {out:?}; expected one of {}",
                        outputs.join(", ")
                    ),
                );
                return None;
            }
        },
    };
    indicator.spec.as_ref().map(|spec| spec.column(output))
}

/// Checks one set's type and parameters.
fn membership(errors: &mut Errors, path: &str, raw: RawFuzzySet) -> Option<Membership> {
    let kind = required(errors, &format!("{path}.type"), raw.kind);
    let params = required(errors, &format!("{path}.parameters"), raw.parameters);
    let (kind, p) = (kind?, params?);
    let params_path = format!("{path}.parameters");
    let arity = match kind.as_str() {
        "triangular" => 3,
        "trapezoidal" => 4,
        "gaussian" => 2,
        other => {
            errors.push(
                format!("{path}.type"),
                format!(
                    "unknown membership type {other:?}; expected triangular, trapezoidal or gaussian"
                ),
            );
            return None;
        }
    };
    let form = match arity {
        3 => "[a, b, c]",
        4 => "[a, b, c, d]",
        _ => "[mu, sigma]",
    };
    if p.len() != arity {
        errors.push(
            params_path,
            format!(
                "{kind} needs {arity} parameters {form}, got {} {}",
                p.len(),
                nums(&p)
            ),
        );
        return None;
    }
    if p.iter().any(|v| !v.is_finite()) {
        errors.push(
            params_path,
            format!("parameters must be finite numbers, got {}", nums(&p)),
        );
        return None;
    }
    let ordered = p.windows(2).all(|w| w[0] <= w[1]);
    let problem = match arity {
        3 if !ordered => Some("needs a <= b <= c"),
        3 if p[0] == p[2] => Some("needs a < c (a set of width 0 is never true)"),
        4 if !ordered => Some("needs a <= b <= c <= d"),
        4 if p[0] == p[3] => Some("needs a < d (a set of width 0 is never true)"),
        2 if p[1] <= 0.0 => Some("needs sigma > 0"),
        _ => None,
    };
    if let Some(problem) = problem {
        errors.push(params_path, format!("{kind} {problem}, got {}", nums(&p)));
        return None;
    }
    Some(match *p.as_slice() {
        [a, b, c] => Membership::Triangular { a, b, c },
        [a, b, c, d] => Membership::Trapezoidal { a, b, c, d },
        [mu, sigma, ..] => Membership::Gaussian { mu, sigma },
        _ => return None,
    })
}
