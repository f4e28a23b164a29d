//! `--threads`: how many independent parts of a command run at once.

use std::ops::ControlFlow;

use crate::CliError;

/// Threads for `--threads` given or not: every core, less one for the rest of the
/// machine when there are more than two.
pub fn count(given: Option<usize>) -> usize {
    given
        .unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            if cores > 2 { cores - 1 } else { cores }
        })
        .max(1)
}

/// `part(j)` for every `j` of `jobs` on `threads` threads, as `(j, result)` in the order
/// of `jobs` (the first failure is the error).
pub fn map_jobs<T: Send>(
    jobs: &[usize],
    threads: usize,
    part: impl Fn(usize) -> Result<T, CliError> + Sync,
) -> Result<Vec<(usize, T)>, CliError> {
    let mut done = mnemo_measures::pool::map_threads(
        jobs.len(),
        threads,
        |i| part(jobs[i]),
        |_, _| ControlFlow::Continue(()),
    )?;
    done.sort_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(i, r)| (jobs[i], r)).collect())
}
