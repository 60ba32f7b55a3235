//! The second path for the one alert that cannot go through the relay: the
//! relay itself is down. `mail.alert_to` names it: a command run with the
//! alert on its standard input, or an address on a second relay.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::io::AsyncWriteExt;

use crate::domain::EmailAddress;

/// Where the relay-down alert goes.
#[derive(Debug, Clone, PartialEq, Eq, serde_with::DeserializeFromStr)]
pub enum AlertTo {
    /// `/usr/local/bin/page-ims`: run with no shell, the alert on stdin.
    Command(PathBuf),
    /// `smtp://HOST[:PORT]/ADDRESS`: sent through that relay, with STARTTLS
    /// when it offers it, without a login.
    Smtp {
        host: String,
        port: u16,
        to: EmailAddress,
    },
}

impl std::str::FromStr for AlertTo {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with('/') {
            return Ok(AlertTo::Command(PathBuf::from(s)));
        }
        let help =
            "give a command's absolute path (/usr/local/bin/NAME) or smtp://HOST[:PORT]/ADDRESS";
        let rest = s
            .strip_prefix("smtp://")
            .ok_or_else(|| format!("`{s}` is neither a command nor an smtp:// address: {help}"))?;
        let (server, address) = rest
            .split_once('/')
            .ok_or_else(|| format!("`{s}` names no address after the relay: {help}"))?;
        let (host, port) = match server.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("`{p}` in `{s}` is not a port"))?,
            ),
            None => (server, 25),
        };
        if host.is_empty() {
            return Err(format!("`{s}` names no relay host: {help}"));
        }
        Ok(AlertTo::Smtp {
            host: host.to_string(),
            port,
            to: EmailAddress::parse(address).map_err(|e| format!("`{address}`: {e}"))?,
        })
    }
}

/// The longest an alert may take, whichever path.
const ALERT_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends one alert by the second path.
#[tracing::instrument(skip_all)]
pub async fn send(
    to: &AlertTo,
    from: &lettre::message::Mailbox,
    subject: &str,
    text: &str,
) -> anyhow::Result<()> {
    match to {
        AlertTo::Command(path) => {
            let mut child = tokio::process::Command::new(path)
                .arg(subject)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    anyhow::anyhow!("mail.alert_to: cannot run {}: {e}", path.display())
                })?;
            let mut stdin = child.stdin.take().expect("piped");
            let body = format!("{subject}\n\n{text}");
            let run = async {
                // A command that does not read its input still runs.
                let _ = stdin.write_all(body.as_bytes()).await;
                drop(stdin);
                child.wait().await
            };
            let status = tokio::time::timeout(ALERT_TIMEOUT, run)
                .await
                .map_err(|_| {
                    anyhow::anyhow!("mail.alert_to: {} ran for over a minute", path.display())
                })??;
            anyhow::ensure!(
                status.success(),
                "mail.alert_to: {} exited with {status}",
                path.display()
            );
            Ok(())
        }
        AlertTo::Smtp { host, port, to } => {
            let message = crate::mail::builder_from(from.clone())
                .to(to.mailbox())
                .subject(subject)
                .body(text.to_string())?;
            let tls = TlsParameters::builder(host.clone()).build_rustls()?;
            let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                .port(*port)
                .tls(Tls::Opportunistic(tls))
                .timeout(Some(ALERT_TIMEOUT))
                .build();
            transport.send(message).await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_path_is_a_command_or_an_address_on_a_relay() {
        assert_eq!(
            "/usr/local/bin/page-ims".parse(),
            Ok(AlertTo::Command("/usr/local/bin/page-ims".into()))
        );
        let AlertTo::Smtp { host, port, to } = "smtp://backup.example:2525/ims@example.org"
            .parse()
            .unwrap()
        else {
            panic!("an smtp alert")
        };
        assert_eq!(
            (host.as_str(), port, to.as_str()),
            ("backup.example", 2525, "ims@example.org")
        );
        assert!(
            "ims@example.org"
                .parse::<AlertTo>()
                .unwrap_err()
                .contains("smtp://")
        );
        assert!("smtp://backup.example".parse::<AlertTo>().is_err());
        assert!(
            "smtp://backup.example:x/ims@example.org"
                .parse::<AlertTo>()
                .is_err()
        );
    }
}
