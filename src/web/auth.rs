//! Logins, sessions and CSRF tokens. Sessions live in memory: a restart asks
//! everyone to log in again, which is acceptable for a small team's console.
//!
//! Signing in is open to anyone who can reach the console, so its work is
//! bounded: names and passwords are cut to a length before anything else,
//! attempts are rate-limited by client address and by name (bounded,
//! expiring limiters), and at most `HASHING` passwords are checked at once on
//! the blocking pool; an attempt beyond that is turned away at once. An
//! unknown name costs the same hash as a wrong password.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;

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

/// The longest name and password a sign-in form is read with; configured
/// names are at most 64 characters.
pub const MAX_NAME: usize = 64;
pub const MAX_PASSWORD: usize = 1024;

/// Passwords checked at once: argon2 takes 19 MiB and tens of milliseconds each.
const HASHING: usize = 2;

/// Keys a limiter holds before it forgets the ones whose quota has refilled.
const TRACKED: usize = 10_000;

/// What became of a sign-in attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum SignIn {
    /// Signed in: the new session's token.
    Welcome(String),
    /// Wrong name or password (or too long to be either).
    Refused,
    /// Too many attempts from this address or for this name, or too many at
    /// once: try again shortly.
    Busy,
}

pub struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
    hashing: Semaphore,
    /// Attempts by client address: 10 a minute, in bursts of 10.
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    /// Attempts by name: 5 a minute, in bursts of 5.
    by_name: DefaultKeyedRateLimiter<String>,
}

impl Default for Sessions {
    fn default() -> Self {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).expect("not zero"));
        Sessions {
            by_token: Mutex::default(),
            hashing: Semaphore::new(HASHING),
            by_address: DefaultKeyedRateLimiter::keyed(per_minute(10)),
            by_name: DefaultKeyedRateLimiter::keyed(per_minute(5)),
        }
    }
}

/// Checks `key` against a keyed limiter whose memory stays bounded: past
/// `TRACKED` keys those whose quota has refilled are forgotten, and while
/// it is still full a new key is refused.
fn allowed<K: std::hash::Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> bool {
    if limiter.len() >= TRACKED {
        limiter.retain_recent();
        limiter.shrink_to_fit();
        if limiter.len() >= TRACKED {
            return false;
        }
    }
    limiter.check_key(key).is_ok()
}

/// A hash an unknown name is checked against, so that it takes as long as a
/// known name with a wrong password.
static UNKNOWN: LazyLock<String> =
    LazyLock::new(|| hash_password(&token()).expect("a password hashes"));

/// 256 bits from the operating system's random source: unguessable.
fn token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    /// Checks a name and password from `from` against the configured users;
    /// on success a new session and its token.
    pub async fn login(
        &self,
        users: &[WebUser],
        from: IpAddr,
        name: &str,
        password: &str,
    ) -> SignIn {
        if name.chars().count() > MAX_NAME || password.len() > MAX_PASSWORD {
            return SignIn::Refused;
        }
        if !allowed(&self.by_address, &from) || !allowed(&self.by_name, &name.to_string()) {
            return SignIn::Busy;
        }
        let Ok(_permit) = self.hashing.try_acquire() else {
            return SignIn::Busy;
        };
        let user = users.iter().find(|u| u.name == name);
        let hash = match user {
            Some(u) => u.password_hash.expose_secret().to_string(),
            None => UNKNOWN.clone(),
        };
        let password = password.to_string();
        // Argon2 takes tens of milliseconds of CPU and 19 MiB: off the async
        // threads, so pages, mail and the watchdog keep their time.
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|hash| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &hash)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let Some(user) = user.filter(|_| ok) else {
            return SignIn::Refused;
        };
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
        SignIn::Welcome(t)
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
