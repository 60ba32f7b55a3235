//! Logins, sessions and CSRF tokens. Sessions live in the database (table
//! `web_sessions`), so they survive a restart and hold on every instance; each
//! request checks its session against the users configured now, so a user
//! removed, made a viewer or given a new password is signed out at once.
//! A session ends after 8 hours unused, and 24 hours after sign-in whatever.
//!
//! Signing in is open to anyone who can reach the console, so its work is
//! bounded: names and passwords are cut to a length before anything else,
//! attempts are rate-limited by client address and by name (bounded,
//! expiring limiters), and at most `HASHING` passwords are checked at once on
//! the blocking pool; an attempt beyond that is turned away at once. An
//! unknown name costs the same hash as a wrong password.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use secrecy::ExposeSecret;

use crate::config::{WebRole, WebUser};
use crate::db::{Pool, parse_ts, ts};

/// How long a session lasts without use.
const IDLE: chrono::TimeDelta = chrono::TimeDelta::hours(8);

/// How long a session lasts at most, used or not.
const ABSOLUTE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// A session's last use is written again only when older than this: pages
/// need not each cost a write.
const SEEN_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

pub const COOKIE: &str = "keydates_session";

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: WebRole,
    /// Every form carries it; a POST without it is refused.
    pub csrf: String,
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
            hashing: Semaphore::new(HASHING),
            by_address: DefaultKeyedRateLimiter::keyed(per_minute(10)),
            by_name: DefaultKeyedRateLimiter::keyed(per_minute(5)),
        }
    }
}

/// Checks `key` against a keyed limiter whose memory stays bounded: past
/// `TRACKED` keys those whose quota has refilled are forgotten, and while
/// it is still full a new key is refused.
pub(super) fn allowed<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> bool {
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
    LazyLock::new(|| hash_password(&new_token()).expect("a password hashes"));

/// What the database keeps of a token: its SHA-256, so that a copy of the
/// database signs nobody in.
fn stored(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// What a session remembers of its user's password: a digest of the hash,
/// which changes with the password.
fn credential(user: &WebUser) -> String {
    stored(user.password_hash.expose_secret())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 256 bits from the operating system's random source: unguessable. For
/// sessions, their forms, and the sign-in form.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random source works");
    hex(&bytes)
}

impl Sessions {
    /// Checks a name and password from `from` against the configured users;
    /// on success a new session and its token.
    pub async fn login(
        &self,
        pool: &Pool,
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
        let t = new_token();
        let now = Utc::now();
        let kept = async {
            forget_expired(pool, now).await?;
            sqlx::query(
                "INSERT INTO web_sessions (token_hash, user_name, role, credential, csrf, created_at, seen_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(stored(&t))
            .bind(&user.name)
            .bind(user.role.as_str())
            .bind(credential(user))
            .bind(new_token())
            .bind(ts(now))
            .execute(pool)
            .await?;
            anyhow::Ok(())
        };
        match kept.await {
            Ok(()) => SignIn::Welcome(t),
            Err(e) => {
                tracing::error!(
                    error = crate::db::explain(&e),
                    "a session could not be kept"
                );
                SignIn::Busy
            }
        }
    }

    /// The session `token` names, if it is still good for a user as
    /// configured now; a session that is not is ended.
    pub async fn get(&self, pool: &Pool, users: &[WebUser], token: &str) -> Option<Session> {
        let key = stored(token);
        type Row = (String, String, String, String, String, String);
        let (name, role, held, csrf, created_at, seen_at) = sqlx::query_as::<_, Row>(
            "SELECT user_name, role, credential, csrf, created_at, seen_at
             FROM web_sessions WHERE token_hash = $1",
        )
        .bind(&key)
        .fetch_optional(pool)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "sessions cannot be read"))
        .ok()??;
        let now = Utc::now();
        let (Some(created_at), Some(seen_at)) = (parse_ts(&created_at), parse_ts(&seen_at)) else {
            end(pool, &key).await;
            return None;
        };
        let still = |user: &&WebUser| {
            user.name == name && user.role.as_str() == role && credential(user) == held
        };
        let fresh = now - seen_at < IDLE && now - created_at < ABSOLUTE;
        let Some(user) = users.iter().find(still).filter(|_| fresh) else {
            end(pool, &key).await;
            return None;
        };
        if now - seen_at >= SEEN_EVERY {
            let _ = sqlx::query("UPDATE web_sessions SET seen_at = $1 WHERE token_hash = $2")
                .bind(ts(now))
                .bind(&key)
                .execute(pool)
                .await;
        }
        Some(Session {
            user: user.name.clone(),
            role: user.role,
            csrf,
        })
    }

    pub async fn logout(&self, pool: &Pool, token: &str) {
        end(pool, &stored(token)).await;
    }
}

async fn end(pool: &Pool, key: &str) {
    if let Err(e) = sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
        .bind(key)
        .execute(pool)
        .await
    {
        tracing::error!(error = %e, "a session could not be ended");
    }
}

/// Deletes the sessions no request can use any more.
async fn forget_expired(pool: &Pool, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM web_sessions WHERE seen_at < $1 OR created_at < $2")
        .bind(ts(now - IDLE))
        .bind(ts(now - ABSOLUTE))
        .execute(pool)
        .await?;
    Ok(())
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
