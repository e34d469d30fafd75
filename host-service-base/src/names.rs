//! Names a caller chooses that end up in a file name, a directory or a URL path: one
//! checker for all of them, so every service refuses the same things (path separators,
//! `.` and `..`, hidden files, control and non-ASCII characters, endless names) and
//! every refusal names the field and says which characters are allowed.
//!
//! The rules that really differ (a symbol takes `.` and `-` but no `_`; a feature id no
//! `.`, which separates it from an output name) are [`NameRule`] values over the same
//! core; [`SAFE_NAME`] is the rule for a plain file or directory name.

use std::fmt::Write as _;

use crate::error::HostError;

/// What the first character of a name may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    /// Any allowed character.
    Any,
    /// Not `.`: no hidden files, no `..`.
    NotDot,
    /// An ASCII letter or digit: no hidden files and nothing a command line would take
    /// for an option (`-rf`).
    LetterOrDigit,
}

/// A set of allowed names: ASCII letters and digits, the given punctuation, from 1 to
/// `max_len` characters, a rule for the first character. A name of dots only (`.`,
/// `..`) is refused whatever the rule, since paths and URLs resolve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRule {
    /// Allowed besides ASCII letters and digits; never `/`, `\` or a control character.
    pub punctuation: &'static str,
    /// Longest accepted name, in characters.
    pub max_len: usize,
    /// What the first character may be.
    pub first: First,
}

/// A plain file or directory name: `[A-Za-z0-9_.-]`, 1 to 128 characters, not starting
/// with `.`.
pub const SAFE_NAME: NameRule = NameRule {
    punctuation: "_.-",
    max_len: 128,
    first: First::NotDot,
};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty.
    #[error("empty")]
    Empty,
    /// Longer than the rule allows.
    #[error("{len} characters long; at most {max} are allowed")]
    TooLong {
        /// Length of the name, in characters.
        len: usize,
        /// The rule's maximum.
        max: usize,
    },
    /// A character outside the rule, a bad first character, or dots only.
    #[error("not allowed")]
    Characters,
}

impl NameRule {
    /// Checks `name` against the rule.
    pub fn check(&self, name: &str) -> Result<(), NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        let len = name.chars().count();
        if len > self.max_len {
            return Err(NameError::TooLong {
                len,
                max: self.max_len,
            });
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || self.punctuation.contains(c);
        let first_ok = match self.first {
            First::Any => true,
            First::NotDot => !name.starts_with('.'),
            First::LetterOrDigit => name.starts_with(|c: char| c.is_ascii_alphanumeric()),
        };
        if !first_ok || !name.chars().all(allowed) || name.chars().all(|c| c == '.') {
            return Err(NameError::Characters);
        }
        Ok(())
    }

    /// What the rule accepts, in words, for error messages and documentation:
    /// "1 to 128 characters of letters, digits, `_`, `.` and `-`, not starting with `.`".
    pub fn allowed(&self) -> String {
        let mut out = format!("1 to {} characters of letters, digits", self.max_len);
        let marks: Vec<char> = self.punctuation.chars().collect();
        for (i, c) in marks.iter().enumerate() {
            let sep = if i + 1 == marks.len() { " and" } else { "," };
            let _ = write!(out, "{sep} `{c}`");
        }
        match self.first {
            First::Any if self.punctuation.contains('.') => out.push_str(", not only dots"),
            First::Any => {}
            First::NotDot => out.push_str(", not starting with `.`"),
            First::LetterOrDigit => out.push_str(", starting with a letter or digit"),
        }
        out
    }
}

/// [`NameRule::check`] as a 400 naming `field`, quoting a bounded, printable form of the
/// value and saying what is allowed.
pub fn check_name(rule: &NameRule, field: &str, value: &str) -> Result<(), HostError> {
    rule.check(value).map_err(|e| {
        let shown = printable(value);
        let why = match e {
            NameError::Empty => format!("{field} is empty"),
            other => format!("{field} `{shown}` is {other}"),
        };
        HostError::bad_field(field, format!("{why}: use {}", rule.allowed()))
    })
}

/// [`check_name`] with [`SAFE_NAME`]: a value that becomes a file or directory name.
pub fn check_safe_name(field: &str, value: &str) -> Result<(), HostError> {
    check_name(&SAFE_NAME, field, value)
}

/// At most 64 characters of `value`, escaped, so hostile input cannot flood a log or an
/// answer.
pub fn printable(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(64)
        .flat_map(char::escape_default)
        .collect();
    if value.chars().nth(64).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_keep_to_one_path_component() {
        for ok in [
            "AAPL",
            "a.b",
            "x_1-2",
            "1d_v3",
            "v1.2",
            "_x",
            "-x",
            &"a".repeat(128),
        ] {
            assert_eq!(SAFE_NAME.check(ok), Ok(()), "{ok}");
        }
        for bad in [
            ".hidden", "..", ".", "../x", "a/b", "a\\b", "a b", "é", "a\0b", "a:b",
        ] {
            assert_eq!(SAFE_NAME.check(bad), Err(NameError::Characters), "{bad:?}");
        }
        assert_eq!(SAFE_NAME.check(""), Err(NameError::Empty));
        assert_eq!(
            SAFE_NAME.check(&"a".repeat(129)),
            Err(NameError::TooLong { len: 129, max: 128 })
        );
    }

    #[test]
    fn first_character_rules() {
        let any = NameRule {
            punctuation: "_.-",
            max_len: 8,
            first: First::Any,
        };
        assert_eq!(any.check(".x"), Ok(()));
        assert_eq!(any.check("-x"), Ok(()));
        assert_eq!(any.check(".."), Err(NameError::Characters), "dots only");
        let strict = NameRule {
            first: First::LetterOrDigit,
            ..any
        };
        for bad in [".x", "-rf", "_x"] {
            assert_eq!(strict.check(bad), Err(NameError::Characters), "{bad}");
        }
        assert_eq!(strict.check("x-1"), Ok(()));
    }

    #[test]
    fn says_what_is_allowed() {
        assert_eq!(
            SAFE_NAME.allowed(),
            "1 to 128 characters of letters, digits, `_`, `.` and `-`, not starting with `.`"
        );
        let symbol = NameRule {
            punctuation: ".-",
            max_len: 32,
            first: First::LetterOrDigit,
        };
        assert_eq!(
            symbol.allowed(),
            "1 to 32 characters of letters, digits, `.` and `-`, starting with a letter or digit"
        );
        let plain = NameRule {
            punctuation: "",
            max_len: 4,
            first: First::Any,
        };
        assert_eq!(plain.allowed(), "1 to 4 characters of letters, digits");
    }

    #[test]
    fn the_error_names_the_field_and_the_rule() {
        let err = check_safe_name("strategy_name", "../etc").expect_err("refused");
        let HostError::BadRequest { field, message } = err else {
            panic!("a 400: {err:?}");
        };
        assert_eq!(field.as_deref(), Some("strategy_name"));
        assert_eq!(
            message,
            "strategy_name `../etc` is not allowed: use 1 to 128 characters of letters, \
             digits, `_`, `.` and `-`, not starting with `.`"
        );
        let long = check_safe_name("id", &"x".repeat(300)).expect_err("refused");
        assert!(long.to_string().contains("300 characters long"), "{long}");
        assert!(
            long.to_string().len() < 300,
            "the value is not echoed whole: {long}"
        );
    }
}
