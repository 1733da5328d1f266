//! Sorted id lists: insert, remove, intersect, subtract.

use super::SeriesId;

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
