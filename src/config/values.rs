//! Settings values that are more than a string, each parsed once when the
//! config is read: what does not parse is refused there, naming its key, and
//! nothing later falls back to a default in its place.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use serde_with::DeserializeFromStr;

use crate::domain::Invalid;

/// Why a setting's value was refused; the key is added by whoever reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadValue {
    #[error("`{0}` is not a time zone (e.g. Europe/London)")]
    TimeZone(String),
    #[error(
        "`{given}` is not a cron expression with seconds first, e.g. \"0 * * * * *\" ({reason})"
    )]
    Cron { given: String, reason: String },
    #[error("`{0}` never fires")]
    NeverFires(String),
    #[error("`{0}` is not HOST:PORT (e.g. 127.0.0.1:8765)")]
    Listen(String),
    #[error(
        "`{0}` is not the console's address (write e.g. https://keydates.example.org/, with no path)"
    )]
    PublicUrl(String),
    #[error("`{given}` is not a role ({roles})")]
    Role { given: String, roles: &'static str },
    #[error("{0}, or \"anchor\"")]
    SendUntil(#[source] crate::calendar::offset::OffsetError),
    #[error("{0}, calendar, or file:PATH")]
    Annex(#[source] Invalid),
    #[error("`file:` needs a path")]
    NoPath,
    #[error(
        "`{given}` {problem}: give a command's absolute path (/usr/local/bin/NAME) or smtp://HOST[:PORT]/ADDRESS"
    )]
    AlertTo {
        given: String,
        problem: &'static str,
    },
    #[error("`{port}` in `{given}` is not a port")]
    Port { given: String, port: String },
    #[error("`{given}`: {source}")]
    Address {
        given: String,
        #[source]
        source: Invalid,
    },
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// A time zone from the IANA database, e.g. `Europe/London`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, DeserializeFromStr)]
pub struct TimeZone(pub Tz);

impl FromStr for TimeZone {
    type Err = BadValue;
    fn from_str(s: &str) -> Result<Self, BadValue> {
        s.trim()
            .parse()
            .map(TimeZone)
            .map_err(|_| BadValue::TimeZone(s.to_string()))
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// A six-field cron expression (seconds first) that fires at some point.
#[derive(Debug, Clone, DeserializeFromStr)]
pub struct Cron {
    text: String,
    cron: croner::Cron,
}

impl Cron {
    /// The expression as written, for the scheduler.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// When it next fires after `after`.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Cron {
    type Err = BadValue;
    fn from_str(expr: &str) -> Result<Self, BadValue> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .build()
            .parse(expr)
            .map_err(|e| BadValue::Cron {
                given: expr.to_string(),
                reason: e.to_string(),
            })?;
        if cron
            .find_next_occurrence(&chrono::Utc::now(), false)
            .is_err()
        {
            return Err(BadValue::NeverFires(expr.to_string()));
        }
        Ok(Cron {
            text: expr.to_string(),
            cron,
        })
    }
}

/// Where the console listens: `HOST:PORT`, or empty for no console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, DeserializeFromStr)]
pub struct Listen(pub Option<SocketAddr>);

impl FromStr for Listen {
    type Err = BadValue;
    fn from_str(s: &str) -> Result<Self, BadValue> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Listen(None));
        }
        s.parse()
            .map(|a| Listen(Some(a)))
            .map_err(|_| BadValue::Listen(s.to_string()))
    }
}

/// The address people use to reach the console, such as
/// `https://keydates.example.org/`: scheme, host and port, nothing after.
#[derive(Debug, Clone, PartialEq, Eq, DeserializeFromStr)]
pub struct PublicUrl(url::Url);

impl FromStr for PublicUrl {
    type Err = BadValue;
    fn from_str(s: &str) -> Result<Self, BadValue> {
        let bad = || BadValue::PublicUrl(s.to_string());
        let url = url::Url::parse(s.trim()).map_err(|_| bad())?;
        let plain = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some_and(|h| !h.is_empty())
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if plain {
            Ok(PublicUrl(url))
        } else {
            Err(bad())
        }
    }
}

impl PublicUrl {
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// A page's full address: this one with `path` (which starts with `/`).
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.0.as_str().trim_end_matches('/'))
    }

    /// As a browser names it in `Host` and `Origin`: the host, and the port
    /// when it is not the scheme's own.
    pub fn authority(&self) -> String {
        let host = self.0.host_str().unwrap_or_default();
        match self.0.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// A list of days written `YYYY-MM-DD`, each one checked.
pub fn days<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NaiveDate>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .enumerate()
        .map(|(i, text)| {
            crate::calendar::parse_date(text)
                .map_err(|e| serde::de::Error::custom(format!("entry {i}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_does_not_parse_is_refused_with_the_value() {
        assert!(
            "Europe/Lndon"
                .parse::<TimeZone>()
                .unwrap_err()
                .to_string()
                .contains("Europe/Lndon")
        );
        assert!(
            "0 0 0 31 2 *"
                .parse::<Cron>()
                .unwrap_err()
                .to_string()
                .contains("never fires")
        );
        assert!(
            "localhost"
                .parse::<Listen>()
                .unwrap_err()
                .to_string()
                .contains("HOST:PORT")
        );
        assert_eq!("".parse::<Listen>(), Ok(Listen(None)));
        assert_eq!(
            "Europe/London".parse::<TimeZone>(),
            Ok(TimeZone(chrono_tz::Europe::London))
        );
    }
}
