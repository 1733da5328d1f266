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

use criterion::measurement::WallTime;
use criterion::{Criterion, criterion_group, criterion_main};
use vigil_examples::agent::{Agent, AgentOptions};
use vigil_exposition::Format;

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::CpuTime;

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
