//! Work spread over a few threads, results in the items' order. A page's deliveries are
//! independent until they meet the journal, which stays on the run's thread: judging them
//! (`page`) and staging their files (`publishing`) run here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads for CPU-bound work (judging a page: decode, hash, content check): one per core, at
/// most 4, since the run also needs its own thread and the server may share the machine.
pub fn cpu_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Runs `f` for every item on up to `workers` threads and returns the results in the items'
/// order. One item, or one worker, runs on the caller's thread.
pub fn map_in_order<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                // Each index is taken by exactly one worker, so every slot gets filled.
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = f(item);
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every slot is filled before the scope ends")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_comes_back_in_the_items_order() {
        let items: Vec<u64> = (0..101).collect();
        for workers in [0, 1, 3, 4, 200] {
            // Uneven work, so the workers finish out of order.
            let results = map_in_order(&items, workers, |&n| {
                std::thread::sleep(std::time::Duration::from_micros((n * 37) % 200));
                (n, std::thread::current().id())
            });
            assert_eq!(results.iter().map(|r| r.0).collect::<Vec<_>>(), items);
            let threads: std::collections::HashSet<_> = results.iter().map(|r| r.1).collect();
            match workers {
                0 | 1 => assert_eq!(threads.len(), 1, "one worker runs on the caller's thread"),
                _ => assert!(threads.len() > 1, "{workers} workers used one thread"),
            }
        }
        assert!(map_in_order(&[] as &[u32], 4, |_| unreachable!()).is_empty());
    }
}
