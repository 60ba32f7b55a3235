//! The console's HTTP server: an accept loop with the limits axum's own
//! `serve` lacks, so that clients who are slow, or many, cannot take the
//! daemon's file descriptors (and with them its mail and database):
//!
//! - at most `max_connections` open at once, half the process's file limit;
//!   when full, the connection that has waited longest for a request's
//!   headers makes way for the new one (a slow client, not a user being
//!   served), and with none waiting the new one is closed;
//! - a request's headers must arrive within `header_read`, and a connection
//!   lasts at most `lifetime`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tower::Service;

/// What the server allows its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read: Duration,
    pub lifetime: Duration,
}

impl Limits {
    /// Half the process's open-file limit for the console's clients; the
    /// rest stays for the relay, the database and the journal.
    pub fn from_file_limit() -> Limits {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given.
        let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            limit.rlim_cur as usize
        } else {
            1024
        };
        Limits {
            max_connections: (soft / 2).clamp(16, 16_384),
            header_read: Duration::from_secs(10),
            lifetime: Duration::from_secs(600),
        }
    }
}

/// The connections open now: for each, since when it has waited for a
/// request's headers (none while a request is being served), and how to end it.
#[derive(Default)]
struct Open {
    next: AtomicU64,
    conns: Mutex<HashMap<u64, (Option<Instant>, CancellationToken)>>,
}

impl Open {
    /// Room for one more: true when there is, or was made by ending the
    /// connection that has waited longest for headers.
    fn make_room(&self, max: usize) -> bool {
        let mut conns = self.conns.lock().expect("not poisoned");
        if conns.len() < max {
            return true;
        }
        let oldest = conns
            .iter()
            .filter_map(|(id, (since, _))| since.map(|s| (s, *id)))
            .min();
        match oldest {
            Some((_, id)) => {
                if let Some((_, end)) = conns.remove(&id) {
                    end.cancel();
                }
                true
            }
            None => false,
        }
    }

    fn add(&self) -> (u64, CancellationToken) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let end = CancellationToken::new();
        self.conns
            .lock()
            .expect("not poisoned")
            .insert(id, (Some(Instant::now()), end.clone()));
        (id, end)
    }

    fn waiting(&self, id: u64, waiting: bool) {
        if let Some(entry) = self.conns.lock().expect("not poisoned").get_mut(&id) {
            entry.0 = waiting.then(Instant::now);
        }
    }

    fn remove(&self, id: u64) {
        self.conns.lock().expect("not poisoned").remove(&id);
    }
}

/// Serves `router` on `listener` until `stop` is cancelled; then the
/// requests in hand are given five seconds to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(Open::default());
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: the listener keeps
                    // the rest waiting in the kernel until some close.
                    tracing::warn!(error = %e, "console: a connection could not be accepted");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if !open.make_room(limits.max_connections) {
            continue; // dropped: closed at once
        }
        let (id, end) = open.add();
        let service = {
            let open = open.clone();
            let router = router.clone();
            hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                open.waiting(id, false);
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                let response = router.clone().call(request);
                let open = open.clone();
                async move {
                    let response = response.await;
                    open.waiting(id, true);
                    response
                }
            })
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        let open = open.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = end.cancelled() => {}
                _ = tokio::time::timeout(limits.lifetime, connection) => {}
            }
            open.remove(id);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_server_ends_the_longest_wait_for_headers_and_keeps_those_being_served() {
        let open = Open::default();
        let (_slow, slow_end) = open.add();
        let (served, served_end) = open.add();
        open.waiting(served, false);
        assert!(open.make_room(3), "room to spare");
        assert!(!slow_end.is_cancelled());
        assert!(open.make_room(2), "made by ending the slow one");
        assert!(slow_end.is_cancelled() && !served_end.is_cancelled());
        assert!(
            !open.make_room(1),
            "only one being served: the new one is closed"
        );
        assert!(!served_end.is_cancelled());
    }
}
