//! The long-running loop: poll on a cron cadence, reload on SIGHUP, finish the
//! send in hand and exit on SIGTERM/SIGINT, and keep systemd informed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::Settings;
use crate::deliver::{self, Clock, Engine};

fn notify(state: &[NotifyState]) {
    // Outside systemd there is no socket; that is not an error.
    let _ = sd_notify::notify(false, state);
}

/// Half the watchdog interval systemd asked for, if it asked.
fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2))
}

async fn poll_job(
    scheduler: &JobScheduler,
    cron: &str,
    tick: mpsc::Sender<()>,
) -> anyhow::Result<uuid::Uuid> {
    let job = Job::new_async(cron, move |_, _| {
        let tick = tick.clone();
        Box::pin(async move {
            // A full channel means a pass is already waiting: nothing is lost.
            let _ = tick.try_send(());
        })
    })
    .with_context(|| format!("schedule.poll `{cron}`"))?;
    Ok(scheduler.add(job).await?)
}

/// A flag set (and a notification sent) on SIGTERM or SIGINT: the send in
/// hand finishes and is recorded, then the pass stops.
pub fn stop_on_signals() -> anyhow::Result<(Arc<AtomicBool>, Arc<Notify>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(Notify::new());
    let mut term = signal(SignalKind::terminate()).context("while listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("while listening for SIGINT")?;
    let (flag, notify) = (stop.clone(), stopped.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping: finishing the send in hand");
        flag.store(true, Ordering::SeqCst);
        notify.notify_one();
    });
    Ok((stop, stopped))
}

/// Runs until SIGTERM or SIGINT. Config errors on reload are logged and the
/// old config stays in force.
pub async fn run(config_path: PathBuf, settings: Settings, clock: Clock) -> anyhow::Result<()> {
    let pool = crate::commands::open(&settings).await?;
    let mut engine = Engine::new(settings)?;
    let (stop, stopped) = stop_on_signals()?;
    let mut hup = signal(SignalKind::hangup()).context("while listening for SIGHUP")?;

    let (tick_tx, mut tick_rx) = mpsc::channel::<()>(1);
    let scheduler = JobScheduler::new().await?;
    let mut job = poll_job(&scheduler, &engine.settings.schedule.poll, tick_tx.clone()).await?;
    scheduler.start().await?;

    let watchdog = watchdog_interval();
    let mut keepalive = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let after_each = || {
        if watchdog.is_some() {
            notify(&[NotifyState::Watchdog]);
        }
    };

    notify(&[NotifyState::Ready]);
    tracing::info!(transport = %crate::mail::transport::Mailer::describe(&engine.settings), "keydates started");
    let mut pending_tick = true; // one pass straight away
    loop {
        if pending_tick && !stop.load(Ordering::SeqCst) {
            pending_tick = false;
            match deliver::run_pass(&engine, &pool, clock, &stop, after_each).await {
                Ok(report) => {
                    if report.sent + report.failed + report.retrying > 0
                        || report.reconcile.added > 0
                    {
                        tracing::info!(?report, "pass done");
                    }
                }
                Err(e) => tracing::error!(
                    error = crate::records::store::explain(&e),
                    "pass failed; will try again"
                ),
            }
            if let Ok(line) = deliver::status_line(&pool, &engine).await {
                notify(&[NotifyState::Status(&line)]);
            }
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        tokio::select! {
            _ = tick_rx.recv() => pending_tick = true,
            _ = stopped.notified() => break,
            _ = hup.recv() => {
                notify(&[NotifyState::Reloading]);
                match Settings::load(&config_path).map_err(anyhow::Error::from).and_then(Engine::new) {
                    Ok(new) => {
                        if new.settings.schedule.poll != engine.settings.schedule.poll {
                            scheduler.remove(&job).await?;
                            job = poll_job(&scheduler, &new.settings.schedule.poll, tick_tx.clone()).await?;
                        }
                        engine = new;
                        tracing::info!(rules = engine.settings.rules.len(), "config reloaded");
                        pending_tick = true;
                    }
                    Err(e) => tracing::error!(error = format!("{e:#}"), "config not reloaded; the old one stays in force"),
                }
                notify(&[NotifyState::Ready]);
            }
            _ = keepalive.tick() => after_each(),
        }
    }
    notify(&[NotifyState::Stopping]);
    let mut scheduler = scheduler;
    let _ = scheduler.shutdown().await;
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}
