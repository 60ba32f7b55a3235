//! The case records: authorities, cases, monitoring visits, seminars and delegates.

pub mod audit;
pub mod demo;
pub mod edit;
pub mod import;
pub mod sample;
pub mod store;

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::domain::{EmailAddress, Judgement, Reference, Region, Subject};

#[derive(Debug, Clone, PartialEq)]
pub struct Authority {
    pub code: Reference,
    pub name: String,
    pub region: Region,
    pub dcs_name: String,
    pub dcs_email: EmailAddress,
    pub coordinator_email: Option<EmailAddress>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub case_ref: Reference,
    pub authority_code: Reference,
    pub judgement: Judgement,
    pub report_received_on: NaiveDate,
    pub plan_received_on: Option<NaiveDate>,
    pub lead_inspector_email: EmailAddress,
    pub dfe_link_email: Option<EmailAddress>,
    pub closed: bool,
    /// The agreed date of the improvement planning seminar or action planning
    /// visit, once recorded (000 §21, 001 §14).
    pub planning_event_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub case_ref: Reference,
    pub visit_no: u32,
    pub starts_on: NaiveDate,
    pub lead_inspector_email: EmailAddress,
    pub audited_cases: Vec<String>,
    pub cancelled: bool,
}

impl Visit {
    /// How visits are named in the outbox and on the command line: `CASE_REF#VISIT_NO`.
    pub fn subject(&self) -> Subject {
        Subject::Visit {
            case_ref: self.case_ref.clone(),
            visit_no: self.visit_no,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Seminar {
    pub seminar_ref: Reference,
    pub title: String,
    pub region: Region,
    pub held_on: NaiveDate,
    pub venue: String,
    pub confirmed: bool,
    pub cancelled: bool,
    /// Its own timetable; empty for none recorded.
    pub timetable: Timetable,
    /// How many times its day or venue has changed (the invitation's SEQUENCE).
    pub sequence: u32,
    /// The day it was cancelled, when it is.
    pub cancelled_on: Option<NaiveDate>,
    /// The day of the first pass that found it confirmed (its invitations
    /// go from then); none until that pass.
    pub confirmed_on: Option<NaiveDate>,
}

/// A seminar's timetable: sessions in order, each with its start time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timetable(Vec<(chrono::NaiveTime, String)>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimetableError {
    #[error("`{0}` does not start with a time such as 09:30 followed by the session")]
    NoTime(String),
    #[error("`{0}` names no session after its time")]
    NoSession(String),
    #[error("sessions must come in time order: {0} comes after a later one")]
    OutOfOrder(String),
}

impl Timetable {
    /// Reads `TIME SESSION` pairs separated by `;`, e.g.
    /// "10:00 Welcome; 10:30 The findings". Empty text is no timetable.
    pub fn parse(text: &str) -> Result<Timetable, TimetableError> {
        let mut sessions: Vec<(chrono::NaiveTime, String)> = Vec::new();
        for item in text.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            let (time, session) = item.split_once(char::is_whitespace).unwrap_or((item, ""));
            let time = chrono::NaiveTime::parse_from_str(time, "%H:%M")
                .map_err(|_| TimetableError::NoTime(item.to_string()))?;
            let session = session.trim();
            if session.is_empty() {
                return Err(TimetableError::NoSession(item.to_string()));
            }
            if sessions.last().is_some_and(|(t, _)| *t > time) {
                return Err(TimetableError::OutOfOrder(item.to_string()));
            }
            sessions.push((time, session.to_string()));
        }
        Ok(Timetable(sessions))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (time as HH:MM, session), in order.
    pub fn sessions(&self) -> impl Iterator<Item = (String, &str)> {
        self.0
            .iter()
            .map(|(t, s)| (t.format("%H:%M").to_string(), s.as_str()))
    }
}

impl std::fmt::Display for Timetable {
    /// The form it is read from, so that it round-trips.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<String> = self.sessions().map(|(t, s)| format!("{t} {s}")).collect();
        f.write_str(&items.join("; "))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delegate {
    pub seminar_ref: Reference,
    pub authority_code: Reference,
    pub name: String,
    pub email: EmailAddress,
}

/// The most delegates one authority may send to one seminar (000 Annex H).
pub const MAX_DELEGATES_PER_AUTHORITY: usize = 5;

/// The most audited cases an inspector selects for one visit.
pub const MAX_AUDITED_CASES: usize = 6;

/// Every record, as the planner sees them.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub authorities: BTreeMap<Reference, Authority>,
    pub cases: BTreeMap<Reference, Case>,
    pub visits: Vec<Visit>,
    pub seminars: BTreeMap<Reference, Seminar>,
    pub delegates: Vec<Delegate>,
    /// When the senior HMI's six-month conversation with an authority's DCS
    /// took place, by (seminar, authority) (000 §38).
    pub conversations: BTreeMap<(Reference, Reference), NaiveDate>,
    /// The authorities each seminar invites, as (seminar, authority).
    pub invited: std::collections::BTreeSet<(Reference, Reference)>,
    /// Rows that did not decode (changed by hand in the database): named,
    /// and left out of everything else.
    pub damaged: Vec<Damaged>,
}

/// A stored record that does not read back: its table, key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Damaged {
    pub table: String,
    pub key: String,
    pub problem: String,
}
