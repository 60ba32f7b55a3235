//! SMTP connections of our own, one per sending worker, kept open between
//! messages. lettre speaks the protocol; the socket is opened here so that
//! TCP_NODELAY can be set: lettre writes a message's closing dot as a small
//! write of its own, and with Nagle's algorithm on each message then waits
//! for the relay's delayed ACK (about 40 ms), which capped every connection
//! at some twenty messages a second.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

/// Why a send on a relay connection failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The relay could not be reached at all.
    #[error("cannot connect to the mail server: {0}")]
    Connect(#[from] std::io::Error),
    /// Anything the SMTP exchange itself reported.
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// How the relay wants TLS.
#[derive(Clone)]
pub enum Security {
    None,
    /// STARTTLS after the greeting.
    StartTls(TlsParameters),
    /// TLS from the first byte (SMTPS).
    Implicit(TlsParameters),
}

/// A connection idle longer than this is checked with NOOP before reuse:
/// relays close idle sessions, and a send on a closed one would look like a
/// relay fault.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(20);

pub struct Relay {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// The most connections kept open.
    keep: usize,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl Relay {
    pub fn new(
        host: String,
        port: u16,
        security: Security,
        credentials: Option<Credentials>,
        keep: usize,
    ) -> Relay {
        Relay {
            host,
            port,
            security,
            credentials,
            hello: ClientId::default(),
            keep,
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, RelayError> {
        let mut conn = match &self.security {
            Security::Implicit(params) => {
                // TLS from the first byte: lettre opens this socket itself.
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    None,
                    &self.hello,
                    Some(params.clone()),
                    None,
                )
                .await?
            }
            Security::None | Security::StartTls(_) => {
                let stream =
                    tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
                let _ = stream.set_nodelay(true);
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await?;
                if let Security::StartTls(params) = &self.security {
                    conn.starttls(params.clone(), &self.hello).await?;
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(conn)
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, RelayError> {
        loop {
            let idle = self.idle.lock().expect("not poisoned").pop();
            match idle {
                Some((mut conn, since)) => {
                    if since.elapsed() < CHECK_AFTER_IDLE || conn.test_connected().await {
                        return Ok(conn);
                    }
                }
                None => return self.connect().await,
            }
        }
    }

    /// Sends one message on a kept connection, or a new one. A connection
    /// that failed is dropped, never reused.
    pub async fn send(
        &self,
        message: &Message,
    ) -> Result<lettre::transport::smtp::response::Response, RelayError> {
        let mut conn = self.checkout().await?;
        let result = conn
            .send(message.envelope(), &message.formatted())
            .await
            .map_err(RelayError::from);
        if result.is_ok() {
            let mut idle = self.idle.lock().expect("not poisoned");
            if idle.len() < self.keep {
                idle.push((conn, Instant::now()));
            }
        }
        result
    }
}
