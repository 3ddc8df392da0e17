//! Starting a job's clients: `-c` connects, one every `-i` milliseconds, at most
//! `--concurrency` handshakes at once; and [`Stop`], the signal that ends a job early
//! (Ctrl-C, a limit reached).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{watch, Semaphore};

use tern_codec::{QoS, TopicFilter};

use super::link::{Dialer, Link};
use super::options::RunOptions;
use super::stats::Stats;
use super::Failure;

/// A job's stop signal; clones watch the same signal.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Stop {
    /// A signal not yet given.
    pub(crate) fn new() -> Stop {
        let (tx, rx) = watch::channel(false);
        Stop {
            tx: Arc::new(tx),
            rx,
        }
    }

    /// A signal given by Ctrl-C (SIGINT) as well.
    pub(crate) fn on_ctrl_c() -> Stop {
        let stop = Stop::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.set();
            }
        });
        stop
    }

    /// Gives the signal.
    pub(crate) fn set(&self) {
        self.tx.send_replace(true);
    }

    /// Whether it was given.
    pub(crate) fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until it is given.
    pub(crate) async fn wait(&mut self) {
        // The sender lives as long as any clone of `self`, so `wait_for` cannot fail early.
        let _ = self.rx.wait_for(|set| *set).await;
    }
}

/// Runs `start(i)` for every client index `i` of `options`, spaced by the interval and
/// bounded by the concurrency, each in its own task; returns the outcomes in index order.
/// Stops starting new ones once `stop` is given (the outcomes then are fewer).
pub(crate) async fn launch<T, F, Fut>(options: &RunOptions, stop: &Stop, start: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(options.concurrency));
    let mut tasks = Vec::with_capacity(options.count);
    for i in 0..options.count {
        if i > 0 && !options.interval.is_zero() {
            tokio::time::sleep(options.interval).await;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        if stop.is_set() {
            break;
        }
        let client = start(i);
        tasks.push(tokio::spawn(async move {
            let outcome = client.await;
            drop(permit);
            outcome
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    outcomes
}

/// Connects `options.count` subscribers, paced as [`launch`] does, subscriber `j` as `ids[j]`
/// subscribed to `filters[j]` at `qos`; each one counts as connected once subscribed.
pub(crate) async fn launch_subscribers(
    options: &RunOptions,
    stop: &Stop,
    dialer: &Arc<Dialer>,
    stats: &Arc<Stats>,
    (ids, filters): (&[String], &[TopicFilter]),
    qos: QoS,
) -> Result<Vec<Link>, Failure> {
    launch(options, stop, |j| {
        let (dialer, stats, id, filter) = (
            dialer.clone(),
            stats.clone(),
            ids[j].clone(),
            filters[j].clone(),
        );
        async move {
            let mut link = dialer.connect(&id).await?;
            link.subscribe(&filter, qos).await?;
            stats.connected.add(1);
            anyhow::Ok(link)
        }
    })
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<Link>>>()
    .map_err(|e| Failure::Run(e.context("a subscriber could not subscribe")))
}
