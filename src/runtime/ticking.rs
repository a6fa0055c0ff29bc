//! One tick at a time per town, and what a tick must know of the requests that interleave with
//! it. A Durable Object's events interleave at every await (outbound calls, storage calls), so:
//! - the alarm's tick and a debug tick take turns through one lock (a tick that finds it held
//!   waits for the running one to end, then runs its own);
//! - deleting the town bumps an incarnation that fences a running tick off (`super::fence`);
//! - a fact's wake asked while a tick runs is kept for that tick's re-arm, which would otherwise
//!   overwrite it.

use super::fence::Fence;
use crate::http::debug::status::TickView;
use crate::tick::wake;
use crate::vocabulary::time::Millis;
use futures_util::lock::{Mutex, MutexGuard};
use std::cell::Cell;

#[derive(Default)]
pub struct Ticking {
    lock: Mutex<()>,
    waiting: Cell<u32>,
    running_since: Cell<Option<Millis>>,
    last_started: Cell<Option<Millis>>,
    woken: Cell<Option<Millis>>,
    incarnation: Cell<u64>,
}

/// The right to run one tick, held until dropped.
pub struct Turn<'a> {
    _guard: MutexGuard<'a, ()>,
    ticking: &'a Ticking,
    /// The town's incarnation when the tick started.
    pub incarnation: u64,
    /// Whether it waited for another tick to end.
    pub waited: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.ticking.running_since.set(None);
    }
}

/// Counts a tick waiting for the lock, until it gets it or is dropped.
struct Waiting<'a>(&'a Cell<u32>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Ticking {
    /// Waits until no other tick runs, then starts one at `now()` (read once the turn is ours).
    pub async fn turn(&self, now: impl Fn() -> Millis) -> Turn<'_> {
        let (guard, waited) = match self.lock.try_lock() {
            Some(guard) => (guard, false),
            None => {
                self.waiting.set(self.waiting.get() + 1);
                let _counted = Waiting(&self.waiting);
                (self.lock.lock().await, true)
            }
        };
        let started = now();
        self.running_since.set(Some(started));
        self.last_started.set(Some(started));
        // This tick drains every fact accepted so far: their wakes are served.
        self.woken.set(None);
        Turn {
            _guard: guard,
            ticking: self,
            incarnation: self.incarnation.get(),
            waited,
        }
    }

    /// The fence of a tick that started at `incarnation`.
    pub fn fence(&self, incarnation: u64) -> Fence<'_> {
        Fence::new(&self.incarnation, incarnation)
    }

    /// The town was deleted: every running tick is fenced off from here on.
    pub fn town_deleted(&self) {
        self.incarnation.set(self.incarnation.get() + 1);
    }

    /// When a fact accepted at `now` wants the alarm; kept for the running tick's re-arm, if any.
    pub fn wake_at(&self, now: Millis) -> Millis {
        let at = wake::wake_at(now, self.last_started.get());
        if self.running_since.get().is_some() {
            self.woken
                .set(Some(self.woken.get().map_or(at, |w| w.min(at))));
        }
        at
    }

    /// The wake asked while the current tick ran (taken: asked once, served once).
    pub fn take_woken(&self) -> Option<Millis> {
        self.woken.take()
    }

    pub fn view(&self) -> TickView {
        TickView {
            running_since: self.running_since.get(),
            waiting: self.waiting.get(),
            last_started_at: self.last_started.get(),
        }
    }
}
