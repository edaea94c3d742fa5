//! The load driver: a fixed number of operations spread over N concurrent tasks, each timed
//! into an HDR histogram. Bounded by construction: every task runs its share and stops.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;

/// What one measured run produced.
pub struct Report {
    pub scenario: String,
    pub engine: String,
    pub layer: String,
    pub ops: usize,
    pub concurrency: usize,
    /// Resources written or returned per operation (100 for a 100-entry bundle, 50 for a search
    /// returning 50), so throughput can be given per resource too.
    pub resources_per_op: usize,
    pub elapsed: Duration,
    /// Latency per operation, in nanoseconds.
    pub latency: Histogram<u64>,
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to 10 minutes at 3 significant figures: never saturates for these operations.
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

impl Report {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1e6
    }

    /// One Markdown table row (see [`Report::header`]).
    pub fn row(&self) -> String {
        let per_resource = if self.resources_per_op > 1 {
            format!("{:.0}", self.ops_per_sec() * self.resources_per_op as f64)
        } else {
            "".into()
        };
        format!(
            "| {} | {} | {} | {} | {} | {:.0} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            self.scenario,
            self.engine,
            self.layer,
            self.ops,
            self.concurrency,
            self.ops_per_sec(),
            per_resource,
            self.ms(0.5),
            self.ms(0.9),
            self.ms(0.99),
            self.ms(0.999),
            self.latency.max() as f64 / 1e6,
        )
    }

    pub fn header() -> &'static str {
        "| scenario | engine | layer | ops | conc. | ops/s | resources/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    }
}

pub type OpFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// One operation of a scenario, by index (the index picks its data).
pub type Op = Arc<dyn Fn(usize) -> OpFuture + Send + Sync>;

/// Runs `op(i)` for every i in `range` on `concurrency` tasks (task t takes start+t,
/// start+t+c, …) and times each call. The first error stops the run and is returned.
pub async fn drive(
    range: Range<usize>,
    concurrency: usize,
    op: Op,
) -> anyhow::Result<(Duration, Histogram<u64>)> {
    let concurrency = concurrency.max(1);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for t in 0..concurrency {
        let op = op.clone();
        let range = range.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = new_histogram();
            let mut i = range.start + t;
            while i < range.end {
                let began = Instant::now();
                op(i).await.with_context(|| format!("operation {i}"))?;
                hist.record(began.elapsed().as_nanos().max(1) as u64)?;
                i += concurrency;
            }
            Ok::<_, anyhow::Error>(hist)
        }));
    }
    let mut total = new_histogram();
    for task in tasks {
        let hist = task.await.context("load task panicked")??;
        total.add(&hist)?;
    }
    Ok((start.elapsed(), total))
}
