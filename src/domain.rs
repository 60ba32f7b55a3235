//! Small domain types that can only hold valid values: parse, don't validate.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde_with::{DeserializeFromStr, SerializeDisplay};
use strum::{AsRefStr, IntoEnumIterator, IntoStaticStr};

/// Why a value from a record, a form or the config is refused. The text
/// follows the value's name: "case_ref holds `/`: ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("`{given}` is not {what} (one of {choices})")]
    NotOneOf {
        what: &'static str,
        given: String,
        choices: String,
    },
    #[error("is empty")]
    Empty,
    #[error("holds the control character U+{0:04X}, which a record may not contain")]
    ControlCharacter(u32),
    #[error("is {length} characters long; at most {max} are allowed")]
    TooLong { length: usize, max: usize },
    #[error("holds `{0}`: a reference may use letters, digits, - _ and . only")]
    ReferenceCharacter(String),
    #[error("holds `..`, which a reference may not")]
    DoubleDot,
    #[error("must not contain `#` or `;`")]
    Separator,
    #[error("is longer than an email address can be (254 characters)")]
    AddressTooLong,
    #[error("`{0}` is not an email address")]
    NotAnAddress(String),
    #[error("`{0}` is not a visit (CASE_REF#VISIT_NO)")]
    NotAVisit(String),
}

/// The error for a name that is not one of an enum's: it lists the valid ones.
pub fn not_one_of<T: IntoEnumIterator + Into<&'static str>>(
    what: &'static str,
    given: &str,
) -> Invalid {
    let names: Vec<&'static str> = T::iter().map(Into::into).collect();
    Invalid::NotOneOf {
        what,
        given: given.to_string(),
        choices: names.join(", "),
    }
}

/// Parses a name of an enum, with an error that lists the valid names.
pub fn parse_named<T>(what: &'static str, s: &str) -> Result<T, Invalid>
where
    T: IntoEnumIterator + Into<&'static str> + Copy,
{
    T::iter()
        .find(|v| Into::<&'static str>::into(*v) == s.trim())
        .ok_or_else(|| not_one_of::<T>(what, s))
}

/// `FromStr` (and so config parsing, through `DeserializeFromStr`) for enums
/// named by strum, with an error that lists the valid names.
#[macro_export]
macro_rules! named_enum {
    ($t:ty, $what:expr) => {
        impl std::str::FromStr for $t {
            type Err = $crate::domain::Invalid;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::domain::parse_named($what, s)
            }
        }
    };
}

/// Whether a character may not stand in a record's text: control characters
/// (NUL, ESC, line breaks) and the bidirectional controls that can make text
/// read differently from what it holds (U+202E and its kin).
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A record's reference or code (a case, seminar or authority): 1 to 64 of
/// letters, digits, `-`, `_` and `.`, and no `..`, so that it can stand in
/// an address or a file name and mean only itself.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, DeserializeFromStr, SerializeDisplay,
)]
pub struct Reference(String);

impl Reference {
    pub fn parse(value: &str) -> Result<Reference, Invalid> {
        check_text(value, MAX_REFERENCE_CHARS)?;
        if value.is_empty() {
            return Err(Invalid::Empty);
        }
        if let Some(c) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(Invalid::ReferenceCharacter(c.escape_debug().to_string()));
        }
        if value.contains("..") {
            return Err(Invalid::DoubleDot);
        }
        Ok(Reference(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Reference {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl Deref for Reference {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Reference {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Reference {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Reference {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Reference {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl From<Reference> for String {
    fn from(r: Reference) -> String {
        r.0
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks one text value from a record: at most `max` characters, and no
/// control or bidirectional control characters.
pub fn check_text(value: &str, max: usize) -> Result<(), Invalid> {
    if let Some(c) = value.chars().find(|c| is_forbidden_char(*c)) {
        return Err(Invalid::ControlCharacter(c as u32));
    }
    let length = value.chars().count();
    if length > max {
        return Err(Invalid::TooLong { length, max });
    }
    Ok(())
}

/// Checks an audited case's reference (the authority's own, shown but never
/// in an address): short, and free of the characters keydates uses to join
/// references (`#` for visits, `;` for lists).
pub fn check_audited_reference(value: &str) -> Result<(), Invalid> {
    check_text(value, MAX_REFERENCE_CHARS)?;
    if value.contains(['#', ';']) {
        return Err(Invalid::Separator);
    }
    Ok(())
}

/// The longest reference or code.
pub const MAX_REFERENCE_CHARS: usize = 64;

/// The longest name, title or venue.
pub const MAX_TEXT_CHARS: usize = 300;

/// An email address that lettre accepts as a mailbox address.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, DeserializeFromStr, SerializeDisplay,
)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an address; the domain is kept lower-cased, as domains compare
    /// without case.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let trimmed = s.trim();
        if trimmed.chars().count() > 254 {
            return Err(Invalid::AddressTooLong);
        }
        let address = trimmed
            .parse::<lettre::Address>()
            .map_err(|_| Invalid::NotAnAddress(s.to_string()))?;
        Ok(EmailAddress(format!(
            "{}@{}",
            address.user(),
            address.domain().to_ascii_lowercase()
        )))
    }

    /// The whole address lower-cased: two delegates are the same person when
    /// their addresses differ only in case.
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`, lower-cased, for allow-list checks.
    pub fn domain(&self) -> String {
        self.0
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// The mailbox lettre sends to. The address was checked when parsed.
    pub fn mailbox(&self) -> lettre::message::Mailbox {
        let address = self.0.parse().expect("checked when parsed");
        lettre::message::Mailbox::new(None, address)
    }
}

impl FromStr for EmailAddress {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Ofsted's eight regions, by the ids used in records and config.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    AsRefStr,
    IntoStaticStr,
    strum::Display,
    strum::EnumIter,
)]
#[strum(serialize_all = "kebab-case")]
pub enum Region {
    NorthWest,
    NorthEast,
    EastMidlands,
    WestMidlands,
    East,
    London,
    SouthEast,
    SouthWest,
}

impl Region {
    pub fn id(self) -> &'static str {
        self.into()
    }

    /// The region's name as people write it.
    pub fn name(self) -> &'static str {
        match self {
            Region::NorthWest => "North West",
            Region::NorthEast => "North East, Yorkshire and the Humber",
            Region::EastMidlands => "East Midlands",
            Region::WestMidlands => "West Midlands",
            Region::East => "East of England",
            Region::London => "London",
            Region::SouthEast => "South East",
            Region::SouthWest => "South West",
        }
    }

    pub fn parse(s: &str) -> Result<Region, Invalid> {
        parse_named("a region", s)
    }
}

/// The inspection judgement that starts a case.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    IntoStaticStr,
    strum::Display,
    strum::EnumIter,
    SerializeDisplay,
)]
#[strum(serialize_all = "snake_case")]
pub enum Judgement {
    RequiresImprovement,
    Inadequate,
}

impl Judgement {
    pub fn id(self) -> &'static str {
        self.into()
    }

    /// As written in a letter: "requires improvement".
    pub fn text(self) -> String {
        self.id().replace('_', " ")
    }

    pub fn parse(s: &str) -> Result<Judgement, Invalid> {
        parse_named("a judgement", s)
    }
}

/// The generated documents keydates can attach.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, strum::Display, strum::EnumIter,
)]
#[strum(serialize_all = "kebab-case")]
pub enum AnnexKind {
    PlanningRecord,
    ChildLevelData,
    AuditedCases,
    SeminarPack,
    DcsRecord,
}

impl AnnexKind {
    /// Config name: "planning-record", "child-level-data", ...; also the
    /// document template's name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The kind of record an outbox row is about, as stored beside its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum SubjectType {
    Case,
    Visit,
    Seminar,
}

/// Which record an email is about: a case, one of its visits, or a seminar.
/// Shown (and stored) as `CASE_REF`, `CASE_REF#VISIT_NO` or `SEMINAR_REF`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, SerializeDisplay)]
pub enum Subject {
    Case(Reference),
    Visit { case_ref: Reference, visit_no: u32 },
    Seminar(Reference),
}

impl Subject {
    pub fn subject_type(&self) -> SubjectType {
        match self {
            Subject::Case(_) => SubjectType::Case,
            Subject::Visit { .. } => SubjectType::Visit,
            Subject::Seminar(_) => SubjectType::Seminar,
        }
    }

    /// Reads a subject of a known type, as shown by `Display`.
    pub fn parse(subject_type: SubjectType, s: &str) -> Result<Subject, Invalid> {
        let s = s.trim();
        Ok(match subject_type {
            SubjectType::Case => Subject::Case(Reference::parse(s)?),
            SubjectType::Seminar => Subject::Seminar(Reference::parse(s)?),
            SubjectType::Visit => {
                let not_a_visit = || Invalid::NotAVisit(s.to_string());
                let (case_ref, no) = s.rsplit_once('#').ok_or_else(not_a_visit)?;
                let visit_no = no.parse().map_err(|_| not_a_visit())?;
                Subject::Visit {
                    case_ref: Reference::parse(case_ref).map_err(|_| not_a_visit())?,
                    visit_no,
                }
            }
        })
    }

    /// The case a case or visit subject belongs to.
    pub fn case_ref(&self) -> Option<&Reference> {
        match self {
            Subject::Case(c) | Subject::Visit { case_ref: c, .. } => Some(c),
            Subject::Seminar(_) => None,
        }
    }

    pub fn seminar_ref(&self) -> Option<&Reference> {
        match self {
            Subject::Seminar(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Case(c) | Subject::Seminar(c) => f.write_str(c),
            Subject::Visit { case_ref, visit_no } => write!(f, "{case_ref}#{visit_no}"),
        }
    }
}

named_enum!(Region, "a region");
named_enum!(Judgement, "a judgement");
named_enum!(AnnexKind, "an annex");
named_enum!(SubjectType, "a subject type");

/// A Message-ID: made once per email and kept across retries, so a relay and
/// the recipients can tell a resend from a new message.
pub fn message_id(tag: &str, domain: &str) -> String {
    format!("<keydates.{tag}.{:016x}@{domain}>", fastrand::u64(..))
}

/// Media types of the documents keydates builds or attaches.
pub mod mime {
    pub const DOCX: &str =
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_checked() {
        assert!(EmailAddress::parse("dcs@southshire.gov.uk").is_ok());
        for bad in [
            "",
            "no-at-sign",
            "a@",
            "@b.org",
            "a b@c.org",
            "x@y.org\r\nBcc: z@e.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            EmailAddress::parse("a@Example.ORG").unwrap().domain(),
            "example.org"
        );
    }

    #[test]
    fn regions_round_trip_and_unknown_ones_list_the_choices() {
        for r in Region::iter() {
            assert_eq!(Region::parse(r.id()), Ok(r));
        }
        let e = Region::parse("midlands").unwrap_err();
        let e = e.to_string();
        assert!(e.contains("north-west") && e.contains("south-west"), "{e}");
    }

    #[test]
    fn judgements_and_annex_kinds_read_their_ids() {
        assert_eq!(
            Judgement::parse("requires_improvement"),
            Ok(Judgement::RequiresImprovement)
        );
        assert_eq!(Judgement::Inadequate.text(), "inadequate");
        assert!(
            Judgement::parse("good")
                .unwrap_err()
                .to_string()
                .contains("inadequate")
        );
        for k in AnnexKind::iter() {
            assert_eq!(k.name().parse::<AnnexKind>(), Ok(k));
        }
    }

    fn reference(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn references_hold_only_what_an_address_can() {
        for good in ["SOU-2026-01", "sem_1.a", "A"] {
            assert_eq!(reference(good).as_str(), good);
        }
        assert_eq!(Reference::parse(""), Err(Invalid::Empty));
        assert_eq!(Reference::parse("a..b"), Err(Invalid::DoubleDot));
        assert_eq!(
            Reference::parse("a/b"),
            Err(Invalid::ReferenceCharacter("/".into()))
        );
        assert_eq!(
            Reference::parse(&"x".repeat(65)),
            Err(Invalid::TooLong {
                length: 65,
                max: 64
            })
        );
    }

    #[test]
    fn subjects_round_trip_through_their_text() {
        for key in [
            Subject::Case(reference("SOU-2026-01")),
            Subject::Visit {
                case_ref: reference("SOU-2026-01"),
                visit_no: 2,
            },
            Subject::Seminar(reference("SEM-1")),
        ] {
            let back = Subject::parse(key.subject_type(), &key.to_string()).unwrap();
            assert_eq!(back, key);
        }
        assert!(Subject::parse(SubjectType::Visit, "SOU-2026-01").is_err());
        assert!(Subject::parse(SubjectType::Visit, "SOU#x").is_err());
    }
}

/// One recipient refused for good, with the relay's reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    pub address: String,
    pub reply: String,
}
