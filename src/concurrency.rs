//! Running a batch of futures with at most `limit` in flight, keeping their order in the output,
//! and two futures together: what the tick and the effect clients both use to wait on calls.
//! A plain poll loop: the platform's single-threaded event loop drives it in the Worker, and
//! `testing::http::block_on` drives it in native tests.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Runs every future, at most `limit` at a time, and returns their outputs in input order.
pub async fn run_bounded<F: Future>(futures: Vec<F>, limit: usize) -> Vec<F::Output> {
    let limit = limit.max(1);
    let total = futures.len();
    let mut waiting = futures.into_iter().enumerate();
    let mut running: Vec<(usize, Pin<Box<F>>)> = Vec::with_capacity(limit.min(total));
    let mut outputs: Vec<Option<F::Output>> = (0..total).map(|_| None).collect();
    std::future::poll_fn(|cx| loop {
        while running.len() < limit {
            match waiting.next() {
                Some((i, f)) => running.push((i, Box::pin(f))),
                None => break,
            }
        }
        let before = running.len();
        running.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            Poll::Ready(v) => {
                outputs[*i] = Some(v);
                false
            }
            Poll::Pending => true,
        });
        if running.is_empty() && waiting.len() == 0 {
            return Poll::Ready(());
        }
        if running.len() == before {
            return Poll::Pending;
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

/// Runs two futures together and returns both outputs.
pub async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut out_a, mut out_b) = (None, None);
    std::future::poll_fn(|cx| {
        if out_a.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                out_b = Some(v);
            }
        }
        if out_a.is_some() && out_b.is_some() {
            Poll::Ready(out_a.take().zip(out_b.take()).expect("both finished"))
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::http::block_on;
    use std::cell::Cell;

    /// A future that stays pending for `polls` polls, tracking how many run at once.
    struct Slow<'a> {
        polls: u32,
        started: bool,
        in_flight: &'a Cell<usize>,
        peak: &'a Cell<usize>,
        value: usize,
    }

    impl Future for Slow<'_> {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<usize> {
            if !self.started {
                self.started = true;
                self.in_flight.set(self.in_flight.get() + 1);
                self.peak.set(self.peak.get().max(self.in_flight.get()));
            }
            if self.polls == 0 {
                self.in_flight.set(self.in_flight.get() - 1);
                return Poll::Ready(self.value);
            }
            self.polls -= 1;
            Poll::Pending
        }
    }

    #[test]
    fn keeps_order_and_never_exceeds_the_limit() {
        let in_flight = Cell::new(0);
        let peak = Cell::new(0);
        let futures: Vec<_> = (0..40)
            .map(|i| Slow {
                polls: 1 + (i % 5) as u32,
                started: false,
                in_flight: &in_flight,
                peak: &peak,
                value: i,
            })
            .collect();
        let out = block_on(run_bounded(futures, 16));
        assert_eq!(out, (0..40).collect::<Vec<_>>());
        assert_eq!(peak.get(), 16);
        assert_eq!(in_flight.get(), 0);
    }

    #[test]
    fn both_runs_two_futures_at_once() {
        let in_flight = Cell::new(0);
        let peak = Cell::new(0);
        let slow = |polls, value| Slow {
            polls,
            started: false,
            in_flight: &in_flight,
            peak: &peak,
            value,
        };
        assert_eq!(block_on(both(slow(3, 1), slow(1, 2))), (1, 2));
        assert_eq!(
            peak.get(),
            2,
            "the second started before the first finished"
        );
        assert_eq!(block_on(both(slow(0, 3), slow(4, 4))), (3, 4));
    }

    #[test]
    fn an_empty_batch_finishes() {
        let out: Vec<()> = block_on(run_bounded(Vec::<std::future::Ready<()>>::new(), 16));
        assert!(out.is_empty());
    }
}
