//! Independent parts of a job (ensemble members, retrains, models of a comparison) on a
//! pool of threads, natively. Each thread takes the next part nobody has taken, so a
//! part's result depends only on its index, never on the thread count or on which
//! thread ran it. (In the browser the same parts go to a pool of web workers.)

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Run `part(0..n)` on `threads` threads. `progress(done, n)` is called on the calling
/// thread after each part; returning `Break` stops handing out parts (parts already
/// started still finish and are returned). The first part that fails stops the pool and
/// is the error. Returns `(index, result)` in order of completion.
pub fn map_threads<T: Send, E: Send>(
    n: usize,
    threads: usize,
    part: impl Fn(usize) -> Result<T, E> + Sync,
    mut progress: impl FnMut(usize, usize) -> ControlFlow<()>,
) -> Result<Vec<(usize, T)>, E> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut done = Vec::with_capacity(n);
    let mut failure = None;
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            let tx = tx.clone();
            let (next, stop, part) = (&next, &stop, &part);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    if j >= n {
                        break;
                    }
                    let result = part(j);
                    let failed = result.is_err();
                    if tx.send((j, result)).is_err() || failed {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (j, result) in rx {
            match result {
                Ok(value) => {
                    done.push((j, value));
                    if progress(done.len(), n).is_break() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_once_whatever_the_threads() {
        for threads in [1, 2, 5] {
            let mut got = map_threads(
                20,
                threads,
                |j| Ok::<_, ()>(j * j),
                |_, _| ControlFlow::Continue(()),
            )
            .unwrap_or_default();
            got.sort_unstable();
            assert_eq!(got, (0..20).map(|j| (j, j * j)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_failure_is_the_error_and_break_stops_handing_out() {
        let r = map_threads(
            10,
            2,
            |j| if j == 3 { Err(j) } else { Ok(j) },
            |_, _| ControlFlow::Continue(()),
        );
        assert_eq!(r, Err(3));
        let got = map_threads(
            100,
            1,
            |j| {
                std::thread::sleep(std::time::Duration::from_millis(30));
                Ok::<_, ()>(j)
            },
            |done, _| {
                if done == 4 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .unwrap_or_default();
        // One thread: parts 0..3 done, then the part in flight when Break came (one or,
        // on a loaded machine, two), never the other 95.
        assert!((4..=7).contains(&got.len()), "{}", got.len());
    }
}
