//! The command line. This is a contract: outside scripts rely on these
//! commands, their arguments and their JSON output.

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use crate::calendar::offset::Offset;
use crate::calendar::parse_date;
use crate::config::LogFormat;
use crate::domain::EmailAddress;
use crate::outbox::Status;
use crate::records::import::Kind;

/// `--now`: an instant (RFC 3339), or a date meaning that day at the sending hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Now {
    Instant(DateTime<Utc>),
    Date(NaiveDate),
}

impl FromStr for Now {
    type Err = NotAnInstant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(Now::Instant(t.with_timezone(&Utc)));
        }
        parse_date(s)
            .map(Now::Date)
            .map_err(|_| NotAnInstant(s.to_string()))
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("`{0}` is neither RFC 3339 (2027-01-15T09:00:00Z) nor YYYY-MM-DD")]
pub struct NotAnInstant(String);

/// keydates: sends the dated emails that follow an Ofsted inspection of a
/// local authority's children's services, each on its working day, with its annex.
#[derive(Debug, Parser)]
#[command(name = "keydates", version, about, long_about = None)]
pub struct Cli {
    /// The settings file.
    #[arg(
        long,
        global = true,
        env = "KEYDATES_CONFIG",
        default_value = "config/keydates.toml"
    )]
    pub config: PathBuf,

    /// Log format on stderr (overrides log.format in config).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the settings and templates, and say what was loaded.
    CheckConfig,

    /// Read a password on standard input and print its argon2 hash, for a
    /// `[[web.users]]` entry's password_hash.
    HashPassword,

    /// Write a lead inspector's or an authority's key dates as an iCalendar
    /// feed to standard output; with web.calendar_secret set, say on standard
    /// error the address to subscribe to. With --new-secret, print a new
    /// value for web.calendar_secret instead.
    Ics {
        /// The lead inspector's email address.
        #[arg(
            long,
            conflicts_with = "authority",
            required_unless_present_any = ["authority", "new_secret"]
        )]
        inspector: Option<EmailAddress>,
        /// Print a new random web.calendar_secret (changing it revokes every
        /// calendar address given out).
        #[arg(long, conflicts_with_all = ["inspector", "authority"])]
        new_secret: bool,
        /// The authority's code.
        #[arg(long)]
        authority: Option<String>,
    },

    /// First look: write fictional records dated from today (authority DEMO),
    /// import them, and write the emails due on the next working day to the
    /// mail folder. Refuses to send through a mail server or to mix with real records.
    Demo,

    /// Import a CSV file of records (all or nothing), adding and updating by key.
    Import {
        /// What the file holds.
        #[arg(value_enum)]
        kind: Kind,
        /// The CSV file.
        file: PathBuf,
    },

    /// List the bank holidays in force.
    Holidays {
        /// Only this year.
        #[arg(long)]
        year: Option<i32>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },

    /// Print the date an offset gives from an anchor date, e.g. `date 2026-11-02 "50 working days"`.
    Date {
        /// The anchor date, YYYY-MM-DD.
        #[arg(value_parser = parse_date)]
        anchor: NaiveDate,
        /// The offset, e.g. "50 working days", "-8 working days", "6 months".
        #[arg(allow_hyphen_values = true)]
        offset: Offset,
    },

    /// Record that a case's improvement plan / statement of action has arrived.
    PlanReceived {
        case_ref: String,
        /// The date it arrived (default: today).
        #[arg(long, value_parser = parse_date)]
        on: Option<NaiveDate>,
    },

    /// Record the agreed date of a case's improvement planning seminar or
    /// action planning visit; the final agenda reminder counts from it.
    SetPlanningEvent {
        case_ref: String,
        /// The agreed date, YYYY-MM-DD.
        #[arg(value_parser = parse_date)]
        on: NaiveDate,
    },

    /// Record the day the senior HMI's six-month conversation with the DCS of
    /// an authority that attended a seminar took place.
    RecordConversation {
        seminar_ref: String,
        authority_code: String,
        /// The day it took place, YYYY-MM-DD.
        #[arg(value_parser = parse_date)]
        on: NaiveDate,
    },

    /// Record one role's confirmation of an email that awaits it (the plan
    /// chase: the lead inspector and the senior HMI each confirm the plan has
    /// not reached them). It goes once every role asked has confirmed.
    Confirm {
        /// The outbox row id (see `keydates agenda` or `keydates outbox`).
        id: i64,
        /// The role confirming, one of the rule's `confirmation.by` (e.g.
        /// lead_inspector, shmi). Without it, the roles still missing are listed.
        #[arg(long = "as", value_name = "ROLE")]
        role: Option<String>,
    },

    /// Close a case: nothing more is sent for it.
    CloseCase { case_ref: String },

    /// Move a monitoring visit to a new first on-site day.
    MoveVisit {
        case_ref: String,
        visit_no: u32,
        /// The new first on-site day, YYYY-MM-DD.
        #[arg(value_parser = parse_date)]
        starts_on: NaiveDate,
    },

    /// Cancel a monitoring visit.
    CancelVisit { case_ref: String, visit_no: u32 },

    /// Set the audited cases selected for a visit (up to six references).
    SetAudited {
        case_ref: String,
        visit_no: u32,
        /// Case references, separate or `;`-separated.
        #[arg(required = true)]
        refs: Vec<String>,
    },

    /// Confirm a seminar, so its invitations go.
    ConfirmSeminar { seminar_ref: String },

    /// Cancel a seminar: its pending invitations are cancelled, and its
    /// delegates are told, with a cancellation for their calendars.
    CancelSeminar {
        seminar_ref: String,
        /// The day it was cancelled (default: today).
        #[arg(long, value_parser = parse_date)]
        on: Option<NaiveDate>,
    },

    /// Run the daemon: plan, reconcile and deliver on every poll.
    Run {
        /// One pass, then exit.
        #[arg(long)]
        once: bool,
        /// Pretend the clock reads this (RFC 3339, or YYYY-MM-DD at the sending hour).
        #[arg(long)]
        now: Option<Now>,
        /// Plan and render, but send and record nothing.
        #[arg(long)]
        dry_run: bool,
    },

    /// What will go when, and what went.
    Agenda {
        /// From this due date (default: no limit).
        #[arg(long, value_parser = parse_date)]
        from: Option<NaiveDate>,
        /// Up to this due date (default: no limit).
        #[arg(long, value_parser = parse_date)]
        to: Option<NaiveDate>,
        /// Plan as of this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        now: Option<Now>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },

    /// List outbox rows.
    Outbox {
        #[arg(long, value_enum)]
        status: Option<Status>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },

    /// Send a failed, missed or cancelled outbox row again.
    Retry { id: i64 },

    /// Cancel an outbox row that has not been sent.
    Cancel { id: i64 },

    /// Send one test message through the configured transport and print the reply.
    SendTest {
        #[arg(long)]
        to: EmailAddress,
    },

    /// Show the email an outbox row (or a rule for a subject) would send.
    Preview {
        /// An outbox row id.
        #[arg(conflicts_with_all = ["rule", "subject"], required_unless_present = "rule")]
        id: Option<i64>,
        /// A rule id (with --subject).
        #[arg(long, requires = "subject")]
        rule: Option<String>,
        /// Case ref, CASE_REF#VISIT_NO or seminar ref (with --rule).
        #[arg(long, requires = "rule")]
        subject: Option<String>,
        /// Write the message as an .eml file here instead of printing it.
        #[arg(long)]
        eml: Option<PathBuf>,
        /// Compose it as of this date or instant (default: now): the email
        /// that goes at that instant, its dates and documents included.
        #[arg(long)]
        now: Option<Now>,
    },

    /// Copy an installation's SQLite database, history included, into a new,
    /// empty PostgreSQL database (refuses one that holds anything). Stop the
    /// daemon first; afterwards point database.url at the new database.
    MigrateDb {
        /// The SQLite database file to copy from.
        #[arg(long, value_name = "SQLITE_PATH")]
        from: PathBuf,
        /// The PostgreSQL database to copy into, as postgres://USER:PASSWORD@HOST:PORT/DATABASE.
        #[arg(long, value_name = "POSTGRES_URL")]
        to: String,
    },

    /// Health for monitoring: last pass, next action, counts, the instances
    /// running; non-zero when unhealthy.
    Status {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}
