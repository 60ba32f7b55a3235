//! Rules: what an admin writes in config to say which email goes when, and to whom.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;
use serde_with::DeserializeFromStr;
use strum::IntoStaticStr;

use crate::calendar::offset::{Offset, OffsetError};
use crate::config::values::BadValue;
use crate::domain::{AnnexKind, EmailAddress, SubjectType, parse_named};

/// What a rule hangs on: each record of this kind gives at most one action.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, DeserializeFromStr, IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum RuleOn {
    /// One action per case.
    Case,
    /// One action per monitoring visit.
    Visit,
    /// One action per seminar.
    Seminar,
    /// One action per seminar delegate.
    Delegate,
    /// One action per authority that sent delegates to a seminar.
    SeminarAuthority,
    /// One action per authority a seminar invites, delegates or not.
    InvitedAuthority,
}

impl RuleOn {
    pub const ALL: &'static [RuleOn] = &[
        RuleOn::Case,
        RuleOn::Visit,
        RuleOn::Seminar,
        RuleOn::Delegate,
        RuleOn::SeminarAuthority,
        RuleOn::InvitedAuthority,
    ];
    /// The kinds planned from a case and its visits.
    pub const OF_CASES: &'static [RuleOn] = &[RuleOn::Case, RuleOn::Visit];
    /// The kinds planned from a seminar and its delegates.
    pub const OF_SEMINARS: &'static [RuleOn] = &[
        RuleOn::Seminar,
        RuleOn::Delegate,
        RuleOn::SeminarAuthority,
        RuleOn::InvitedAuthority,
    ];

    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The record an action of this kind is keyed on.
    pub fn subject_type(self) -> SubjectType {
        match self {
            RuleOn::Case => SubjectType::Case,
            RuleOn::Visit => SubjectType::Visit,
            RuleOn::Seminar
            | RuleOn::Delegate
            | RuleOn::SeminarAuthority
            | RuleOn::InvitedAuthority => SubjectType::Seminar,
        }
    }

    /// The date fields a rule on this kind may count from.
    pub fn anchors(self) -> &'static [Anchor] {
        match self {
            RuleOn::Case => &[
                Anchor::ReportReceivedOn,
                Anchor::PlanReceivedOn,
                Anchor::PlanningEventOn,
            ],
            RuleOn::Visit => &[Anchor::StartsOn, Anchor::ReportReceivedOn],
            RuleOn::Seminar | RuleOn::Delegate | RuleOn::InvitedAuthority => {
                &[Anchor::HeldOn, Anchor::CancelledOn, Anchor::ConfirmedOn]
            }
            RuleOn::SeminarAuthority => &[Anchor::HeldOn, Anchor::ConversationOn],
        }
    }
}

crate::named_enum!(RuleOn, "a record kind");
crate::named_enum!(Anchor, "a date field");
crate::named_enum!(Condition, "a condition");

/// A date field of a record.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, DeserializeFromStr, IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum Anchor {
    ReportReceivedOn,
    PlanReceivedOn,
    StartsOn,
    HeldOn,
    /// The agreed date of the planning event, once recorded.
    PlanningEventOn,
    /// The day the six-month conversation with the DCS took place, once recorded.
    ConversationOn,
    /// The day a seminar was cancelled, when it is.
    CancelledOn,
    /// The day of the first pass that found a seminar confirmed.
    ConfirmedOn,
}

impl Anchor {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// For a date someone records by hand: what a line waiting for it says,
    /// and the command that records it.
    pub fn awaited(self) -> Option<(&'static str, &'static str)> {
        match self {
            Anchor::PlanningEventOn => Some((
                "waiting for the planning event's date",
                "keydates set-planning-event CASE DATE",
            )),
            Anchor::ConversationOn => Some((
                "waiting for the conversation's date",
                "keydates record-conversation SEMINAR AUTHORITY DATE",
            )),
            _ => None,
        }
    }
}

/// A condition that must hold for the action to be planned (all must hold).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, DeserializeFromStr, IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum Condition {
    CaseOpen,
    PlanNotReceived,
    PlanReceived,
    JudgementInadequate,
    JudgementRequiresImprovement,
    VisitNotCancelled,
    SeminarConfirmed,
    SeminarNotCancelled,
    HasDelegates,
    /// No delegate recorded yet (for an authority: none of its own).
    NoDelegates,
    /// The visit's audited cases have been selected and recorded.
    AuditedCasesRecorded,
    AuditedCasesNotRecorded,
    /// Any monitoring visit but the first (whose report is not published, 001 §41).
    NotFirstVisit,
    /// A case with no monitoring visit still on recorded.
    NoVisitRecorded,
    /// A seminar with no timetable of its own, and none in `[seminars]`.
    NoTimetable,
    /// A seminar with a timetable of its own, or one in `[seminars]`.
    HasTimetable,
    SeminarCancelled,
}

/// Who receives an email, named by role and resolved from the records and config.
/// Not a plain name table: any text with an `@` is an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, DeserializeFromStr)]
pub enum Role {
    /// The authority's Director of Children's Services.
    Dcs,
    /// The authority's monitoring-visit coordinator, or the DCS if none is recorded.
    Coordinator,
    /// The visit's lead inspector for visit rules, else the case's.
    LeadInspector,
    Shmi,
    RegionalDirector,
    SupportTeam,
    Ims,
    NationalDirector,
    /// The DfE link person, where the case has one (inadequate only).
    DfeLink,
    /// The DfE's inspections and interventions team (`[contacts] dfe_team`),
    /// for inadequate cases (001 §9).
    DfeTeam,
    /// The lead inspector of a case's first monitoring visit still on, where
    /// one is recorded.
    MonitoringLead,
    /// The one delegate a `delegate` rule is about.
    Delegate,
    /// Every delegate of the authority (or seminar) the action is about.
    Delegates,
    /// A fixed address.
    Address(EmailAddress),
}

const ROLE_NAMES: &str = "dcs, coordinator, lead_inspector, shmi, regional_director, support_team, ims, national_director, dfe_link, dfe_team, monitoring_lead, delegate, delegates, or an email address";

impl FromStr for Role {
    type Err = BadValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "dcs" => Role::Dcs,
            "coordinator" => Role::Coordinator,
            "lead_inspector" => Role::LeadInspector,
            "shmi" => Role::Shmi,
            "regional_director" => Role::RegionalDirector,
            "support_team" => Role::SupportTeam,
            "ims" => Role::Ims,
            "national_director" => Role::NationalDirector,
            "dfe_link" => Role::DfeLink,
            "dfe_team" => Role::DfeTeam,
            "monitoring_lead" => Role::MonitoringLead,
            "delegate" => Role::Delegate,
            "delegates" => Role::Delegates,
            other if other.contains('@') => Role::Address(EmailAddress::parse(other)?),
            other => {
                return Err(BadValue::Role {
                    given: other.to_string(),
                    roles: ROLE_NAMES,
                });
            }
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Dcs => "dcs",
            Role::Coordinator => "coordinator",
            Role::LeadInspector => "lead_inspector",
            Role::Shmi => "shmi",
            Role::RegionalDirector => "regional_director",
            Role::SupportTeam => "support_team",
            Role::Ims => "ims",
            Role::NationalDirector => "national_director",
            Role::DfeLink => "dfe_link",
            Role::DfeTeam => "dfe_team",
            Role::MonitoringLead => "monitoring_lead",
            Role::Delegate => "delegate",
            Role::Delegates => "delegates",
            Role::Address(a) => a.as_str(),
        })
    }
}

impl Rule {
    /// The roles that must each confirm this rule's held emails.
    pub fn confirmed_by(&self) -> Vec<String> {
        self.confirmation
            .iter()
            .flat_map(|c| c.by.iter().map(|r| r.to_string()))
            .collect()
    }
}

/// How late an overdue action may still go after downtime.
#[derive(Debug, Clone, PartialEq, Eq, DeserializeFromStr)]
pub enum SendUntil {
    /// Until the anchor date itself (the event) arrives.
    Anchor,
    /// Up to and including the date this offset gives from the due date.
    AfterDue(Offset),
}

impl FromStr for SendUntil {
    type Err = BadValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "anchor" {
            return Ok(SendUntil::Anchor);
        }
        s.parse::<Offset>()
            .map(SendUntil::AfterDue)
            .map_err(BadValue::SendUntil)
    }
}

impl fmt::Display for SendUntil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendUntil::Anchor => f.write_str("anchor"),
            SendUntil::AfterDue(o) => write!(f, "{o} after due"),
        }
    }
}

/// An attachment: a document generated for the case, or a file the admin supplies.
#[derive(Debug, Clone, PartialEq, Eq, DeserializeFromStr)]
pub enum AnnexSpec {
    Generated(AnnexKind),
    File(PathBuf),
    /// `calendar`: the seminar as an invitation, or the visit's first day, as .ics.
    Calendar,
}

impl FromStr for AnnexSpec {
    type Err = BadValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("file:") {
            if path.trim().is_empty() {
                return Err(BadValue::NoPath);
            }
            return Ok(AnnexSpec::File(PathBuf::from(path.trim())));
        }
        if s.trim() == "calendar" {
            return Ok(AnnexSpec::Calendar);
        }
        parse_named::<AnnexKind>("an annex", s)
            .map(AnnexSpec::Generated)
            .map_err(BadValue::Annex)
    }
}

/// One rule as written in config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id: part of every outbox key, so renaming a rule re-plans its actions.
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub on: RuleOn,
    pub anchor: Anchor,
    pub offset: Offset,
    #[serde(default)]
    pub when: Vec<Condition>,
    pub to: Vec<Role>,
    #[serde(default)]
    pub cc: Vec<Role>,
    #[serde(default)]
    pub reply_to: Vec<Role>,
    /// The subject line, a template.
    pub subject: String,
    /// Base name of the body templates: `NAME.txt` and `NAME.html`.
    pub template: String,
    #[serde(default)]
    pub annexes: Vec<AnnexSpec>,
    /// Default: "anchor" for reminders before the anchor, "10 working days" otherwise.
    #[serde(default)]
    pub send_until: Option<SendUntil>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Held until someone confirms it may go; the people asked are emailed
    /// ahead of its day by a rule made from this (`ID-confirmation`).
    #[serde(default)]
    pub confirmation: Option<Confirmation>,
    /// Set on the rule a confirmation step was made from: its emails wait as
    /// `awaiting_confirmation` until `keydates confirm ID`.
    #[serde(skip)]
    pub held: bool,
    /// On a rule made from a `confirmation`: the held rule's offset, so that
    /// the question can name the day the held email falls due.
    #[serde(skip)]
    pub confirms: Option<Offset>,
    /// Goes earlier than its offset's day (then the last day allowed) when
    /// its subject is ready sooner.
    #[serde(default)]
    pub first_chance: Option<FirstChance>,
    /// What goes instead when the email would reach its readers too late to
    /// meet the date it states.
    #[serde(default)]
    pub too_late: Option<TooLate>,
    /// Set on the rule made from a `too_late`: its subject is that one's.
    #[serde(skip)]
    pub is_too_late: bool,
}

/// The first day a rule's email may go, when that is before its offset's day.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstChance {
    /// From this date (the next working day when it is not one).
    pub from: Anchor,
    /// And only while these hold as well; otherwise on the offset's day.
    #[serde(default)]
    pub when: Vec<Condition>,
}

/// A rule's email for when it goes on or after the date it asks its readers
/// to meet: to the people who decide what to do instead.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TooLate {
    /// The date the email states; from that day on, it is too late.
    pub after: Deadline,
    pub to: Vec<Role>,
    #[serde(default)]
    pub cc: Vec<Role>,
    #[serde(default)]
    pub reply_to: Vec<Role>,
    pub subject: String,
    pub template: String,
}

/// A date an email asks its readers to meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deadline {
    /// The completed audits of a visit's selected cases (001 §27).
    FilesDueOn,
}

/// A confirmation step, as written under a rule in config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// Who is asked, and may confirm.
    pub by: Vec<Role>,
    /// When they are asked, counted from the held email's due date, e.g. "-3 working days".
    pub ask: Offset,
    #[serde(default)]
    pub cc: Vec<Role>,
    #[serde(default)]
    pub reply_to: Vec<Role>,
    /// The request's subject line (a template) and body templates.
    pub subject: String,
    pub template: String,
}

impl Rule {
    /// The rule that asks for the confirmation, made from a rule's
    /// `confirmation`: same records and conditions, its own day and people.
    pub fn confirmation_rule(&self) -> Option<Result<Rule, OffsetError>> {
        let c = self.confirmation.as_ref()?;
        let offset = format!("{} then {}", self.offset, c.ask).parse::<Offset>();
        Some(offset.map(|offset| Rule {
            id: format!("{}-confirmation", self.id),
            description: format!("Ask whether {} may go", self.id),
            on: self.on,
            anchor: self.anchor,
            offset,
            when: self.when.clone(),
            to: c.by.clone(),
            cc: c.cc.clone(),
            reply_to: c.reply_to.clone(),
            subject: c.subject.clone(),
            template: c.template.clone(),
            annexes: Vec::new(),
            send_until: None,
            enabled: self.enabled,
            confirmation: None,
            held: false,
            confirms: Some(self.offset.clone()),
            first_chance: None,
            too_late: None,
            is_too_late: false,
        }))
    }

    /// The rule as it goes when too late: same records and outbox row, the
    /// `too_late` people and words.
    pub fn too_late_rule(&self) -> Option<Rule> {
        let t = self.too_late.as_ref()?;
        Some(Rule {
            to: t.to.clone(),
            cc: t.cc.clone(),
            reply_to: t.reply_to.clone(),
            subject: t.subject.clone(),
            template: t.template.clone(),
            annexes: Vec::new(),
            too_late: None,
            is_too_late: true,
            ..self.clone()
        })
    }

    /// The name its subject line is registered under with the templates.
    pub fn subject_template(&self) -> String {
        if self.is_too_late {
            format!("subject:{}:too-late", self.id)
        } else {
            format!("subject:{}", self.id)
        }
    }
}

fn yes() -> bool {
    true
}

impl Rule {
    pub fn send_until(&self) -> &SendUntil {
        static ANCHOR: SendUntil = SendUntil::Anchor;
        static TEN_WORKING_DAYS: std::sync::LazyLock<SendUntil> = std::sync::LazyLock::new(|| {
            SendUntil::AfterDue("10 working days".parse().expect("a valid offset"))
        });
        match &self.send_until {
            Some(until) => until,
            None if self.offset.is_before() => &ANCHOR,
            None => &TEN_WORKING_DAYS,
        }
    }

    /// Checks what serde cannot: that the anchor fits the subject and ids are sane.
    pub fn check(&self) -> Result<(), BadRule> {
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(BadRule::Id(self.id.clone()));
        }
        if !self.on.anchors().contains(&self.anchor) {
            let allowed: Vec<_> = self.on.anchors().iter().map(|a| a.name()).collect();
            return Err(BadRule::Anchor {
                anchor: self.anchor.name(),
                on: self.on.name(),
                allowed: allowed.join(" or "),
            });
        }
        if let Some(first) = &self.first_chance
            && !self.on.anchors().contains(&first.from)
        {
            let allowed: Vec<_> = self.on.anchors().iter().map(|a| a.name()).collect();
            return Err(BadRule::FirstChance {
                from: first.from.name(),
                on: self.on.name(),
                allowed: allowed.join(" or "),
            });
        }
        if self.to.is_empty() {
            return Err(BadRule::NoRecipient);
        }
        let needs_delegate = [&self.to, &self.cc, &self.reply_to]
            .iter()
            .any(|roles| roles.contains(&Role::Delegate));
        if needs_delegate && self.on != RuleOn::Delegate {
            return Err(BadRule::DelegateRole);
        }
        if self.template.contains(['/', '\\']) || self.template.starts_with('.') {
            return Err(BadRule::Template(self.template.clone()));
        }
        Ok(())
    }
}

/// Why a rule is refused, beyond what its fields' types check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRule {
    #[error("id `{0}` must be letters, digits, '-' or '_'")]
    Id(String),
    #[error("anchor `{anchor}` does not belong to a {on} (use {allowed})")]
    Anchor {
        anchor: &'static str,
        on: &'static str,
        allowed: String,
    },
    #[error("first_chance.from `{from}` does not belong to a {on} (use {allowed})")]
    FirstChance {
        from: &'static str,
        on: &'static str,
        allowed: String,
    },
    #[error("`to` names nobody")]
    NoRecipient,
    #[error("role `delegate` only fits rules `on = \"delegate\"`")]
    DelegateRole,
    #[error("template `{0}` must be a name in the templates folder")]
    Template(String),
}
