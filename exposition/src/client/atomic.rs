//! Atomic numbers behind counters and gauges: integers use `fetch_add`,
//! floats a compare-and-swap loop over the bits in an `AtomicU64`. Neither
//! locks nor allocates.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::metric::Value;

pub(crate) mod sealed {
    /// A number stored in an atomic. Sealed.
    pub trait Number: Copy + Send + Sync + PartialOrd + std::fmt::Debug + 'static {
        /// The atomic holding it.
        type Atomic: Send + Sync + std::fmt::Debug;
        /// Zero.
        const ZERO: Self;
        /// A new atomic holding `v`.
        fn new_atomic(v: Self) -> Self::Atomic;
        /// Adds `v` (wrapping for integers).
        fn add(a: &Self::Atomic, v: Self);
        /// Subtracts `v` (wrapping for integers).
        fn sub(a: &Self::Atomic, v: Self);
        /// Stores `v`.
        fn set(a: &Self::Atomic, v: Self);
        /// Loads the value.
        fn get(a: &Self::Atomic) -> Self;
        /// Stores `v`, returning the old value.
        fn swap(a: &Self::Atomic, v: Self) -> Self;
        /// The sample value.
        fn value(self) -> super::Value;
        /// Whether this is a valid counter increment (not negative, not NaN).
        fn is_valid_increment(self) -> bool;
    }
}

use sealed::Number;

impl Number for u64 {
    type Atomic = AtomicU64;
    const ZERO: u64 = 0;
    fn new_atomic(v: u64) -> AtomicU64 {
        AtomicU64::new(v)
    }
    #[inline]
    fn add(a: &AtomicU64, v: u64) {
        a.fetch_add(v, Ordering::Relaxed);
    }
    #[inline]
    fn sub(a: &AtomicU64, v: u64) {
        a.fetch_sub(v, Ordering::Relaxed);
    }
    #[inline]
    fn set(a: &AtomicU64, v: u64) {
        a.store(v, Ordering::Relaxed);
    }
    #[inline]
    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
    fn swap(a: &AtomicU64, v: u64) -> u64 {
        a.swap(v, Ordering::Relaxed)
    }
    fn value(self) -> Value {
        Value::U64(self)
    }
    fn is_valid_increment(self) -> bool {
        true
    }
}

impl Number for i64 {
    type Atomic = AtomicI64;
    const ZERO: i64 = 0;
    fn new_atomic(v: i64) -> AtomicI64 {
        AtomicI64::new(v)
    }
    #[inline]
    fn add(a: &AtomicI64, v: i64) {
        a.fetch_add(v, Ordering::Relaxed);
    }
    #[inline]
    fn sub(a: &AtomicI64, v: i64) {
        a.fetch_sub(v, Ordering::Relaxed);
    }
    #[inline]
    fn set(a: &AtomicI64, v: i64) {
        a.store(v, Ordering::Relaxed);
    }
    #[inline]
    fn get(a: &AtomicI64) -> i64 {
        a.load(Ordering::Relaxed)
    }
    fn swap(a: &AtomicI64, v: i64) -> i64 {
        a.swap(v, Ordering::Relaxed)
    }
    fn value(self) -> Value {
        Value::I64(self)
    }
    fn is_valid_increment(self) -> bool {
        self >= 0
    }
}

impl Number for f64 {
    type Atomic = AtomicU64;
    const ZERO: f64 = 0.0;
    fn new_atomic(v: f64) -> AtomicU64 {
        AtomicU64::new(v.to_bits())
    }
    #[inline]
    fn add(a: &AtomicU64, v: f64) {
        add_f64(a, v);
    }
    #[inline]
    fn sub(a: &AtomicU64, v: f64) {
        add_f64(a, -v);
    }
    #[inline]
    fn set(a: &AtomicU64, v: f64) {
        a.store(v.to_bits(), Ordering::Relaxed);
    }
    #[inline]
    fn get(a: &AtomicU64) -> f64 {
        f64::from_bits(a.load(Ordering::Relaxed))
    }
    fn swap(a: &AtomicU64, v: f64) -> f64 {
        f64::from_bits(a.swap(v.to_bits(), Ordering::Relaxed))
    }
    fn value(self) -> Value {
        Value::F64(self)
    }
    fn is_valid_increment(self) -> bool {
        self >= 0.0
    }
}

/// Adds `v` to the f64 held in `a` (a compare-and-swap loop).
#[inline]
pub(crate) fn add_f64(a: &AtomicU64, v: f64) {
    let mut old = a.load(Ordering::Relaxed);
    loop {
        let new = (f64::from_bits(old) + v).to_bits();
        match a.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(cur) => old = cur,
        }
    }
}
