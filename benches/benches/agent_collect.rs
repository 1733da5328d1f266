//! vigil-agent's cost per scrape: one full collection (every host
//! collector and the container collector over this machine's cgroups)
//! encoded into a fresh buffer, as a `/metrics` request does.
//!
//! - `full/text`, `full/openmetrics`: host + containers.
//! - `host_only/text`: `--no-collector.container`.
//! - `summary`: one `/stats/summary` document (without the JSON text).
//!
//! Measured in thread CPU time (`CLOCK_THREAD_CPUTIME_ID`, user and system
//! time of the collecting thread), not wall time: the machine is shared,
//! and wall time would count the time other processes hold the core. The
//! cost is mostly system calls (opening and reading small /proc, /sys and
//! cgroup files), which this clock counts. The comparison with
//! node_exporter is measured from outside (the vigil-agent section of
//! examples/README.md).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, criterion_group, criterion_main};
use vigil_examples::agent::{Agent, AgentOptions};
use vigil_exposition::Format;

/// Thread CPU time, formatted as durations.
struct CpuTime(WallTime);

fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        cpu_now()
    }
    fn end(&self, start: Duration) -> Duration {
        cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.0.formatter()
    }
}

fn collect(c: &mut Criterion<CpuTime>) {
    let full = Agent::new(AgentOptions::default());
    let host = Agent::new(AgentOptions {
        containers: false,
        ..AgentOptions::default()
    });
    let mut g = c.benchmark_group("agent_collect");
    g.bench_function("full/text", |b| {
        b.iter(|| black_box(full.encode(Format::Text)))
    });
    g.bench_function("full/openmetrics", |b| {
        b.iter(|| black_box(full.encode(Format::OpenMetrics)))
    });
    g.bench_function("host_only/text", |b| {
        b.iter(|| black_box(host.encode(Format::Text)))
    });
    g.bench_function("summary", |b| b.iter(|| black_box(full.summary())));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime(WallTime));
    targets = collect
}
criterion_main!(benches);
