//! IB provider (in progress).
