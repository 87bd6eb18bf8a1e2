//! The CPU backend's worker threads: one pool per process, started at first use, so a kernel
//! that splits its work does not pay a thread spawn per call (tens of microseconds, next to
//! kernels of a few hundred).
//!
//! [`for_parts`] hands each of a list of parts (disjoint output chunks, index ranges) to
//! whichever thread claims it next — the caller's thread works too — and returns when all are
//! done. Which thread runs a part never changes what the part computes, so results do not
//! depend on timing or on the thread count as long as the *partition* does not (the kernels
//! cut their work in a fixed way). One job runs at a time: a call made while the pool is busy
//! (another device's kernel on another thread, or a part that itself splits) runs its parts
//! on its own thread, in order. In the browser (no threads) every call runs inline.

#[cfg(not(target_arch = "wasm32"))]
use std::sync::{Condvar, Mutex};

/// Runs `f(i, item)` for every item `i` of `items`, on up to `threads` threads (the caller's
/// included). Returns when every call has returned; a panic in a part is re-raised here.
pub(crate) fn for_parts<T, F>(items: Vec<T>, threads: usize, f: F)
where
    T: Send,
    F: Fn(usize, T) + Sync,
{
    #[cfg(not(target_arch = "wasm32"))]
    if threads > 1 && items.len() > 1 {
        let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(slot) = slots.get(i) else { break };
            let item = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(item) = item {
                f(i, item);
            }
        };
        imp::run(threads.min(slots.len()) - 1, &work);
        return;
    }
    let _ = threads;
    for (i, item) in items.into_iter().enumerate() {
        f(i, item);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// A job: the caller's closure with its lifetime erased. Sound because [`run`] does not
    /// return before every worker that took the job has left it (`active == 0` after the
    /// job is withdrawn under the same lock the workers take it under).
    #[derive(Clone, Copy)]
    struct Job(&'static (dyn Fn() + Sync));

    struct State {
        generation: u64,
        job: Option<Job>,
        /// Workers still wanted for the current job, and those running it.
        wanted: usize,
        active: usize,
        panicked: bool,
    }

    struct Pool {
        state: Mutex<State>,
        wake: Condvar,
        done: Condvar,
        /// Held by the one caller whose job is in the pool.
        busy: AtomicBool,
        /// Worker threads that started.
        workers: AtomicUsize,
    }

    fn pool() -> &'static Pool {
        static POOL: OnceLock<&'static Pool> = OnceLock::new();
        POOL.get_or_init(|| {
            let workers = crate::cpu::threads().saturating_sub(1);
            let pool: &'static Pool = Box::leak(Box::new(Pool {
                state: Mutex::new(State {
                    generation: 0,
                    job: None,
                    wanted: 0,
                    active: 0,
                    panicked: false,
                }),
                wake: Condvar::new(),
                done: Condvar::new(),
                busy: AtomicBool::new(false),
                workers: AtomicUsize::new(0),
            }));
            for w in 0..workers {
                // A thread that cannot start leaves the pool smaller, not broken.
                let spawned = std::thread::Builder::new()
                    .name(format!("accrete-cpu-{w}"))
                    .spawn(move || worker(pool));
                if spawned.is_ok() {
                    pool.workers.fetch_add(1, Ordering::Relaxed);
                }
            }
            pool
        })
    }

    fn lock(pool: &Pool) -> std::sync::MutexGuard<'_, State> {
        pool.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn worker(pool: &'static Pool) {
        let mut seen = 0u64;
        let mut state = lock(pool);
        loop {
            match state.job {
                Some(job) if state.generation != seen && state.wanted > 0 => {
                    seen = state.generation;
                    state.wanted -= 1;
                    state.active += 1;
                    drop(state);
                    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job.0)).is_ok();
                    state = lock(pool);
                    state.active -= 1;
                    state.panicked |= !ok;
                    if state.active == 0 {
                        pool.done.notify_all();
                    }
                }
                _ => state = pool.wake.wait(state).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Runs `work` on the calling thread and on up to `helpers` pool threads at once, and
    /// returns when all have returned from it. `work` must itself share out what there is
    /// to do (the callers' claim counter); a thread that finds nothing left returns.
    pub(super) fn run(helpers: usize, work: &(dyn Fn() + Sync)) {
        let pool = pool();
        let helpers = helpers.min(pool.workers.load(Ordering::Relaxed));
        if helpers == 0
            || pool
                .busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            work();
            return;
        }
        // SAFETY: the reference is withdrawn from the pool and every worker that took it has
        // returned from it before this function returns (below), so it never outlives `work`.
        let job = Job(unsafe {
            std::mem::transmute::<&(dyn Fn() + Sync), &'static (dyn Fn() + Sync)>(work)
        });
        {
            let mut state = lock(pool);
            state.generation = state.generation.wrapping_add(1);
            state.job = Some(job);
            state.wanted = helpers;
            state.panicked = false;
        }
        pool.wake.notify_all();
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let panicked = {
            let mut state = lock(pool);
            state.job = None;
            state.wanted = 0;
            while state.active > 0 {
                state = pool.done.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.panicked
        };
        pool.busy.store(false, Ordering::Release);
        if let Err(payload) = mine {
            std::panic::resume_unwind(payload);
        }
        if panicked {
            panic!("a CPU kernel's part panicked on a worker thread");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_whatever_the_thread_count() {
        for threads in [1, 2, 3, 8] {
            for parts in [0, 1, 2, 5, 64] {
                let mut out = vec![0u32; parts];
                let items: Vec<&mut u32> = out.iter_mut().collect();
                for_parts(items, threads, |i, slot| *slot += i as u32 + 1);
                let want: Vec<u32> = (1..=parts as u32).collect();
                assert_eq!(out, want, "threads {threads}, parts {parts}");
            }
        }
    }

    #[test]
    fn a_part_that_splits_again_runs_inline() {
        let mut out = vec![0u64; 4];
        let items: Vec<&mut u64> = out.iter_mut().collect();
        for_parts(items, 4, |i, slot| {
            let mut inner = [0u64; 3];
            let parts: Vec<&mut u64> = inner.iter_mut().collect();
            for_parts(parts, 4, |j, s| *s = (i * 10 + j) as u64);
            *slot = inner.iter().sum();
        });
        assert_eq!(out, vec![3, 33, 63, 93]);
    }
}
