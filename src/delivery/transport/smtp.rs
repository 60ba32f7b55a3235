//! SMTP sessions of our own, one per sending worker, kept open between
//! messages. lettre speaks the protocol, one command at a time, so that each
//! reply is known with the step it answered: a refused login is not a refused
//! recipient, and one refused Cc does not stop the others (RFC 5321 §3.3).
//!
//! The socket is opened here so that TCP_NODELAY can be set: lettre writes a
//! message's closing dot as a small write of its own, and with Nagle's
//! algorithm on each message then waits for the relay's delayed ACK (about
//! 40 ms), which capped every connection at some twenty messages a second.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, MailBodyParameter, MailParameter};

use super::oauth2::TokenSource;

/// How the relay wants TLS.
#[derive(Clone)]
pub enum Security {
    None,
    /// STARTTLS after the greeting.
    StartTls(TlsParameters),
    /// TLS from the first byte (SMTPS).
    Implicit(TlsParameters),
}

/// How keydates logs in.
pub enum Login {
    /// AUTH PLAIN or LOGIN with a password.
    Password(Credentials),
    /// AUTH XOAUTH2 with a token from an OAuth 2.0 client-credentials grant.
    OAuth2 { user: String, tokens: TokenSource },
}

/// How long to wait for the relay. RFC 5321 §4.5.3.2 gives five minutes for
/// the greeting and each command, and ten for the reply to the final dot:
/// the relay may be checking the message, and giving up early only sends
/// it again.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub command: Duration,
    pub final_reply: Duration,
}

/// The step of the exchange a reply or a failure came at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
pub enum Stage {
    #[strum(serialize = "connecting")]
    Connect,
    #[strum(serialize = "STARTTLS")]
    Tls,
    #[strum(serialize = "AUTH")]
    Auth,
    #[strum(serialize = "MAIL FROM")]
    Mail,
    #[strum(serialize = "RCPT TO")]
    Rcpt,
    #[strum(serialize = "DATA")]
    Data,
    /// The reply to the message's final dot.
    #[strum(serialize = "the end of the message")]
    Message,
}

/// A negative reply of the relay: its code and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    /// The enhanced status code (RFC 3463) the text starts with, as
    /// class, subject and detail; only when its class agrees with the code.
    pub fn enhanced(&self) -> Option<(u16, u16, u16)> {
        let word = self.text.split_whitespace().next()?;
        let mut parts = word.split('.').map(|p| p.parse::<u16>().ok());
        let (class, subject, detail) = (parts.next()??, parts.next()??, parts.next()??);
        (parts.next().is_none() && class == self.code / 100 && matches!(class, 2 | 4 | 5))
            .then_some((class, subject, detail))
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    fn of(e: &lettre::transport::smtp::Error) -> Option<Reply> {
        let code: u16 = e.status()?.to_string().parse().ok()?;
        let text = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default();
        Some(Reply { code, text })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// What stopped a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// The relay answered no.
    Refused(Reply),
    /// The connection failed or closed, or the reply could not be read.
    Broken(String),
    /// No reply within the step's time.
    Silent(Duration),
    /// keydates could not log in for a reason of its own (no token).
    Login(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub stage: Stage,
    pub trouble: Trouble,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.trouble {
            Trouble::Refused(reply) => write!(f, "{} refused at {}", reply, self.stage),
            Trouble::Broken(why) => write!(f, "connection lost at {}: {why}", self.stage),
            Trouble::Silent(after) => write!(
                f,
                "no answer from the mail server at {} within {}s",
                self.stage,
                after.as_secs()
            ),
            Trouble::Login(why) => write!(f, "cannot log in to the mail server: {why}"),
        }
    }
}

/// One recipient the relay refused for good, with its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub address: Address,
    pub reply: Reply,
}

/// What one send achieved: the recipients the message reached, those the
/// relay refused, and what stopped the rest, if anything did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub delivered: Vec<Address>,
    pub refused: Vec<Refused>,
    /// The relay's reply to each message it took.
    pub replies: Vec<String>,
    /// Recipients neither reached nor refused for good.
    pub left: Vec<Address>,
    pub stopped: Option<StepError>,
}

/// A connection idle longer than this is checked with NOOP before reuse:
/// relays close idle sessions.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(20);

/// How long to look for a reply after a write failed mid-message: a relay
/// that refuses a message as too large often says so, then closes.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// The SMTP client that talks to the relay, keeping connections between emails.
pub struct SmtpClient {
    host: String,
    port: u16,
    security: Security,
    login: Option<Login>,
    hello: ClientId,
    timeouts: Timeouts,
    /// The most connections kept open.
    keep: usize,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

/// One transaction's result.
struct Transaction {
    accepted: Vec<Address>,
    refused: Vec<Refused>,
    /// Refused for now (4xx, too many recipients): for another transaction.
    deferred: Vec<(Address, Reply)>,
    end: Result<Option<String>, StepError>,
}

impl SmtpClient {
    pub fn new(
        host: String,
        port: u16,
        security: Security,
        login: Option<Login>,
        timeouts: Timeouts,
        keep: usize,
    ) -> SmtpClient {
        SmtpClient {
            host,
            port,
            security,
            login,
            hello: ClientId::default(),
            timeouts,
            keep,
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn step<T>(
        &self,
        stage: Stage,
        limit: Duration,
        work: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, StepError> {
        let result = tokio::time::timeout(limit, work).await;
        // A reply, or a command given up at its limit: either way the pass moved on.
        crate::delivery::progress::made();
        match result {
            Err(_) => Err(StepError {
                stage,
                trouble: Trouble::Silent(limit),
            }),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StepError {
                stage,
                trouble: match Reply::of(&e) {
                    Some(reply) => Trouble::Refused(reply),
                    None => Trouble::Broken(match std::error::Error::source(&e) {
                        Some(source) => format!("{e}: {source}"),
                        None => e.to_string(),
                    }),
                },
            }),
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, StepError> {
        let limit = self.timeouts.command;
        let mut conn = match &self.security {
            Security::Implicit(params) => {
                // TLS from the first byte: lettre opens this socket itself.
                self.step(
                    Stage::Connect,
                    limit,
                    AsyncSmtpConnection::connect_tokio1(
                        (self.host.as_str(), self.port),
                        Some(limit),
                        &self.hello,
                        Some(params.clone()),
                        None,
                    ),
                )
                .await?
            }
            Security::None | Security::StartTls(_) => {
                let stream = tokio::time::timeout(
                    limit,
                    tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|_| StepError {
                    stage: Stage::Connect,
                    trouble: Trouble::Silent(limit),
                })?
                .map_err(|e| StepError {
                    stage: Stage::Connect,
                    trouble: Trouble::Broken(format!("cannot connect to the mail server: {e}")),
                })?;
                let _ = stream.set_nodelay(true);
                let mut conn = self
                    .step(
                        Stage::Connect,
                        limit,
                        AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
                    )
                    .await?;
                if let Security::StartTls(params) = &self.security {
                    self.step(
                        Stage::Tls,
                        limit,
                        conn.starttls(params.clone(), &self.hello),
                    )
                    .await?;
                }
                conn
            }
        };
        match &self.login {
            None => {}
            Some(Login::Password(credentials)) => {
                self.step(
                    Stage::Auth,
                    limit,
                    conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
                )
                .await?;
            }
            Some(Login::OAuth2 { user, tokens }) => {
                self.oauth2(&mut conn, user, tokens).await?;
            }
        }
        Ok(conn)
    }

    /// XOAUTH2 with the cached token; a refused token is fetched anew once,
    /// in case it was revoked or expired early.
    async fn oauth2(
        &self,
        conn: &mut AsyncSmtpConnection,
        user: &str,
        tokens: &TokenSource,
    ) -> Result<(), StepError> {
        let login = |why: String| StepError {
            stage: Stage::Auth,
            trouble: Trouble::Login(why),
        };
        let mut fresh = false;
        loop {
            let token = if fresh {
                tokens.renew().await
            } else {
                tokens.token().await
            }
            .map_err(|e| login(e.to_string()))?;
            let credentials = Credentials::new(user.to_string(), token);
            match self
                .step(
                    Stage::Auth,
                    self.timeouts.command,
                    conn.auth(&[Mechanism::Xoauth2], &credentials),
                )
                .await
            {
                Err(StepError {
                    trouble: Trouble::Refused(reply),
                    ..
                }) if reply.code == 535 && !fresh => {
                    tracing::info!(%reply, "the relay refused the access token; fetching a new one");
                    fresh = true;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// A kept connection, or a new one; says which.
    async fn checkout(&self) -> Result<(AsyncSmtpConnection, bool), StepError> {
        loop {
            let idle = self.idle.lock().expect("not poisoned").pop();
            match idle {
                Some((mut conn, since)) => {
                    if since.elapsed() < CHECK_AFTER_IDLE
                        || tokio::time::timeout(self.timeouts.command, conn.test_connected())
                            .await
                            .unwrap_or(false)
                    {
                        return Ok((conn, true));
                    }
                }
                None => return Ok((self.connect().await?, false)),
            }
        }
    }

    fn keep_open(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().expect("not poisoned");
        if idle.len() < self.keep {
            idle.push((conn, Instant::now()));
        }
    }

    /// Sends one message to `recipients`: in as many transactions as the
    /// relay needs (it may take only so many recipients at a time), each
    /// recipient once. A connection that failed is dropped, never reused.
    pub async fn send(
        &self,
        from: Option<&Address>,
        recipients: &[Address],
        message: &[u8],
    ) -> Report {
        let mut report = Report::default();
        let mut left: Vec<Address> = recipients.to_vec();
        // A kept connection the relay closed meanwhile fails at its first
        // command, before the relay has taken anything: one new connection
        // then, without counting it against the email.
        let mut reconnected = false;
        while !left.is_empty() {
            let (mut conn, reused) = match self.checkout().await {
                Ok(c) => c,
                Err(e) => {
                    report.stopped = Some(e);
                    break;
                }
            };
            let tx = self.transaction(&mut conn, from, &left, message).await;
            let progress = !tx.accepted.is_empty() && matches!(tx.end, Ok(Some(_)));
            report.refused.extend(tx.refused);
            match tx.end {
                Ok(reply) => {
                    if let Some(reply) = reply {
                        report.replies.push(reply);
                        report.delivered.extend(tx.accepted);
                    }
                    self.keep_open(conn);
                    left = tx.deferred.iter().map(|(a, _)| a.clone()).collect();
                    if !progress {
                        // Nothing taken this time: the rest wait for a retry.
                        if let Some((_, reply)) = tx.deferred.into_iter().next() {
                            report.stopped = Some(StepError {
                                stage: Stage::Rcpt,
                                trouble: Trouble::Refused(reply),
                            });
                        }
                        break;
                    }
                }
                Err(e) => {
                    conn.abort().await;
                    // Postfix says `421 4.4.2 Error: timeout exceeded` as it
                    // closes an idle session: read at the next MAIL FROM.
                    let closed = match &e.trouble {
                        Trouble::Broken(_) => true,
                        Trouble::Refused(reply) => reply.code == 421,
                        _ => false,
                    };
                    let stale = reused && !reconnected && e.stage == Stage::Mail && closed;
                    if stale {
                        tracing::debug!(error = %e, "a kept connection was closed by the relay; connecting again");
                        reconnected = true;
                        continue;
                    }
                    report.stopped = Some(e);
                    break;
                }
            }
        }
        report.left = left;
        report
    }

    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        from: Option<&Address>,
        recipients: &[Address],
        message: &[u8],
    ) -> Transaction {
        let mut tx = Transaction {
            accepted: Vec::new(),
            refused: Vec::new(),
            deferred: Vec::new(),
            end: Ok(None),
        };
        let limit = self.timeouts.command;
        let mut options = Vec::new();
        if !message.is_ascii() {
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if let Err(e) = self
            .step(
                Stage::Mail,
                limit,
                conn.command(Mail::new(from.cloned(), options)),
            )
            .await
        {
            tx.end = Err(e);
            return tx;
        }
        for address in recipients {
            match self
                .step(
                    Stage::Rcpt,
                    limit,
                    conn.command(Rcpt::new(address.clone(), vec![])),
                )
                .await
            {
                Ok(_) => tx.accepted.push(address.clone()),
                Err(StepError {
                    trouble: Trouble::Refused(reply),
                    stage,
                }) => {
                    if about_the_relay(stage, &reply) {
                        tx.end = Err(StepError {
                            stage,
                            trouble: Trouble::Refused(reply),
                        });
                        return tx;
                    }
                    if reply.is_permanent() {
                        tx.refused.push(Refused {
                            address: address.clone(),
                            reply,
                        });
                    } else {
                        tx.deferred.push((address.clone(), reply));
                    }
                }
                Err(e) => {
                    tx.end = Err(e);
                    return tx;
                }
            }
        }
        if tx.accepted.is_empty() {
            // Nobody to send to in this transaction: end it cleanly.
            if let Err(e) = self.step(Stage::Rcpt, limit, conn.command(Rset)).await {
                tx.end = Err(e);
            }
            return tx;
        }
        if let Err(e) = self.step(Stage::Data, limit, conn.command(Data)).await {
            tx.end = Err(e);
            return tx;
        }
        tx.end = match self
            .step(
                Stage::Message,
                self.timeouts.final_reply,
                conn.message(message),
            )
            .await
        {
            Ok(reply) => Ok(Some(format!(
                "{} {}",
                reply.code(),
                reply.message().collect::<Vec<_>>().join(" ")
            ))),
            Err(StepError {
                stage,
                trouble: Trouble::Broken(why),
            }) => {
                // The relay may have said why before it closed.
                match self.step(stage, LAST_WORDS, conn.read_response()).await {
                    Err(
                        refused @ StepError {
                            trouble: Trouble::Refused(_),
                            ..
                        },
                    ) => Err(refused),
                    _ => Err(StepError {
                        stage,
                        trouble: Trouble::Broken(why),
                    }),
                }
            }
            Err(e) => Err(e),
        };
        tx
    }
}

/// Whether a negative reply is about the relay or keydates' right to use it
/// (its login, TLS, the connection, the sender), rather than one recipient
/// or one message. Judged by the enhanced status code (RFC 3463) where the
/// relay gives one, by the basic code otherwise.
pub fn about_the_relay(stage: Stage, reply: &Reply) -> bool {
    let enhanced = reply.enhanced();
    let text = reply.text.to_ascii_lowercase();
    // 421: the service is closing the connection, whatever it was answering.
    if reply.code == 421 {
        return true;
    }
    // Exchange's refusal to let the mailbox send as the sender, after DATA.
    if text.contains("sendasdenied") || text.contains("send as denied") {
        return true;
    }
    // 5.7.57: client not authenticated to send mail.
    if matches!(enhanced, Some((_, 7, 57))) {
        return true;
    }
    match stage {
        Stage::Connect | Stage::Tls | Stage::Auth => true,
        // The sender is keydates' own address: a refusal of it is a refusal
        // of every email, except one about this message's size or content.
        Stage::Mail => !matches!(enhanced, Some((_, 3, 4)) | Some((_, 6, _))),
        // Relaying denied is about keydates' right to send, not the
        // recipient; other security refusals concern that recipient.
        Stage::Rcpt => {
            matches!(enhanced, Some((_, 7, 1))) && text.contains("relay")
                || enhanced.is_none()
                    && matches!(reply.code, 530 | 535 | 554)
                    && text.contains("relay")
        }
        Stage::Data => matches!(enhanced, Some((_, 7, _))),
        Stage::Message => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply {
            code,
            text: text.to_string(),
        }
    }

    #[test]
    fn the_enhanced_code_is_read_only_when_its_class_agrees() {
        assert_eq!(
            reply(550, "5.7.30 Basic authentication is not supported").enhanced(),
            Some((5, 7, 30))
        );
        assert_eq!(reply(550, "4.7.30 odd").enhanced(), None);
        assert_eq!(reply(550, "Mailbox unavailable").enhanced(), None);
        assert_eq!(
            reply(452, "4.5.3 Too many recipients").enhanced(),
            Some((4, 5, 3))
        );
    }

    #[test]
    fn refusals_of_the_login_or_the_sender_are_about_the_relay() {
        let cases = [
            (
                Stage::Auth,
                reply(
                    550,
                    "5.7.30 Basic authentication is not supported for Client Submission",
                ),
                true,
            ),
            (
                Stage::Auth,
                reply(535, "5.7.139 Authentication unsuccessful"),
                true,
            ),
            (
                Stage::Mail,
                reply(530, "5.7.57 Client not authenticated to send mail"),
                true,
            ),
            (
                Stage::Mail,
                reply(
                    550,
                    "5.7.60 SMTP; Client does not have permissions to send as this sender",
                ),
                true,
            ),
            (
                Stage::Mail,
                reply(552, "5.3.4 Message size exceeds fixed limit"),
                false,
            ),
            (
                Stage::Rcpt,
                reply(554, "5.7.1 <x@example.org>: Relay access denied"),
                true,
            ),
            (
                Stage::Rcpt,
                reply(
                    550,
                    "5.1.10 RecipientNotFound; Recipient not found by SMTP address lookup",
                ),
                false,
            ),
            (
                Stage::Rcpt,
                reply(550, "5.7.1 Delivery not authorized, message refused"),
                false,
            ),
            (
                Stage::Rcpt,
                reply(421, "4.7.66 Too many connections, throttled"),
                true,
            ),
            (
                Stage::Message,
                reply(
                    554,
                    "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied",
                ),
                true,
            ),
            (
                Stage::Message,
                reply(552, "5.3.4 Message size exceeds fixed maximum message size"),
                false,
            ),
            (
                Stage::Message,
                reply(550, "5.7.1 Message rejected as spam"),
                false,
            ),
        ];
        for (stage, r, expected) in cases {
            assert_eq!(about_the_relay(stage, &r), expected, "{stage} {r}");
        }
    }
}
