//! The alert state machine, as Prometheus's `AlertingRule.Eval`:
//!
//! - every series the expression returns is an alert, identified by its
//!   labels (the series' labels without `__name__`, plus the rule's
//!   labels, plus `alertname`);
//! - a new alert is *pending* from that evaluation on, and turns *firing*
//!   once it has been active for the rule's `for` (at once when `for` is 0);
//! - an alert whose series is gone is *resolved* (inactive, kept 15 minutes
//!   so that notifiers can report the resolution); a pending one is simply
//!   dropped; with `keep_firing_for`, a firing alert stays firing that long
//!   after its series is gone;
//! - each evaluation yields `ALERTS{..., alertstate="pending"|"firing"} 1`
//!   and `ALERTS_FOR_STATE{...}` = the activation time in seconds, for every
//!   pending or firing alert;
//! - with a limit, more pending or firing alerts than the limit is an error
//!   and drops every alert of the rule.
//!
//! Label and annotation values are templates ([`crate::template`]), parsed
//! when the rule is prepared and expanded per alert with `$labels` (the
//! series' labels), `$value`, `$externalLabels` and `$externalURL`; an
//! expansion error becomes the value `<error expanding template: ...>`, as
//! in Prometheus.

use std::collections::BTreeMap;

use super::AlertingRule;
use crate::promql::labels::NAME;
use crate::template::{Data, Template};
use crate::{Engine, Error, Expr, Labels, Queryable, Sample, Value, parse};

/// How long a resolved alert is kept (Prometheus's `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60_000;

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Resolved: its series is gone.
    Inactive,
    /// Active for less than the rule's `for`.
    Pending,
    /// Active for at least the rule's `for`.
    Firing,
}

impl AlertState {
    /// The `alertstate` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifying labels (with `alertname`).
    pub labels: Labels,
    /// Annotations.
    pub annotations: Vec<(String, String)>,
    /// State.
    pub state: AlertState,
    /// The series' value at the last evaluation that returned it.
    pub value: f64,
    /// When it became active (ms).
    pub active_at: i64,
    /// When it started firing (ms).
    pub fired_at: Option<i64>,
    /// When it was resolved (ms).
    pub resolved_at: Option<i64>,
    /// Since when it has been kept firing without its series (ms).
    pub keep_firing_since: Option<i64>,
    /// When it was last handed to a notifier (ms).
    pub last_sent_at: Option<i64>,
    /// The `endsAt` sent with a firing alert: if no update arrives by then,
    /// Alertmanager resolves it (ms).
    pub valid_until: i64,
}

/// An alerting rule with its alerts, evaluated step by step.
#[derive(Debug, Clone)]
pub struct AlertingRuleState {
    rule: AlertingRule,
    expr: Expr,
    label_templates: Vec<(String, Template)>,
    annotation_templates: Vec<(String, Template)>,
    external_labels: Labels,
    external_url: String,
    active: BTreeMap<Labels, Alert>,
}

impl AlertingRuleState {
    /// Prepares a rule (its expression must parse).
    /// Prepares a rule: its expression and every label and annotation
    /// template must parse.
    pub fn new(rule: AlertingRule) -> Result<Self, Error> {
        let expr = parse(&rule.expr)?;
        let compile =
            |kind: &str, pairs: &[(String, String)]| -> Result<Vec<(String, Template)>, Error> {
                pairs
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), Template::parse(&format!("{kind} {k}"), v)?)))
                    .collect()
            };
        let label_templates = compile("label", &rule.labels)?;
        let annotation_templates = compile("annotation", &rule.annotations)?;
        Ok(AlertingRuleState {
            rule,
            expr,
            label_templates,
            annotation_templates,
            external_labels: Labels::new(),
            external_url: String::new(),
            active: BTreeMap::new(),
        })
    }

    /// Sets what templates see as `$externalLabels` and `$externalURL`.
    pub fn set_external(&mut self, labels: Labels, url: &str) {
        self.external_labels = labels;
        self.external_url = url.to_string();
    }

    /// The rule.
    pub fn rule(&self) -> &AlertingRule {
        &self.rule
    }

    /// Pending, firing and recently resolved alerts, by labels.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values()
    }

    /// Evaluates the rule at `ts` (ms) and returns the `ALERTS` and
    /// `ALERTS_FOR_STATE` samples. `limit` 0 means no limit.
    pub fn eval(
        &mut self,
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
            "alerting",
            &self.rule.alert,
        )?;
        let mut seen: BTreeMap<Labels, ()> = BTreeMap::new();
        for s in samples {
            let data = Data {
                labels: s.labels.clone(),
                external_labels: self.external_labels.clone(),
                external_url: self.external_url.clone(),
                value: s.value,
            };
            // The template function `query` runs at this evaluation's time.
            let query = |text: &str| -> Result<Vec<(Labels, f64)>, String> {
                let r = engine
                    .instant_query(q, text, ts)
                    .map_err(|e| e.to_string())?;
                match r.value {
                    Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.value)).collect()),
                    Value::Scalar { v, .. } => Ok(vec![(Labels::new(), v)]),
                    _ => Err("query must return a vector or a scalar".into()),
                }
            };
            let expand = |t: &Template| {
                t.execute_with(&data, Some(&query))
                    .unwrap_or_else(|e| format!("<error expanding template: {e}>"))
            };
            let mut l = s.labels.clone();
            l.remove(NAME);
            for (k, t) in &self.label_templates {
                l.set(k, &expand(t));
            }
            let annotations: Vec<(String, String)> = self
                .annotation_templates
                .iter()
                .map(|(k, t)| (k.clone(), expand(t)))
                .collect();
            l.set("alertname", &self.rule.alert);
            if seen.insert(l.clone(), ()).is_some() {
                return Err(Error::Eval(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                ));
            }
            match self.active.get_mut(&l) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = s.value;
                    a.annotations = annotations;
                }
                _ => {
                    self.active.insert(
                        l.clone(),
                        Alert {
                            labels: l,
                            annotations,
                            state: AlertState::Pending,
                            value: s.value,
                            active_at: ts,
                            fired_at: None,
                            resolved_at: None,
                            keep_firing_since: None,
                            last_sent_at: None,
                            valid_until: 0,
                        },
                    );
                }
            }
        }
        let keep_for = self.rule.keep_firing_for_ms;
        let mut remove = Vec::new();
        for (k, a) in self.active.iter_mut() {
            if seen.contains_key(k) {
                a.keep_firing_since = None;
                if a.state == AlertState::Pending && ts - a.active_at >= self.rule.for_ms {
                    a.state = AlertState::Firing;
                    a.fired_at = Some(ts);
                }
                continue;
            }
            // The series is gone.
            if keep_for > 0 && a.state == AlertState::Firing {
                let since = *a.keep_firing_since.get_or_insert(ts);
                if ts - since < keep_for {
                    continue;
                }
            }
            if a.state == AlertState::Pending
                || a.resolved_at
                    .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
            {
                remove.push(k.clone());
            } else if a.state != AlertState::Inactive {
                a.state = AlertState::Inactive;
                a.resolved_at = Some(ts);
            }
        }
        for k in remove {
            self.active.remove(&k);
        }
        let live = self
            .active
            .values()
            .filter(|a| a.state != AlertState::Inactive)
            .count();
        if limit > 0 && live > limit {
            self.active.clear();
            return Err(Error::Eval(format!(
                "exceeded limit of {limit} with {live} alerts"
            )));
        }
        let mut out = Vec::new();
        for a in self.active.values() {
            if a.state == AlertState::Inactive {
                continue;
            }
            let mut l = a.labels.clone();
            l.set(NAME, "ALERTS");
            l.set("alertstate", a.state.as_str());
            out.push(Sample {
                labels: l,
                t: ts,
                value: 1.0,
                drop_name: false,
            });
            let mut f = a.labels.clone();
            f.set(NAME, "ALERTS_FOR_STATE");
            out.push(Sample {
                labels: f,
                t: ts,
                value: a.active_at as f64 / 1000.0,
                drop_name: false,
            });
        }
        Ok(out)
    }
}

impl AlertingRuleState {
    /// After a restart, gives the alerts found by the first evaluation (at
    /// `ts`) back the activation time they had, read from the
    /// `ALERTS_FOR_STATE` series within `outage_tolerance_ms`, as
    /// Prometheus's `RestoreForState` does: rules whose `for` is shorter
    /// than `grace_ms` are left alone; an alert whose stored series ended
    /// in a staleness marker was resolved and is left alone; an alert that
    /// had served its `for` fires at the next evaluation; one with less than
    /// `grace_ms` left gets exactly `grace_ms`; otherwise the time the
    /// server was down is added to its activation time.
    pub fn restore_for_state(
        &mut self,
        q: &dyn Queryable,
        ts: i64,
        outage_tolerance_ms: i64,
        grace_ms: i64,
    ) -> Result<(), Error> {
        let hold = self.rule.for_ms;
        if hold < grace_ms {
            return Ok(());
        }
        let ms = vec![
            crate::Matcher::new(crate::MatchOp::Equal, NAME, "ALERTS_FOR_STATE")?,
            crate::Matcher::new(crate::MatchOp::Equal, "alertname", &self.rule.alert)?,
        ];
        let stored = q.select(&ms, ts - outage_tolerance_ms, ts)?;
        for a in self.active.values_mut() {
            if a.state != AlertState::Pending {
                continue;
            }
            let mut want = a.labels.clone();
            want.set(NAME, "ALERTS_FOR_STATE");
            let Some(series) = stored.iter().find(|s| s.labels == want) else {
                continue;
            };
            let Some(last) = series.floats.last() else {
                continue;
            };
            if crate::is_stale_nan(last.v) {
                continue;
            }
            let down_at = last.t / 1000 * 1000;
            let mut active_at = (last.v as i64) * 1000;
            let remaining = hold - (down_at - active_at);
            if remaining <= 0 {
                // Served its `for` already: keeps its activation time.
            } else if remaining < grace_ms {
                active_at = ts + grace_ms - hold;
            } else {
                active_at += ts - down_at;
            }
            // As upstream, the state itself moves on at the next evaluation.
            a.active_at = active_at;
        }
        Ok(())
    }

    /// The alerts to hand to Alertmanager at `ts`, as Prometheus's
    /// `sendAlerts`: firing alerts not sent for `resend_delay_ms`, and
    /// resolved ones not sent since they resolved (and every
    /// `resend_delay_ms` while they are kept); pending alerts never. A
    /// firing alert's `endsAt` is `ts` plus four times the larger of the
    /// resend delay and the group interval, so that two missed sends do not
    /// resolve it; a resolved one's is when it resolved.
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
        external_url: &str,
    ) -> Vec<super::notify::PostableAlert> {
        let generator = format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            external_url.trim_end_matches('/'),
            super::notify::query_escape(&self.rule.expr)
        );
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            let needs = match a.state {
                AlertState::Pending => false,
                _ if a
                    .resolved_at
                    .is_some_and(|r| a.last_sent_at.is_none_or(|l| r > l)) =>
                {
                    true
                }
                _ => a.last_sent_at.is_none_or(|l| l + resend_delay_ms < ts),
            };
            if !needs {
                continue;
            }
            a.last_sent_at = Some(ts);
            a.valid_until = ts + 4 * resend_delay_ms.max(interval_ms);
            out.push(super::notify::PostableAlert::from_alert(a, &generator));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn rule(for_ms: i64, keep_ms: i64) -> AlertingRuleState {
        AlertingRuleState::new(AlertingRule {
            alert: "HighCPU".into(),
            expr: "cpu > 0.9".into(),
            for_ms,
            keep_firing_for_ms: keep_ms,
            labels: vec![("severity".into(), "page".into())],
            annotations: vec![("summary".into(), "CPU high".into())],
        })
        .unwrap()
    }

    /// cpu{instance="a"} sampled every minute with the given values.
    fn store(values: &[f64]) -> MemoryStore {
        let mut s = MemoryStore::new();
        let l = Labels::from_pairs(&[("__name__", "cpu"), ("instance", "a")]);
        for (i, v) in values.iter().enumerate() {
            s.add_sample(&l, i as i64 * 60_000, *v);
        }
        s
    }

    fn states(r: &AlertingRuleState) -> Vec<AlertState> {
        r.alerts().map(|a| a.state).collect()
    }

    #[test]
    fn pending_then_firing_then_resolved() {
        // High from 1m to 3m, low from 4m on.
        let s = store(&[0.5, 0.95, 0.95, 0.95, 0.5, 0.5]);
        let e = Engine::new();
        let mut r = rule(120_000, 0);
        assert!(r.eval(&e, &s, 0, 0).unwrap().is_empty());
        let out = r.eval(&e, &s, 60_000, 0).unwrap();
        assert_eq!(states(&r), vec![AlertState::Pending]);
        assert_eq!(
            out[0].labels.to_string(),
            r#"{__name__="ALERTS", alertname="HighCPU", alertstate="pending", instance="a", severity="page"}"#
        );
        assert_eq!(out[1].labels.metric_name(), "ALERTS_FOR_STATE");
        assert_eq!(out[1].value, 60.0);
        r.eval(&e, &s, 120_000, 0).unwrap();
        assert_eq!(states(&r), vec![AlertState::Pending]);
        let out = r.eval(&e, &s, 180_000, 0).unwrap();
        assert_eq!(states(&r), vec![AlertState::Firing]);
        assert_eq!(out[0].labels.get("alertstate"), "firing");
        assert!(r.eval(&e, &s, 240_000, 0).unwrap().is_empty());
        assert_eq!(states(&r), vec![AlertState::Inactive]);
        // Kept for the retention, then forgotten.
        r.eval(&e, &s, 240_000 + RESOLVED_RETENTION_MS, 0).unwrap();
        assert_eq!(states(&r), vec![AlertState::Inactive]);
        r.eval(&e, &s, 240_001 + RESOLVED_RETENTION_MS, 0).unwrap();
        assert!(states(&r).is_empty());
    }

    #[test]
    fn a_pending_alert_that_clears_is_dropped() {
        let s = store(&[0.95, 0.5]);
        let e = Engine::new();
        let mut r = rule(300_000, 0);
        r.eval(&e, &s, 0, 0).unwrap();
        assert_eq!(states(&r), vec![AlertState::Pending]);
        r.eval(&e, &s, 60_000, 0).unwrap();
        assert!(states(&r).is_empty());
    }

    #[test]
    fn for_zero_fires_at_once_and_keep_firing_for_holds() {
        let s = store(&[0.95, 0.5, 0.5, 0.5]);
        let e = Engine::new();
        let mut r = rule(0, 120_000);
        r.eval(&e, &s, 0, 0).unwrap();
        assert_eq!(states(&r), vec![AlertState::Firing]);
        r.eval(&e, &s, 60_000, 0).unwrap();
        assert_eq!(states(&r), vec![AlertState::Firing], "kept firing");
        r.eval(&e, &s, 120_000, 0).unwrap();
        assert_eq!(states(&r), vec![AlertState::Firing], "still within 2m");
        r.eval(&e, &s, 180_000, 0).unwrap();
        assert_eq!(states(&r), vec![AlertState::Inactive]);
    }

    #[test]
    fn labels_and_annotations_are_expanded() {
        let s = store(&[0.95]);
        let mut r = AlertingRuleState::new(AlertingRule {
            alert: "HighCPU".into(),
            expr: "cpu > 0.9".into(),
            for_ms: 0,
            keep_firing_for_ms: 0,
            labels: vec![(
                "where".into(),
                "{{ $labels.instance }}-{{ $externalLabels.dc }}".into(),
            )],
            annotations: vec![(
                "summary".into(),
                "CPU {{ $value | humanizePercentage }}".into(),
            )],
        })
        .unwrap();
        r.set_external(Labels::from_pairs(&[("dc", "eu1")]), "http://prom");
        r.eval(&Engine::new(), &s, 0, 0).unwrap();
        let a = r.alerts().next().unwrap();
        assert_eq!(a.labels.get("where"), "a-eu1");
        assert_eq!(
            a.annotations,
            vec![("summary".to_string(), "CPU 95%".to_string())]
        );
        // A template that does not parse is refused when the rule is prepared.
        let bad = AlertingRule {
            annotations: vec![("summary".into(), "{{ $label.instance }}".into())],
            ..r.rule().clone()
        };
        let e = AlertingRuleState::new(bad).unwrap_err().to_string();
        assert!(e.contains("undefined variable \"$label\""), "{e}");
    }

    #[test]
    fn sending_follows_prometheus() {
        let s = store(&[0.95, 0.95, 0.5]);
        let e = Engine::new();
        let mut r = rule(60_000, 0);
        r.eval(&e, &s, 0, 0).unwrap();
        assert!(
            r.alerts_to_send(0, 60_000, 15_000, "http://p").is_empty(),
            "pending"
        );
        r.eval(&e, &s, 60_000, 0).unwrap();
        let sent = r.alerts_to_send(60_000, 60_000, 15_000, "http://p");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].starts_at, "1970-01-01T00:01:00Z");
        assert_eq!(sent[0].ends_at, "1970-01-01T00:05:00Z");
        assert_eq!(
            sent[0].generator_url,
            "http://p/graph?g0.expr=cpu+%3E+0.9&g0.tab=1"
        );
        // Not again within the resend delay.
        assert!(
            r.alerts_to_send(90_000, 60_000, 15_000, "http://p")
                .is_empty()
        );
        // Resolved: sent at once, with endsAt = when it resolved.
        r.eval(&e, &s, 120_000, 0).unwrap();
        let sent = r.alerts_to_send(120_000, 60_000, 15_000, "http://p");
        assert_eq!(sent[0].ends_at, "1970-01-01T00:02:00Z");
        let json = serde_json::to_string(&sent[0]).unwrap();
        assert!(json.starts_with(r#"{"labels":{"alertname":"HighCPU","instance":"a","severity":"page"},"annotations":{"summary":"CPU high"},"startsAt":"1970-01-01T00:01:00Z","endsAt":"1970-01-01T00:02:00Z","generatorURL":"#), "{json}");
    }

    #[test]
    fn for_state_is_restored_after_a_restart() {
        // The old server: the alert became active at 600 s and the server
        // went down at 900 s (its last ALERTS_FOR_STATE sample).
        let mut s = store(&[0.95; 40]);
        let stored = Labels::from_pairs(&[
            ("__name__", "ALERTS_FOR_STATE"),
            ("alertname", "HighCPU"),
            ("instance", "a"),
            ("severity", "page"),
        ]);
        s.add_sample(&stored, 900_000, 600.0);
        let e = Engine::new();
        // for 20m, restarted at 1200 s: 5 min were served, 15 min remain,
        // more than the 10 min grace, so the 5 min downtime is added.
        let mut r = rule(20 * 60_000, 0);
        r.eval(&e, &s, 1_200_000, 0).unwrap();
        r.restore_for_state(&s, 1_200_000, 3_600_000, 600_000)
            .unwrap();
        let a = r.alerts().next().unwrap();
        assert_eq!(a.active_at, 900_000);
        assert_eq!(a.state, AlertState::Pending);
        // for 12m: 7 min remain, less than the grace: exactly 10 min left.
        let mut r = rule(12 * 60_000, 0);
        r.eval(&e, &s, 1_200_000, 0).unwrap();
        r.restore_for_state(&s, 1_200_000, 3_600_000, 600_000)
            .unwrap();
        assert_eq!(
            r.alerts().next().unwrap().active_at,
            1_200_000 + 600_000 - 720_000
        );
        // for 4m is shorter than the grace period: not restored.
        let mut r = rule(4 * 60_000, 0);
        r.eval(&e, &s, 1_200_000, 0).unwrap();
        r.restore_for_state(&s, 1_200_000, 3_600_000, 600_000)
            .unwrap();
        assert_eq!(r.alerts().next().unwrap().active_at, 1_200_000);
    }

    #[test]
    fn limit_drops_every_alert() {
        let mut s = MemoryStore::new();
        for i in 0..3 {
            let l = Labels::from_pairs(&[("__name__", "cpu"), ("instance", &i.to_string())]);
            s.add_sample(&l, 0, 1.0);
        }
        let e = Engine::new();
        let mut r = rule(0, 0);
        let err = r.eval(&e, &s, 0, 2).unwrap_err();
        assert_eq!(err.to_string(), "exceeded limit of 2 with 3 alerts");
        assert!(states(&r).is_empty());
        assert_eq!(r.eval(&e, &s, 0, 3).unwrap().len(), 6);
    }
}
