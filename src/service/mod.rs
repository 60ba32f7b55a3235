//! The long-running loop: poll on a cron cadence, reload on SIGHUP, finish the
//! sends in hand and exit when told to stop, and keep systemd informed.

mod notify;
pub mod telemetry;

use std::path::PathBuf;
use std::time::Duration;

use crate::db::Pool;
use anyhow::Context;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};

use tokio::sync::{Notify, mpsc, watch};
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::db::state;
use crate::delivery::{self, Clock, Engine};
use crate::web::WebState;

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

/// Hands memory freed after a large plan back to the system: the allocator
/// would otherwise keep the first full plan's peak for the daemon's life.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A token cancelled on SIGTERM or SIGINT: the sends in hand finish and are
/// recorded, then the pass stops.
pub fn stop_on_signals() -> anyhow::Result<CancellationToken> {
    let stop = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).context("while listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("while listening for SIGINT")?;
    let token = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping: finishing the sends in hand");
        token.cancel();
    });
    Ok(stop)
}

/// Runs passes until `shutdown` is cancelled. Config errors on reload are
/// logged and the old config stays in force.
pub async fn run(
    pool: Pool,
    engine: Arc<Engine>,
    config_path: PathBuf,
    clock: Clock,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut hup = signal(SignalKind::hangup()).context("while listening for SIGHUP")?;
    let notifier = notify::Notifier::from_env();
    let mut engine = engine;
    let (engine_tx, engine_rx) = watch::channel(engine.clone());
    let wake = Arc::new(Notify::new());
    start_console(&pool, &engine, engine_rx, &wake, &shutdown).await?;
    let (tick_tx, mut tick_rx) = mpsc::channel::<()>(1);
    let scheduler = JobScheduler::new().await?;
    let mut job = poll_job(
        &scheduler,
        engine.settings.schedule.poll.as_str(),
        tick_tx.clone(),
    )
    .await?;
    scheduler.start().await?;
    let mut watchdog = Watchdog::new(&notifier);
    let heartbeat = spawn_heartbeat(&pool, &shutdown);
    {
        let wake = wake.clone();
        crate::db::listen_for_changes(&pool, move || wake.notify_one()).await?;
    }

    notifier.send("READY=1");
    tracing::info!(
        instance = %state::worker_id(),
        database = %crate::db::Backend::of(&pool).name(),
        transport = %crate::delivery::transport::Mailer::describe(&engine.settings),
        "keydates started"
    );
    let mut pending_tick = true; // one pass straight away
    loop {
        if pending_tick && !shutdown.is_cancelled() {
            pending_tick = false;
            one_pass(&engine, &pool, clock, &shutdown, &mut watchdog).await;
            if let Ok(line) =
                crate::delivery::health::status_line(&pool, engine.settings.time_zone()).await
            {
                notifier.send(&format!("STATUS={line}"));
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick_rx.recv() => pending_tick = true,
            _ = wake.notified() => pending_tick = true,
            _ = hup.recv() => {
                notifier.send("RELOADING=1");
                if let Some(new) = reload(&config_path, &pool).await {
                    if new.settings.schedule.poll != engine.settings.schedule.poll {
                        scheduler.remove(&job).await?;
                        job = poll_job(&scheduler, new.settings.schedule.poll.as_str(), tick_tx.clone()).await?;
                    }
                    engine = new;
                    let _ = engine_tx.send(engine.clone());
                    pending_tick = true;
                }
                notifier.send("READY=1");
            }
            _ = watchdog.tick() => watchdog.ping(),
        }
    }
    notifier.send("STOPPING=1");
    let _ = heartbeat.await;
    if let Err(e) = state::leave(&pool, chrono::Utc::now()).await {
        tracing::warn!(
            error = crate::db::explain(&e),
            "could not say this instance stopped"
        );
    }
    let mut scheduler = scheduler;
    let _ = scheduler.shutdown().await;
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The console, when configured: it reads the settings in force and wakes
/// the loop when someone changes a record.
async fn start_console(
    pool: &Pool,
    engine: &Engine,
    engine_rx: watch::Receiver<Arc<Engine>>,
    wake: &Arc<Notify>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let Some(addr) = engine.settings.web.address() else {
        return Ok(());
    };
    let listener = match inherited_socket()? {
        Some(socket) => {
            let held = socket.local_addr()?;
            if held != addr {
                tracing::warn!(%held, listen = %addr, "serving the console on the socket the service manager passed, not web.listen");
            }
            tokio::net::TcpListener::from_std(socket)?
        }
        None => tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("web.listen: cannot listen on {addr}"))?,
    };
    // Recorded whenever the console runs; served while `web.metrics` is on,
    // as the settings in force say (a reload switches it either way).
    let metrics = Some(crate::delivery::metrics::install()?);
    let state = Arc::new(WebState::new(
        pool.clone(),
        engine_rx,
        wake.clone(),
        metrics,
    ));
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::web::serve(listener, state, stop).await {
            tracing::error!(error = format!("{e:#}"), "the console stopped");
        }
    });
    tracing::info!(%addr, "console listening");
    if !addr.ip().is_loopback() && !engine.settings.web.secure_cookies() {
        tracing::warn!(
            %addr,
            "the console is reachable from other machines over plain HTTP: put it behind a proxy that terminates TLS and set web.public_url to its https address"
        );
    }
    Ok(())
}

/// The console's socket when the service manager passes one (systemd's
/// socket activation, `LISTEN_FDS`): it was bound before the daemon started,
/// so connections made meanwhile wait instead of being refused.
fn inherited_socket() -> anyhow::Result<Option<std::net::TcpListener>> {
    use std::os::fd::FromRawFd;
    let mut fds = sd_notify::listen_fds().context("while reading LISTEN_FDS")?;
    let Some(fd) = fds.next() else {
        return Ok(None);
    };
    if fds.next().is_some() {
        anyhow::bail!("LISTEN_FDS: the console takes one socket; the service manager passed more");
    }
    // SAFETY: the service manager passed this descriptor to this process
    // (LISTEN_PID is checked), and nothing else here takes it.
    let socket = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    socket
        .set_nonblocking(true)
        .context("while taking the socket the service manager passed")?;
    socket
        .local_addr()
        .context("LISTEN_FDS: the socket passed is not a TCP socket")?;
    Ok(Some(socket))
}

/// Heard by `status` on every machine that shares the database. A task of
/// its own: a heartbeat waiting on the database must never hold up the loop
/// (and its watchdog keepalives).
fn spawn_heartbeat(pool: &Pool, shutdown: &CancellationToken) -> tokio::task::JoinHandle<()> {
    let pool = pool.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let started_at = chrono::Utc::now();
        let mut beat = tokio::time::interval(Duration::from_secs(state::HEARTBEAT_SECS));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = beat.tick() => {}
            }
            if let Err(e) = state::heartbeat(&pool, started_at, chrono::Utc::now()).await {
                tracing::warn!(error = crate::db::explain(&e), "heartbeat not recorded");
            }
        }
    })
}

/// The systemd watchdog keepalive, sent from the loop. While a pass runs it
/// is sent only while the pass makes progress: every step of a pass is
/// bounded (an SMTP command by mail.smtp.timeout_secs, a message's reply by
/// final_reply_timeout_secs, the database by its timeouts), so a pass quiet
/// for longer than its longest step is stuck, and systemd restarts it.
struct Watchdog<'a> {
    notifier: &'a notify::Notifier,
    enabled: bool,
    interval: tokio::time::Interval,
}

impl<'a> Watchdog<'a> {
    fn new(notifier: &'a notify::Notifier) -> Self {
        let every = watchdog_interval();
        Watchdog {
            notifier,
            enabled: every.is_some(),
            interval: tokio::time::interval(every.unwrap_or(Duration::from_secs(3600))),
        }
    }

    async fn tick(&mut self) {
        self.interval.tick().await;
    }

    fn ping(&self) {
        if self.enabled {
            self.notifier.send("WATCHDOG=1");
        }
    }
}

/// The longest any one step of a pass may take under these settings.
fn longest_step(engine: &Engine) -> Duration {
    let s = &engine.settings;
    Duration::from_secs(
        s.mail
            .smtp
            .timeout_secs
            .max(s.mail.smtp.final_reply_timeout_secs)
            .max(s.database.busy_timeout_secs)
            .max(s.database.statement_timeout_secs),
    )
}

/// One pass, with keepalives while it makes progress; its outcome logged.
async fn one_pass(
    engine: &Arc<Engine>,
    pool: &Pool,
    clock: Clock,
    shutdown: &CancellationToken,
    watchdog: &mut Watchdog<'_>,
) {
    let pass = delivery::run_pass(engine, pool, clock, shutdown);
    tokio::pin!(pass);
    let mut stuck_told = false;
    let result = loop {
        tokio::select! {
            result = &mut pass => break result,
            _ = watchdog.tick() => {
                let quiet = delivery::progress::since_last();
                if delivery::progress::is_alive(quiet, longest_step(engine)) {
                    watchdog.ping();
                } else if !stuck_told {
                    stuck_told = true;
                    tracing::error!(
                        quiet_secs = quiet.as_secs(),
                        "the pass has made no progress for longer than any step may take; the watchdog keepalive stops"
                    );
                }
            }
        }
    };
    match result {
        Ok(report) => {
            if report.reconcile != Default::default() {
                release_freed_memory();
            }
            if report.sent + report.failed + report.retrying > 0 || report.reconcile.added > 0 {
                tracing::info!(?report, "pass done");
            }
        }
        Err(e) => tracing::error!(
            error = crate::db::explain(&e),
            "pass failed; will try again"
        ),
    }
}

/// Reads the config again after SIGHUP: the new engine, or `None` (logged)
/// when the config does not load and the old one stays in force.
async fn reload(config_path: &std::path::Path, pool: &Pool) -> Option<Arc<Engine>> {
    match Settings::load(config_path)
        .map_err(anyhow::Error::from)
        .and_then(Engine::new)
    {
        Ok(new) => {
            crate::delivery::metrics::reloaded();
            tracing::info!(rules = new.settings.rules.len(), "config reloaded");
            // A fixed relay setting takes effect at once for the emails waiting on it.
            if let Err(e) = crate::delivery::relay_fault::retry_waiting_now(pool).await {
                tracing::error!(
                    error = format!("{e:#}"),
                    "while releasing emails waiting for the relay"
                );
            }
            Some(Arc::new(new))
        }
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "config not reloaded; the old one stays in force"
            );
            None
        }
    }
}
