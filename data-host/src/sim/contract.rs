//! Mapping requested contracts to the bar source's symbols, and the synthesized
//! contract details the simulator answers with.

use std::collections::HashMap;
use std::sync::Mutex;

use super::proto::{Contract, ContractDetails};
use super::source::BarSource;
use crate::{InstrumentType, Symbol};

/// A requested contract, matched to a symbol of the bar source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The source's spelling (`AAPL`, `EURUSD`).
    pub(crate) key: String,
    /// `STK`, `CASH`, ... as requested (guessed from the symbol when absent).
    pub(crate) sec_type: String,
    /// For a `CASH` pair: base and quote currency.
    pub(crate) pair: Option<(String, String)>,
    pub(crate) con_id: i32,
}

/// Remembers the conIds handed out, so a later request by conId alone resolves.
#[derive(Debug, Default)]
pub(crate) struct ConIds(Mutex<HashMap<i32, String>>);

impl ConIds {
    fn get(&self, con_id: i32) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&con_id)
            .cloned()
    }

    fn remember(&self, con_id: i32, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(con_id, key.to_owned());
    }
}

fn text(field: &Option<String>) -> String {
    field.as_deref().unwrap_or("").trim().to_ascii_uppercase()
}

/// Splits `EUR.USD` / `EURUSD` (with `currency` as the quote when given) into a pair.
fn split_pair(symbol: &str, currency: &str) -> Option<(String, String)> {
    if let Some((base, quote)) = symbol.split_once('.') {
        return Some((base.to_owned(), quote.to_owned()));
    }
    if symbol.len() == 6 && symbol.is_ascii() {
        let (base, quote) = symbol.split_at(3);
        return Some((base.to_owned(), quote.to_owned()));
    }
    (!currency.is_empty() && !symbol.is_empty()).then(|| (symbol.to_owned(), currency.to_owned()))
}

/// A stable, positive conId for a source symbol (FNV-1a of its name).
pub(crate) fn con_id(key: &str) -> i32 {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    // 31 bits, never 0 (0 means "no conId" on the wire).
    ((hash & 0x7FFF_FFFF) as i32).max(1)
}

/// Finds the source symbol a requested contract means, or `None` (IB error 200).
pub(crate) fn resolve(
    contract: &Contract,
    source: &dyn BarSource,
    con_ids: &ConIds,
) -> Option<Resolved> {
    let symbol = text(&contract.symbol);
    let currency = text(&contract.currency);
    let local = text(&contract.local_symbol);
    let mut candidates = Vec::new();
    if let Some(known) = contract
        .con_id
        .filter(|id| *id != 0)
        .and_then(|id| con_ids.get(id))
    {
        candidates.push(known);
    }
    let requested_type = text(&contract.sec_type);
    if requested_type == "CASH"
        && let Some((base, quote)) = split_pair(&symbol, &currency)
    {
        candidates.push(format!("{base}{quote}"));
        candidates.push(format!("{base}.{quote}"));
    }
    candidates.extend(
        [symbol.clone(), local]
            .into_iter()
            .filter(|c| !c.is_empty()),
    );
    // Only names a path could hold reach the source.
    let key = candidates
        .into_iter()
        .filter_map(|c| Symbol::parse(&c).ok())
        .map(|s| s.as_str().to_owned())
        .find(|c| source.knows(c))?;
    let sec_type = if requested_type.is_empty() {
        match Symbol::parse(&key).map(|s| InstrumentType::guess(&s)) {
            Ok(InstrumentType::Forex) => "CASH".to_owned(),
            _ => "STK".to_owned(),
        }
    } else {
        requested_type
    };
    let pair = (sec_type == "CASH")
        .then(|| split_pair(&key, &currency))
        .flatten();
    let con_id = con_id(&key);
    con_ids.remember(con_id, &key);
    Some(Resolved {
        key,
        sec_type,
        pair,
        con_id,
    })
}

/// The contract and details `contractData` answers with for `resolved`.
pub(crate) fn describe(requested: &Contract, resolved: &Resolved) -> (Contract, ContractDetails) {
    let exchange = text(&requested.exchange);
    let (symbol, currency, local, exchange, min_tick) = match &resolved.pair {
        Some((base, quote)) => {
            let exchange = if exchange.is_empty() {
                "IDEALPRO".to_owned()
            } else {
                exchange
            };
            (
                base.clone(),
                quote.clone(),
                format!("{base}.{quote}"),
                exchange,
                "0.00005",
            )
        }
        None => {
            let currency = Some(text(&requested.currency)).filter(|c| !c.is_empty());
            let exchange = if exchange.is_empty() {
                "SMART".to_owned()
            } else {
                exchange
            };
            let key = resolved.key.clone();
            (
                key.clone(),
                currency.unwrap_or_else(|| "USD".to_owned()),
                key,
                exchange,
                "0.01",
            )
        }
    };
    let contract = Contract {
        con_id: Some(resolved.con_id),
        symbol: Some(symbol),
        sec_type: Some(resolved.sec_type.clone()),
        exchange: Some(exchange.clone()),
        primary_exch: None,
        currency: Some(currency),
        local_symbol: Some(local.clone()),
        trading_class: Some(local.clone()),
    };
    let details = ContractDetails {
        market_name: Some(local.clone()),
        min_tick: Some(min_tick.to_owned()),
        order_types: Some("LMT,MKT".to_owned()),
        valid_exchanges: Some(exchange),
        price_magnifier: Some(1),
        long_name: Some(format!("{local} (IB Gateway simulator)")),
        time_zone_id: Some("UTC".to_owned()),
        stock_type: (resolved.sec_type == "STK").then(|| "COMMON".to_owned()),
    };
    (contract, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timeframe;
    use crate::sim::MemoryBarSource;

    fn source() -> MemoryBarSource {
        MemoryBarSource::new()
            .with("AAPL", Timeframe::D1, Vec::new())
            .with("EURUSD", Timeframe::H1, Vec::new())
    }

    fn contract(symbol: &str, sec_type: &str, currency: &str) -> Contract {
        Contract {
            symbol: Some(symbol.into()),
            sec_type: Some(sec_type.into()),
            currency: Some(currency.into()),
            ..Contract::default()
        }
    }

    #[test]
    fn resolves_stocks_pairs_and_con_ids() {
        let ids = ConIds::default();
        let stock = resolve(&contract("aapl", "STK", "USD"), &source(), &ids).expect("known");
        assert_eq!(
            (stock.key.as_str(), stock.sec_type.as_str()),
            ("AAPL", "STK")
        );
        let fx = resolve(&contract("EUR", "CASH", "USD"), &source(), &ids).expect("known");
        assert_eq!(fx.key, "EURUSD");
        assert_eq!(fx.pair, Some(("EUR".into(), "USD".into())));
        let by_id = Contract {
            con_id: Some(stock.con_id),
            ..Contract::default()
        };
        assert_eq!(
            resolve(&by_id, &source(), &ids).map(|r| r.key),
            Some("AAPL".into())
        );
        assert!(resolve(&contract("MSFT", "STK", "USD"), &source(), &ids).is_none());
        assert!(resolve(&contract("../etc", "STK", "USD"), &source(), &ids).is_none());
        assert_eq!(con_id("AAPL"), con_id("AAPL"));
        assert_ne!(con_id("AAPL"), con_id("MSFT"));
    }
}
