//! Waiting inside an executor, always bounded: a local notifier, timeouts, and races against a
//! deadline and the run's abort flag.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::future::{select, Either};

/// How often a wait looks at the abort flag.
pub const ABORT_POLL: Duration = Duration::from_millis(100);

/// Wakes every task waiting on it (single-threaded; no permits are stored).
#[derive(Default)]
pub struct Notify {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Notify {
    pub fn notify(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Completes at the next `notify()` after this call.
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            generation: self.generation.get(),
        }
    }
}

pub struct Notified<'a> {
    notify: &'a Notify,
    generation: u64,
}

impl Future for Notified<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.generation {
            return Poll::Ready(());
        }
        let mut waiters = self.notify.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// `fut`, or `None` after `dur`.
pub async fn with_timeout<F: Future>(dur: Duration, fut: F) -> Option<F::Output> {
    let fut = std::pin::pin!(fut);
    let timer = std::pin::pin!(glommio::timer::sleep(dur));
    match select(fut, timer).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

/// How a raced wait ended.
pub enum Race<T> {
    Done(T),
    Deadline,
    Aborted,
}

/// `fut`, unless `deadline` passes or `abort` is set first (checked every [`ABORT_POLL`]).
pub async fn race<F: Future>(
    fut: F,
    deadline: Option<Instant>,
    abort: &AtomicBool,
) -> Race<F::Output> {
    let watch = async {
        loop {
            if abort.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            let mut wait = ABORT_POLL;
            if let Some(d) = deadline {
                if now >= d {
                    return true;
                }
                wait = wait.min(d - now);
            }
            glommio::timer::sleep(wait).await;
        }
    };
    let fut = std::pin::pin!(fut);
    let watch = std::pin::pin!(watch);
    match select(fut, watch).await {
        Either::Left((v, _)) => Race::Done(v),
        Either::Right((true, _)) => Race::Deadline,
        Either::Right((false, _)) => Race::Aborted,
    }
}

/// Sleeps until `when` (returns at once if it has passed).
pub async fn sleep_until(when: Instant) {
    let now = Instant::now();
    if when > now {
        glommio::timer::sleep(when - now).await;
    }
}
