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
        /// `self + o` (wrapping for integers): the sum of two stripes.
        fn plus(self, o: Self) -> Self;
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
    fn plus(self, o: u64) -> u64 {
        self.wrapping_add(o)
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
    fn plus(self, o: i64) -> i64 {
        self.wrapping_add(o)
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
    fn plus(self, o: f64) -> f64 {
        self + o
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

/// Aligned to a cache line, so cells written from different threads do not
/// share one.
#[repr(align(64))]
#[derive(Debug, Default)]
pub(crate) struct Padded<T>(pub(crate) T);

/// Most stripes a striped cell gets, whatever the number of CPUs: bounds the
/// memory of a counter incremented from many threads (64 bytes a stripe).
const MAX_STRIPES: usize = 16;

thread_local! {
    /// This thread's stripe, `usize::MAX` until first used.
    static STRIPE: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// The stripe of the calling thread, in `0..stripes()`. Threads take stripes
/// round-robin in the order they first increment a striped cell, so the
/// first `stripes()` threads never share one.
#[inline]
pub(crate) fn thread_stripe() -> usize {
    STRIPE.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            v
        } else {
            let v = assign_stripe();
            s.set(v);
            v
        }
    })
}

#[cold]
fn assign_stripe() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    (NEXT.fetch_add(1, Ordering::Relaxed) % stripes() as u64) as usize
}

/// How many stripes a striped cell has: the CPUs this process may run on,
/// rounded up to a power of two, at most `MAX_STRIPES`.
pub(crate) fn stripes() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .next_power_of_two()
            .min(MAX_STRIPES)
    })
}

/// A number that only goes up, split over per-thread stripes so that threads
/// incrementing it at once do not move one cache line between their cores.
///
/// Stripe 0 lives inline; the others are allocated together the first time
/// a thread whose stripe is not 0 adds, so a cell only ever touched by one
/// thread costs two cache lines (128 bytes) and one touched by several
/// `64 × (1 + stripes())` bytes. Reading sums the stripes: integers are
/// exact (wrapping), floats are each thread's exact running sum added
/// together at read time.
#[derive(Debug)]
pub(crate) struct Striped<N: Number> {
    first: Padded<N::Atomic>,
    rest: std::sync::OnceLock<Box<[Padded<N::Atomic>]>>,
}

impl<N: Number> Striped<N> {
    pub(crate) fn new() -> Self {
        Striped {
            first: Padded(N::new_atomic(N::ZERO)),
            rest: std::sync::OnceLock::new(),
        }
    }

    /// Adds `v` to the calling thread's stripe.
    #[inline]
    pub(crate) fn add(&self, v: N) {
        let s = thread_stripe();
        if s == 0 {
            N::add(&self.first.0, v);
        } else {
            self.add_rest(s, v);
        }
    }

    #[inline]
    fn add_rest(&self, s: usize, v: N) {
        let rest = self.rest.get_or_init(|| {
            (1..stripes())
                .map(|_| Padded(N::new_atomic(N::ZERO)))
                .collect()
        });
        match rest.get(s - 1) {
            Some(cell) => N::add(&cell.0, v),
            None => N::add(&self.first.0, v),
        }
    }

    /// The sum of the stripes.
    pub(crate) fn get(&self) -> N {
        let mut total = N::get(&self.first.0);
        if let Some(rest) = self.rest.get() {
            for cell in rest.iter() {
                total = total.plus(N::get(&cell.0));
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_add_up_exactly_from_many_threads() {
        let ints = Striped::<u64>::new();
        let floats = Striped::<f64>::new();
        let threads = 2 * stripes() + 1;
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..1000 {
                        ints.add(3);
                        floats.add(0.5);
                    }
                });
            }
        });
        assert_eq!(ints.get(), 3000 * threads as u64);
        assert_eq!(floats.get(), 500.0 * threads as f64);
        // More threads than stripes: every stripe was used, so the others
        // were allocated (when the machine has more than one CPU).
        assert_eq!(ints.rest.get().is_some(), stripes() > 1);
        assert!(thread_stripe() < stripes());
    }

    #[test]
    fn integer_stripes_wrap_like_one_cell() {
        let c = Striped::<u64>::new();
        std::thread::scope(|s| {
            for _ in 0..stripes() + 1 {
                s.spawn(|| c.add(u64::MAX));
            }
        });
        let n = (stripes() + 1) as u64;
        assert_eq!(c.get(), u64::MAX.wrapping_mul(n));
    }
}
