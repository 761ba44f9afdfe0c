//! Work over many instances on a few threads. A thread per instance costs more than
//! the work itself when the work is reading a few small files (status with two
//! hundred instances), and starting fifty `postfix` scripts at once only makes them
//! wait for the CPU; so a fixed number of workers takes the items in turn.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` of every item, on at most `workers` threads at once; the results in the
/// items' order. Items are handed out in order, so earlier ones start first.
pub fn map<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(k) else {
                        break;
                    };
                    let result = f(item);
                    *results[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every item was worked on")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_in_order_on_few_threads() {
        let items: Vec<u32> = (0..100).collect();
        let threads = Mutex::new(std::collections::HashSet::new());
        let out = map(&items, 3, |n| {
            threads.lock().unwrap().insert(std::thread::current().id());
            n * 2
        });
        assert_eq!(out, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        assert!(threads.lock().unwrap().len() <= 3);
        assert!(map(&[] as &[u32], 4, |n| *n).is_empty());
    }
}
