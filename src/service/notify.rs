//! Messages to systemd (`READY=1`, `WATCHDOG=1`, `STATUS=...`) on a socket
//! opened once at start: a keepalive never needs a new file descriptor, so
//! a process short of them still tells systemd it is alive.

use std::os::unix::net::{SocketAddr, UnixDatagram};

pub struct Notifier(Option<(UnixDatagram, SocketAddr)>);

impl Notifier {
    /// The socket `NOTIFY_SOCKET` names; outside systemd there is none, and
    /// every message is dropped.
    pub fn from_env() -> Notifier {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier(None);
        };
        let path = path.to_string_lossy().into_owned();
        let address = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())
            }
            None => SocketAddr::from_pathname(&path),
        };
        match (UnixDatagram::unbound(), address) {
            (Ok(socket), Ok(address)) => Notifier(Some((socket, address))),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, socket = %path, "systemd's notify socket cannot be used");
                Notifier(None)
            }
        }
    }

    pub fn send(&self, message: &str) {
        if let Some((socket, address)) = &self.0 {
            // systemd may be restarting: nothing to do but try next time.
            let _ = socket.send_to_addr(message.as_bytes(), address);
        }
    }
}
