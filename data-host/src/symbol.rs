//! Symbols and instrument types, validated before they reach a path or a broker.

use std::fmt;
use std::str::FromStr;

use host_service_base::names::{First, NameError, NameRule, printable};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted symbol. Real tickers are far shorter; the bound keeps hostile input
/// out of file names and logs.
pub const MAX_SYMBOL_LEN: usize = 32;

/// What a symbol may be (the shared name checker with a symbol's own characters: `.`
/// for `BRK.B` and `EUR.USD`, `-` for `BF-B`; no `_`).
pub const SYMBOL_RULE: NameRule = NameRule {
    punctuation: ".-",
    max_len: MAX_SYMBOL_LEN,
    first: First::LetterOrDigit,
};

/// A validated ticker symbol: `[A-Za-z0-9.-]+`, at most [`MAX_SYMBOL_LEN`] characters,
/// not starting with `.` or `-` (no `..`, no option-like names), stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

/// The symbol rule in words. Every rejection ends with it, so a client can correct its
/// input from the error alone (the number is [`MAX_SYMBOL_LEN`]; a test holds them
/// together).
pub const SYMBOL_ALLOWED: &str = "a symbol may contain only letters, digits, `.` and `-` (ASCII letters in any case; stored upper-case), must start with a letter or digit, and has at most 32 characters";

/// Why a symbol was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSymbol {
    /// Empty or only whitespace.
    #[error("symbol is empty: {SYMBOL_ALLOWED}")]
    Empty,
    /// Longer than [`MAX_SYMBOL_LEN`].
    #[error("symbol is {len} characters long: {SYMBOL_ALLOWED}")]
    TooLong {
        /// Length of the rejected text, in characters.
        len: usize,
    },
    /// Contains a character outside `[A-Za-z0-9.-]` or starts with `.`/`-`.
    #[error("symbol `{0}` is not allowed: {SYMBOL_ALLOWED}")]
    BadCharacters(String),
}

impl Symbol {
    /// Validates and normalises (trims, upper-cases) `raw`.
    pub fn parse(raw: &str) -> Result<Self, InvalidSymbol> {
        let text = raw.trim();
        match SYMBOL_RULE.check(text) {
            Ok(()) => Ok(Self(text.to_ascii_uppercase())),
            Err(NameError::Empty) => Err(InvalidSymbol::Empty),
            Err(NameError::TooLong { len, .. }) => Err(InvalidSymbol::TooLong { len }),
            // Echo a bounded, printable form only.
            Err(NameError::Characters) => Err(InvalidSymbol::BadCharacters(printable(text))),
        }
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Symbol {
    type Err = InvalidSymbol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The kind of instrument a symbol names (KTRDR's `instrument_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentType {
    /// A stock or ETF (IB `STK`).
    Stock,
    /// A currency pair (IB `CASH`).
    Forex,
    /// A dated future (IB `FUT`).
    Future,
    /// A continuous future (IB `CONTFUT`).
    ContinuousFuture,
    /// An index (IB `IND`).
    Index,
}

/// The text given is not an instrument type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown instrument_type `{0}`; expected stock, forex, future, continuous_future or index")]
pub struct UnknownInstrumentType(pub String);

/// ISO 4217 codes IB trades as `CASH` pairs; a six-letter symbol made of two of these
/// (`EURUSD`) or two joined by `.` (`EUR.USD`) is taken for forex.
const CURRENCIES: [&str; 16] = [
    "USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD", "SEK", "NOK", "DKK", "HKD", "SGD",
    "CNH", "MXN", "ZAR",
];

impl InstrumentType {
    /// The contract spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stock => "stock",
            Self::Forex => "forex",
            Self::Future => "future",
            Self::ContinuousFuture => "continuous_future",
            Self::Index => "index",
        }
    }

    /// Parses an optional query/body value: absent or empty means "not given".
    pub fn parse_optional(raw: Option<&str>) -> Result<Option<Self>, UnknownInstrumentType> {
        match raw.map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some),
        }
    }

    /// A sensible guess when the caller did not say: currency pairs are forex,
    /// everything else a stock.
    pub fn guess(symbol: &Symbol) -> Self {
        let s = symbol.as_str();
        let (base, quote) = match s.split_once('.') {
            Some((b, q)) => (b, q),
            None if s.len() == 6 => s.split_at(3),
            None => return Self::Stock,
        };
        if CURRENCIES.contains(&base) && CURRENCIES.contains(&quote) {
            Self::Forex
        } else {
            Self::Stock
        }
    }
}

impl FromStr for InstrumentType {
    type Err = UnknownInstrumentType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stock" | "stk" | "etf" => Ok(Self::Stock),
            "forex" | "fx" | "cash" => Ok(Self::Forex),
            "future" | "futures" | "fut" => Ok(Self::Future),
            "continuous_future" | "contfut" => Ok(Self::ContinuousFuture),
            "index" | "ind" => Ok(Self::Index),
            _ => Err(UnknownInstrumentType(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_hostile_symbols() {
        for bad in [
            "../x", "a/b", "", "  ", "..", ".hidden", "-rf", "A B", "A\0B", "ÄPFEL", "x\\y",
        ] {
            assert!(Symbol::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            Symbol::parse(&"A".repeat(60)),
            Err(InvalidSymbol::TooLong { len: 60 })
        ));
    }

    #[test]
    fn accepts_and_normalises_real_symbols() {
        for (raw, norm) in [
            ("aapl", "AAPL"),
            ("BRK.B", "BRK.B"),
            (" EUR.USD ", "EUR.USD"),
            ("ES-2024", "ES-2024"),
        ] {
            assert_eq!(
                Symbol::parse(raw).map(|s| s.to_string()),
                Ok(norm.to_owned())
            );
        }
    }

    #[test]
    fn every_rejection_says_which_characters_are_allowed() {
        assert!(SYMBOL_ALLOWED.contains(&format!("at most {MAX_SYMBOL_LEN} characters")));
        for bad in ["", "a/b", "-rf", &"A".repeat(40)] {
            let message = Symbol::parse(bad).expect_err("rejected").to_string();
            assert!(
                message.starts_with("symbol") && message.ends_with(SYMBOL_ALLOWED),
                "{bad:?}: {message}"
            );
        }
    }

    #[test]
    fn guesses_forex_from_currency_pairs() {
        let guess = |s: &str| Symbol::parse(s).map(|s| InstrumentType::guess(&s));
        assert_eq!(guess("EURUSD"), Ok(InstrumentType::Forex));
        assert_eq!(guess("EUR.USD"), Ok(InstrumentType::Forex));
        assert_eq!(guess("AAPL"), Ok(InstrumentType::Stock));
        assert_eq!(guess("ABCDEF"), Ok(InstrumentType::Stock));
    }

    #[test]
    fn empty_instrument_type_means_absent() {
        assert_eq!(InstrumentType::parse_optional(Some("")), Ok(None));
        assert_eq!(InstrumentType::parse_optional(None), Ok(None));
        assert_eq!(
            InstrumentType::parse_optional(Some("FOREX")),
            Ok(Some(InstrumentType::Forex))
        );
        assert!(InstrumentType::parse_optional(Some("crypto")).is_err());
    }
}
