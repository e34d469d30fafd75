//! The protobuf messages of the TWS API (server version >= 213) that the simulator
//! reads and writes, declared with field tags as in IB's `.proto` files. Only the
//! fields the simulator uses are declared; prost skips the others when decoding.

use std::collections::HashMap;

/// Message ids, client to gateway (`OutgoingMessages` in the TWS API).
pub(crate) mod req {
    pub(crate) const REQ_IDS: i32 = 8;
    pub(crate) const REQ_CONTRACT_DATA: i32 = 9;
    pub(crate) const REQ_MANAGED_ACCTS: i32 = 17;
    pub(crate) const REQ_HISTORICAL_DATA: i32 = 20;
    pub(crate) const CANCEL_HISTORICAL_DATA: i32 = 25;
    pub(crate) const REQ_CURRENT_TIME: i32 = 49;
    pub(crate) const REQ_MARKET_DATA_TYPE: i32 = 59;
    pub(crate) const START_API: i32 = 71;
    pub(crate) const REQ_HEAD_TIMESTAMP: i32 = 87;
    pub(crate) const CANCEL_HEAD_TIMESTAMP: i32 = 90;
    pub(crate) const REQ_CURRENT_TIME_IN_MILLIS: i32 = 105;
    pub(crate) const CANCEL_CONTRACT_DATA: i32 = 106;
}

/// Message ids, gateway to client (`IncomingMessages` in the TWS API).
pub(crate) mod msg {
    pub(crate) const ERR_MSG: i32 = 4;
    pub(crate) const NEXT_VALID_ID: i32 = 9;
    pub(crate) const CONTRACT_DATA: i32 = 10;
    pub(crate) const MANAGED_ACCTS: i32 = 15;
    pub(crate) const HISTORICAL_DATA: i32 = 17;
    pub(crate) const CURRENT_TIME: i32 = 49;
    pub(crate) const CONTRACT_DATA_END: i32 = 52;
    pub(crate) const HEAD_TIMESTAMP: i32 = 88;
    pub(crate) const HISTORICAL_DATA_END: i32 = 108;
    pub(crate) const CURRENT_TIME_IN_MILLIS: i32 = 109;
}

/// A contract as requests carry it and `contractData` answers it.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Contract {
    #[prost(int32, optional, tag = "1")]
    pub(crate) con_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub(crate) symbol: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub(crate) sec_type: Option<String>,
    #[prost(string, optional, tag = "8")]
    pub(crate) exchange: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub(crate) primary_exch: Option<String>,
    #[prost(string, optional, tag = "10")]
    pub(crate) currency: Option<String>,
    #[prost(string, optional, tag = "11")]
    pub(crate) local_symbol: Option<String>,
    #[prost(string, optional, tag = "12")]
    pub(crate) trading_class: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StartApiRequest {
    #[prost(int32, optional, tag = "1")]
    pub(crate) client_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub(crate) optional_capabilities: Option<String>,
}

/// Every `cancel*` request by id (historical data, head timestamp, contract data).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CancelById {
    #[prost(int32, optional, tag = "1")]
    pub(crate) req_id: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HistoricalDataRequest {
    #[prost(int32, optional, tag = "1")]
    pub(crate) req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub(crate) contract: Option<Contract>,
    #[prost(string, optional, tag = "3")]
    pub(crate) end_date_time: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub(crate) bar_size_setting: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub(crate) duration: Option<String>,
    #[prost(bool, optional, tag = "6")]
    pub(crate) use_rth: Option<bool>,
    #[prost(string, optional, tag = "7")]
    pub(crate) what_to_show: Option<String>,
    #[prost(int32, optional, tag = "8")]
    pub(crate) format_date: Option<i32>,
    #[prost(bool, optional, tag = "9")]
    pub(crate) keep_up_to_date: Option<bool>,
    #[prost(map = "string, string", tag = "10")]
    pub(crate) chart_options: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HeadTimestampRequest {
    #[prost(int32, optional, tag = "1")]
    pub(crate) req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub(crate) contract: Option<Contract>,
    #[prost(bool, optional, tag = "3")]
    pub(crate) use_rth: Option<bool>,
    #[prost(string, optional, tag = "4")]
    pub(crate) what_to_show: Option<String>,
    #[prost(int32, optional, tag = "5")]
    pub(crate) format_date: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ContractDataRequest {
    #[prost(int32, optional, tag = "1")]
    pub(crate) req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub(crate) contract: Option<Contract>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ErrorMessage {
    #[prost(int32, optional, tag = "1")]
    pub(crate) id: Option<i32>,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, optional, tag = "2")]
    pub(crate) error_time: Option<i64>,
    #[prost(int32, optional, tag = "3")]
    pub(crate) error_code: Option<i32>,
    #[prost(string, optional, tag = "4")]
    pub(crate) error_msg: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NextValidId {
    #[prost(int32, optional, tag = "1")]
    pub(crate) order_id: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ManagedAccounts {
    #[prost(string, optional, tag = "1")]
    pub(crate) accounts_list: Option<String>,
}

/// `currentTime` (seconds) and `currentTimeInMillis` share this shape.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CurrentTime {
    #[prost(int64, optional, tag = "1")]
    pub(crate) time: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HistoricalDataBar {
    /// `YYYYMMDD` for daily and longer bars, else epoch seconds (formatDate 2).
    #[prost(string, optional, tag = "1")]
    pub(crate) date: Option<String>,
    #[prost(double, optional, tag = "2")]
    pub(crate) open: Option<f64>,
    #[prost(double, optional, tag = "3")]
    pub(crate) high: Option<f64>,
    #[prost(double, optional, tag = "4")]
    pub(crate) low: Option<f64>,
    #[prost(double, optional, tag = "5")]
    pub(crate) close: Option<f64>,
    /// A decimal as text.
    #[prost(string, optional, tag = "6")]
    pub(crate) volume: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HistoricalData {
    #[prost(int32, optional, tag = "1")]
    pub(crate) req_id: Option<i32>,
    #[prost(message, repeated, tag = "2")]
    pub(crate) bars: Vec<HistoricalDataBar>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HistoricalDataEnd {
    #[prost(int32, optional, tag = "1")]
    pub(crate) req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub(crate) start_date_str: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub(crate) end_date_str: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HeadTimestamp {
    #[prost(int32, optional, tag = "1")]
    pub(crate) req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub(crate) head_timestamp: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ContractDetails {
    #[prost(string, optional, tag = "1")]
    pub(crate) market_name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub(crate) min_tick: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub(crate) order_types: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub(crate) valid_exchanges: Option<String>,
    #[prost(int32, optional, tag = "5")]
    pub(crate) price_magnifier: Option<i32>,
    #[prost(string, optional, tag = "7")]
    pub(crate) long_name: Option<String>,
    #[prost(string, optional, tag = "12")]
    pub(crate) time_zone_id: Option<String>,
    #[prost(string, optional, tag = "23")]
    pub(crate) stock_type: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ContractData {
    #[prost(int32, optional, tag = "1")]
    pub(crate) req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub(crate) contract: Option<Contract>,
    #[prost(message, optional, tag = "3")]
    pub(crate) contract_details: Option<ContractDetails>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ContractDataEnd {
    #[prost(int32, optional, tag = "1")]
    pub(crate) req_id: Option<i32>,
}
