//! Info: constant textual information as labels.

use std::fmt;
use std::sync::Arc;

use super::labels::{LabelSet, LabelWriter};
use super::metric::{
    ChildLabels, Extra, Fam, MetricWriter, Value, render_label, sealed::EncodeMetric,
};
use crate::model::MetricType;
use crate::names::check_label_name;

/// Textual information about the program (version, commit, build flags),
/// written as labels of one sample valued 1: `name_info{version="1.2"} 1`.
///
/// The labels are fixed when the info is made and rendered once. In text
/// 0.0.4, which has no info type, the family is a gauge named `name_info`,
/// as the Python client writes it.
///
/// ```
/// use vigil_exposition::client::{Info, Registry};
/// use vigil_exposition::Format;
///
/// let registry = Registry::new();
/// let build = Info::new(&vec![("version", "1.4.2"), ("commit", "1a2b3c")]);
/// registry.register("build", "Build information.", build)?;
/// let mut out = Vec::new();
/// registry.encode(Format::OpenMetrics, &mut out);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "# TYPE build info\n# HELP build Build information.\n\
///      build_info{version=\"1.4.2\",commit=\"1a2b3c\"} 1\n# EOF\n"
/// );
/// # Ok::<(), vigil_exposition::Error>(())
/// ```
#[derive(Clone)]
pub struct Info {
    core: Arc<Core>,
}

struct Core {
    rendered: Vec<u8>,
    pairs: Vec<(String, String)>,
}

impl Info {
    /// An info with these labels (a label set that names its labels, such
    /// as `Vec<(&str, &str)>` or a [`label_set!`](crate::label_set) struct).
    /// The names are checked when the info is registered.
    pub fn new(labels: &impl LabelSet) -> Info {
        let mut pairs = Vec::new();
        let mut sink = |n: &str, v: &str| pairs.push((n.to_owned(), v.to_owned()));
        let mut w = LabelWriter::new(&[], &mut sink);
        labels.write_labels(&mut w);
        let mut rendered = Vec::new();
        for (n, v) in &pairs {
            render_label(&mut rendered, n, v);
        }
        Info {
            core: Arc::new(Core { rendered, pairs }),
        }
    }

    /// The labels.
    pub fn labels(&self) -> &[(String, String)] {
        &self.core.pairs
    }
}

impl fmt::Debug for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Info")
            .field("labels", &self.core.pairs)
            .finish()
    }
}

impl EncodeMetric for Info {
    fn metric_type(&self) -> MetricType {
        MetricType::Info
    }

    fn encode_child(&self, w: &mut MetricWriter<'_>, fam: &Fam<'_>, labels: &ChildLabels<'_>) {
        let extra = Extra::Rendered(&self.core.rendered, &self.core.pairs);
        w.sample(fam, "_info", labels, extra, Value::U64(1));
    }

    fn validate(&self) -> crate::Result<()> {
        for (i, (n, _)) in self.core.pairs.iter().enumerate() {
            check_label_name(n)?;
            if self.core.pairs[..i].iter().any(|(m, _)| m == n) {
                return Err(crate::Error::InvalidName {
                    what: "label name",
                    name: n.clone(),
                    reason: "appears twice in the info's labels",
                });
            }
        }
        Ok(())
    }
}
