//! The sealer: one background thread that seals closed partitions when the engine hints
//! that one may have closed (or its head is over the memory bound), and at least every
//! `poll_interval` regardless. A failed seal (say, a full disk) is recorded and retried;
//! nothing is lost meanwhile, since the samples stay in the head and the WAL.

use chronolith_engine::Engine;
use crossbeam::channel::{bounded, select, Receiver, Sender};
use parking_lot::Mutex;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the sealer has done so far.
#[derive(Clone, Debug, Default)]
pub struct SealerStatus {
    pub runs: u64,
    pub blocks_written: u64,
    pub last_error: Option<String>,
    pub last_duration: Duration,
}

#[derive(Debug)]
pub struct Sealer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<SealerStatus>>,
}

impl Sealer {
    pub fn spawn(engine: Arc<Engine>, poll_interval: Duration) -> std::io::Result<Self> {
        // Capacity 1: hints coalesce; a hint while a run is queued adds nothing.
        let (hint_tx, hint_rx) = bounded::<()>(1);
        let (stop_tx, stop_rx) = bounded::<()>(1);
        engine.set_seal_hook(move || {
            let _ = hint_tx.try_send(());
        });
        let status = Arc::new(Mutex::new(SealerStatus::default()));
        let st = status.clone();
        let thread = std::thread::Builder::new()
            .name("chronolith-sealer".into())
            .spawn(move || run(&engine, &hint_rx, &stop_rx, poll_interval, &st))?;
        Ok(Self { stop: Some(stop_tx), thread: Some(thread), status })
    }

    pub fn status(&self) -> SealerStatus {
        self.status.lock().clone()
    }

    /// Stops the thread after its current run.
    pub fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    engine: &Engine,
    hints: &Receiver<()>,
    stop: &Receiver<()>,
    poll_interval: Duration,
    status: &Mutex<SealerStatus>,
) {
    loop {
        select! {
            recv(stop) -> _ => return,
            recv(hints) -> _ => {},
            default(poll_interval) => {},
        }
        let started = Instant::now();
        let result = engine.seal_closed();
        let mut s = status.lock();
        s.runs += 1;
        s.last_duration = started.elapsed();
        match result {
            Ok(n) => {
                s.blocks_written += n as u64;
                s.last_error = None;
            }
            Err(e) => s.last_error = Some(e.to_string()),
        }
    }
}
