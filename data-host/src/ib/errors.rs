//! IB's answers as errors: what an `ibapi` error means for a request, by IB's error
//! code wherever there is one (the text only where one code covers several cases:
//! 162 is both "pacing violation" and "no data").
//!
//! `ibapi` hands a request's TWS error back as [`ibapi::Error::Notice`] (code and
//! message), a lost session as `ConnectionReset` / `ConnectionFailed` / `Shutdown` /
//! an I/O error, and its own deadline as `Timeout`.
//!
//! | IB / ibapi | result |
//! |---|---|
//! | 200 no security definition | [`IbError::UnknownSymbol`] |
//! | 162 "... pacing violation" | [`IbError::Pacing`] |
//! | 162 "HMDS query returned no data" (and other "no data" texts) | [`Answer::NoData`]: an empty result |
//! | 354 not subscribed | [`IbError::NotSubscribed`] |
//! | 10314 invalid end date/time | [`IbError::Invalid`] naming `end` |
//! | 502, 504, 1100, 1300, a closed socket | [`IbError::Connectivity`] |
//! | `ibapi::Error::Timeout` | [`IbError::Timeout`] |
//! | any other code | [`IbError::Broker`] with IB's code and text |

use std::time::Duration;

use host_service_base::HostError;

use crate::provider::DataError;

/// IB error codes the provider tells apart.
pub(crate) mod codes {
    /// Historical data service error: pacing violation, no data, query cancelled.
    pub(crate) const HMDS: i32 = 162;
    /// No security definition has been found for the request.
    pub(crate) const NO_SECURITY_DEFINITION: i32 = 200;
    /// Requested market data is not subscribed.
    pub(crate) const NOT_SUBSCRIBED: i32 = 354;
    /// Couldn't connect to TWS.
    pub(crate) const COULD_NOT_CONNECT: i32 = 502;
    /// Not connected.
    pub(crate) const NOT_CONNECTED: i32 = 504;
    /// Connectivity between TWS and IB's servers has been lost.
    pub(crate) const CONNECTIVITY_LOST: i32 = 1100;
    /// Connectivity restored, data lost (subscriptions must be renewed).
    pub(crate) const RESTORED_DATA_LOST: i32 = 1101;
    /// Connectivity restored, data maintained.
    pub(crate) const RESTORED_DATA_MAINTAINED: i32 = 1102;
    /// TWS reset its socket port: this connection is gone.
    pub(crate) const SOCKET_PORT_RESET: i32 = 1300;
    /// End date/time invalid (IB cannot serve it; e.g. in the future or malformed).
    pub(crate) const INVALID_END: i32 = 10314;
}

/// A failure on the IB path. Unlike [`DataError`] it is `Clone`: a coalesced request
/// hands the one outcome to every caller waiting for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IbError {
    /// Bad input; `field` names it.
    #[error("invalid `{field}`: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// IB has no such contract (200).
    #[error("no security definition found for {symbol}")]
    UnknownSymbol {
        /// The symbol asked for.
        symbol: String,
    },
    /// Not subscribed to the market data (354).
    #[error("market data not subscribed for {symbol}: {message}")]
    NotSubscribed {
        /// The symbol asked for.
        symbol: String,
        /// IB's text.
        message: String,
    },
    /// IB refused for pacing (162).
    #[error("pacing violation reported by IB: {0}")]
    Pacing(String),
    /// No usable connection to the gateway.
    #[error("IB Gateway connection: {0}")]
    Connectivity(String),
    /// No answer within the request timeout.
    #[error("IB Gateway did not answer within {0:?}")]
    Timeout(Duration),
    /// Any other IB error.
    #[error("IB error {code}: {message}")]
    Broker {
        /// IB's code.
        code: i32,
        /// IB's text.
        message: String,
    },
    /// Every caller went away.
    #[error("cancelled")]
    Cancelled,
    /// A fault on our side of the protocol (an answer `ibapi` could not decode, a
    /// failed task).
    #[error("{0}")]
    Internal(String),
}

impl From<IbError> for DataError {
    fn from(error: IbError) -> Self {
        match error {
            IbError::Invalid { field, message } => DataError::Invalid { field, message },
            IbError::UnknownSymbol { symbol } => DataError::UnknownSymbol { symbol },
            IbError::NotSubscribed { symbol, message } => {
                DataError::NotSubscribed { symbol, message }
            }
            IbError::Pacing(message) => DataError::Pacing(message),
            IbError::Connectivity(message) => DataError::Connectivity(message),
            IbError::Timeout(after) => DataError::Timeout(after),
            IbError::Broker { code, message } => DataError::Broker { code, message },
            IbError::Cancelled => DataError::Cancelled,
            IbError::Internal(message) => {
                DataError::Host(HostError::internal(format!("IB provider: {message}")))
            }
        }
    }
}

impl From<super::Cancelled> for IbError {
    fn from(_: super::Cancelled) -> Self {
        IbError::Cancelled
    }
}

/// What an error answer means for the request that got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// IB has no data for it: an empty result, not an error.
    NoData,
    /// The request failed.
    Failed(IbError),
}

/// What a request was, for the messages of its errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The symbol asked for.
    pub(crate) symbol: &'a str,
    /// `127.0.0.1:4002 (client id 7)`.
    pub(crate) gateway: &'a str,
    /// The request timeout, for [`IbError::Timeout`].
    pub(crate) timeout: Duration,
}

/// The meaning of IB error `code` with text `message`.
pub(crate) fn classify_code(code: i32, message: &str, cx: Context<'_>) -> Answer {
    let text = message.to_ascii_lowercase();
    let failed = Answer::Failed;
    match code {
        codes::NO_SECURITY_DEFINITION => failed(IbError::UnknownSymbol {
            symbol: cx.symbol.to_owned(),
        }),
        codes::HMDS if text.contains("pacing violation") => {
            failed(IbError::Pacing(message.to_owned()))
        }
        // "HMDS query returned no data", "No data of type ... is available".
        codes::HMDS if text.contains("no data") => Answer::NoData,
        codes::NOT_SUBSCRIBED => failed(IbError::NotSubscribed {
            symbol: cx.symbol.to_owned(),
            message: message.to_owned(),
        }),
        codes::INVALID_END => failed(IbError::Invalid {
            field: "end",
            message: format!("IB refused the end time: {message}"),
        }),
        codes::COULD_NOT_CONNECT
        | codes::NOT_CONNECTED
        | codes::CONNECTIVITY_LOST
        | codes::SOCKET_PORT_RESET => failed(IbError::Connectivity(format!(
            "{} (IB {code}): {message}",
            cx.gateway
        ))),
        _ => failed(IbError::Broker {
            code,
            message: message.to_owned(),
        }),
    }
}

/// The meaning of an `ibapi` error.
pub(crate) fn classify(error: &ibapi::Error, cx: Context<'_>) -> Answer {
    use ibapi::Error as E;
    let connectivity = |what: &str| {
        Answer::Failed(IbError::Connectivity(format!(
            "{}: {what}; the provider reconnects in the background",
            cx.gateway
        )))
    };
    match error {
        E::Notice(notice) => classify_code(notice.code, &notice.message, cx),
        E::Timeout => Answer::Failed(IbError::Timeout(cx.timeout)),
        E::Cancelled => Answer::Failed(IbError::Cancelled),
        E::ConnectionReset | E::ConnectionFailed | E::UnexpectedEndOfStream | E::EndOfStream => {
            connectivity("the connection was lost before IB answered")
        }
        E::Shutdown => connectivity("the connection was closed before IB answered"),
        E::Io(io) => connectivity(&format!("socket error: {io}")),
        E::InvalidFrame(what) => connectivity(&format!("the stream broke: {what}")),
        E::ConnectionRejected(why) => connectivity(&format!("connection rejected: {why}")),
        E::ClientIdInUse { client_id } => {
            connectivity(&format!("client id {client_id} is already in use"))
        }
        E::ServerVersion(need, got, what) => Answer::Failed(IbError::Connectivity(format!(
            "{} speaks server version {got}, {what} needs {need}",
            cx.gateway
        ))),
        other => Answer::Failed(IbError::Internal(format!(
            "unexpected answer from {}: {other}",
            cx.gateway
        ))),
    }
}

#[cfg(test)]
mod tests {
    use ibapi::Notice;

    use super::*;

    const CX: Context<'static> = Context {
        symbol: "AAPL",
        gateway: "IB Gateway at 127.0.0.1:4002 (client id 7)",
        timeout: Duration::from_secs(30),
    };

    fn notice(code: i32, message: &str) -> ibapi::Error {
        ibapi::Error::Notice(Notice {
            request_id: Some(9),
            code,
            message: message.to_owned(),
            error_time: None,
            advanced_order_reject_json: String::new(),
        })
    }

    fn data_error(error: ibapi::Error) -> Result<(), DataError> {
        match classify(&error, CX) {
            Answer::NoData => Ok(()),
            Answer::Failed(e) => Err(e.into()),
        }
    }

    #[test]
    fn maps_ib_codes() {
        let no_security = "No security definition has been found for the request";
        assert!(matches!(
            data_error(notice(200, no_security)),
            Err(DataError::UnknownSymbol { symbol }) if symbol == "AAPL"
        ));
        let pacing =
            "Historical Market Data Service error message:Historical data request pacing violation";
        assert!(
            matches!(data_error(notice(162, pacing)), Err(DataError::Pacing(m)) if m == pacing)
        );
        let no_data = "Historical Market Data Service error message:HMDS query returned no data: AAPL@SMART Trades";
        assert!(matches!(data_error(notice(162, no_data)), Ok(())));
        assert!(matches!(
            data_error(notice(162, "API historical data query cancelled: 9")),
            Err(DataError::Broker { code: 162, .. })
        ));
        assert!(matches!(
            data_error(notice(354, "Requested market data is not subscribed.")),
            Err(DataError::NotSubscribed { .. })
        ));
        assert!(matches!(
            data_error(notice(
                10314,
                "End Date/Time: The date, time, or time-zone entered is invalid."
            )),
            Err(DataError::Invalid { field: "end", .. })
        ));
        for code in [502, 504, 1100, 1300] {
            match data_error(notice(code, "Not connected")) {
                Err(DataError::Connectivity(m)) => {
                    assert!(
                        m.contains("127.0.0.1:4002") && m.contains(&code.to_string()),
                        "{m}"
                    );
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert!(matches!(
            data_error(notice(321, "Error validating request")),
            Err(DataError::Broker { code: 321, message }) if message == "Error validating request"
        ));
    }

    #[test]
    fn maps_transport_failures() {
        for error in [
            ibapi::Error::ConnectionReset,
            ibapi::Error::ConnectionFailed,
            ibapi::Error::Shutdown,
            ibapi::Error::UnexpectedEndOfStream,
            ibapi::Error::Io(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        ] {
            match data_error(error) {
                Err(DataError::Connectivity(m)) => assert!(m.contains("127.0.0.1:4002"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            data_error(ibapi::Error::Timeout),
            Err(DataError::Timeout(d)) if d == Duration::from_secs(30)
        ));
        assert!(matches!(
            data_error(ibapi::Error::Cancelled),
            Err(DataError::Cancelled)
        ));
        assert!(matches!(
            data_error(ibapi::Error::UnexpectedResponse("?".into())),
            Err(DataError::Host(_))
        ));
    }
}
