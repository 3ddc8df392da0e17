//! The checkpointer thread: folds a finished journal generation into the database while the
//! writer goes on journaling into the other file, so a large checkpoint (a long queue for an
//! offline session) never holds up acknowledgements.
//!
//! One fold at a time: the writer waits for the previous fold before it starts the next, as
//! the next generation reuses the previous one's file.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::apply::Applier;
use super::{Op, StoreStats};

/// A generation's pending operations, to be written to the database.
struct Fold {
    ops: Vec<Op>,
    generation: u64,
}

/// The writer's handle on the checkpointer thread.
pub(super) struct Checkpointer {
    tx: Option<mpsc::SyncSender<Fold>>,
    done: mpsc::Receiver<Result<(), String>>,
    /// A fold was started and its result not yet taken.
    busy: bool,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread, which owns the database from now on.
    pub(super) fn start(mut applier: Applier, stats: Arc<StoreStats>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Fold>(1);
        let (done_tx, done) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("tern-checkpoint".into())
            .spawn(move || {
                for fold in rx {
                    let result = applier
                        .apply(fold.ops, fold.generation)
                        .map_err(|e| e.to_string());
                    if result.is_ok() {
                        stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                    }
                    if done_tx.send(result).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Checkpointer {
            tx: Some(tx),
            done,
            busy: false,
            thread: Some(thread),
        })
    }

    /// Waits for the fold in progress, if any; its error if it failed.
    pub(super) fn wait(&mut self) -> Result<(), String> {
        if !std::mem::take(&mut self.busy) {
            return Ok(());
        }
        self.done
            .recv()
            .unwrap_or_else(|_| Err("the checkpoint thread stopped".into()))
    }

    /// Hands `ops` of journal `generation` to the thread. Call [`Checkpointer::wait`] first.
    pub(super) fn fold(&mut self, ops: Vec<Op>, generation: u64) -> Result<(), String> {
        debug_assert!(!self.busy, "one fold at a time");
        let tx = self.tx.as_ref().ok_or("the checkpoint thread stopped")?;
        tx.send(Fold { ops, generation })
            .map_err(|_| "the checkpoint thread stopped".to_owned())?;
        self.busy = true;
        Ok(())
    }

    /// Waits for the last fold, stops the thread and closes the database.
    pub(super) fn close(&mut self) -> Result<(), String> {
        let result = self.wait();
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        result
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
