//! What the server benches share: reading `--secs N` and the runtime services run on
//! a two-core host.

/// Seconds per row: `-- --secs N`, else `default`.
#[allow(dead_code)] // Not every bench runs rows for a time.
pub(crate) fn secs_arg(default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(default)
}

/// A count given as `-- NAME N`, else `default`.
#[allow(dead_code)] // Only some benches take counts.
pub(crate) fn count_arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// A multi-threaded runtime with two workers, whatever the machine has, so that rows
/// compare alike across machines.
pub(crate) fn two_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
