//! Getting a built message out: through an SMTP server, or into a spool folder.

pub mod oauth2;
pub mod smtp;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::{Address, Message};
use secrecy::ExposeSecret;

use oauth2::TokenSource;
use smtp::{
    Login, Report, Security, SmtpClient, Stage, StepError, Timeouts, Trouble, about_the_relay,
};

use crate::config::{AuthKind, Settings, TlsMode, TransportKind};

/// Why a send did not reach every recipient, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// About this message, for now (a 4xx after the login): retried later,
    /// for a while.
    #[error("{0}")]
    Transient(String),
    /// About this message, for good (a 5xx to it, every recipient refused,
    /// a message that cannot be built): retrying won't help.
    #[error("{0}")]
    Permanent(String),
    /// The connection broke while this message was on its way: retried,
    /// but an email that breaks it every time fails after a few tries.
    #[error("{0}")]
    Broken(String),
    /// The relay itself cannot be used: unreachable, silent, closing (421),
    /// TLS failing, refusing keydates' login or its right to send. That is
    /// keydates' own configuration or the relay's fault, never the
    /// recipient's: the email waits, and goes once the relay works again.
    #[error("mail relay: {0}")]
    RelayFault(String),
}

pub use crate::domain::Refusal;

/// What a send achieved: whom the email reached (all of them, unless some
/// were refused or something stopped the rest) and the relay's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub delivered: Vec<String>,
    pub refused: Vec<Refusal>,
    pub reply: String,
    /// What kept the email from the recipients neither reached nor refused.
    pub error: Option<SendError>,
}

impl Delivery {
    /// For a message that concerns nobody else's row (the digest, a test
    /// message): the reply, or why it did not reach everyone.
    pub fn into_result(self) -> Result<String, SendError> {
        match (self.error, self.refused.is_empty()) {
            (Some(e), _) => Err(e),
            (None, true) => Ok(self.reply),
            (None, false) => Err(SendError::Permanent(format!(
                "refused for {}",
                self.refused
                    .iter()
                    .map(|r| format!("{} ({})", r.address, r.reply))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        }
    }

    fn failed(error: SendError) -> Delivery {
        Delivery {
            delivered: Vec::new(),
            refused: Vec::new(),
            reply: String::new(),
            error: Some(error),
        }
    }
}

pub enum Mailer {
    Smtp { client: Box<SmtpClient> },
    File { dir: PathBuf },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { .. } => write!(f, "Mailer::Smtp"),
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

    /// A one-line description for `check-config` and logs; never a secret.
    pub fn describe(settings: &Settings) -> String {
        match settings.mail.transport {
            TransportKind::File => format!("file ({})", settings.spool_dir().display()),
            TransportKind::Smtp => {
                let s = &settings.mail.smtp;
                let login = match (&s.username, s.auth) {
                    (None, _) => String::new(),
                    (Some(u), AuthKind::Password) => format!(" user={u}"),
                    (Some(u), AuthKind::Xoauth2) => format!(
                        " user={u} auth=xoauth2 token_url={}",
                        s.oauth2.as_ref().map_or("", |o| o.token_url.as_str())
                    ),
                };
                format!("smtp {}:{} tls={:?}{login}", s.host, s.port, s.tls)
            }
        }
    }

    /// Sends one message to those of its recipients not in `skip` (reached
    /// or refused by an earlier try), and says what became of each.
    #[tracing::instrument(skip_all)]
    pub async fn send(&self, message: &Message, skip: &[String]) -> Delivery {
        match self {
            Mailer::Smtp { client } => {
                let envelope = message.envelope();
                let recipients: Vec<Address> = envelope
                    .to()
                    .iter()
                    .filter(|a| !skip.iter().any(|s| s.eq_ignore_ascii_case(a.as_ref())))
                    .cloned()
                    .collect();
                if recipients.is_empty() {
                    return Delivery {
                        delivered: Vec::new(),
                        refused: Vec::new(),
                        reply: "every recipient already has it".into(),
                        error: None,
                    };
                }
                let report = client
                    .send(envelope.from(), &recipients, &message.formatted())
                    .await;
                judge(report)
            }
            Mailer::File { dir } => match write_eml(dir, message).await {
                Ok(reply) => Delivery {
                    delivered: message
                        .envelope()
                        .to()
                        .iter()
                        .map(|a| a.to_string())
                        .collect(),
                    refused: Vec::new(),
                    reply,
                    error: None,
                },
                Err(e) => Delivery::failed(e),
            },
        }
    }
}

/// What a relay's report means for the email.
fn judge(report: Report) -> Delivery {
    let refused: Vec<Refusal> = report
        .refused
        .iter()
        .map(|r| Refusal {
            address: r.address.to_string(),
            reply: r.reply.to_string(),
        })
        .collect();
    let error = match &report.stopped {
        Some(stop) => Some(classify(stop)),
        None if report.delivered.is_empty() && report.left.is_empty() => {
            Some(SendError::Permanent(format!(
                "every recipient was refused: {}",
                refused
                    .iter()
                    .map(|r| format!("{} ({})", r.address, r.reply))
                    .collect::<Vec<_>>()
                    .join("; ")
            )))
        }
        None => None,
    };
    Delivery {
        delivered: report.delivered.iter().map(|a| a.to_string()).collect(),
        refused,
        reply: report.replies.join("; "),
        error,
    }
}

/// What a step's failure means for the email.
fn classify(stop: &StepError) -> SendError {
    let text = stop.to_string();
    match &stop.trouble {
        Trouble::Login(_) => SendError::RelayFault(text),
        Trouble::Refused(reply) if about_the_relay(stop.stage, reply) => {
            SendError::RelayFault(text)
        }
        Trouble::Refused(reply) if reply.is_permanent() => SendError::Permanent(text),
        Trouble::Refused(_) => SendError::Transient(text),
        // Before the relay took the envelope, or silent at a command: the
        // relay is at fault. Mid-message, or silent after the final dot
        // (the relay may have taken it), this email is.
        Trouble::Broken(_) | Trouble::Silent(_) => match stop.stage {
            Stage::Connect | Stage::Tls | Stage::Auth | Stage::Mail => SendError::RelayFault(text),
            Stage::Rcpt | Stage::Data => match stop.trouble {
                Trouble::Silent(_) => SendError::RelayFault(text),
                _ => SendError::Broken(text),
            },
            Stage::Message => SendError::Broken(text),
        },
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
    let mut login = None;
    if let Some(user) = &s.username {
        if s.tls == TlsMode::None {
            if !s.allow_plaintext_auth {
                anyhow::bail!(
                    "mail.smtp.username is set with mail.smtp.tls = \"none\": the password would cross the network in clear. Use starttls or tls, or set mail.smtp.allow_plaintext_auth = true for a relay on this machine"
                );
            }
            tracing::warn!(
                "mail.smtp.allow_plaintext_auth is set: the SMTP login is sent without TLS"
            );
        }
        login = Some(match (s.auth, &s.oauth2) {
            (AuthKind::Password, _) => {
                let password = settings
                    .smtp_password()
                    .context("while reading the SMTP password")?
                    .filter(|p| !p.expose_secret().is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "mail.smtp.username is set but the password is missing or empty: set KEYDATES__MAIL__SMTP__PASSWORD, mail.smtp.password_file, or the credential smtp-password"
                        )
                    })?;
                Login::Password(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_string(),
                ))
            }
            (AuthKind::Xoauth2, None) => anyhow::bail!(
                "mail.smtp.auth = \"xoauth2\" needs [mail.smtp.oauth2] with token_url and client_id"
            ),
            (AuthKind::Xoauth2, Some(o)) => {
                let secret = settings
                    .oauth2_secret()
                    .context("while reading the OAuth 2.0 client secret")?
                    .filter(|p| !p.expose_secret().is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "mail.smtp.auth = \"xoauth2\" but the client secret is missing or empty: set KEYDATES__MAIL__SMTP__OAUTH2__CLIENT_SECRET, mail.smtp.oauth2.client_secret_file, or the credential smtp-oauth2-secret"
                        )
                    })?;
                Login::OAuth2 {
                    user: user.clone(),
                    tokens: TokenSource::new(
                        o.token_url.clone(),
                        o.client_id.clone(),
                        secret,
                        o.scope.clone(),
                        Duration::from_secs(s.timeout_secs.min(60)),
                    ),
                }
            }
        });
    } else if s.auth == AuthKind::Xoauth2 {
        anyhow::bail!(
            "mail.smtp.auth = \"xoauth2\" needs mail.smtp.username: the sending mailbox's address"
        );
    }
    Ok(Mailer::Smtp {
        client: Box::new(SmtpClient::new(
            s.host.clone(),
            s.port,
            security,
            login,
            Timeouts {
                command: Duration::from_secs(s.timeout_secs),
                final_reply: Duration::from_secs(s.final_reply_timeout_secs),
            },
            s.pool_size as usize,
        )),
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
