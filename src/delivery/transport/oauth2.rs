//! Access tokens for SMTP's XOAUTH2, by the OAuth 2.0 client-credentials
//! grant (RFC 6749 §4.4), as Microsoft 365 wants once basic SMTP AUTH is
//! off. A token is kept until shortly before it expires; the client secret
//! never leaves this module but in the request body.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint answered no (`invalid_client`, a wrong scope...).
    #[error(
        "the token endpoint {url} refused keydates' client credentials: HTTP {status} {error}{description}"
    )]
    Refused {
        url: String,
        status: u16,
        error: String,
        description: String,
    },
    #[error("the token endpoint {url} cannot be reached: {why}")]
    Unreachable { url: String, why: String },
    #[error("the token endpoint {url} gave an answer keydates cannot read: {why}")]
    Unreadable { url: String, why: String },
}

/// A token is used until this long before its stated expiry.
const MARGIN: Duration = Duration::from_secs(300);

pub struct TokenSource {
    url: String,
    client_id: String,
    secret: SecretString,
    scope: String,
    timeout: Duration,
    cached: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

#[derive(Deserialize)]
struct Granted {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Refusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenSource {
    pub fn new(
        url: String,
        client_id: String,
        secret: SecretString,
        scope: String,
        timeout: Duration,
    ) -> TokenSource {
        TokenSource {
            url,
            client_id,
            secret,
            scope,
            timeout,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The kept token while it is good, or a new one.
    pub async fn token(&self) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.expose_secret().to_string());
        }
        let (token, until) = self.fetch().await?;
        let text = token.expose_secret().to_string();
        *cached = Some((token, until));
        Ok(text)
    }

    /// A new token, whatever is kept (the relay refused the kept one).
    pub async fn renew(&self) -> Result<String, TokenError> {
        self.cached.lock().await.take();
        self.token().await
    }

    #[tracing::instrument(skip_all, fields(url = %self.url))]
    async fn fetch(&self) -> Result<(SecretString, Instant), TokenError> {
        let url = self.url.clone();
        let form = [
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_id".to_string(), self.client_id.clone()),
            (
                "client_secret".to_string(),
                self.secret.expose_secret().to_string(),
            ),
            ("scope".to_string(), self.scope.clone()),
        ];
        let timeout = self.timeout;
        let asked = Instant::now();
        let answer = tokio::task::spawn_blocking(move || post_form(&url, &form, timeout))
            .await
            .map_err(|e| TokenError::Unreachable {
                url: self.url.clone(),
                why: e.to_string(),
            })??;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let until = asked + lifetime.saturating_sub(MARGIN).max(lifetime / 2);
        tracing::info!(
            expires_in = lifetime.as_secs(),
            "fetched an access token for the mail relay"
        );
        Ok((SecretString::from(answer.access_token), until))
    }
}

fn post_form(
    url: &str,
    form: &[(String, String)],
    timeout: Duration,
) -> Result<Granted, TokenError> {
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .build();
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let unreadable = |why: String| TokenError::Unreadable {
        url: url.to_string(),
        why,
    };
    match agent.post(url).send_form(&pairs) {
        Ok(response) => {
            let body = read_body(response).map_err(|e| unreadable(e.to_string()))?;
            let granted: Granted =
                serde_json::from_str(&body).map_err(|e| unreadable(e.to_string()))?;
            if granted.access_token.is_empty() {
                return Err(unreadable("an empty access_token".into()));
            }
            Ok(granted)
        }
        Err(ureq::Error::Status(status, response)) => {
            let body = read_body(response).unwrap_or_default();
            let refusal: Refusal = serde_json::from_str(&body).unwrap_or_default();
            Err(TokenError::Refused {
                url: url.to_string(),
                status,
                error: if refusal.error.is_empty() {
                    "(no error code)".into()
                } else {
                    refusal.error
                },
                description: refusal
                    .error_description
                    .map(|d| format!(": {}", d.lines().next().unwrap_or("")))
                    .unwrap_or_default(),
            })
        }
        Err(e) => Err(TokenError::Unreachable {
            url: url.to_string(),
            why: e.to_string(),
        }),
    }
}

/// The body, at most 64 KiB: a token answer is a few kilobytes.
fn read_body(response: ureq::Response) -> std::io::Result<String> {
    use std::io::Read;
    let mut body = String::new();
    response
        .into_reader()
        .take(64 * 1024)
        .read_to_string(&mut body)?;
    Ok(body)
}
