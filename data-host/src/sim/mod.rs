//! IB Gateway simulator (in progress).
