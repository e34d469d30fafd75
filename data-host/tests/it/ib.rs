//! IB provider against the simulator (in progress).
