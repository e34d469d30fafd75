//! Contracts: which IB contract a [`Symbol`] of a given [`InstrumentType`] means, on
//! which exchange it is asked for, and what its bars are built from.
//!
//! | instrument | security type | exchange | currency | what to show |
//! |---|---|---|---|---|
//! | stock / ETF | `STK` | `SMART` | USD | `TRADES` |
//! | forex pair (`EURUSD`, `EUR.USD`) | `CASH` (symbol `EUR`) | `IDEALPRO` | the quote (`USD`) | `MIDPOINT` |
//! | future (`ES`, `ES-202412`) | `FUT` | the root's exchange | USD | `TRADES` |
//! | continuous future (`ES`) | `CONTFUT` | the root's exchange | USD | `TRADES` |
//! | index (`SPX`) | `IND` | the index's exchange | USD | `TRADES` |
//!
//! Forex uses `MIDPOINT`, not `BID`: IDEALPRO pairs have no trades (IB refuses
//! `TRADES` for `CASH`), and bid bars sit half a spread below the market, so their
//! OHLC would be biased against every other source and would jump whenever the
//! spread widens; the midpoint is the unbiased price. `BID_ASK` is not OHLC of one
//! price at all and costs two pacing units.
//!
//! Futures and indices need their listing exchange (IB does not route them through
//! `SMART`); a small table covers the common roots and indices, anything else is
//! asked for on `CME` (futures) or `CBOE` (indices) — a symbol listed elsewhere comes
//! back from IB as unknown (200), which names the problem. A dated future is written
//! `ROOT-YYYYMM` (`ES-202412`); a bare root is the front months as IB resolves them,
//! which IB may answer with an "ambiguous contract" error — use `continuous_future`
//! for a continuous series.

use ibapi::contracts::{Contract, SecurityType};

use super::errors::IbError;
use super::pacing::ContractKey;
use super::segment::WhatToShow;
use crate::symbol::{InstrumentType, Symbol};

/// A symbol resolved to the IB contract the provider asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IbContract {
    /// The contract as `ibapi` sends it.
    pub(crate) contract: Contract,
    /// What pacing and coalescing know it by.
    pub(crate) key: ContractKey,
    /// What its bars are built from.
    pub(crate) what_to_show: WhatToShow,
}

/// Futures roots and the exchanges IB lists them on.
const FUTURE_EXCHANGES: &[(&str, &str)] = &[
    ("ES", "CME"),
    ("MES", "CME"),
    ("NQ", "CME"),
    ("MNQ", "CME"),
    ("RTY", "CME"),
    ("M2K", "CME"),
    ("6E", "CME"),
    ("6J", "CME"),
    ("6B", "CME"),
    ("6A", "CME"),
    ("6C", "CME"),
    ("6S", "CME"),
    ("YM", "CBOT"),
    ("MYM", "CBOT"),
    ("ZB", "CBOT"),
    ("ZN", "CBOT"),
    ("ZF", "CBOT"),
    ("ZT", "CBOT"),
    ("ZC", "CBOT"),
    ("ZS", "CBOT"),
    ("ZW", "CBOT"),
    ("CL", "NYMEX"),
    ("MCL", "NYMEX"),
    ("NG", "NYMEX"),
    ("RB", "NYMEX"),
    ("HO", "NYMEX"),
    ("GC", "COMEX"),
    ("MGC", "COMEX"),
    ("SI", "COMEX"),
    ("HG", "COMEX"),
    ("VX", "CFE"),
];

/// Indices and the exchanges IB lists them on.
const INDEX_EXCHANGES: &[(&str, &str)] = &[
    ("SPX", "CBOE"),
    ("VIX", "CBOE"),
    ("XSP", "CBOE"),
    ("NDX", "NASDAQ"),
    ("RUT", "RUSSELL"),
    ("INDU", "CME"),
];

fn lookup(table: &[(&str, &'static str)], root: &str, default: &'static str) -> &'static str {
    table
        .iter()
        .find(|(name, _)| *name == root)
        .map_or(default, |(_, exchange)| exchange)
}

/// `EURUSD` or `EUR.USD` as (base, quote), when both are three letters.
fn currency_pair(symbol: &str) -> Option<(&str, &str)> {
    let (base, quote) = match symbol.split_once('.') {
        Some(pair) => pair,
        None if symbol.len() == 6 => symbol.split_at(3),
        None => return None,
    };
    let is_code = |s: &str| s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic());
    (is_code(base) && is_code(quote)).then_some((base, quote))
}

/// `ES-202412` as (`ES`, `202412`).
fn dated_future(symbol: &str) -> Option<(&str, &str)> {
    let (root, month) = symbol.rsplit_once('-')?;
    let valid = !root.is_empty() && month.len() == 6 && month.bytes().all(|b| b.is_ascii_digit());
    valid.then_some((root, month))
}

impl IbContract {
    /// The contract for `symbol`; `instrument` `None` is guessed
    /// ([`InstrumentType::guess`]). A forex symbol that is not a currency pair is
    /// refused (naming `symbol`).
    pub(crate) fn resolve(
        symbol: &Symbol,
        instrument: Option<InstrumentType>,
    ) -> Result<Self, IbError> {
        let instrument = instrument.unwrap_or_else(|| InstrumentType::guess(symbol));
        let text = symbol.as_str();
        let (contract, what_to_show) = match instrument {
            InstrumentType::Stock => (
                Contract {
                    // IB writes share classes with a space: `BRK B`.
                    symbol: text.replace('.', " ").into(),
                    security_type: SecurityType::Stock,
                    exchange: "SMART".into(),
                    currency: "USD".into(),
                    ..Contract::default()
                },
                WhatToShow::Trades,
            ),
            InstrumentType::Forex => {
                let (base, quote) = currency_pair(text).ok_or_else(|| IbError::Invalid {
                    field: "symbol",
                    message: format!(
                        "{text} is not a currency pair; forex symbols look like EURUSD or EUR.USD"
                    ),
                })?;
                (
                    Contract {
                        symbol: base.into(),
                        security_type: SecurityType::ForexPair,
                        exchange: "IDEALPRO".into(),
                        currency: quote.into(),
                        ..Contract::default()
                    },
                    WhatToShow::Midpoint,
                )
            }
            InstrumentType::Future => {
                let (root, month) = dated_future(text).unwrap_or((text, ""));
                (
                    Contract {
                        symbol: root.into(),
                        security_type: SecurityType::Future,
                        exchange: lookup(FUTURE_EXCHANGES, root, "CME").into(),
                        currency: "USD".into(),
                        last_trade_date_or_contract_month: month.to_owned(),
                        ..Contract::default()
                    },
                    WhatToShow::Trades,
                )
            }
            InstrumentType::ContinuousFuture => (
                Contract {
                    symbol: text.into(),
                    security_type: SecurityType::ContinuousFuture,
                    exchange: lookup(FUTURE_EXCHANGES, text, "CME").into(),
                    currency: "USD".into(),
                    ..Contract::default()
                },
                WhatToShow::Trades,
            ),
            InstrumentType::Index => (
                Contract {
                    symbol: text.into(),
                    security_type: SecurityType::Index,
                    exchange: lookup(INDEX_EXCHANGES, text, "CBOE").into(),
                    currency: "USD".into(),
                    ..Contract::default()
                },
                WhatToShow::Trades,
            ),
        };
        let key = ContractKey::new(symbol.clone(), instrument, contract.exchange.to_string());
        Ok(Self {
            contract,
            key,
            what_to_show,
        })
    }

    /// The symbol as asked for (for messages).
    pub(crate) fn symbol(&self) -> &Symbol {
        &self.key.symbol
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(symbol: &str, kind: Option<InstrumentType>) -> IbContract {
        IbContract::resolve(&Symbol::parse(symbol).expect("symbol"), kind).expect("contract")
    }

    fn fields(c: &IbContract) -> (String, &str, String, String, WhatToShow) {
        (
            c.contract.symbol.to_string(),
            c.contract.security_type.as_str(),
            c.contract.exchange.to_string(),
            c.contract.currency.to_string(),
            c.what_to_show,
        )
    }

    #[test]
    fn stocks_go_to_smart_in_usd_as_trades() {
        let c = resolve("aapl", None);
        assert_eq!(
            fields(&c),
            (
                "AAPL".into(),
                "STK",
                "SMART".into(),
                "USD".into(),
                WhatToShow::Trades
            )
        );
        assert_eq!(c.key.exchange, "SMART");
        assert_eq!(c.key.instrument, InstrumentType::Stock);
        assert_eq!(resolve("BRK.B", None).contract.symbol.to_string(), "BRK B");
    }

    #[test]
    fn forex_pairs_split_into_base_and_quote_as_midpoint() {
        for spelling in ["EURUSD", "EUR.USD"] {
            let c = resolve(spelling, None);
            assert_eq!(
                fields(&c),
                (
                    "EUR".into(),
                    "CASH",
                    "IDEALPRO".into(),
                    "USD".into(),
                    WhatToShow::Midpoint
                ),
                "{spelling}"
            );
            assert_eq!(c.key.symbol.as_str(), spelling);
        }
        let c = resolve("GBP.JPY", Some(InstrumentType::Forex));
        assert_eq!(c.contract.currency.to_string(), "JPY");
        let bad = IbContract::resolve(
            &Symbol::parse("AAPL").expect("symbol"),
            Some(InstrumentType::Forex),
        );
        assert!(
            matches!(
                bad,
                Err(IbError::Invalid {
                    field: "symbol",
                    ..
                })
            ),
            "{bad:?}"
        );
    }

    #[test]
    fn futures_continuous_futures_and_indices() {
        let es = resolve("ES-202412", Some(InstrumentType::Future));
        assert_eq!(
            fields(&es),
            (
                "ES".into(),
                "FUT",
                "CME".into(),
                "USD".into(),
                WhatToShow::Trades
            )
        );
        assert_eq!(es.contract.last_trade_date_or_contract_month, "202412");
        let cl = resolve("CL", Some(InstrumentType::Future));
        assert_eq!(cl.contract.exchange.to_string(), "NYMEX");
        assert_eq!(cl.contract.last_trade_date_or_contract_month, "");
        let cont = resolve("YM", Some(InstrumentType::ContinuousFuture));
        assert_eq!(
            fields(&cont),
            (
                "YM".into(),
                "CONTFUT",
                "CBOT".into(),
                "USD".into(),
                WhatToShow::Trades
            )
        );
        let spx = resolve("SPX", Some(InstrumentType::Index));
        assert_eq!(
            fields(&spx),
            (
                "SPX".into(),
                "IND",
                "CBOE".into(),
                "USD".into(),
                WhatToShow::Trades
            )
        );
        assert_eq!(
            resolve("NDX", Some(InstrumentType::Index))
                .contract
                .exchange
                .to_string(),
            "NASDAQ"
        );
    }
}
