//! Typed environment configuration, modelled on linkerd2-proxy's `app/src/env.rs`.
//!
//! Each service owns its variable names as constants and reads them through [`Env`], which
//! wraps an [`EnvSource`]: [`ProcessEnv`] in production, a [`MapEnv`] (or a plain
//! `HashMap<String, String>`) in tests, so tests never touch the process environment. Every
//! parser takes the variable name, and every failure is a [`ConfigError`] naming the
//! variable and echoing the bad value, so a misconfigured service exits before binding a
//! port. The parsers are also usable directly (e.g. on a value clap already read).
//!
//! An empty or whitespace-only value counts as absent: `FOO=` behaves like an unset `FOO`.
//! Values are trimmed of surrounding whitespace before parsing.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

/// Why a configuration variable could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The variable is set but its value does not parse.
    #[error("invalid value {value:?} for {var}: expected {expected}")]
    Invalid {
        /// Name of the variable.
        var: String,
        /// The offending value, as read.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A required variable is unset or empty.
    #[error("{var} is required but not set")]
    Missing {
        /// Name of the variable.
        var: String,
    },
    /// The variable is set but its value is not valid UTF-8.
    #[error("{var} is set but its value is not valid UTF-8")]
    NotUnicode {
        /// Name of the variable.
        var: String,
    },
}

impl ConfigError {
    /// Builds a [`ConfigError::Invalid`].
    pub fn invalid(var: &str, value: &str, expected: impl Into<String>) -> Self {
        Self::Invalid {
            var: var.to_owned(),
            value: value.to_owned(),
            expected: expected.into(),
        }
    }
}

/// A source of raw variable values: the process environment, or a map in tests.
pub trait EnvSource {
    /// The raw value of `name`, `Ok(None)` when unset. A value that cannot be read as a
    /// string (non-UTF-8) is an error, never silently absent.
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError>;
}

impl<S: EnvSource + ?Sized> EnvSource for &S {
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        (**self).get(name)
    }
}

/// The process environment (`std::env::var`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::NotUnicode {
                var: name.to_owned(),
            }),
        }
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        Ok(HashMap::get(self, name).cloned())
    }
}

/// An in-memory environment for tests: `MapEnv::from_iter([("FOO", "1")])`.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(pub HashMap<String, String>);

impl MapEnv {
    /// Returns the map with `name` set to `value`.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl EnvSource for MapEnv {
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.0.get(name).cloned())
    }
}

/// The words [`bool_word`] accepts, for error messages.
pub const BOOL_EXPECTED: &str = "true/false (also 1/0, yes/no, on/off)";

/// The one reading of a boolean word, shared by the environment ([`parse_bool`]) and
/// query strings (the operations list's `active_only`), so a value that switches
/// something on in one place does so in the other: `true/1/yes/on` or `false/0/no/off`,
/// case-insensitive. `None` for anything else; callers trim where they want to.
pub fn bool_word(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses a boolean environment value ([`bool_word`], surrounding whitespace ignored).
pub fn parse_bool(var: &str, value: &str) -> Result<bool, ConfigError> {
    bool_word(value.trim()).ok_or_else(|| ConfigError::invalid(var, value, BOOL_EXPECTED))
}

/// Parses an http(s) base URL with a host and no query or fragment. A trailing slash on
/// the path is removed (`http://h:1/api/` becomes `http://h:1/api`; a bare host keeps `/`).
pub fn parse_url(var: &str, value: &str) -> Result<Url, ConfigError> {
    let bad = |why: &str| ConfigError::invalid(var, value, format!("an http(s) URL ({why})"));
    let mut url = Url::parse(value.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("missing host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no query or fragment allowed"));
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

/// Parses a comma-separated, non-empty list of URLs (each as [`parse_url`]), e.g. a pool.
pub fn parse_url_list(var: &str, value: &str) -> Result<Vec<Url>, ConfigError> {
    const LIST: &str = "a comma-separated list of http(s) URLs";
    if value.trim().is_empty() {
        return Err(ConfigError::invalid(var, value, LIST));
    }
    value
        .split(',')
        .enumerate()
        .map(|(i, item)| {
            if item.trim().is_empty() {
                return Err(ConfigError::invalid(
                    var,
                    value,
                    format!("{LIST} (item {} is empty)", i + 1),
                ));
            }
            parse_url(var, item).map_err(|e| match e {
                ConfigError::Invalid { expected, .. } => ConfigError::invalid(
                    var,
                    value,
                    format!("{LIST} (item {} {:?}: {expected})", i + 1, item.trim()),
                ),
                other => other,
            })
        })
        .collect()
}

/// Parses a duration: humantime (`250ms`, `30s`, `5m`, `1h 30m`), or a bare non-negative
/// number of seconds (`30`, `0.5`). Zero is allowed (see [`parse_nonzero_duration`]).
pub fn parse_duration(var: &str, value: &str) -> Result<Duration, ConfigError> {
    let v = value.trim();
    let bad = || {
        ConfigError::invalid(
            var,
            value,
            "a duration like 250ms, 30s or 5m (a bare number means seconds)",
        )
    };
    if v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        let secs: f64 = v.parse().map_err(|_| bad())?;
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    humantime::parse_duration(v).map_err(|_| bad())
}

/// As [`parse_duration`], but zero is rejected (e.g. for timeouts).
pub fn parse_nonzero_duration(var: &str, value: &str) -> Result<Duration, ConfigError> {
    match parse_duration(var, value)? {
        Duration::ZERO => Err(ConfigError::invalid(
            var,
            value,
            "a non-zero duration like 250ms, 30s or 5m",
        )),
        d => Ok(d),
    }
}

/// Parses with `T`'s `FromStr`; `expected` describes the accepted form in the error.
pub fn parse_from_str<T: FromStr>(
    var: &str,
    value: &str,
    expected: &str,
) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(var, value, expected))
}

/// Parses a socket address such as `0.0.0.0:5001` or `[::1]:5001` (no DNS lookups).
pub fn parse_socket_addr(var: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    parse_from_str(var, value, "an IP:port address like 0.0.0.0:5001")
}

/// Parses a non-negative integer.
pub fn parse_u64(var: &str, value: &str) -> Result<u64, ConfigError> {
    parse_from_str(var, value, "a non-negative integer")
}

/// Parses a non-negative integer that fits a `usize`.
pub fn parse_usize(var: &str, value: &str) -> Result<usize, ConfigError> {
    parse_from_str(var, value, "a non-negative integer")
}

/// Parses a number and checks it lies in `range` (inclusive).
pub fn parse_in_range<T>(var: &str, value: &str, range: RangeInclusive<T>) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Display,
{
    let bad = || {
        ConfigError::invalid(
            var,
            value,
            format!("a number from {} to {}", range.start(), range.end()),
        )
    };
    let n: T = value.trim().parse().map_err(|_| bad())?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(bad())
    }
}

/// Maps a value to one of a fixed set of named choices, case-insensitively.
pub fn parse_enum<T: Clone>(
    var: &str,
    value: &str,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let v = value.trim();
    choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(v))
        .map(|(_, t)| t.clone())
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            ConfigError::invalid(var, value, format!("one of {}", names.join(", ")))
        })
}

/// Checks a value is one of `choices` (case-insensitive) and returns the canonical choice.
pub fn one_of<'c>(var: &str, value: &str, choices: &[&'c str]) -> Result<&'c str, ConfigError> {
    let table: Vec<(&str, &'c str)> = choices.iter().map(|c| (*c, *c)).collect();
    parse_enum(var, value, &table)
}

/// Typed reads from an [`EnvSource`]. Empty or whitespace-only values count as absent.
#[derive(Debug, Clone, Default)]
pub struct Env<S> {
    source: S,
}

impl Env<ProcessEnv> {
    /// Reads the process environment.
    pub fn process() -> Self {
        Self::new(ProcessEnv)
    }
}

impl<S: EnvSource> Env<S> {
    /// Wraps a source.
    pub fn new(source: S) -> Self {
        Self { source }
    }

    /// The raw value of `var`; `None` when unset or empty.
    pub fn raw(&self, var: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.source.get(var)?.filter(|v| !v.trim().is_empty()))
    }

    /// Parses `var` with `parse` when set; `None` when unset or empty.
    pub fn opt<T>(
        &self,
        var: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        self.raw(var)?.map(|v| parse(var, &v)).transpose()
    }

    /// Parses `var` with `parse`, or returns `default` when unset or empty.
    pub fn or<T>(
        &self,
        var: &str,
        default: T,
        parse: impl FnOnce(&str, &str) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        Ok(self.opt(var, parse)?.unwrap_or(default))
    }

    /// Parses `var` with `parse`; unset or empty is [`ConfigError::Missing`].
    pub fn require<T>(
        &self,
        var: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        self.opt(var, parse)?.ok_or_else(|| ConfigError::Missing {
            var: var.to_owned(),
        })
    }

    /// An optional boolean ([`parse_bool`]).
    pub fn opt_bool(&self, var: &str) -> Result<Option<bool>, ConfigError> {
        self.opt(var, parse_bool)
    }

    /// A boolean ([`parse_bool`]), `default` when unset or empty.
    pub fn bool_or(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        self.or(var, default, parse_bool)
    }

    /// An optional URL ([`parse_url`]).
    pub fn opt_url(&self, var: &str) -> Result<Option<Url>, ConfigError> {
        self.opt(var, parse_url)
    }

    /// A URL ([`parse_url`]); when unset or empty, `default` parsed by the same rules.
    pub fn url_or(&self, var: &str, default: &str) -> Result<Url, ConfigError> {
        self.opt_url(var)?
            .map_or_else(|| parse_url(var, default), Ok)
    }

    /// An optional duration ([`parse_duration`]).
    pub fn opt_duration(&self, var: &str) -> Result<Option<Duration>, ConfigError> {
        self.opt(var, parse_duration)
    }

    /// A duration ([`parse_duration`]), `default` when unset or empty.
    pub fn duration_or(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.or(var, default, parse_duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parser<T> = fn(&str, &str) -> Result<T, ConfigError>;

    /// Each value must fail with `Invalid`, naming the variable and echoing the value.
    #[track_caller]
    fn rejects<T: std::fmt::Debug>(
        parse: impl Fn(&str, &str) -> Result<T, ConfigError>,
        values: &[&str],
    ) {
        for value in values {
            let err = parse("SOME_VAR", value).expect_err(value);
            let msg = err.to_string();
            assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
            assert!(
                msg.contains("SOME_VAR") && msg.contains(&format!("{value:?}")),
                "{msg}"
            );
        }
    }

    #[track_caller]
    fn accepts<T: PartialEq + std::fmt::Debug>(parse: Parser<T>, cases: &[(&str, T)]) {
        for (value, want) in cases {
            assert_eq!(&parse("SOME_VAR", value).expect(value), want, "{value:?}");
        }
    }

    #[test]
    fn bools() {
        let yes = ["true", "1", "YES", " On ", "True"].map(|v| (v, true));
        let no = ["false", "0", "no", "OFF\n"].map(|v| (v, false));
        accepts(parse_bool, &[yes.as_slice(), no.as_slice()].concat());
        rejects(parse_bool, &["maybe", "2", "y", "tru e", "\"\""]);
        let msg = parse_bool("USE_IB_HOST_SERVICE", "maybe").map_err(|e| e.to_string());
        let want = r#"invalid value "maybe" for USE_IB_HOST_SERVICE: expected true/false (also 1/0, yes/no, on/off)"#;
        assert_eq!(msg, Err(want.to_owned()));
    }

    #[test]
    fn urls() {
        let url = |s: &str| Url::parse(s).expect(s);
        accepts(
            parse_url,
            &[
                ("http://localhost:5001", url("http://localhost:5001/")),
                (" http://localhost:5001/ ", url("http://localhost:5001/")),
                ("https://h.example/api/", url("https://h.example/api")),
                ("http://h/api", url("http://h/api")),
            ],
        );
        rejects(
            parse_url,
            &[
                "h:5001",
                "ftp://h/",
                "http://",
                "file:///x",
                "http://h/?q",
                "http://h/#f",
            ],
        );
        accepts(
            parse_url_list,
            &[
                (
                    "http://a:1, http://b:2/ ,https://c",
                    ["http://a:1", "http://b:2", "https://c"].map(url).to_vec(),
                ),
                ("http://a", vec![url("http://a")]),
            ],
        );
        rejects(
            parse_url_list,
            &[
                "http://a,,http://b",
                "http://a,",
                "http://a,ftp://b",
                ",",
                "  ",
            ],
        );
        let msg = parse_url_list("POOL", "http://a,ftp://b").map_err(|e| e.to_string());
        assert!(msg.is_err_and(|m| m.contains("item 2 \"ftp://b\"")));
    }

    #[test]
    fn durations() {
        let (ms, s) = (Duration::from_millis, Duration::from_secs);
        accepts(
            parse_duration,
            &[
                ("250ms", ms(250)),
                ("30s", s(30)),
                (" 5m ", s(300)),
                ("1h 30m", s(5400)),
                ("30", s(30)),
                ("0.5", ms(500)),
                ("0", Duration::ZERO),
            ],
        );
        rejects(
            parse_duration,
            &[
                "-1",
                "-5s",
                "abc",
                "5 parsecs",
                "1.2.3",
                "1e3",
                "1e30",
                &"9".repeat(25),
            ],
        );
        accepts(parse_nonzero_duration, &[("1s", s(1))]);
        rejects(parse_nonzero_duration, &["0s", "0", "x"]);
    }

    #[test]
    fn socket_addrs_and_numbers() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect(s);
        accepts(
            parse_socket_addr,
            &[
                ("0.0.0.0:5001", addr("0.0.0.0:5001")),
                ("[::1]:80", addr("[::1]:80")),
            ],
        );
        rejects(
            parse_socket_addr,
            &["localhost:1", "0.0.0.0", ":5001", "1.2.3.4:99999"],
        );
        accepts(parse_u64, &[(" 42 ", 42), ("0", 0)]);
        accepts(parse_usize, &[("7", 7)]);
        let bad_ints = ["-1", "1.5", "x", "18446744073709551616"];
        rejects(parse_u64, &bad_ints);
        rejects(parse_usize, &bad_ints);
        accepts(
            |v, s| parse_in_range(v, s, 1..=60u32),
            &[("1", 1), ("60", 60)],
        );
        accepts(|v, s| parse_in_range(v, s, 0.0..=1.0f64), &[("0.5", 0.5)]);
        rejects(
            |v, s| parse_in_range(v, s, 1..=60u32),
            &["0", "61", "ten", "-3"],
        );
        rejects(|v, s| parse_in_range(v, s, 0.0..=1.0f64), &["NaN", "1.01"]);
        let msg = parse_in_range("N", "61", 1..=60u32).map_err(|e| e.to_string());
        assert!(msg.is_err_and(|m| m.ends_with("expected a number from 1 to 60")));
    }

    #[test]
    fn enums() {
        accepts(
            |v, s| one_of(v, s, &["human", "json"]),
            &[(" JSON ", "json"), ("human", "human")],
        );
        rejects(|v, s| one_of(v, s, &["human", "json"]), &["xml", "jso"]);
        accepts(
            |v, s| parse_enum(v, s, &[("slow", 1), ("fast", 2)]),
            &[("Fast", 2)],
        );
        let msg = parse_enum("MODE", "mid", &[("slow", 1), ("fast", 2)]).map_err(|e| e.to_string());
        assert!(msg.is_err_and(|m| m.ends_with("expected one of slow, fast")));
    }

    #[test]
    fn env_reads_with_defaults_and_empty_as_absent() {
        let pairs = [
            ("FLAG", "yes"),
            ("EMPTY", ""),
            ("BLANK", "  "),
            ("BAD", "maybe"),
            ("D", "2m"),
        ];
        let env = Env::new(MapEnv::from_iter(pairs));
        assert_eq!(env.bool_or("FLAG", false), Ok(true));
        assert_eq!(env.bool_or("EMPTY", true), Ok(true));
        assert_eq!(
            (env.opt_bool("BLANK"), env.opt_bool("UNSET")),
            (Ok(None), Ok(None))
        );
        assert!(
            env.bool_or("BAD", false)
                .is_err_and(|e| e.to_string().contains("BAD"))
        );
        let missing = ConfigError::Missing {
            var: "EMPTY".into(),
        };
        assert_eq!(env.require("EMPTY", parse_u64), Err(missing));
        let msg = env.require("UNSET", parse_u64).map_err(|e| e.to_string());
        assert_eq!(msg, Err("UNSET is required but not set".to_owned()));
        assert_eq!(
            env.duration_or("UNSET", Duration::from_secs(3)),
            Ok(Duration::from_secs(3))
        );
        assert_eq!(env.opt_duration("D"), Ok(Some(Duration::from_secs(120))));
        let default = env
            .url_or("UNSET", "http://localhost:5001/")
            .map(String::from);
        assert_eq!(default, Ok("http://localhost:5001/".into()));
        let addr: SocketAddr = ([127, 0, 0, 1], 1).into();
        assert_eq!(env.or("EMPTY", addr, parse_socket_addr), Ok(addr));
        assert_eq!(
            env.opt("FLAG", |v, s| one_of(v, s, &["yes", "no"])),
            Ok(Some("yes"))
        );
    }

    #[test]
    fn sources() {
        let map = HashMap::from([("U".to_owned(), "https://x:1/".to_owned())]);
        let env = Env::new(&map);
        assert_eq!(
            env.opt_url("U").map(|u| u.map(String::from)),
            Ok(Some("https://x:1/".into()))
        );
        assert_eq!(
            Env::new(MapEnv::default().with("U", "")).opt_url("U"),
            Ok(None)
        );
        assert_eq!(
            ProcessEnv.get("HOSTBRIDGE_TEST_VARIABLE_NEVER_SET_9F3A"),
            Ok(None)
        );
        let e = ConfigError::NotUnicode { var: "X".into() };
        assert_eq!(e.to_string(), "X is set but its value is not valid UTF-8");
    }
}
