//! The planner: a pure function from records, rules and the calendar to the
//! emails that should exist, each with its due date and send time. It reads no
//! clock and touches no database, so `agenda`, `run --dry-run` and the daemon
//! all see the same plan.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::offset::Offset;
use crate::calendar::{Calendar, Direction};
use crate::config::Settings;
use crate::config::rules::{Anchor, Condition, Role, Rule, RuleOn, SendUntil};
use crate::domain::{EmailAddress, Judgement, Reference, Region, Subject};
use crate::records::{Authority, Case, Delegate, Records, Seminar, Visit};

/// Who an email goes to, resolved from roles.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Recipients {
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    pub reply_to: Vec<EmailAddress>,
}

impl Recipients {
    pub fn all(&self) -> impl Iterator<Item = &EmailAddress> {
        self.to.iter().chain(&self.cc)
    }
}

/// Addresses joined for people to read.
pub fn joined(addresses: &[EmailAddress]) -> String {
    addresses
        .iter()
        .map(EmailAddress::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One email that the records and rules call for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedAction {
    /// Unique per occurrence: rule, subject, anchor date (and authority or
    /// delegate where a rule fans out). Planning twice gives the same keys.
    pub key: String,
    pub rule_id: String,
    pub subject: Subject,
    pub authority: Option<String>,
    pub delegate: Option<EmailAddress>,
    pub anchor_on: NaiveDate,
    pub due_on: NaiveDate,
    pub send_at: DateTime<Utc>,
    /// Not sent by this instant, the action is missed rather than sent late.
    pub send_until: DateTime<Utc>,
    pub recipients: Recipients,
    /// Waits for someone to confirm it may go.
    pub held: bool,
    /// The day from which the outbox holds it: its due date, or for a held
    /// email the day its confirmation is asked for (the request names it).
    pub record_from: NaiveDate,
}

/// Which actions the outbox may hold. Dates cost little to plan; an
/// action's key, recipients and strings cost the most, so a plan for the
/// outbox builds in full only the actions it may store: those recorded from
/// `until` at the latest and not past their limit before keydates knew of
/// them, and every action of a case or seminar that has open rows to follow.
#[derive(Debug, Clone, Default)]
pub struct Horizon {
    /// The last day whose actions the outbox holds.
    pub until: NaiveDate,
    /// Today, local: an action whose last day was before it is past its limit.
    pub today: NaiveDate,
    /// How far the previous plan of every record reached: an action past its
    /// limit is still wanted (as missed) if it was recorded from after this.
    pub watermark: Option<NaiveDate>,
    pub cases: HashSet<String>,
    pub seminars: HashSet<String>,
}

impl Horizon {
    /// `end` is the day the action's limit runs out (its sending ends as
    /// that day begins). The outbox decides exactly; this keeps a superset.
    fn keeps(&self, involved: &Involved, record_from: NaiveDate, end: NaiveDate) -> bool {
        let current = end >= self.today || self.watermark.is_some_and(|w| record_from > w);
        (record_from <= self.until && current)
            || match involved.case {
                Some(c) if involved.seminar.is_none() => self.cases.contains(c.case_ref.as_str()),
                _ => involved
                    .seminar
                    .is_some_and(|s| self.seminars.contains(s.seminar_ref.as_str())),
            }
    }
}

/// The records one action is about: what templates and annexes are filled from.
#[derive(Debug, Clone, Default)]
pub struct Involved<'a> {
    pub authority: Option<&'a Authority>,
    pub case: Option<&'a Case>,
    pub visit: Option<&'a Visit>,
    pub seminar: Option<&'a Seminar>,
    pub delegate: Option<&'a Delegate>,
    pub delegates: Vec<&'a Delegate>,
    /// For an authority at a seminar: when the DCS conversation took place.
    pub conversation_on: Option<NaiveDate>,
    /// For a case: its first monitoring visit still on, whose lead inspector
    /// leads the monitoring (001 §9).
    pub first_visit: Option<&'a Visit>,
    /// An authority invited to a seminar: the seminar's region acts.
    pub invited: bool,
}

impl Involved<'_> {
    /// The region whose contacts act: the authority's, except for a seminar,
    /// one of its delegates or an invited authority, where it is the seminar's (a seminar can
    /// draw authorities from two regions, 000 §35).
    pub fn region(&self) -> Option<Region> {
        match (self.authority, self.seminar) {
            (Some(a), _) if self.delegate.is_none() && !self.invited => Some(a.region),
            (_, Some(s)) => Some(s.region),
            (a, None) => a.map(|a| a.region),
        }
    }

    /// Which record the subject is keyed on.
    pub fn key(&self) -> Subject {
        if let Some(v) = self.visit {
            v.subject()
        } else if let Some(c) = self.case {
            Subject::Case(c.case_ref.clone())
        } else if let Some(s) = self.seminar {
            Subject::Seminar(s.seminar_ref.clone())
        } else {
            unreachable!("every subject has a case, a visit or a seminar")
        }
    }

    /// The date a rule counts from for this subject, once it is recorded.
    pub fn anchor(&self, anchor: Anchor) -> Option<NaiveDate> {
        match anchor {
            Anchor::ReportReceivedOn => self.case.map(|c| c.report_received_on),
            Anchor::PlanReceivedOn => self.case.and_then(|c| c.plan_received_on),
            Anchor::StartsOn => self.visit.map(|v| v.starts_on),
            Anchor::HeldOn => self.seminar.map(|s| s.held_on),
            Anchor::PlanningEventOn => self.case.and_then(|c| c.planning_event_on),
            Anchor::ConversationOn => self.conversation_on,
            Anchor::CancelledOn => self.seminar.and_then(|s| s.cancelled_on),
            Anchor::ConfirmedOn => self.seminar.and_then(|s| s.confirmed_on),
        }
    }

    fn holds(&self, condition: Condition, settings: &Settings) -> bool {
        match condition {
            Condition::CaseOpen => self.case.is_some_and(|c| !c.closed),
            Condition::PlanNotReceived => self.case.is_some_and(|c| c.plan_received_on.is_none()),
            Condition::PlanReceived => self.case.is_some_and(|c| c.plan_received_on.is_some()),
            Condition::JudgementInadequate => self
                .case
                .is_some_and(|c| c.judgement == Judgement::Inadequate),
            Condition::JudgementRequiresImprovement => self
                .case
                .is_some_and(|c| c.judgement == Judgement::RequiresImprovement),
            Condition::VisitNotCancelled => self.visit.is_some_and(|v| !v.cancelled),
            Condition::SeminarConfirmed => self.seminar.is_some_and(|s| s.confirmed),
            Condition::SeminarNotCancelled => self.seminar.is_some_and(|s| !s.cancelled),
            Condition::SeminarCancelled => self.seminar.is_some_and(|s| s.cancelled),
            Condition::HasDelegates => !self.delegates.is_empty() || self.delegate.is_some(),
            Condition::NoDelegates => !self.holds(Condition::HasDelegates, settings),
            Condition::AuditedCasesRecorded => {
                self.visit.is_some_and(|v| !v.audited_cases.is_empty())
            }
            Condition::AuditedCasesNotRecorded => {
                self.visit.is_some_and(|v| v.audited_cases.is_empty())
            }
            Condition::NotFirstVisit => self.visit.is_some_and(|v| v.visit_no > 1),
            Condition::NoTimetable => {
                self.seminar.is_some_and(|s| s.timetable.is_empty())
                    && settings.seminars.timetable.is_empty()
            }
            Condition::HasTimetable => !self.holds(Condition::NoTimetable, settings),
            Condition::NoVisitRecorded => {
                self.case.is_some() && self.visit.is_none() && self.first_visit.is_none()
            }
        }
    }

    fn resolve(&self, role: &Role, settings: &Settings) -> Vec<EmailAddress> {
        let region = self.region().and_then(|r| settings.region(r));
        let one = |a: Option<&EmailAddress>| a.cloned().into_iter().collect();
        match role {
            Role::Dcs => one(self.authority.map(|a| &a.dcs_email)),
            Role::Coordinator => one(self
                .authority
                .map(|a| a.coordinator_email.as_ref().unwrap_or(&a.dcs_email))),
            Role::LeadInspector => one(self
                .visit
                .map(|v| &v.lead_inspector_email)
                .or(self.case.map(|c| &c.lead_inspector_email))),
            Role::Shmi => one(region.map(|r| &r.shmi)),
            Role::RegionalDirector => one(region.map(|r| &r.regional_director)),
            Role::SupportTeam => one(region.map(|r| &r.support_team)),
            Role::Ims => one(Some(&settings.contacts.ims)),
            Role::NationalDirector => one(Some(&settings.contacts.national_director)),
            // The DfE's link person and its inspections and interventions
            // team follow inadequate authorities only (001 §9).
            Role::DfeLink => one(self
                .case
                .filter(|c| c.judgement == Judgement::Inadequate)
                .and_then(|c| c.dfe_link_email.as_ref())),
            Role::DfeTeam => one(self
                .case
                .filter(|c| c.judgement == Judgement::Inadequate)
                .and(settings.contacts.dfe_team.as_ref())),
            Role::MonitoringLead => one(self.first_visit.map(|v| &v.lead_inspector_email)),
            Role::Delegate => one(self.delegate.map(|d| &d.email)),
            Role::Delegates => self.delegates.iter().map(|d| d.email.clone()).collect(),
            Role::Address(a) => vec![a.clone()],
        }
    }

    /// Resolves a rule's roles, each address once: `to` wins over `cc`.
    pub fn recipients(&self, rule: &Rule, settings: &Settings) -> Recipients {
        let mut seen = BTreeSet::new();
        let mut take = |roles: &[Role]| -> Vec<EmailAddress> {
            roles
                .iter()
                .flat_map(|r| self.resolve(r, settings))
                .filter(|a| seen.insert(a.as_str().to_ascii_lowercase()))
                .collect()
        };
        let to = take(&rule.to);
        let cc = take(&rule.cc);
        let reply_to = rule
            .reply_to
            .iter()
            .flat_map(|r| self.resolve(r, settings))
            .collect();
        Recipients { to, cc, reply_to }
    }
}

/// Every subject a rule of `kind` applies to.
pub fn involved<'a>(records: &'a Records, kind: RuleOn) -> Vec<Involved<'a>> {
    let mut out = Vec::new();
    for_each_involved(records, kind, |s| out.push(s));
    out
}

/// Calls `f` with every subject a rule of `kind` applies to, one at a time:
/// a plan of many cases holds no list of them.
pub fn for_each_involved<'a>(records: &'a Records, kind: RuleOn, mut f: impl FnMut(Involved<'a>)) {
    let authority = |code: &str| records.authorities.get(code);
    match kind {
        RuleOn::Case => {
            // Visits come in case and visit order: the first one still on.
            let mut first_visits: HashMap<&str, &Visit> = HashMap::new();
            for v in records.visits.iter().filter(|v| !v.cancelled) {
                first_visits.entry(v.case_ref.as_str()).or_insert(v);
            }
            for c in records.cases.values() {
                f(Involved {
                    authority: authority(&c.authority_code),
                    case: Some(c),
                    first_visit: first_visits.get(c.case_ref.as_str()).copied(),
                    ..Involved::default()
                });
            }
        }
        RuleOn::Visit => {
            // Visits come in case order: look each case up once.
            let mut current: Option<(&str, Option<&Case>, Option<&Authority>)> = None;
            for v in &records.visits {
                let (_, case, authority) = match current {
                    Some(found) if v.case_ref == found.0 => found,
                    _ => {
                        let case = records.cases.get(&v.case_ref);
                        let found = (
                            v.case_ref.as_str(),
                            case,
                            case.and_then(|c| authority(&c.authority_code)),
                        );
                        current = Some(found);
                        found
                    }
                };
                if let Some(case) = case {
                    f(Involved {
                        authority,
                        case: Some(case),
                        visit: Some(v),
                        ..Involved::default()
                    });
                }
            }
        }
        RuleOn::Seminar => {
            let by_seminar = delegates_by_seminar(records);
            for s in records.seminars.values() {
                f(Involved {
                    seminar: Some(s),
                    delegates: by_seminar
                        .get(s.seminar_ref.as_str())
                        .cloned()
                        .unwrap_or_default(),
                    ..Involved::default()
                });
            }
        }
        RuleOn::Delegate => {
            for d in &records.delegates {
                if let Some(seminar) = records.seminars.get(&d.seminar_ref) {
                    f(Involved {
                        authority: authority(&d.authority_code),
                        seminar: Some(seminar),
                        delegate: Some(d),
                        delegates: vec![d],
                        ..Involved::default()
                    });
                }
            }
        }
        RuleOn::SeminarAuthority => {
            let mut groups: BTreeMap<(&Reference, &Reference), Vec<&Delegate>> = BTreeMap::new();
            for d in &records.delegates {
                groups
                    .entry((&d.seminar_ref, &d.authority_code))
                    .or_default()
                    .push(d);
            }
            for ((seminar, code), delegates) in groups {
                if let (Some(authority), Some(seminar_record)) =
                    (authority(code), records.seminars.get(seminar))
                {
                    f(Involved {
                        authority: Some(authority),
                        seminar: Some(seminar_record),
                        delegates,
                        conversation_on: records
                            .conversations
                            .get(&(seminar.clone(), code.clone()))
                            .copied(),
                        ..Involved::default()
                    });
                }
            }
        }
        RuleOn::InvitedAuthority => {
            let by_seminar = delegates_by_seminar(records);
            for (seminar, code) in &records.invited {
                if let (Some(authority), Some(seminar_record)) =
                    (authority(code), records.seminars.get(seminar))
                {
                    let delegates = by_seminar
                        .get(seminar.as_str())
                        .map(|all| {
                            all.iter()
                                .copied()
                                .filter(|d| &d.authority_code == code)
                                .collect()
                        })
                        .unwrap_or_default();
                    f(Involved {
                        authority: Some(authority),
                        seminar: Some(seminar_record),
                        delegates,
                        invited: true,
                        ..Involved::default()
                    });
                }
            }
        }
    }
}

fn delegates_by_seminar(records: &Records) -> BTreeMap<&str, Vec<&Delegate>> {
    let mut map: BTreeMap<&str, Vec<&Delegate>> = BTreeMap::new();
    for d in &records.delegates {
        map.entry(d.seminar_ref.as_str()).or_default().push(d);
    }
    map
}

/// The outbox key of one occurrence.
pub fn action_key(rule: &Rule, involved: &Involved, anchor_on: NaiveDate) -> String {
    let mut key = format!("{}|{}|{}", rule.id, involved.key(), anchor_on);
    match rule.on {
        RuleOn::Delegate => {
            if let Some(d) = involved.delegate {
                key.push('|');
                key.push_str(&d.email.as_str().to_ascii_lowercase());
            }
        }
        RuleOn::SeminarAuthority | RuleOn::InvitedAuthority => {
            if let Some(a) = involved.authority {
                key.push('|');
                key.push_str(&a.code);
            }
        }
        _ => {}
    }
    key
}

/// The instant a local date and hour stand for. A local time the clock skips
/// (only possible for hours near 01:00) becomes the first valid instant after.
pub fn local_instant(date: NaiveDate, hour: u32, tz: Tz) -> DateTime<Utc> {
    for h in hour..24 {
        if let Some(t) = date
            .and_hms_opt(h, 0, 0)
            .and_then(|naive| tz.from_local_datetime(&naive).earliest())
        {
            return t.with_timezone(&Utc);
        }
    }
    date.and_hms_opt(hour, 0, 0)
        .map(|n| Utc.from_utc_datetime(&n))
        .unwrap_or_default()
}

/// Plans one rule for one subject, or says why it gives nothing. With a
/// horizon, an action beyond it gives nothing either.
pub fn plan_one(
    rule: &Rule,
    involved: &Involved,
    settings: &Settings,
    calendar: &Calendar,
    horizon: Option<&Horizon>,
) -> Option<PlannedAction> {
    if !rule.when.iter().all(|c| involved.holds(*c, settings)) {
        return None;
    }
    let anchor_on = involved.anchor(rule.anchor)?;
    let last_allowed = rule.offset.apply(anchor_on, calendar)?;
    let due_on = match first_chance(rule, involved, settings, calendar) {
        Some(first) => first.min(last_allowed),
        None => last_allowed,
    };
    let asked_on = match &rule.confirmation {
        Some(c) if rule.held => c.ask.apply(due_on, calendar),
        _ => None,
    };
    let record_from = asked_on.map_or(due_on, |a| a.min(due_on));
    let last_day_end = match rule.send_until() {
        SendUntil::Anchor => anchor_on,
        SendUntil::AfterDue(offset) => offset
            .apply(due_on, calendar)?
            .checked_add_days(Days::new(1))?,
    };
    if horizon.is_some_and(|h| !h.keeps(involved, record_from, last_day_end)) {
        return None;
    }
    let tz = settings.time_zone();
    let send_at = local_instant(due_on, settings.schedule.send_hour, tz);
    let send_until = local_instant(last_day_end, 0, tz);
    let recipients = involved.recipients(rule, settings);
    if recipients.to.is_empty() {
        return None;
    }
    Some(PlannedAction {
        key: action_key(rule, involved, anchor_on),
        rule_id: rule.id.clone(),
        subject: involved.key(),
        authority: involved.authority.map(|a| a.code.to_string()),
        delegate: involved.delegate.map(|d| d.email.clone()),
        anchor_on,
        due_on,
        send_at,
        send_until,
        recipients,
        held: rule.held,
        record_from,
    })
}

/// The working day a rule's email may first go, when its `first_chance`
/// applies to this subject.
fn first_chance(
    rule: &Rule,
    involved: &Involved,
    settings: &Settings,
    calendar: &Calendar,
) -> Option<NaiveDate> {
    let first = rule.first_chance.as_ref()?;
    if !first.when.iter().all(|c| involved.holds(*c, settings)) {
        return None;
    }
    calendar.roll(involved.anchor(first.from)?, Direction::Forward)
}

/// Every action the records and enabled rules call for, in send order.
pub fn plan(records: &Records, settings: &Settings, calendar: &Calendar) -> Vec<PlannedAction> {
    plan_within(records, settings, calendar, RuleOn::ALL, None)
}

/// The actions of rules on these kinds of subject, within the horizon if
/// one is given, in send order.
pub fn plan_within(
    records: &Records,
    settings: &Settings,
    calendar: &Calendar,
    kinds: &[RuleOn],
    horizon: Option<&Horizon>,
) -> Vec<PlannedAction> {
    let mut actions = Vec::new();
    for &kind in kinds {
        let rules: Vec<&Rule> = settings.enabled_rules().filter(|r| r.on == kind).collect();
        if rules.is_empty() {
            continue;
        }
        for_each_involved(records, kind, |involved| {
            actions.extend(
                rules
                    .iter()
                    .filter_map(|rule| plan_one(rule, &involved, settings, calendar, horizon)),
            );
        });
    }
    actions.sort_by(|a, b| (a.send_at, &a.key).cmp(&(b.send_at, &b.key)));
    actions
}

/// Finds the records an outbox row is about, by rule kind and subject name.
pub fn find_involved<'a>(
    records: &'a Records,
    rule: &Rule,
    subject: &Subject,
    authority: Option<&str>,
    delegate: Option<&EmailAddress>,
) -> Option<Involved<'a>> {
    involved(records, rule.on).into_iter().find(|s| {
        s.key() == *subject
            && (authority.is_none() || s.authority.map(|a| a.code.as_str()) == authority)
            && (delegate.is_none() || s.delegate.is_some_and(|d| Some(&d.email) == delegate))
    })
}

/// An action that cannot be dated yet: its rule counts from a date that
/// someone has still to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub rule_id: String,
    pub subject: Subject,
    pub authority: Option<String>,
    /// What is missing, and the command that records it.
    pub reason: String,
}

/// Every action whose conditions hold but whose anchor date is not recorded.
pub fn waiting(records: &Records, settings: &Settings) -> Vec<Waiting> {
    let mut out = Vec::new();
    for rule in settings.enabled_rules() {
        let Some((what, command)) = rule.anchor.awaited() else {
            continue;
        };
        for s in involved(records, rule.on) {
            if s.anchor(rule.anchor).is_none() && rule.when.iter().all(|c| s.holds(*c, settings)) {
                out.push(Waiting {
                    rule_id: rule.id.clone(),
                    subject: s.key(),
                    authority: s.authority.map(|a| a.code.to_string()),
                    reason: format!("{what} ({command})"),
                });
            }
        }
    }
    out
}

/// The window in which the planning event should fall: 25 to 35 working days
/// after the report was received (000 §8, §13; 001 §10).
pub fn planning_window(
    calendar: &Calendar,
    report_received_on: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    Some((
        calendar.add_working_days(report_received_on, 25)?,
        calendar.add_working_days(report_received_on, 35)?,
    ))
}

/// The statutory deadline for the improvement plan / written statement of
/// action: 70 working days after the report was received (000 §25; 001 §19).
pub fn plan_due_on(calendar: &Calendar, report_received_on: NaiveDate) -> Option<NaiveDate> {
    calendar.add_working_days(report_received_on, 70)
}

/// The dates the planner derives for one email from its records and its due
/// date, handed to composing so that the email states what the plan computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyDates {
    /// The improvement plan's statutory deadline, for a case.
    pub plan_due_on: Option<NaiveDate>,
    /// When the planning seminar or visit should fall, for a case.
    pub planning_window: Option<(NaiveDate, NaiveDate)>,
    /// When a visit's audited case files are due.
    pub files_due_on: Option<NaiveDate>,
    /// When the child-level data asked for on the due date comes back: the
    /// end of that week (001 §42).
    pub data_due_on: Option<NaiveDate>,
    /// For a question asking whether a held email may go: that email's day.
    pub held_due_on: Option<NaiveDate>,
}

impl Involved<'_> {
    /// The dates an email states, as of `sent_on`, the day it goes.
    pub fn key_dates(
        &self,
        calendar: &Calendar,
        late_return: &Offset,
        rule: &Rule,
        anchor_on: NaiveDate,
        due_on: NaiveDate,
        sent_on: NaiveDate,
    ) -> KeyDates {
        KeyDates {
            held_due_on: rule
                .confirms
                .as_ref()
                .and_then(|offset| offset.apply(anchor_on, calendar)),
            plan_due_on: self
                .case
                .and_then(|c| plan_due_on(calendar, c.report_received_on)),
            planning_window: self
                .case
                .and_then(|c| planning_window(calendar, c.report_received_on)),
            files_due_on: self.visit.and_then(|v| files_due_on(calendar, v.starts_on)),
            data_due_on: self
                .visit
                .and_then(|v| data_due_on(calendar, late_return, due_on, sent_on, v.starts_on)),
        }
    }
}

/// Child-level data asked for on `due_on` comes back by the end of that
/// week (001 §42). A request that goes late asks for it by `late_return`
/// counted from the day it goes, so the date it gives is never already
/// past; and before the visit's first day in any case.
fn data_due_on(
    calendar: &Calendar,
    late_return: &Offset,
    due_on: NaiveDate,
    sent_on: NaiveDate,
    starts_on: NaiveDate,
) -> Option<NaiveDate> {
    let back = if sent_on > due_on {
        late_return.apply(sent_on, calendar)?.max(sent_on)
    } else {
        calendar.end_of_week(due_on)?
    };
    let eve = calendar.add_working_days(starts_on, -1)?;
    Some(if back < starts_on {
        back
    } else {
        eve.max(sent_on)
    })
}

impl KeyDates {
    /// Whether an email of `rule` going on `sent_on` would ask for something
    /// already due: then its `too_late` email goes instead.
    pub fn too_late_for(&self, rule: &Rule, sent_on: NaiveDate) -> bool {
        rule.too_late.as_ref().is_some_and(|t| {
            let deadline = match t.after {
                crate::config::rules::Deadline::FilesDueOn => self.files_due_on,
            };
            deadline.is_some_and(|d| sent_on >= d)
        })
    }
}

/// Audited case files are due at least three working days before a visit (001 §27).
pub fn files_due_on(calendar: &Calendar, starts_on: NaiveDate) -> Option<NaiveDate> {
    calendar.add_working_days(starts_on, -3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::London;

    fn d(s: &str) -> NaiveDate {
        crate::calendar::parse_date(s).unwrap()
    }

    #[test]
    fn the_sending_hour_is_local_on_both_sides_of_each_clock_change() {
        let at = |s| local_instant(d(s), 9, London).to_rfc3339();
        assert_eq!(at("2027-03-26"), "2027-03-26T09:00:00+00:00");
        assert_eq!(at("2027-03-29"), "2027-03-29T08:00:00+00:00");
        assert_eq!(at("2026-10-23"), "2026-10-23T08:00:00+00:00");
        assert_eq!(at("2026-10-26"), "2026-10-26T09:00:00+00:00");
    }

    #[test]
    fn an_hour_the_clock_skips_becomes_the_next_one_and_a_repeated_hour_the_first() {
        // 01:00 on 28 March 2027 does not exist in London; 01:00 on 31 October
        // 2027 happens twice.
        assert_eq!(
            local_instant(d("2027-03-28"), 1, London).to_rfc3339(),
            "2027-03-28T01:00:00+00:00"
        );
        assert_eq!(
            local_instant(d("2027-10-31"), 1, London).to_rfc3339(),
            "2027-10-31T00:00:00+00:00"
        );
    }
}
