//! The IB Gateway simulator (in progress).
