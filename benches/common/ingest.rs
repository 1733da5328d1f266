//! The workload of `promtool tsdb bench write` (../shared/corpus/bench), shared
//! by the criterion bench `tsdb_ingest` and the example `tsdb_ingest_full`:
//! label sets as the shared generator writes them, one sample per series per
//! round (timestamps +30 s, values +1000 a round), one commit per round.

use vigil_tsdb::head::Head;
use vigil_tsdb::labels::Labels;

/// Label sets from the generator's JSON lines.
pub fn parse_label_sets(json_lines: &str, n: usize) -> Vec<Labels> {
    json_lines
        .lines()
        .take(n)
        .map(|l| {
            let m: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            Labels::new(
                m.into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap().to_owned())),
            )
            .unwrap()
        })
        .collect()
}

/// Creates the series (round 0), then appends `rounds - 1` more rounds.
pub fn ingest(head: &Head, sets: &[Labels], rounds: usize) {
    let mut app = head.appender();
    let refs: Vec<_> = sets
        .iter()
        .map(|l| app.append(l, 0, 0.0).unwrap())
        .collect();
    app.commit().unwrap();
    for round in 1..rounds {
        let mut app = head.appender_with_capacity(refs.len());
        for &r in &refs {
            app.append_ref(r, round as i64 * 30_000, round as f64 * 1000.0)
                .unwrap();
        }
        app.commit().unwrap();
    }
}
