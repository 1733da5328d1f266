//! Sorted id lists: insert, remove, intersect, subtract.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::SeriesId;

/// One `name=value` pair's postings.
struct Pair {
    name: u32,
    value: u32,
    list: List,
}

/// Postings by `(name, value)` symbol pair: the pairs in one vector, found
/// through a table of 4-byte indexes. A map from pair to list put a
/// 40-byte entry in each of about twice as many buckets as pairs.
#[derive(Default)]
pub(super) struct Map {
    pairs: Vec<Pair>,
    /// Indexes of `pairs` slots whose pair was removed (its list empty).
    free: Vec<u32>,
    table: HashTable<u32>,
    hasher: RandomState,
    len: usize,
}

impl Map {
    fn hash(&self, name: u32, value: u32) -> u64 {
        self.hasher
            .hash_one((u64::from(name) << 32) | u64::from(value))
    }

    fn find(&self, name: u32, value: u32) -> Option<u32> {
        let h = self.hash(name, value);
        self.table
            .find(h, |&i| {
                let p = &self.pairs[i as usize];
                p.name == name && p.value == value
            })
            .copied()
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn get(&self, name: u32, value: u32) -> Option<&List> {
        self.find(name, value).map(|i| &self.pairs[i as usize].list)
    }

    /// Adds `id` to the pair's list; true when the pair is new.
    pub(super) fn insert(&mut self, name: u32, value: u32, id: SeriesId) -> bool {
        if let Some(i) = self.find(name, value) {
            self.pairs[i as usize].list.insert(id);
            return false;
        }
        let pair = Pair {
            name,
            value,
            list: List::One(id),
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.pairs[i as usize] = pair;
                i
            }
            None => {
                if self.pairs.len() == self.pairs.capacity() {
                    // Grow by an eighth rather than double.
                    self.pairs.reserve_exact((self.pairs.len() / 8).max(64));
                }
                self.pairs.push(pair);
                u32::try_from(self.pairs.len() - 1).expect("fewer than 2^32 label pairs")
            }
        };
        let h = self.hash(name, value);
        let Map {
            pairs,
            table,
            hasher,
            ..
        } = self;
        table.insert_unique(h, i, |&j| {
            let p = &pairs[j as usize];
            hasher.hash_one((u64::from(p.name) << 32) | u64::from(p.value))
        });
        self.len += 1;
        true
    }

    /// Removes `id` from the pair's list; true when that emptied (and
    /// removed) the pair.
    pub(super) fn remove(&mut self, name: u32, value: u32, id: SeriesId) -> bool {
        let Some(i) = self.find(name, value) else {
            return false;
        };
        if !self.pairs[i as usize].list.remove(id) {
            return false;
        }
        let h = self.hash(name, value);
        if let Ok(e) = self.table.find_entry(h, |&j| j == i) {
            e.remove();
        }
        self.pairs[i as usize].list = List::default();
        self.free.push(i);
        self.len -= 1;
        true
    }

    /// Every pair with its list.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, u32, &List)> {
        let free: std::collections::HashSet<u32> = self.free.iter().copied().collect();
        self.pairs
            .iter()
            .enumerate()
            .filter(move |(i, _)| !free.contains(&(*i as u32)))
            .map(|(_, p)| (p.name, p.value, &p.list))
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.pairs.capacity() * std::mem::size_of::<Pair>()
            + self
                .pairs
                .iter()
                .map(|p| p.list.heap_bytes())
                .sum::<usize>()
            + self.free.capacity() * 4
            + super::table_bytes(self.table.capacity(), 4)
    }
}

/// One postings list, sized for what most lists are: a single series
/// (a label value unique to it) is kept inline; longer lists hold 4-byte
/// ids while every id fits, 8-byte ones after.
pub(super) enum List {
    One(SeriesId),
    Narrow(Vec<u32>),
    Wide(Vec<SeriesId>),
}

impl Default for List {
    fn default() -> Self {
        List::Narrow(Vec::new())
    }
}

impl List {
    pub(super) fn len(&self) -> usize {
        match self {
            List::One(_) => 1,
            List::Narrow(v) => v.len(),
            List::Wide(v) => v.len(),
        }
    }

    /// Appends the ids to `out`.
    pub(super) fn extend_into(&self, out: &mut Vec<SeriesId>) {
        match self {
            List::One(x) => out.push(*x),
            List::Narrow(v) => out.extend(v.iter().map(|&x| SeriesId::from(x))),
            List::Wide(v) => out.extend_from_slice(v),
        }
    }

    pub(super) fn to_vec(&self) -> Vec<SeriesId> {
        match self {
            List::One(x) => vec![*x],
            List::Narrow(v) => v.iter().map(|&x| SeriesId::from(x)).collect(),
            List::Wide(v) => v.clone(),
        }
    }

    /// Inserts `id`, keeping the list sorted and free of duplicates.
    pub(super) fn insert(&mut self, id: SeriesId) {
        match self {
            List::One(x) if *x == id => {}
            List::One(x) => {
                let (a, b) = if *x < id { (*x, id) } else { (id, *x) };
                *self = match (u32::try_from(a), u32::try_from(b)) {
                    (Ok(a), Ok(b)) => List::Narrow(vec![a, b]),
                    _ => List::Wide(vec![a, b]),
                };
            }
            List::Narrow(v) => match u32::try_from(id) {
                Ok(id) => insert(v, id),
                Err(_) => {
                    let mut w: Vec<SeriesId> = v.iter().map(|&x| SeriesId::from(x)).collect();
                    insert(&mut w, id);
                    *self = List::Wide(w);
                }
            },
            List::Wide(v) => insert(v, id),
        }
    }

    /// Removes `id`; true when the list is empty after.
    pub(super) fn remove(&mut self, id: SeriesId) -> bool {
        match self {
            List::One(x) => *x == id,
            List::Narrow(v) => {
                if let Ok(id) = u32::try_from(id) {
                    remove(v, id);
                }
                v.is_empty()
            }
            List::Wide(v) => {
                remove(v, id);
                v.is_empty()
            }
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            List::One(_) => 0,
            List::Narrow(v) => v.capacity() * 4,
            List::Wide(v) => v.capacity() * 8,
        }
    }
}

/// Inserts `id` keeping `list` sorted and free of duplicates; appending (the
/// usual case, ids grow) is O(1).
fn insert<T: Ord + Copy>(list: &mut Vec<T>, id: T) {
    match list.last() {
        Some(&last) if last < id => list.push(id),
        None => list.push(id),
        _ => {
            if let Err(at) = list.binary_search(&id) {
                list.insert(at, id);
            }
        }
    }
}

fn remove<T: Ord + Copy>(list: &mut Vec<T>, id: T) {
    if let Ok(at) = list.binary_search(&id) {
        list.remove(at);
    }
}

pub(super) fn intersect(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.len() * 16 < large.len() {
        // Much shorter: look each one up.
        let mut rest = large;
        for &x in small {
            match rest.binary_search(&x) {
                Ok(i) => {
                    out.push(x);
                    rest = &rest[i + 1..];
                }
                Err(i) => rest = &rest[i..],
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

pub(super) fn subtract(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), [3, 5]);
        let large: Vec<u64> = (0..1000).collect();
        assert_eq!(intersect(&[5, 500, 2000], &large), [5, 500]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 6]), [1, 3]);
        let mut l = vec![1, 5];
        insert(&mut l, 3);
        insert(&mut l, 9);
        insert(&mut l, 5);
        assert_eq!(l, [1, 3, 5, 9]);
        remove(&mut l, 3);
        assert_eq!(l, [1, 5, 9]);
        let mut list = List::One(7);
        list.insert(3);
        list.insert(1 << 40);
        list.insert(5);
        assert_eq!(list.to_vec(), [3, 5, 7, 1 << 40]);
        assert!(matches!(list, List::Wide(_)));
        for id in [3, 7, 1 << 40] {
            assert!(!list.remove(id));
        }
        assert!(list.remove(5));
    }
}
