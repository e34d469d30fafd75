//! Integration tests of data-host: real servers on 127.0.0.1 port 0 (the IB Gateway
//! simulator standing in for IB), real clients. One test binary links faster.

mod api;
mod binary;
mod ib;
mod ib_http;
mod sim;
mod support;
