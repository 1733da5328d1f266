//! Label sets: how a [`Family`](super::Family) turns the user's key type into
//! label pairs.
//!
//! A label set is written once when its child is created (rendered into the
//! exact bytes the encoder copies at every scrape) and again only by
//! [`Registry::gather`](super::Registry::gather). Lookups of an existing child
//! only hash and compare the key, so the key type is what decides the cost of
//! the hot path: `[&'static str; N]` or a struct of `Copy` fields hashes
//! without touching the heap.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

/// A value that can be a label value: strings, integers, `bool`, and the
/// user's own enums.
///
/// ```
/// use vigil_exposition::client::LabelValue;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// enum Method { Get, Post }
///
/// impl LabelValue for Method {
///     fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
///         f(match self { Method::Get => "GET", Method::Post => "POST" })
///     }
/// }
/// assert_eq!(Method::Post.with_str(str::len), 4);
/// ```
pub trait LabelValue {
    /// Calls `f` with the value as text. Integers are formatted on the stack.
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R;
}

impl LabelValue for str {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        f(self)
    }
}

impl LabelValue for String {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        f(self)
    }
}

impl<T: LabelValue + ?Sized> LabelValue for &T {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        (**self).with_str(f)
    }
}

impl<T: LabelValue + ?Sized> LabelValue for Box<T> {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        (**self).with_str(f)
    }
}

impl<T: LabelValue + ?Sized> LabelValue for Arc<T> {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        (**self).with_str(f)
    }
}

impl<T: LabelValue + ?Sized> LabelValue for Rc<T> {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        (**self).with_str(f)
    }
}

impl LabelValue for Cow<'_, str> {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        f(self)
    }
}

impl LabelValue for bool {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        f(if *self { "true" } else { "false" })
    }
}

macro_rules! int_label_value {
    ($($t:ty),*) => {$(
        impl LabelValue for $t {
            fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
                let mut buf = [0u8; 40];
                f(format_int(&mut buf, i128::from(*self)))
            }
        }
    )*};
}

int_label_value!(u8, u16, u32, u64, i8, i16, i32, i64);

impl LabelValue for usize {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        (*self as u64).with_str(f)
    }
}

impl LabelValue for isize {
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        (*self as i64).with_str(f)
    }
}

/// Decimal digits of `v` at the end of `buf`.
fn format_int(buf: &mut [u8; 40], v: i128) -> &str {
    let mut at = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    // Only ASCII digits and '-' were written.
    std::str::from_utf8(&buf[at..]).unwrap_or("")
}

/// Receives the labels of a [`LabelSet`].
///
/// A label set either names its labels ([`label`](LabelWriter::label), for
/// `Vec<(String, String)>` and user structs) or gives only values
/// ([`value`](LabelWriter::value), for arrays and tuples), which take the
/// names the family was made with
/// ([`Family::with_label_names`](super::Family::with_label_names)), in order.
pub struct LabelWriter<'a> {
    names: &'a [String],
    next: usize,
    sink: &'a mut dyn FnMut(&str, &str),
    /// Set when a value had no name left to pair with.
    overflow: bool,
}

impl<'a> LabelWriter<'a> {
    pub(crate) fn new(names: &'a [String], sink: &'a mut dyn FnMut(&str, &str)) -> LabelWriter<'a> {
        LabelWriter {
            names,
            next: 0,
            sink,
            overflow: false,
        }
    }

    /// Adds a label with its name.
    pub fn label(&mut self, name: &str, value: &str) {
        (self.sink)(name, value);
    }

    /// Adds a label value; its name is the family's next label name.
    pub fn value(&mut self, value: &str) {
        match self.names.get(self.next) {
            Some(name) => (self.sink)(name, value),
            None => self.overflow = true,
        }
        self.next += 1;
    }

    /// How many values were given, and whether that matches the names.
    pub(crate) fn values_match(&self) -> bool {
        !self.overflow && self.next == self.names.len()
    }
}

/// A set of labels that keys the children of a [`Family`](super::Family).
///
/// Implemented for:
/// - `()`: no labels;
/// - arrays `[V; N]` and tuples of up to eight [`LabelValue`]s (`[&str; 2]`,
///   `(String, String)`, `(Method, u16)`): values only, named by
///   [`Family::with_label_names`](super::Family::with_label_names);
/// - `Vec<(N, V)>` and `Box<[(N, V)]>` of name/value pairs.
///
/// For a struct of your own, [`label_set!`](crate::label_set) writes the
/// impl (each field a label named after it); or implement it by hand:
///
/// ```
/// use vigil_exposition::client::{LabelSet, LabelValue, LabelWriter};
///
/// #[derive(Clone, Debug, PartialEq, Eq, Hash)]
/// struct Route { path: &'static str, status: u16 }
///
/// impl LabelSet for Route {
///     fn write_labels(&self, w: &mut LabelWriter<'_>) {
///         w.label("path", self.path);
///         self.status.with_str(|s| w.label("status", s));
///     }
/// }
/// ```
///
/// The key is hashed and compared on every lookup: keep it cheap (static
/// strings, small integers, enums) where the lookup is hot.
pub trait LabelSet {
    /// Writes the labels, in exposition order.
    fn write_labels(&self, w: &mut LabelWriter<'_>);
}

impl LabelSet for () {
    fn write_labels(&self, _w: &mut LabelWriter<'_>) {}
}

impl<V: LabelValue, const N: usize> LabelSet for [V; N] {
    fn write_labels(&self, w: &mut LabelWriter<'_>) {
        for v in self {
            v.with_str(|s| w.value(s));
        }
    }
}

impl<N: AsRef<str>, V: LabelValue> LabelSet for Vec<(N, V)> {
    fn write_labels(&self, w: &mut LabelWriter<'_>) {
        for (n, v) in self {
            v.with_str(|s| w.label(n.as_ref(), s));
        }
    }
}

impl<N: AsRef<str>, V: LabelValue> LabelSet for Box<[(N, V)]> {
    fn write_labels(&self, w: &mut LabelWriter<'_>) {
        for (n, v) in self.iter() {
            v.with_str(|s| w.label(n.as_ref(), s));
        }
    }
}

macro_rules! tuple_label_set {
    ($($t:ident . $i:tt),+) => {
        impl<$($t: LabelValue),+> LabelSet for ($($t,)+) {
            fn write_labels(&self, w: &mut LabelWriter<'_>) {
                $( self.$i.with_str(|s| w.value(s)); )+
            }
        }
    };
}

tuple_label_set!(A.0);
tuple_label_set!(A.0, B.1);
tuple_label_set!(A.0, B.1, C.2);
tuple_label_set!(A.0, B.1, C.2, D.3);
tuple_label_set!(A.0, B.1, C.2, D.3, E.4);
tuple_label_set!(A.0, B.1, C.2, D.3, E.4, F.5);
tuple_label_set!(A.0, B.1, C.2, D.3, E.4, F.5, G.6);
tuple_label_set!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);

/// Declares a struct and implements [`LabelSet`](crate::client::LabelSet)
/// for it: each field is a label named after the field, in declaration
/// order, and each field's type must implement
/// [`LabelValue`](crate::client::LabelValue). Attributes (derives) are kept;
/// the key needs `Clone, PartialEq, Eq, Hash` (and `Debug` is handy).
///
/// ```
/// use vigil_exposition::client::{Counter, Family, LabelValue, Registry};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// pub enum Method { Get, Post }
/// impl LabelValue for Method {
///     fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
///         f(match self { Method::Get => "GET", Method::Post => "POST" })
///     }
/// }
///
/// vigil_exposition::label_set! {
///     #[derive(Clone, Debug, PartialEq, Eq, Hash)]
///     pub struct HttpLabels {
///         pub method: Method,
///         pub code: u16,
///     }
/// }
///
/// let registry = Registry::new();
/// let requests = Family::<HttpLabels, Counter>::default();
/// registry.register("http_requests", "Requests served.", requests.clone())?;
/// requests.with(&HttpLabels { method: Method::Get, code: 200 }, |c| c.inc());
///
/// let mut out = Vec::new();
/// registry.encode(vigil_exposition::Format::Text, &mut out);
/// assert!(String::from_utf8(out).unwrap()
///     .contains("http_requests_total{method=\"GET\",code=\"200\"} 1\n"));
/// # Ok::<(), vigil_exposition::Error>(())
/// ```
#[macro_export]
macro_rules! label_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $ty ),*
        }

        impl $crate::client::LabelSet for $name {
            fn write_labels(&self, w: &mut $crate::client::LabelWriter<'_>) {
                $(
                    $crate::client::LabelValue::with_str(&self.$field, |s| {
                        w.label(stringify!($field), s)
                    });
                )*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(set: &dyn Fn(&mut LabelWriter<'_>), names: &[&str]) -> (Vec<(String, String)>, bool) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut got = Vec::new();
        let mut sink = |n: &str, v: &str| got.push((n.to_owned(), v.to_owned()));
        let mut w = LabelWriter::new(&names, &mut sink);
        set(&mut w);
        let ok = w.values_match();
        (got, ok)
    }

    #[test]
    fn integers_format_without_allocating() {
        assert_eq!(0u8.with_str(str::to_owned), "0");
        assert_eq!(i64::MIN.with_str(str::to_owned), i64::MIN.to_string());
        assert_eq!(u64::MAX.with_str(str::to_owned), u64::MAX.to_string());
        assert_eq!((-42i32).with_str(str::to_owned), "-42");
        assert_eq!(usize::MAX.with_str(str::to_owned), usize::MAX.to_string());
    }

    #[test]
    fn values_take_the_family_names() {
        let (got, ok) = pairs(&|w| ["GET", "200"].write_labels(w), &["method", "code"]);
        assert!(ok);
        assert_eq!(
            got,
            [
                ("method".into(), "GET".into()),
                ("code".into(), "200".into())
            ]
        );
        let (got, ok) = pairs(&|w| ("a".to_owned(), 7u16).write_labels(w), &["x", "y"]);
        assert!(ok);
        assert_eq!(got[1], ("y".into(), "7".into()));
    }

    #[test]
    fn value_count_must_match_names() {
        assert!(!pairs(&|w| ["a", "b", "c"].write_labels(w), &["x", "y"]).1);
        assert!(!pairs(&|w| ["a"].write_labels(w), &["x", "y"]).1);
        assert!(pairs(&|w| vec![("x", "1")].write_labels(w), &[]).1);
        // A pair set given to a family with names leaves the names unused.
        assert!(!pairs(&|w| vec![("x", "1")].write_labels(w), &["x"]).1);
    }
}
