//! Logins, sessions and CSRF tokens. Sessions live in memory: a restart asks
//! everyone to log in again, which is acceptable for a small team's console.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use secrecy::ExposeSecret;

use crate::config::{WebRole, WebUser};

/// How long a session lasts without use.
const IDLE: Duration = Duration::from_secs(8 * 3600);

pub const COOKIE: &str = "keydates_session";

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: WebRole,
    /// Every form carries it; a POST without it is refused.
    pub csrf: String,
    last_seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
    /// Failed logins by name, for slowing down guesses.
    failures: Mutex<HashMap<String, u32>>,
}

/// 256 bits from the operating system's random source: unguessable.
fn token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    /// Checks a name and password against the configured users; on success a
    /// new session and its token. Each failure for a name waits longer.
    pub async fn login(&self, users: &[WebUser], name: &str, password: &str) -> Option<String> {
        let user = users.iter().find(|u| u.name == name);
        let hash = user.map(|u| u.password_hash.clone());
        let password = password.to_string();
        // Argon2 takes tens of milliseconds of CPU and 19 MiB: off the async
        // threads, so pages, mail and the watchdog keep their time.
        let ok = tokio::task::spawn_blocking(move || {
            hash.is_some_and(|h| {
                PasswordHash::new(h.expose_secret())
                    .map(|hash| {
                        Argon2::default()
                            .verify_password(password.as_bytes(), &hash)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
        })
        .await
        .unwrap_or(false);
        if !ok {
            let failures = {
                let mut f = self.failures.lock().expect("not poisoned");
                let n = f.entry(name.to_string()).or_default();
                *n += 1;
                *n
            };
            tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(failures.min(5)))).await;
            return None;
        }
        self.failures.lock().expect("not poisoned").remove(name);
        let user = user?;
        let t = token();
        self.by_token.lock().expect("not poisoned").insert(
            t.clone(),
            Session {
                user: user.name.clone(),
                role: user.role,
                csrf: token(),
                last_seen: Instant::now(),
            },
        );
        Some(t)
    }

    pub fn get(&self, token: &str) -> Option<Session> {
        let mut map = self.by_token.lock().expect("not poisoned");
        map.retain(|_, s| s.last_seen.elapsed() < IDLE);
        let s = map.get_mut(token)?;
        s.last_seen = Instant::now();
        Some(s.clone())
    }

    pub fn logout(&self, token: &str) {
        self.by_token.lock().expect("not poisoned").remove(token);
    }
}

/// An argon2 hash of a password, for `[[web.users]]`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| anyhow::anyhow!("no random salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string())
}
