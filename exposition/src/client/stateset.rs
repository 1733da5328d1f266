//! State sets: a set of named booleans.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::metric::{ChildLabels, Extra, Fam, MetricWriter, Value, sealed::EncodeMetric};
use crate::model::MetricType;

/// A set of named booleans (OpenMetrics `stateset`), for example the states
/// of an enum of which exactly one is true.
///
/// Written as one sample per state, with a label named after the family
/// whose value is the state: `name{name="ready"} 1`. In text 0.0.4 the
/// family is a gauge with the same samples. States are bits in atomic words:
/// setting one is a single atomic operation, and [`set_only`](StateSet::set_only)
/// switches a set of up to 64 states in one store, so a scrape never sees two
/// states of an enum at once.
///
/// ```
/// use vigil_exposition::client::StateSet;
///
/// let phase = StateSet::new(&["starting", "ready", "draining"]);
/// phase.set_only("ready");
/// assert_eq!(phase.get("ready"), Some(true));
/// assert_eq!(phase.get("starting"), Some(false));
/// assert!(!phase.set("unknown", true)); // no such state
/// ```
#[derive(Clone)]
pub struct StateSet {
    core: Arc<Core>,
}

struct Core {
    states: Box<[String]>,
    words: Box<[AtomicU64]>,
}

impl StateSet {
    /// A state set with these states, all false. Repeated names are kept
    /// once.
    pub fn new<S: AsRef<str>>(states: &[S]) -> StateSet {
        let mut names: Vec<String> = Vec::with_capacity(states.len());
        for s in states {
            if !names.iter().any(|n| n == s.as_ref()) {
                names.push(s.as_ref().to_owned());
            }
        }
        let words = (0..names.len().div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        StateSet {
            core: Arc::new(Core {
                states: names.into_boxed_slice(),
                words,
            }),
        }
    }

    /// The states, in order.
    pub fn states(&self) -> &[String] {
        &self.core.states
    }

    fn index(&self, state: &str) -> Option<usize> {
        self.core.states.iter().position(|s| s == state)
    }

    /// Sets one state; `false` when there is no such state.
    pub fn set(&self, state: &str, on: bool) -> bool {
        match self.index(state) {
            Some(i) => {
                self.set_index(i, on);
                true
            }
            None => false,
        }
    }

    /// Sets the state at `index` (in the order given to [`new`](StateSet::new));
    /// an index out of range does nothing.
    pub fn set_index(&self, index: usize, on: bool) {
        if let Some(word) = self.core.words.get(index / 64) {
            let bit = 1u64 << (index % 64);
            if on {
                word.fetch_or(bit, Ordering::Relaxed);
            } else {
                word.fetch_and(!bit, Ordering::Relaxed);
            }
        }
    }

    /// Makes `state` the only true state (an enum's value); `false` when
    /// there is no such state, which leaves the set unchanged.
    pub fn set_only(&self, state: &str) -> bool {
        let Some(i) = self.index(state) else {
            return false;
        };
        for (w, word) in self.core.words.iter().enumerate() {
            let v = if w == i / 64 { 1u64 << (i % 64) } else { 0 };
            word.store(v, Ordering::Relaxed);
        }
        true
    }

    /// Whether `state` is set; `None` when there is no such state.
    pub fn get(&self, state: &str) -> Option<bool> {
        self.index(state).map(|i| self.get_index(i))
    }

    fn get_index(&self, i: usize) -> bool {
        self.core
            .words
            .get(i / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (i % 64)) != 0)
    }
}

impl fmt::Debug for StateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (i, s) in self.core.states.iter().enumerate() {
            m.entry(s, &self.get_index(i));
        }
        m.finish()
    }
}

impl EncodeMetric for StateSet {
    fn metric_type(&self) -> MetricType {
        MetricType::StateSet
    }

    fn encode_child(&self, w: &mut MetricWriter<'_>, fam: &Fam<'_>, labels: &ChildLabels<'_>) {
        // One reading of the words, so the samples agree with each other.
        let words: Vec<u64> = self
            .core
            .words
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .collect();
        for (i, state) in self.core.states.iter().enumerate() {
            let on = words[i / 64] & (1 << (i % 64)) != 0;
            w.sample(
                fam,
                "",
                labels,
                Extra::Label(fam.name, state),
                Value::U64(u64::from(on)),
            );
        }
    }
}
