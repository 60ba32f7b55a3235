//! The second path for the one alert that cannot go through the relay: the
//! relay itself is down. `mail.alert_to` names it: a command run with the
//! alert on its standard input, or an address on a second relay.

use std::time::Duration;

use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::io::AsyncWriteExt;

pub use crate::config::AlertTo;

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
            let message = crate::delivery::compose::builder_from(from.clone())
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
