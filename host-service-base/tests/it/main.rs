//! Integration tests of host-service-base: real servers on 127.0.0.1 port 0, real
//! clients, no mocks of our own code. One test binary (modules per area) links faster.

mod client;
mod errors;
mod operations;
mod server;
mod support;
mod webhook;
