//! Getting a built message out: through an SMTP server, or into a spool folder.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::Message;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use secrecy::ExposeSecret;

use super::smtp::{Relay, RelayError, Security};

use crate::config::{Settings, TlsMode, TransportKind};

/// Why a send did not succeed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A 4xx about this message: worth retrying later, for a while.
    #[error("{0}")]
    Transient(String),
    /// 5xx, rejected recipient, a message that cannot be built: retrying won't help.
    #[error("{0}")]
    Permanent(String),
    /// The relay itself cannot be used: unreachable, silent, closing (421),
    /// TLS failing, or refusing keydates' login. That is keydates' own
    /// configuration or the relay's fault, never the recipient's: the email
    /// waits, and goes once the relay works again.
    #[error("mail relay: {0}")]
    Relay(String),
}

/// SMTP replies that are about the relay or keydates' login, not the message:
/// 421 service closing; 454, 530, 534, 535, 538 authentication.
const RELAY_CODES: [&str; 6] = ["421", "454", "530", "534", "535", "538"];

pub enum Mailer {
    Smtp { relay: Relay, timeout: Duration },
    File { dir: PathBuf },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { timeout, .. } => write!(f, "Mailer::Smtp(timeout {timeout:?})"),
            Mailer::File { dir } => write!(f, "Mailer::File({})", dir.display()),
        }
    }
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Mailer> {
        match settings.mail.transport {
            TransportKind::File => {
                let dir = settings.spool_dir();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("while creating the mail spool {}", dir.display()))?;
                Ok(Mailer::File { dir })
            }
            TransportKind::Smtp => smtp(settings),
        }
    }

    /// A one-line description for `check-config` and logs; never the password.
    pub fn describe(settings: &Settings) -> String {
        match settings.mail.transport {
            TransportKind::File => format!("file ({})", settings.spool_dir().display()),
            TransportKind::Smtp => {
                let s = &settings.mail.smtp;
                format!(
                    "smtp {}:{} tls={:?}{}",
                    s.host,
                    s.port,
                    s.tls,
                    s.username
                        .as_ref()
                        .map(|u| format!(" user={u}"))
                        .unwrap_or_default()
                )
            }
        }
    }

    /// Sends one message and returns the server's reply (or where it was written).
    #[tracing::instrument(skip_all)]
    pub async fn send(&self, message: &Message) -> Result<String, SendError> {
        match self {
            Mailer::Smtp { relay, timeout } => {
                // One deadline for the whole send (connecting, TLS, every
                // command and the message): a relay that is silent or trickles
                // cannot hold a pass longer than this.
                match tokio::time::timeout(*timeout, relay.send(message)).await {
                    Err(_) => Err(SendError::Relay(format!(
                        "no complete answer from the mail server within {}s",
                        timeout.as_secs()
                    ))),
                    Ok(Ok(response)) => Ok(format!(
                        "{} {}",
                        response.code(),
                        response.message().collect::<Vec<_>>().join(" ")
                    )),
                    Ok(Err(RelayError::Smtp(e))) => Err(classify(&e)),
                    Ok(Err(e @ RelayError::Connect(_))) => Err(SendError::Relay(e.to_string())),
                }
            }
            Mailer::File { dir } => write_eml(dir, message).await,
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = match std::error::Error::source(e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    };
    let code = e.status().map(|c| c.to_string());
    let relay_code = code.as_deref().is_some_and(|c| RELAY_CODES.contains(&c));
    if relay_code {
        SendError::Relay(text)
    } else if e.is_permanent() {
        SendError::Permanent(text)
    } else if e.is_transient() {
        SendError::Transient(text)
    } else {
        // No SMTP reply at all: connecting, TLS, a lost connection, or a
        // reply that could not be read.
        SendError::Relay(text)
    }
}

fn smtp(settings: &Settings) -> anyhow::Result<Mailer> {
    let s = &settings.mail.smtp;
    let mut security = Security::None;
    if s.tls != TlsMode::None {
        let mut params = TlsParameters::builder(s.host.clone());
        if let Some(ca) = &s.ca_file {
            let path = settings.resolve(ca);
            let pem = std::fs::read(&path)
                .with_context(|| format!("while reading mail.smtp.ca_file {}", path.display()))?;
            let cert = Certificate::from_pem(&pem).with_context(|| {
                format!(
                    "mail.smtp.ca_file {} is not a PEM certificate",
                    path.display()
                )
            })?;
            params = params.add_root_certificate(cert);
        }
        let params = params
            .build_rustls()
            .context("while setting up TLS for mail.smtp")?;
        security = match s.tls {
            TlsMode::Tls => Security::Implicit(params),
            _ => Security::StartTls(params),
        };
    }
    let mut credentials = None;
    if let Some(user) = &s.username {
        if s.tls == TlsMode::None {
            if !s.allow_plaintext_auth {
                anyhow::bail!(
                    "mail.smtp.username is set with mail.smtp.tls = \"none\": the password would cross the network in clear. Use starttls or tls, or set mail.smtp.allow_plaintext_auth = true for a relay on this machine"
                );
            }
            tracing::warn!(
                "mail.smtp.allow_plaintext_auth is set: the SMTP password is sent without TLS"
            );
        }
        let password = settings
            .smtp_password()
            .context("while reading the SMTP password")?
            .filter(|p| !p.expose_secret().is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "mail.smtp.username is set but the password is missing or empty: set KEYDATES__MAIL__SMTP__PASSWORD, mail.smtp.password_file, or the credential smtp-password"
                )
            })?;
        credentials = Some(Credentials::new(
            user.clone(),
            password.expose_secret().to_string(),
        ));
    }
    Ok(Mailer::Smtp {
        relay: Relay::new(
            s.host.clone(),
            s.port,
            security,
            credentials,
            s.pool_size as usize,
        ),
        timeout: Duration::from_secs(s.timeout_secs),
    })
}

/// Writes `<message-id>.eml` atomically: a crash leaves no half-written file.
async fn write_eml(dir: &std::path::Path, message: &Message) -> Result<String, SendError> {
    let id = message
        .headers()
        .get_raw("Message-ID")
        .unwrap_or("message")
        .to_string();
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{}.eml", name.trim_matches('_')));
    let tmp = dir.join(format!(".{}.tmp", name.trim_matches('_')));
    let bytes = message.formatted();
    let write = async {
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, &path).await
    };
    write
        .await
        .map(|_| format!("written to {}", path.display()))
        .map_err(|e| SendError::Transient(format!("cannot write {}: {e}", path.display())))
}
