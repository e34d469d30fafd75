//! What the gateway's HTTP benchmarks share: a fixed number of GETs at a concurrency,
//! with every latency kept, and their percentiles.

use std::time::{Duration, Instant};

/// One measured batch.
pub(crate) struct Run {
    pub(crate) total: Duration,
    pub(crate) latencies: Vec<Duration>,
}

impl Run {
    /// The `p`th percentile latency (nearest rank).
    pub(crate) fn pct(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
        sorted.get(rank).copied().unwrap_or_default()
    }

    /// Requests per second over the batch.
    pub(crate) fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.total.as_secs_f64()
    }
}

/// `requests` GETs of `url` by `concurrency` workers; any non-2xx answer is an error.
pub(crate) async fn run(
    client: &reqwest::Client,
    url: &str,
    requests: usize,
    concurrency: usize,
) -> Result<Run, String> {
    let per_worker = requests / concurrency;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.to_owned();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let t = Instant::now();
                let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("{url} answered {}", response.status()));
                }
                response.bytes().await.map_err(|e| e.to_string())?;
                latencies.push(t.elapsed());
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for worker in workers {
        latencies.extend(worker.await.map_err(|e| e.to_string())??);
    }
    Ok(Run {
        total: started.elapsed(),
        latencies,
    })
}

/// Microseconds.
pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
