//! Typed, validated settings: `config/keydates.toml` layered with `KEYDATES__SECTION__KEY`
//! environment variables. Relative paths are resolved against the config file's folder.

pub mod rules;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use chrono_tz::Tz;
use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_with::{DeserializeFromStr, DisplayFromStr, serde_as};

use crate::calendar::Calendar;
use crate::config::rules::{AnnexSpec, Rule};
use crate::config::values::BadValue;
use crate::domain::{EmailAddress, Region};
pub use values::{Cron, Listen, TimeZone};

crate::named_enum!(TransportKind, "a mail transport");
crate::named_enum!(TlsMode, "a TLS mode");
crate::named_enum!(AuthKind, "a login kind");
crate::named_enum!(LogFormat, "a log format");

/// Where the relay-down alert goes.
#[derive(Debug, Clone, PartialEq, Eq, DeserializeFromStr)]
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
    type Err = BadValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with('/') {
            return Ok(AlertTo::Command(PathBuf::from(s)));
        }
        let refuse = |problem| BadValue::AlertTo {
            given: s.to_string(),
            problem,
        };
        let rest = s
            .strip_prefix("smtp://")
            .ok_or_else(|| refuse("is neither a command nor an smtp:// address"))?;
        let (server, address) = rest
            .split_once('/')
            .ok_or_else(|| refuse("names no address after the relay"))?;
        let (host, port) = match server.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>().map_err(|_| BadValue::Port {
                    given: s.to_string(),
                    port: p.to_string(),
                })?,
            ),
            None => (server, 25),
        };
        if host.is_empty() {
            return Err(refuse("names no relay host"));
        }
        Ok(AlertTo::Smtp {
            host: host.to_string(),
            port,
            to: EmailAddress::parse(address).map_err(|source| BadValue::Address {
                given: address.to_string(),
                source,
            })?,
        })
    }
}

/// Why a `file:` annex cannot be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    #[error("file:{} needs the folder mail.attachments_dir ({}): {source}", file.display(), dir.display())]
    NoFolder {
        file: PathBuf,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file:{} must be a path inside mail.attachments_dir ({}), not an absolute path", file.display(), dir.display())]
    Absolute { file: PathBuf, dir: PathBuf },
    #[error("file:{} cannot be read: {source}", file.display())]
    Unreadable {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file:{} leads outside mail.attachments_dir ({})", file.display(), dir.display())]
    Outside { file: PathBuf, dir: PathBuf },
    #[error("file:{} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    #[error("file:{} is {bytes} bytes, more than mail.max_attachment_bytes ({max})", file.display())]
    TooBig { file: PathBuf, bytes: u64, max: u64 },
}

/// Why settings could not be loaded. Each message names the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("config {path}: {reasons}", reasons = reasons.join("; "))]
    Invalid { path: String, reasons: Vec<String> },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub mail: MailSettings,
    pub schedule: ScheduleSettings,
    #[serde(default)]
    pub calendar: CalendarSettings,
    pub templates: TemplateSettings,
    #[serde(default)]
    pub child_level_data: ChildLevelDataSettings,
    #[serde(default)]
    pub seminars: SeminarSettings,
    pub contacts: Contacts,
    pub regions: BTreeMap<String, RegionContacts>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub web: WebSettings,
    /// The folder of the config file, for resolving relative paths.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// A SQLite file path (optionally written as `sqlite://PATH`), or a
    /// `postgres://` URL, which may hold a password.
    pub url: String,
    #[serde(default = "default_busy_timeout")]
    pub busy_timeout_secs: u64,
    /// On PostgreSQL, the longest any one statement may run before the
    /// server cancels it: a pass never waits on the database for ever.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_secs: u64,
}

fn default_statement_timeout() -> u64 {
    60
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = if is_postgres(&self.url) {
            redact(self.url.trim())
        } else {
            self.url.clone()
        };
        f.debug_struct("DatabaseSettings")
            .field("url", &url)
            .field("busy_timeout_secs", &self.busy_timeout_secs)
            .field("statement_timeout_secs", &self.statement_timeout_secs)
            .finish()
    }
}

fn is_postgres(url: &str) -> bool {
    let url = url.trim();
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn default_busy_timeout() -> u64 {
    30
}

fn default_attachments_dir() -> PathBuf {
    PathBuf::from("attachments")
}

fn default_max_attachment_bytes() -> u64 {
    10 * 1024 * 1024
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, DeserializeFromStr, strum::IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum TransportKind {
    File,
    Smtp,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, DeserializeFromStr, strum::IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum TlsMode {
    Starttls,
    Tls,
    None,
}

#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub transport: TransportKind,
    /// The sender, e.g. `Keydates <keydates@example.org>`.
    #[serde_as(as = "DisplayFromStr")]
    pub from: Mailbox,
    /// The domain of every Message-ID keydates makes.
    pub message_id_domain: String,
    /// Where the `file` transport writes `.eml` files.
    pub spool_dir: PathBuf,
    /// How the authority returns child-level data; never by email.
    pub upload_route: String,
    /// When not empty, mail only goes to addresses in these domains.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// For trials: every email goes here instead, listing its real recipients.
    #[serde(default)]
    pub redirect_all_to: Option<EmailAddress>,
    /// The only folder `file:` annexes are taken from.
    #[serde(default = "default_attachments_dir")]
    pub attachments_dir: PathBuf,
    /// The largest `file:` annex attached, in bytes.
    #[serde(default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: u64,
    #[serde(default)]
    pub smtp: SmtpSettings,
    /// A second path for the alert that the relay is down: a command's
    /// absolute path, or `smtp://HOST[:PORT]/ADDRESS` on another relay.
    #[serde(default)]
    pub alert_to: Option<AlertTo>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// A file holding the password (its first line), as an alternative to `password`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Extra CA certificate (PEM) to trust, for a relay with an internal certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The longest wait for the relay's greeting, the TLS handshake and the
    /// reply to each command (RFC 5321 §4.5.3.2: five minutes).
    #[serde(default = "default_command_timeout")]
    pub timeout_secs: u64,
    /// The longest wait for the reply to a message's final dot (RFC 5321:
    /// ten minutes). Giving up earlier sends the email again at its retry.
    #[serde(default = "default_final_reply_timeout")]
    pub final_reply_timeout_secs: u64,
    pub pool_size: u32,
    /// Allow AUTH over a connection without TLS (a relay on this machine only).
    #[serde(default)]
    pub allow_plaintext_auth: bool,
    /// How keydates logs in when `username` is set.
    #[serde(default)]
    pub auth: AuthKind,
    /// The token endpoint and client, for `auth = "xoauth2"`.
    #[serde(default)]
    pub oauth2: Option<OAuth2Settings>,
}

fn default_command_timeout() -> u64 {
    300
}

fn default_final_reply_timeout() -> u64 {
    600
}

/// How keydates logs in to the relay.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    DeserializeFromStr,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum AuthKind {
    /// AUTH PLAIN or LOGIN with `username` and its password.
    #[default]
    Password,
    /// AUTH XOAUTH2 with a token from `[mail.smtp.oauth2]` (Microsoft 365).
    Xoauth2,
}

/// An OAuth 2.0 client-credentials grant (RFC 6749 §4.4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Settings {
    pub token_url: String,
    pub client_id: String,
    #[serde(default = "default_oauth2_scope")]
    pub scope: String,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret (its first line).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
}

fn default_oauth2_scope() -> String {
    "https://outlook.office365.com/.default".into()
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: "localhost".into(),
            port: 587,
            tls: TlsMode::Starttls,
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            timeout_secs: default_command_timeout(),
            final_reply_timeout_secs: default_final_reply_timeout(),
            pool_size: 3,
            allow_plaintext_auth: false,
            auth: AuthKind::Password,
            oauth2: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Local hour (0-23) at which due emails go out.
    pub send_hour: u32,
    pub time_zone: TimeZone,
    /// Six-field cron expression (seconds first) for how often the daemon looks.
    pub poll: Cron,
    /// How long transient failures are retried before the action fails.
    pub retry_lifetime_hours: u64,
    pub backoff_initial_secs: u64,
    pub backoff_max_secs: u64,
    /// Local hour at which the failed/missed digest goes to IMS.
    pub digest_hour: u32,
    /// A claimed send not finished after this long is taken as interrupted.
    #[serde(default = "default_lease")]
    pub claim_lease_secs: u64,
    /// `status` reports unhealthy when the last pass is older than this.
    #[serde(default = "default_stale")]
    pub stale_after_secs: u64,
    /// How many days ahead the outbox holds due emails. Those further ahead
    /// are computed from the records whenever they are shown.
    #[serde(default = "default_horizon")]
    pub horizon_days: u32,
}

fn default_horizon() -> u32 {
    7
}

fn default_lease() -> u64 {
    300
}

fn default_stale() -> u64 {
    600
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    /// One-off bank holidays to add, `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "values::days")]
    pub add: Vec<NaiveDate>,
    /// Built-in dates that are not holidays after all.
    #[serde(default, deserialize_with = "values::days")]
    pub remove: Vec<NaiveDate>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    pub dir: PathBuf,
}

/// The columns of the child-level data return (001 §26, §29): the handbooks
/// name none, so the admin lists what the visits need.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildLevelDataSettings {
    #[serde(default)]
    pub columns: Vec<String>,
    /// When a request goes late, the return date it gives, counted from the
    /// day it goes (never after the visit begins).
    #[serde(default = "default_late_return")]
    pub late_return: crate::calendar::offset::Offset,
}

fn default_late_return() -> crate::calendar::offset::Offset {
    "end of week".parse().expect("a valid offset")
}

impl Default for ChildLevelDataSettings {
    fn default() -> Self {
        ChildLevelDataSettings {
            columns: Vec::new(),
            late_return: default_late_return(),
        }
    }
}

/// The console the daemon serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// `HOST:PORT` to listen on; empty turns the console off.
    #[serde(default = "default_listen")]
    pub listen: Listen,
    #[serde(default)]
    pub users: Vec<WebUser>,
    /// Serve `/metrics` (Prometheus text, no login: counts only).
    #[serde(default)]
    pub metrics: bool,
    /// The address people use to reach the console (https in production,
    /// behind a proxy that terminates TLS).
    #[serde(default)]
    pub public_url: Option<crate::config::values::PublicUrl>,
    /// The reverse proxies in front of the console: from these, the client's
    /// address is the last one `X-Forwarded-For` names.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The secret the calendar feeds' addresses are made from; change it to
    /// revoke every address. No secret, no feeds.
    #[serde(default)]
    pub calendar_secret: Option<SecretString>,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            listen: default_listen(),
            users: Vec::new(),
            metrics: false,
            public_url: None,
            trusted_proxies: Vec::new(),
            calendar_secret: None,
        }
    }
}

impl WebSettings {
    /// Whether cookies go only over HTTPS: when people reach the console by
    /// an https address.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.as_ref().is_some_and(|u| u.is_https())
    }

    /// The session cookie's name: `__Host-` prefixed over HTTPS (the browser
    /// then holds it for this host alone), and otherwise named by the port,
    /// so that two consoles on one host do not sign each other out.
    pub fn session_cookie(&self) -> String {
        match (self.secure_cookies(), self.address()) {
            (true, _) => "__Host-keydates_session".to_string(),
            (false, Some(addr)) => format!("keydates_session_{}", addr.port()),
            (false, None) => "keydates_session".to_string(),
        }
    }

    /// Whether a request naming `host` (its `Host` header) is for this
    /// console: its public address, or a loopback name on its port. Any
    /// other name pointing here (DNS rebinding) is refused. A console on a
    /// non-loopback address with no public_url answers any name.
    pub fn serves_host(&self, host: &str) -> bool {
        if let Some(url) = &self.public_url
            && host.eq_ignore_ascii_case(&url.authority())
        {
            return true;
        }
        let Some(addr) = self.address() else {
            return false;
        };
        if self.public_url.is_none() && !addr.ip().is_loopback() {
            return true;
        }
        let Some((name, port)) = host.rsplit_once(':') else {
            return false;
        };
        let local = matches!(name.to_ascii_lowercase().as_str(), "localhost" | "[::1]")
            || name
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip == addr.ip());
        local && port.parse() == Ok(addr.port())
    }
}

fn default_listen() -> Listen {
    Listen(Some(std::net::SocketAddr::from(([127, 0, 0, 1], 8765))))
}

/// Who may use the console: viewers look, editors act.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, DeserializeFromStr, strum::IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum WebRole {
    Viewer,
    Editor,
}

crate::named_enum!(WebRole, "a console role");

impl WebRole {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebUser {
    pub name: String,
    /// An argon2 hash, as `keydates hash-password` prints it.
    pub password_hash: SecretString,
    pub role: WebRole,
}

impl WebSettings {
    /// The address to listen on, or none when the console is off.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.listen.0
    }
}

/// The column every return ends with (001 §26).
pub const AUDITED_COLUMN: &str = "Audited since the last visit";

/// What the seminar invitation carries that the records do not hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeminarSettings {
    /// One line per session, `TIME | SESSION`; empty: the organiser sends it.
    #[serde(default)]
    pub timetable: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contacts {
    pub ims: EmailAddress,
    pub national_director: EmailAddress,
    /// The DfE's inspections and interventions team, copied on the
    /// inadequate planning invitation (001 §9): role `dfe_team`.
    #[serde(default)]
    pub dfe_team: Option<EmailAddress>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionContacts {
    pub shmi: EmailAddress,
    pub regional_director: EmailAddress,
    pub support_team: EmailAddress,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    DeserializeFromStr,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    #[serde(default = "default_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: default_level(),
            format: LogFormat::Text,
        }
    }
}

fn default_level() -> String {
    "info".into()
}

impl Settings {
    /// Reads the file at `path`, applies `KEYDATES__...` overrides and validates.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let shown = path.display().to_string();
        if !path.is_file() {
            return Err(ConfigError::File {
                path: shown,
                reason: "not found (pass --config PATH or set KEYDATES_CONFIG)".into(),
            });
        }
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let builder = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("KEYDATES")
                    .prefix_separator("__")
                    .separator("__"),
            );
        Self::build(builder, &shown, base_dir)
    }

    /// Settings from TOML text alone, without the environment: for checks and fuzzing.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Settings, ConfigError> {
        let builder = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml));
        Self::build(builder, "(text)", base_dir.to_path_buf())
    }

    fn build(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
        shown: &str,
        base_dir: PathBuf,
    ) -> Result<Settings, ConfigError> {
        let raw = builder.build().map_err(|e| ConfigError::File {
            path: shown.to_string(),
            reason: e.to_string(),
        })?;
        let mut settings: Settings = raw.try_deserialize().map_err(|e| ConfigError::Invalid {
            path: shown.to_string(),
            reasons: vec![e.to_string()],
        })?;
        settings.base_dir = base_dir;
        let mut reasons = settings.add_confirmation_rules();
        reasons.extend(settings.problems());
        if reasons.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid {
                path: shown.to_string(),
                reasons,
            })
        }
    }

    /// A rule with a confirmation step is held, and its request becomes a
    /// rule of its own, placed right after it.
    fn add_confirmation_rules(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, mut rule) in std::mem::take(&mut self.rules).into_iter().enumerate() {
            let generated = rule.confirmation_rule();
            rule.held = generated.is_some();
            rules.push(rule);
            match generated {
                Some(Ok(r)) => rules.push(r),
                Some(Err(e)) => problems.push(format!(
                    "rules[{i}] ({}).confirmation.ask: {e}",
                    rules[rules.len() - 1].id
                )),
                None => {}
            }
        }
        self.rules = rules;
        problems
    }

    /// Everything wrong that serde could not see, each naming its key.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.database_problems(&mut out);
        self.log_problems(&mut out);
        self.schedule_problems(&mut out);
        self.mail_problems(&mut out);
        self.web_problems(&mut out);
        self.document_problems(&mut out);
        self.region_problems(&mut out);
        self.rule_problems(&mut out);
        out
    }

    /// `database.url`: a SQLite path or a PostgreSQL URL naming a database.
    fn database_problems(&self, out: &mut Vec<String>) {
        let url = self.database.url.trim();
        if url.is_empty() {
            out.push(
                "database.url: is empty; give the database file, e.g. /var/lib/keydates/keydates.db"
                    .into(),
            );
        } else if is_postgres(url) {
            match url::Url::parse(url) {
                Err(e) => out.push(format!(
                    "database.url: the PostgreSQL URL does not parse ({e}); write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                )),
                Ok(u) if u.path().trim_start_matches('/').is_empty() => out.push(
                    "database.url: the PostgreSQL URL names no database; end it with /DATABASE".into(),
                ),
                Ok(_) => {}
            }
        } else if let Some((scheme, _)) = url.split_once("://")
            && scheme != "sqlite"
        {
            out.push(format!(
                "database.url: `{scheme}://` is not a database keydates can use; give a SQLite file path (or sqlite://PATH) or a postgres:// URL"
            ));
        }
    }

    /// `log.level`.
    fn log_problems(&self, out: &mut Vec<String>) {
        // A bare word would be read as a module name and silence everything:
        // each part is a level, or `target=level`.
        let level_ok = |d: &str| {
            d.trim()
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .is_ok()
        };
        let directives_ok = self
            .log
            .level
            .split(',')
            .all(|d| if d.contains('=') { true } else { level_ok(d) })
            && tracing_subscriber::EnvFilter::try_new(&self.log.level).is_ok();
        if !directives_ok {
            out.push(format!(
                "log.level: `{}` is not a level (off, error, warn, info, debug or trace) or a filter such as `info,keydates=debug`",
                self.log.level
            ));
        }
    }

    /// `schedule.*` hours, horizon and backoff.
    fn schedule_problems(&self, out: &mut Vec<String>) {
        if self.schedule.send_hour > 23 {
            out.push("schedule.send_hour: must be 0-23".into());
        }
        if !(1..=366).contains(&self.schedule.horizon_days) {
            out.push("schedule.horizon_days: must be 1-366 (days the outbox holds ahead)".into());
        }
        if self.schedule.digest_hour > 23 {
            out.push("schedule.digest_hour: must be 0-23".into());
        }
        if self.schedule.backoff_initial_secs == 0
            || self.schedule.backoff_max_secs < self.schedule.backoff_initial_secs
        {
            out.push(
                "schedule.backoff_initial_secs: must be above 0 and at most backoff_max_secs"
                    .into(),
            );
        }
    }

    /// `mail.*`: ids, allowed domains, and the relay's settings.
    fn mail_problems(&self, out: &mut Vec<String>) {
        if self.mail.message_id_domain.is_empty()
            || !self
                .mail
                .message_id_domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            out.push("mail.message_id_domain: must be a domain name".into());
        }
        for (i, d) in self.mail.allowed_domains.iter().enumerate() {
            if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) {
                out.push(format!(
                    "mail.allowed_domains[{i}]: `{d}` is not a domain name"
                ));
            }
        }
        if self.mail.transport == TransportKind::Smtp {
            let smtp = &self.mail.smtp;
            if smtp.pool_size == 0 {
                out.push("mail.smtp.pool_size: must be at least 1".into());
            }
            if smtp.timeout_secs == 0 {
                out.push("mail.smtp.timeout_secs: must be at least 1".into());
            }
            if smtp.final_reply_timeout_secs == 0 {
                out.push("mail.smtp.final_reply_timeout_secs: must be at least 1".into());
            }
            out.extend(self.oauth2_problems());
            let password_given = smtp
                .password
                .as_ref()
                .is_some_and(|p| !p.expose_secret().is_empty());
            if password_given && smtp.password_file.is_some() {
                out.push(
                    "mail.smtp.password_file: set either password or password_file, not both"
                        .into(),
                );
            }
            if let Some(file) = &smtp.password_file
                && !self.resolve(file).is_file()
            {
                out.push(format!(
                    "mail.smtp.password_file: {} cannot be read",
                    self.resolve(file).display()
                ));
            }
            if let Some(file) = &smtp.ca_file
                && !self.resolve(file).is_file()
            {
                out.push(format!(
                    "mail.smtp.ca_file: {} cannot be read",
                    self.resolve(file).display()
                ));
            }
        }
    }

    /// `web.*`: who may reach the console, and its secrets and users.
    fn web_problems(&self, out: &mut Vec<String>) {
        match self.web.address() {
            Some(addr) if !addr.ip().is_loopback() && self.web.users.is_empty() => out.push(
                format!("web.listen: {addr} is reachable from other machines, so the console needs [[web.users]]; add users or listen on 127.0.0.1"),
            ),
            _ => {}
        }
        if let Some(secret) = &self.web.calendar_secret
            && !strong_secret(secret.expose_secret())
        {
            out.push(
                "web.calendar_secret: use a generated value of at least 32 characters (`keydates ics --new-secret` prints one), or leave it unset"
                    .into(),
            );
        }
        for (i, user) in self.web.users.iter().enumerate() {
            if argon2::PasswordHash::new(user.password_hash.expose_secret()).is_err() {
                out.push(format!(
                    "web.users[{i}] ({}).password_hash: not an argon2 hash (make one with `keydates hash-password`)",
                    user.name
                ));
            }
            if user.name.trim().is_empty() || crate::domain::check_text(&user.name, 64).is_err() {
                out.push(format!(
                    "web.users[{i}].name: a short name without control characters"
                ));
            }
        }
    }

    /// What the generated documents are made from.
    fn document_problems(&self, out: &mut Vec<String>) {
        if self.child_level_data.late_return.is_before() {
            out.push(format!(
                "child_level_data.late_return: \"{}\" points back; a late request's return date counts forward from the day it goes (e.g. \"end of week\" or \"1 week then end of week\")",
                self.child_level_data.late_return
            ));
        }
        let mut seen_columns = std::collections::HashSet::new();
        for (i, column) in self.child_level_data.columns.iter().enumerate() {
            let key = format!("child_level_data.columns[{i}]");
            if column.trim().is_empty() {
                out.push(format!("{key}: is empty"));
            } else if column.trim() == AUDITED_COLUMN {
                out.push(format!(
                    "{key}: \"{AUDITED_COLUMN}\" is always the last column; leave it out"
                ));
            } else if !seen_columns.insert(column.trim()) {
                out.push(format!("{key}: \"{column}\" is listed twice"));
            } else if let Err(e) = crate::domain::check_text(column, 100) {
                out.push(format!("{key}: {e}"));
            }
        }
        for (i, line) in self.seminars.timetable.iter().enumerate() {
            if line.split('|').count() != 2 || line.split('|').any(|p| p.trim().is_empty()) {
                out.push(format!(
                    "seminars.timetable[{i}]: `{line}` is not \"TIME | SESSION\""
                ));
            }
        }
    }

    /// Every region, and only regions, under `regions`.
    fn region_problems(&self, out: &mut Vec<String>) {
        for id in self.regions.keys() {
            if let Err(e) = Region::parse(id) {
                out.push(format!("regions.{id}: {e}"));
            }
        }
        for region in <Region as strum::IntoEnumIterator>::iter() {
            if !self.regions.contains_key(region.id()) {
                out.push(format!(
                    "regions.{}: missing (every region needs its contacts)",
                    region.id()
                ));
            }
        }
    }

    /// Each rule, and the files it attaches.
    fn rule_problems(&self, out: &mut Vec<String>) {
        let mut seen = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let key = format!("rules[{i}] ({})", rule.id);
            if !seen.insert(rule.id.as_str()) {
                out.push(format!("{key}.id: used by an earlier rule too"));
            }
            if let Err(e) = rule.check() {
                out.push(format!("{key}: {e}"));
            }
            let names_dfe_team = [&rule.to, &rule.cc, &rule.reply_to]
                .iter()
                .any(|roles| roles.contains(&crate::config::rules::Role::DfeTeam));
            if names_dfe_team && self.contacts.dfe_team.is_none() {
                out.push(format!(
                    "{key}: the role dfe_team needs the team's address: set [contacts] dfe_team"
                ));
            }
            for (j, annex) in rule.annexes.iter().enumerate() {
                if let AnnexSpec::File(path) = annex
                    && let Err(e) = self.attachment(path)
                {
                    out.push(format!("{key}.annexes[{j}]: {e}"));
                }
            }
        }
    }

    /// A config path made absolute against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The database `database.url` names: a PostgreSQL server, or a SQLite
    /// file (relative paths are relative to the config file).
    pub fn database_location(&self) -> Location {
        if is_postgres(&self.database.url) {
            Location::Postgres(SecretString::from(self.database.url.trim().to_owned()))
        } else {
            Location::Sqlite(self.database_path())
        }
    }

    /// The SQLite file, for a `database.url` that names one.
    pub fn database_path(&self) -> PathBuf {
        let url = &self.database.url;
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        self.resolve(Path::new(path))
    }

    /// The file a `file:` annex names, checked: inside `mail.attachments_dir`
    /// (after following links and `..`), a regular file, and no larger than
    /// `mail.max_attachment_bytes`. Anything else could mail what it should not.
    pub fn attachment(&self, path: &Path) -> Result<PathBuf, AttachmentError> {
        let file = path.to_path_buf();
        let dir = self.resolve(&self.mail.attachments_dir);
        let base = dir
            .canonicalize()
            .map_err(|source| AttachmentError::NoFolder {
                file: file.clone(),
                dir: dir.clone(),
                source,
            })?;
        if path.is_absolute() {
            return Err(AttachmentError::Absolute { file, dir: base });
        }
        let full =
            base.join(path)
                .canonicalize()
                .map_err(|source| AttachmentError::Unreadable {
                    file: file.clone(),
                    source,
                })?;
        if !full.starts_with(&base) {
            return Err(AttachmentError::Outside { file, dir: base });
        }
        let meta = std::fs::metadata(&full).map_err(|source| AttachmentError::Unreadable {
            file: file.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(AttachmentError::NotAFile(file));
        }
        if meta.len() > self.mail.max_attachment_bytes {
            return Err(AttachmentError::TooBig {
                file,
                bytes: meta.len(),
                max: self.mail.max_attachment_bytes,
            });
        }
        Ok(full)
    }

    pub fn templates_dir(&self) -> PathBuf {
        self.resolve(&self.templates.dir)
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.resolve(&self.mail.spool_dir)
    }

    pub fn time_zone(&self) -> Tz {
        self.schedule.time_zone.0
    }

    pub fn calendar(&self) -> Calendar {
        Calendar::new(&self.calendar.add, &self.calendar.remove)
    }

    pub fn region(&self, region: Region) -> Option<&RegionContacts> {
        self.regions.get(region.id())
    }

    pub fn enabled_rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.enabled)
    }

    /// What is wrong with `[mail.smtp.oauth2]`, for `auth = "xoauth2"`.
    fn oauth2_problems(&self) -> Vec<String> {
        let smtp = &self.mail.smtp;
        let mut out = Vec::new();
        match (smtp.auth, &smtp.oauth2) {
            (AuthKind::Password, _) => {}
            (AuthKind::Xoauth2, None) => out.push(
                "mail.smtp.oauth2: auth = \"xoauth2\" needs [mail.smtp.oauth2] with token_url and client_id".into(),
            ),
            (AuthKind::Xoauth2, Some(o)) => {
                if smtp.username.is_none() {
                    out.push("mail.smtp.username: auth = \"xoauth2\" needs the sending mailbox's address here".into());
                }
                if let Err(e) = check_token_url(&o.token_url) {
                    out.push(format!("mail.smtp.oauth2.token_url: {e}"));
                }
                if o.client_id.trim().is_empty() {
                    out.push("mail.smtp.oauth2.client_id: is empty; give the app registration's application (client) ID".into());
                }
                if o.client_secret.is_some() && o.client_secret_file.is_some() {
                    out.push("mail.smtp.oauth2.client_secret_file: set either client_secret or client_secret_file, not both".into());
                }
                if let Some(file) = &o.client_secret_file
                    && !self.resolve(file).is_file()
                {
                    out.push(format!(
                        "mail.smtp.oauth2.client_secret_file: {} cannot be read",
                        self.resolve(file).display()
                    ));
                }
            }
        }
        out
    }

    /// The OAuth 2.0 client secret: from the setting (or
    /// `KEYDATES__MAIL__SMTP__OAUTH2__CLIENT_SECRET`), from
    /// `client_secret_file`, or from the systemd credential
    /// `smtp-oauth2-secret`.
    pub fn oauth2_secret(&self) -> std::io::Result<Option<SecretString>> {
        let Some(o) = &self.mail.smtp.oauth2 else {
            return Ok(None);
        };
        secret_from(
            o.client_secret.as_ref(),
            o.client_secret_file.as_ref().map(|f| self.resolve(f)),
            "smtp-oauth2-secret",
        )
    }

    pub fn smtp_password(&self) -> std::io::Result<Option<SecretString>> {
        let smtp = &self.mail.smtp;
        secret_from(
            smtp.password.as_ref(),
            smtp.password_file.as_ref().map(|f| self.resolve(f)),
            "smtp-password",
        )
    }
}

/// A secret given in the settings, else in a file (its first line), else
/// in the systemd credential `credential` under `$CREDENTIALS_DIRECTORY`.
fn secret_from(
    given: Option<&SecretString>,
    file: Option<PathBuf>,
    credential: &str,
) -> std::io::Result<Option<SecretString>> {
    if let Some(p) = given
        && !p.expose_secret().is_empty()
    {
        return Ok(Some(p.clone()));
    }
    let file = match (file, std::env::var_os("CREDENTIALS_DIRECTORY")) {
        (Some(f), _) => Some(f),
        (None, Some(dir)) => {
            let f = Path::new(&dir).join(credential);
            f.is_file().then_some(f)
        }
        (None, None) => None,
    };
    match file {
        Some(f) => {
            let text = std::fs::read_to_string(f)?;
            let first = text.lines().next().unwrap_or("").to_string();
            Ok(Some(SecretString::from(first)))
        }
        None => Ok(None),
    }
}

/// A secret that was generated, not typed: 32 or more characters, no
/// spaces, and no character making up more than a quarter of it.
fn strong_secret(secret: &str) -> bool {
    let chars: Vec<char> = secret.chars().collect();
    let most = chars
        .iter()
        .map(|c| chars.iter().filter(|d| *d == c).count())
        .max()
        .unwrap_or(0);
    chars.len() >= 32 && !chars.iter().any(|c| c.is_whitespace()) && most * 4 <= chars.len()
}

/// A token endpoint must be HTTPS: the client secret crosses it. Plain
/// `http://` only to this machine's loopback, for a local test endpoint.
fn check_token_url(text: &str) -> Result<(), BadTokenUrl> {
    let url = url::Url::parse(text).map_err(|source| BadTokenUrl::NotAUrl {
        given: text.to_string(),
        source,
    })?;
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(BadTokenUrl::Plain(text.to_string()))
            }
        }
        other => Err(BadTokenUrl::Scheme(other.to_string())),
    }
}

#[derive(Debug, thiserror::Error)]
enum BadTokenUrl {
    #[error("`{given}` is not a URL ({source})")]
    NotAUrl {
        given: String,
        #[source]
        source: url::ParseError,
    },
    #[error("`{0}` is plain http: the client secret would cross the network in clear; use https")]
    Plain(String),
    #[error("`{0}://` is not http or https")]
    Scheme(String),
}

/// Where the records and the outbox live, parsed from `database.url`.
#[derive(Clone)]
pub enum Location {
    Sqlite(PathBuf),
    /// The URL, which may carry a password.
    Postgres(SecretString),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            Location::Postgres(url) => write!(f, "Postgres({})", redact(url.expose_secret())),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => write!(f, "{}", redact(url.expose_secret())),
        }
    }
}

/// The URL with any password replaced, fit for logs and error messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(a URL that does not parse)".into(),
    }
}

#[cfg(test)]
mod alert_tests {
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
                .to_string()
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
