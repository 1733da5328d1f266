//! Evaluating recording rules and whole groups.

use super::{AlertingRuleState, Notifier, RecordingRule, Rule, RuleGroup};
use crate::promql::labels::NAME;
use crate::{Engine, Error, Expr, Queryable, Sample, parse};

/// A recording rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct RecordingRuleState {
    rule: RecordingRule,
    expr: Expr,
}

impl RecordingRuleState {
    /// Prepares a rule (its expression must parse).
    pub fn new(rule: RecordingRule) -> Result<Self, Error> {
        let expr = parse(&rule.expr)?;
        Ok(RecordingRuleState { rule, expr })
    }

    /// The rule.
    pub fn rule(&self) -> &RecordingRule {
        &self.rule
    }

    /// The samples the rule records at `ts`: the result renamed to the
    /// rule's `record`, with the rule's labels set. `limit` 0 means no limit.
    pub fn eval(
        &self,
        engine: &Engine,
        q: &dyn Queryable,
        ts: i64,
        limit: usize,
    ) -> Result<Vec<Sample>, Error> {
        let samples = super::eval_vector(
            engine,
            q,
            &self.rule.expr,
            &self.expr,
            ts,
            "recording",
            &self.rule.record,
        )?;
        let mut out = Vec::with_capacity(samples.len());
        let mut seen = std::collections::HashSet::new();
        for mut s in samples {
            s.labels.set(NAME, &self.rule.record);
            for (k, v) in &self.rule.labels {
                s.labels.set(k, v);
            }
            s.t = ts;
            if !seen.insert(s.labels.clone()) {
                return Err(Error::Eval(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                ));
            }
            out.push(s);
        }
        if limit > 0 && out.len() > limit {
            return Err(Error::Eval(format!(
                "exceeded limit {limit} with {} series",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// A rule of a group, ready to evaluate.
#[derive(Debug, Clone)]
pub enum RuleState {
    /// A recording rule.
    Recording(RecordingRuleState),
    /// An alerting rule and its alerts.
    Alerting(AlertingRuleState),
}

/// What one rule did in one group evaluation.
#[derive(Debug)]
pub struct RuleOutcome {
    /// The rule's name (`record` or `alert`).
    pub name: String,
    /// The samples it produced (recorded series, or ALERTS and
    /// ALERTS_FOR_STATE), or why it failed.
    pub result: Result<Vec<Sample>, Error>,
}

/// A group ready to evaluate, with its alerts' state.
#[derive(Debug, Clone)]
pub struct GroupState {
    /// The group as loaded.
    pub group: RuleGroup,
    rules: Vec<RuleState>,
}

impl GroupState {
    /// Prepares every rule of the group.
    /// The group's `labels` are added to every rule's labels (a rule's own
    /// label of the same name wins).
    pub fn new(group: RuleGroup) -> Result<Self, Error> {
        let with_group_labels = |own: &[(String, String)]| {
            let mut l: Vec<(String, String)> = group
                .labels
                .iter()
                .filter(|(k, _)| !own.iter().any(|(o, _)| o == k))
                .cloned()
                .collect();
            l.extend(own.iter().cloned());
            l
        };
        let rules = group
            .rules
            .iter()
            .map(|r| {
                Ok(match r {
                    Rule::Recording(r) => {
                        let mut r = r.clone();
                        r.labels = with_group_labels(&r.labels);
                        RuleState::Recording(RecordingRuleState::new(r)?)
                    }
                    Rule::Alerting(a) => {
                        let mut a = a.clone();
                        a.labels = with_group_labels(&a.labels);
                        RuleState::Alerting(AlertingRuleState::new(a)?)
                    }
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(GroupState { group, rules })
    }

    /// The rules, with their state.
    pub fn rules(&self) -> &[RuleState] {
        &self.rules
    }

    /// Sets what the alerting rules' templates see as `$externalLabels`
    /// and `$externalURL`.
    pub fn set_external(&mut self, labels: crate::Labels, url: &str) {
        for r in &mut self.rules {
            if let RuleState::Alerting(a) = r {
                a.set_external(labels.clone(), url);
            }
        }
    }

    /// Evaluates every rule at `ts`, in order. Each rule's samples go to
    /// `sink` before the next rule runs, so a store behind `sink` and `q`
    /// lets later rules read what earlier ones recorded, as in Prometheus.
    /// A failing rule does not stop the others. With a `query_offset`, the
    /// rules see the store as of `ts` minus the offset and stamp their
    /// results with that time; the group's `limit` applies to every rule.
    pub fn eval(
        &mut self,
        engine: &Engine,
        q: &dyn Queryable,
        ts: i64,
        sink: &mut dyn FnMut(&[Sample]),
    ) -> Vec<RuleOutcome> {
        let ts = ts - self.group.query_offset.unwrap_or(0);
        let limit = self.group.limit;
        let mut out = Vec::with_capacity(self.rules.len());
        for r in &mut self.rules {
            let (name, result) = match r {
                RuleState::Recording(r) => (r.rule().record.clone(), r.eval(engine, q, ts, limit)),
                RuleState::Alerting(a) => (a.rule().alert.clone(), a.eval(engine, q, ts, limit)),
            };
            if let Ok(s) = &result {
                sink(s);
            }
            out.push(RuleOutcome { name, result });
        }
        out
    }
}

impl GroupState {
    /// The latest evaluation slot at or before `now` (ms), as Prometheus's
    /// `EvalTimestamp`: each group runs at a fixed phase within its
    /// interval, derived from a hash of its name and file, so that groups
    /// spread out over the interval and keep their phase across restarts.
    /// `default_interval_ms` applies when the group sets none.
    pub fn eval_timestamp(&self, now: i64, file: &str, default_interval_ms: i64) -> i64 {
        let interval_ns =
            i128::from(self.group.interval.unwrap_or(default_interval_ms).max(1)) * 1_000_000;
        let mut key = Vec::new();
        for (k, v) in [("file", file), ("name", self.group.name.as_str())] {
            key.extend_from_slice(k.as_bytes());
            key.push(0xff);
            key.extend_from_slice(v.as_bytes());
            key.push(0xff);
        }
        // Prometheus's phase is in nanoseconds; ours is that, in whole
        // milliseconds.
        let interval = self.group.interval.unwrap_or(default_interval_ms).max(1);
        let offset = ((i128::from(crate::promql::xxh64(&key)) % interval_ns) / 1_000_000) as i64;
        let adj = now - offset;
        adj - adj.rem_euclid(interval) + offset
    }

    /// After an evaluation at `ts`: hands each alerting rule's alerts that
    /// need sending to `notifier` (see
    /// [`AlertingRuleState::alerts_to_send`]). `interval_ms` is the group's
    /// evaluation interval.
    pub fn notify(
        &mut self,
        ts: i64,
        interval_ms: i64,
        resend_delay_ms: i64,
        external_url: &str,
        notifier: &dyn Notifier,
    ) {
        for r in &mut self.rules {
            if let RuleState::Alerting(a) = r {
                let alerts = a.alerts_to_send(ts, resend_delay_ms, interval_ms, external_url);
                if !alerts.is_empty() {
                    notifier.notify(&alerts);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse_legacy;
    use crate::{Labels, MemoryStore};

    #[test]
    fn recorded_series_feed_later_rules() {
        let g = parse_legacy(
            "job:up:sum = sum by (job) (up)\nALERT JobDown IF job:up:sum == 0 LABELS {severity=\"page\"}\n",
            "g",
        )
        .unwrap();
        let mut state = GroupState::new(g).unwrap();
        let mut store = MemoryStore::new();
        for i in 0..2 {
            let l =
                Labels::from_pairs(&[("__name__", "up"), ("job", "api"), ("i", &i.to_string())]);
            store.add_sample(&l, 0, 0.0);
        }
        let engine = Engine::new();
        // The sink collects what the rules record; the test then writes it
        // into the store the next evaluation reads.
        let mut written: Vec<Sample> = Vec::new();
        let mut view = store.clone();
        let outcomes = {
            let mut sink = |s: &[Sample]| written.extend_from_slice(s);
            // First pass records job:up:sum; the alert sees nothing yet.
            state.eval(&engine, &view, 0, &mut sink)
        };
        assert!(outcomes.iter().all(|o| o.result.is_ok()));
        assert_eq!(written.len(), 1);
        assert_eq!(
            written[0].labels.to_string(),
            r#"{__name__="job:up:sum", job="api"}"#
        );
        for s in &written {
            view.add_sample(&s.labels, s.t, s.value);
        }
        let outcomes = state.eval(&engine, &view, 0, &mut |_| {});
        let alerts = outcomes[1].result.as_ref().unwrap();
        assert_eq!(alerts[0].labels.get("alertstate"), "firing");
        assert_eq!(alerts[0].labels.get("severity"), "page");
        // The firing alert reaches the notifier once per resend delay.
        struct Collect(std::cell::RefCell<Vec<String>>);
        impl Notifier for Collect {
            fn notify(&self, alerts: &[crate::rules::PostableAlert]) {
                for a in alerts {
                    self.0.borrow_mut().push(a.labels["alertname"].clone());
                }
            }
        }
        let n = Collect(Default::default());
        state.notify(0, 60_000, 60_000, "", &n);
        state.notify(30_000, 60_000, 60_000, "", &n);
        assert_eq!(*n.0.borrow(), vec!["JobDown".to_string()]);
    }

    #[test]
    fn group_labels_offset_limit_and_slots() {
        let text = "groups:\n  - name: g\n    interval: 1m\n    query_offset: 30s\n    limit: 1\n    labels: {team: a, env: prod}\n    rules:\n      - record: r\n        expr: up\n        labels: {env: dev}\n";
        let g = crate::rules::load_yaml(text, Default::default())
            .unwrap()
            .remove(0);
        let mut state = GroupState::new(g).unwrap();
        let mut s = MemoryStore::new();
        s.add_sample(
            &Labels::from_pairs(&[("__name__", "up"), ("i", "1")]),
            0,
            1.0,
        );
        let engine = Engine::new();
        let mut got = Vec::new();
        let out = state.eval(&engine, &s, 60_000, &mut |x| got.extend_from_slice(x));
        assert!(out[0].result.is_ok());
        // Queried and stamped at 60 s - 30 s; group labels under the rule's.
        assert_eq!(got[0].t, 30_000);
        assert_eq!(
            got[0].labels.to_string(),
            r#"{__name__="r", env="dev", i="1", team="a"}"#
        );
        // Over the limit of 1 series.
        s.add_sample(
            &Labels::from_pairs(&[("__name__", "up"), ("i", "2")]),
            0,
            1.0,
        );
        let out = state.eval(&engine, &s, 60_000, &mut |_| {});
        assert!(
            out[0]
                .result
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("exceeded limit")
        );
        // Evaluation slots: at or before now, one interval apart, stable.
        let a = state.eval_timestamp(1_000_000, "rules.yml", 60_000);
        let b = state.eval_timestamp(1_060_000, "rules.yml", 60_000);
        assert!(a <= 1_000_000 && 1_000_000 - a < 60_000);
        assert_eq!(b - a, 60_000);
        assert_eq!(state.eval_timestamp(a, "rules.yml", 60_000), a);
    }

    #[test]
    fn duplicate_series_after_rule_labels_fail() {
        let r = RecordingRuleState::new(RecordingRule {
            record: "x".into(),
            expr: "a or on(__name__) b".into(),
            labels: vec![],
        })
        .unwrap();
        let mut s = MemoryStore::new();
        s.add_sample(&Labels::from_pairs(&[("__name__", "a")]), 0, 1.0);
        s.add_sample(&Labels::from_pairs(&[("__name__", "b")]), 0, 2.0);
        let err = r.eval(&Engine::new(), &s, 0, 0).unwrap_err();
        assert!(err.to_string().contains("same labelset"), "{err}");
    }
}
