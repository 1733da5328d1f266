//! Sorted id lists: insert, remove, intersect, union, subtract.

use super::SeriesId;

/// Inserts `id` keeping `list` sorted and free of duplicates; appending (the
/// usual case, ids grow) is O(1).
pub(super) fn insert(list: &mut Vec<SeriesId>, id: SeriesId) {
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

pub(super) fn remove(list: &mut Vec<SeriesId>, id: SeriesId) {
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

pub(super) fn union(lists: &[&[SeriesId]]) -> Vec<SeriesId> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let mut out: Vec<SeriesId> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
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
        assert_eq!(union(&[&[1, 4], &[2, 4, 9], &[]]), [1, 2, 4, 9]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 6]), [1, 3]);
        let mut l = vec![1, 5];
        insert(&mut l, 3);
        insert(&mut l, 9);
        insert(&mut l, 5);
        assert_eq!(l, [1, 3, 5, 9]);
        remove(&mut l, 3);
        assert_eq!(l, [1, 5, 9]);
    }
}
