//! CSV import: all or nothing, upserting on each record's key.
//!
//! The headers are a contract with outside scripts: exactly these columns, in
//! this order. Any bad row rejects the whole file with its line, column and why.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use sqlx::Row;

use crate::db::Pool;

use super::{
    Authority, Case, Delegate, MAX_AUDITED_CASES, MAX_DELEGATES_PER_AUTHORITY, Seminar, Visit,
};
use crate::calendar::parse_date;
use crate::domain::{
    EmailAddress, Judgement, MAX_REFERENCE_CHARS, MAX_TEXT_CHARS, Reference, Region,
    check_audited_reference, check_text,
};

/// The kinds of record file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Authorities,
    Cases,
    Visits,
    Seminars,
    Delegates,
    /// The authorities each seminar invites, before any delegate is nominated.
    Invited,
}

/// The cases file may also carry the planning event's date, as a last
/// column; without it, it is the canonical header.
const CASES_WITH_PLANNING_EVENT: &[&str] = &[
    "case_ref",
    "authority_code",
    "judgement",
    "report_received_on",
    "plan_received_on",
    "lead_inspector_email",
    "dfe_link_email",
    "planning_event_on",
];

/// The seminars file may also carry the seminar's timetable, as a last
/// column; without it, it is the canonical header.
const SEMINARS_WITH_TIMETABLE: &[&str] = &[
    "seminar_ref",
    "title",
    "region",
    "held_on",
    "venue",
    "confirmed",
    "timetable",
];

const fn without_last(header: &'static [&'static str]) -> &'static [&'static str] {
    header.split_at(header.len() - 1).0
}

impl Kind {
    /// Every header a file of this kind may have: the first is the
    /// canonical one; later ones add optional last columns.
    pub fn accepted_headers(self) -> Vec<&'static [&'static str]> {
        match self {
            Kind::Cases => vec![self.headers(), CASES_WITH_PLANNING_EVENT],
            Kind::Seminars => vec![self.headers(), SEMINARS_WITH_TIMETABLE],
            _ => vec![self.headers()],
        }
    }

    pub fn headers(self) -> &'static [&'static str] {
        match self {
            Kind::Authorities => &[
                "code",
                "name",
                "region",
                "dcs_name",
                "dcs_email",
                "coordinator_email",
            ],
            Kind::Cases => without_last(CASES_WITH_PLANNING_EVENT),
            Kind::Visits => &[
                "case_ref",
                "visit_no",
                "starts_on",
                "lead_inspector_email",
                "audited_cases",
                "cancelled",
            ],
            Kind::Seminars => without_last(SEMINARS_WITH_TIMETABLE),
            Kind::Delegates => &["seminar_ref", "authority_code", "name", "email"],
            Kind::Invited => &["seminar_ref", "authority_code"],
        }
    }
}

/// Where and why a file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}{}: {reason}", column.as_ref().map(|(n, name)| format!(", column {n} ({name})")).unwrap_or_default())]
pub struct ImportError {
    pub file: String,
    pub line: u64,
    /// 1-based column number and its header.
    pub column: Option<(usize, String)>,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error(transparent)]
    Rejected(#[from] ImportError),
    #[error("{0:#}")]
    Storage(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ImportFailure {
    fn from(e: sqlx::Error) -> Self {
        ImportFailure::Storage(anyhow::Error::new(e).context("while writing the records"))
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
}

/// One CSV record with what is needed to say where a problem is.
struct Fields<'a> {
    file: &'a str,
    line: u64,
    headers: &'static [&'static str],
    record: &'a csv::StringRecord,
}

impl Fields<'_> {
    fn err(&self, col: usize, reason: impl std::fmt::Display) -> ImportError {
        ImportError {
            file: self.file.to_string(),
            line: self.line,
            column: Some((col + 1, self.headers[col].to_string())),
            reason: reason.to_string(),
        }
    }

    /// Every field within its length and free of control characters;
    /// references also free of `#` and `;`.
    fn check_all(&self) -> Result<(), ImportError> {
        for (col, header) in self.headers.iter().enumerate() {
            let value = self.raw(col);
            let checked = match *header {
                "code" | "authority_code" | "case_ref" | "seminar_ref" if !value.is_empty() => {
                    Reference::parse(value).map(|_| ())
                }
                "audited_cases" => check_text(value, MAX_AUDITED_CASES * (MAX_REFERENCE_CHARS + 1)),
                h if h.ends_with("email") => check_text(value, 254),
                _ => check_text(value, MAX_TEXT_CHARS),
            };
            checked.map_err(|e| self.err(col, e))?;
        }
        Ok(())
    }

    fn raw(&self, col: usize) -> &str {
        self.record.get(col).unwrap_or("").trim()
    }

    fn text(&self, col: usize) -> Result<String, ImportError> {
        let s = self.raw(col);
        if s.is_empty() {
            return Err(self.err(col, "must not be empty"));
        }
        Ok(s.to_string())
    }

    fn reference(&self, col: usize) -> Result<Reference, ImportError> {
        Reference::parse(&self.text(col)?).map_err(|e| self.err(col, e))
    }

    fn optional(&self, col: usize) -> Option<&str> {
        Some(self.raw(col)).filter(|s| !s.is_empty())
    }

    fn date(&self, col: usize) -> Result<NaiveDate, ImportError> {
        parse_date(&self.text(col)?).map_err(|e| self.err(col, e))
    }

    fn optional_date(&self, col: usize) -> Result<Option<NaiveDate>, ImportError> {
        self.optional(col)
            .map(|s| parse_date(s).map_err(|e| self.err(col, e)))
            .transpose()
    }

    fn email(&self, col: usize) -> Result<EmailAddress, ImportError> {
        EmailAddress::parse(&self.text(col)?).map_err(|e| self.err(col, e))
    }

    fn optional_email(&self, col: usize) -> Result<Option<EmailAddress>, ImportError> {
        self.optional(col)
            .map(|s| EmailAddress::parse(s).map_err(|e| self.err(col, e)))
            .transpose()
    }

    fn region(&self, col: usize) -> Result<Region, ImportError> {
        Region::parse(&self.text(col)?).map_err(|e| self.err(col, e))
    }

    fn flag(&self, col: usize) -> Result<bool, ImportError> {
        match self.raw(col) {
            "" | "false" => Ok(false),
            "true" => Ok(true),
            other => Err(self.err(col, format!("`{other}` is not true, false or empty"))),
        }
    }
}

/// A parsed row with its key and the line it came from.
struct Parsed<T> {
    line: u64,
    key: String,
    value: T,
}

/// Reads `path` as `kind` and writes it in one transaction.
#[tracing::instrument(skip(pool), fields(path = %path.display()))]
pub async fn import(pool: &Pool, kind: Kind, path: &Path) -> Result<ImportReport, ImportFailure> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ImportError {
        file: file.clone(),
        line: 0,
        column: None,
        reason: format!("cannot be read: {e}"),
    })?;
    import_bytes(pool, kind, &file, &bytes, Apply::Write).await
}

/// Whether an import is written or only tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    Write,
    /// Every check and write as for real, then rolled back: what it would do.
    Try,
}

/// Imports a file's contents, named `file` in errors, as `kind`: written in
/// one transaction, or only tried.
#[tracing::instrument(skip(pool, bytes))]
pub async fn import_bytes(
    pool: &Pool,
    kind: Kind,
    file: &str,
    bytes: &[u8],
    apply: Apply,
) -> Result<ImportReport, ImportFailure> {
    let file = file.to_string();
    let mut tx = crate::db::begin(pool).await?;
    let report = match kind {
        Kind::Authorities => {
            let rows = parse(&file, bytes, kind, parse_authority)?;
            write_authorities(&mut tx, rows).await?
        }
        Kind::Cases => {
            let rows = parse(&file, bytes, kind, parse_case)?;
            let authorities = keys(&mut tx, "SELECT code FROM authorities").await?;
            check_refs(&file, kind, &rows, 1, "authority", &authorities, |c| {
                &c.authority_code
            })?;
            write_cases(&mut tx, rows).await?
        }
        Kind::Visits => {
            let rows = parse(&file, bytes, kind, parse_visit)?;
            let cases = keys(&mut tx, "SELECT case_ref FROM cases").await?;
            check_refs(&file, kind, &rows, 0, "case", &cases, |v| {
                v.case_ref.as_str()
            })?;
            // Monitoring visits follow an inadequate judgement only (001).
            let inadequate = keys(
                &mut tx,
                "SELECT case_ref FROM cases WHERE judgement = 'inadequate'",
            )
            .await?;
            if let Some(row) = rows
                .iter()
                .find(|r| !inadequate.contains(r.value.case_ref.as_str()))
            {
                return Err(ImportError {
                    file,
                    line: row.line,
                    column: Some((1, "case_ref".into())),
                    reason: format!(
                        "case `{}` was not judged inadequate: monitoring visits follow an inadequate judgement only",
                        row.value.case_ref
                    ),
                }
                .into());
            }
            write_visits(&mut tx, rows).await?
        }
        Kind::Seminars => {
            let rows = parse(&file, bytes, kind, parse_seminar)?;
            write_seminars(&mut tx, rows).await?
        }
        Kind::Delegates => {
            let rows = parse(&file, bytes, kind, parse_delegate)?;
            let seminars = keys(&mut tx, "SELECT seminar_ref FROM seminars").await?;
            let authorities = keys(&mut tx, "SELECT code FROM authorities").await?;
            check_refs(&file, kind, &rows, 0, "seminar", &seminars, |d| {
                &d.seminar_ref
            })?;
            check_refs(&file, kind, &rows, 1, "authority", &authorities, |d| {
                &d.authority_code
            })?;
            check_delegate_numbers(&file, &mut tx, &rows).await?;
            write_delegates(&mut tx, rows).await?
        }
        Kind::Invited => {
            let rows = parse(&file, bytes, kind, parse_invited)?;
            let seminars = keys(&mut tx, "SELECT seminar_ref FROM seminars").await?;
            let authorities = keys(&mut tx, "SELECT code FROM authorities").await?;
            check_refs(&file, kind, &rows, 0, "seminar", &seminars, |i| &i.0)?;
            check_refs(&file, kind, &rows, 1, "authority", &authorities, |i| &i.1)?;
            write_invited(&mut tx, rows).await?
        }
    };
    match apply {
        Apply::Write => tx.commit().await?,
        Apply::Try => tx.rollback().await?,
    }
    Ok(report)
}

/// Checks a file's text as `kind` without a database (references to other
/// records are not checked): the number of records, or the first problem.
pub fn check(kind: Kind, file: &str, bytes: &[u8]) -> Result<usize, ImportError> {
    Ok(match kind {
        Kind::Authorities => parse(file, bytes, kind, parse_authority)?.len(),
        Kind::Cases => parse(file, bytes, kind, parse_case)?.len(),
        Kind::Visits => parse(file, bytes, kind, parse_visit)?.len(),
        Kind::Seminars => parse(file, bytes, kind, parse_seminar)?.len(),
        Kind::Delegates => parse(file, bytes, kind, parse_delegate)?.len(),
        Kind::Invited => parse(file, bytes, kind, parse_invited)?.len(),
    })
}

fn parse<T>(
    file: &str,
    bytes: &[u8],
    kind: Kind,
    parse_row: fn(&Fields) -> Result<(String, T), ImportError>,
) -> Result<Vec<Parsed<T>>, ImportError> {
    let accepted = kind.accepted_headers();
    let mut headers = kind.headers();
    let at = |line: u64, column: Option<(usize, String)>, reason: String| ImportError {
        file: file.to_string(),
        line,
        column,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();
    let header = match records.next() {
        None => {
            return Err(at(
                1,
                None,
                format!(
                    "the file is empty; the header must be `{}`",
                    headers.join(",")
                ),
            ));
        }
        Some(r) => r.map_err(|e| at(1, None, csv_reason(&e)))?,
    };
    let found: Vec<&str> = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}'))
        .collect();
    if let Some(h) = accepted.iter().find(|h| found == **h) {
        headers = h;
    } else {
        // Compared with the variant of the same length, else the canonical one.
        headers = accepted
            .iter()
            .find(|h| h.len() == found.len())
            .copied()
            .unwrap_or(headers);
        let col = found
            .iter()
            .zip(headers)
            .position(|(f, h)| f != h)
            .unwrap_or(found.len().min(headers.len()));
        let what = match (found.get(col), headers.get(col)) {
            (Some(f), Some(h)) => format!("is `{f}`, expected `{h}`"),
            (Some(f), None) => format!("`{f}` is an extra column"),
            (None, Some(h)) => format!("`{h}` is missing"),
            (None, None) => "is wrong".to_string(),
        };
        return Err(at(
            1,
            Some((
                col + 1,
                found
                    .get(col)
                    .or(headers.get(col))
                    .unwrap_or(&"")
                    .to_string(),
            )),
            format!(
                "the header {what}; the header must be exactly {}",
                accepted
                    .iter()
                    .map(|h| format!("`{}`", h.join(",")))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ));
    }
    let mut rows: Vec<Parsed<T>> = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for record in records {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            at(line, None, csv_reason(&e))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != headers.len() {
            return Err(at(
                line,
                None,
                format!(
                    "has {} fields, expected {} ({})",
                    record.len(),
                    headers.len(),
                    headers.join(",")
                ),
            ));
        }
        let fields = Fields {
            file,
            line,
            headers,
            record: &record,
        };
        fields.check_all()?;
        let (key, value) = parse_row(&fields)?;
        if let Some(first) = first_line.insert(key.clone(), line) {
            return Err(at(
                line,
                Some((1, headers[0].to_string())),
                format!("`{key}` appears twice in the file (first on line {first})"),
            ));
        }
        rows.push(Parsed { line, key, value });
    }
    Ok(rows)
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_string(),
        _ => e.to_string(),
    }
}

fn parse_authority(f: &Fields) -> Result<(String, Authority), ImportError> {
    let a = Authority {
        code: f.reference(0)?,
        name: f.text(1)?,
        region: f.region(2)?,
        dcs_name: f.text(3)?,
        dcs_email: f.email(4)?,
        coordinator_email: f.optional_email(5)?,
    };
    Ok((a.code.to_string(), a))
}

fn parse_case(f: &Fields) -> Result<(String, Case), ImportError> {
    let report_received_on = f.date(3)?;
    let plan_received_on = f.optional_date(4)?;
    if let Some(plan) = plan_received_on
        && plan < report_received_on
    {
        return Err(f.err(4, "the plan cannot arrive before the report"));
    }
    let c = Case {
        case_ref: f.reference(0)?,
        authority_code: f.reference(1)?,
        judgement: Judgement::parse(&f.text(2)?).map_err(|e| f.err(2, e))?,
        report_received_on,
        plan_received_on,
        lead_inspector_email: f.email(5)?,
        dfe_link_email: f.optional_email(6)?,
        closed: false,
        planning_event_on: if f.headers.len() > 7 {
            f.optional_date(7)?
        } else {
            None
        },
    };
    if let Some(event) = c.planning_event_on
        && event < c.report_received_on
    {
        return Err(f.err(7, "the planning event cannot come before the report"));
    }
    Ok((c.case_ref.to_string(), c))
}

/// Parses `;`-separated audited case references, at most six.
pub fn parse_audited(s: &str) -> Result<Vec<String>, String> {
    let refs = super::store::split_audited(s);
    if refs.len() > MAX_AUDITED_CASES {
        return Err(format!(
            "{} audited cases given; at most {MAX_AUDITED_CASES} are selected for a visit",
            refs.len()
        ));
    }
    for r in &refs {
        check_audited_reference(r).map_err(|e| format!("audited case `{r}` {e}"))?;
    }
    let mut seen = HashSet::new();
    if let Some(dup) = refs.iter().find(|r| !seen.insert(r.as_str())) {
        return Err(format!("audited case `{dup}` is listed twice"));
    }
    Ok(refs)
}

fn parse_visit(f: &Fields) -> Result<(String, Visit), ImportError> {
    let visit_no: u32 = f
        .text(1)?
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| f.err(1, "must be a whole number from 1"))?;
    let v = Visit {
        case_ref: f.reference(0)?,
        visit_no,
        starts_on: f.date(2)?,
        lead_inspector_email: f.email(3)?,
        audited_cases: parse_audited(f.raw(4)).map_err(|e| f.err(4, e))?,
        cancelled: f.flag(5)?,
    };
    Ok((v.subject().to_string(), v))
}

fn parse_seminar(f: &Fields) -> Result<(String, Seminar), ImportError> {
    let s = Seminar {
        seminar_ref: f.reference(0)?,
        title: f.text(1)?,
        region: f.region(2)?,
        held_on: f.date(3)?,
        venue: f.text(4)?,
        confirmed: f.flag(5)?,
        cancelled: false,
        timetable: if f.headers.len() > 6 {
            crate::records::Timetable::parse(f.raw(6)).map_err(|e| f.err(6, e))?
        } else {
            crate::records::Timetable::default()
        },
        sequence: 0,
        cancelled_on: None,
        confirmed_on: None,
    };
    Ok((s.seminar_ref.to_string(), s))
}

fn parse_delegate(f: &Fields) -> Result<(String, Delegate), ImportError> {
    let d = Delegate {
        seminar_ref: f.reference(0)?,
        authority_code: f.reference(1)?,
        name: f.text(2)?,
        email: f.email(3)?,
    };
    // One person, however the address is capitalised.
    Ok((format!("{} {}", d.seminar_ref, d.email.folded()), d))
}

fn parse_invited(f: &Fields) -> Result<(String, (Reference, Reference)), ImportError> {
    let invited = (f.reference(0)?, f.reference(1)?);
    Ok((format!("{} {}", invited.0, invited.1), invited))
}

type Tx<'a> = crate::db::Tx<'a>;

async fn keys(tx: &mut Tx<'_>, sql: &str) -> Result<HashSet<String>, sqlx::Error> {
    Ok(sqlx::query(sql)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| r.get::<String, _>(0))
        .collect())
}

fn check_refs<T>(
    file: &str,
    kind: Kind,
    rows: &[Parsed<T>],
    col: usize,
    what: &str,
    known: &HashSet<String>,
    get: impl Fn(&T) -> &str,
) -> Result<(), ImportError> {
    for row in rows {
        let value = get(&row.value);
        if !known.contains(value) {
            return Err(ImportError {
                file: file.to_string(),
                line: row.line,
                column: Some((col + 1, kind.headers()[col].to_string())),
                reason: format!("unknown {what} `{value}`: import the {what} first"),
            });
        }
    }
    Ok(())
}

/// An authority sends at most five delegates to a seminar (000 Annex H),
/// counting those already recorded and those in the file.
async fn check_delegate_numbers(
    file: &str,
    tx: &mut Tx<'_>,
    rows: &[Parsed<Delegate>],
) -> Result<(), ImportFailure> {
    let mut people: HashMap<(String, String), HashSet<String>> = HashMap::new();
    let mut moved: HashSet<(String, String)> = HashSet::new();
    for r in rows {
        moved.insert((r.value.seminar_ref.to_string(), r.value.email.folded()));
    }
    for row in
        sqlx::query("SELECT seminar_ref, authority_code, lower(email) AS email FROM delegates")
            .fetch_all(&mut **tx)
            .await?
    {
        let (seminar, code, email): (String, String, String) = (
            row.get("seminar_ref"),
            row.get("authority_code"),
            row.get("email"),
        );
        // A delegate in the file is counted where the file puts them.
        if !moved.contains(&(seminar.clone(), email.clone())) {
            people.entry((seminar, code)).or_default().insert(email);
        }
    }
    for r in rows {
        let d = &r.value;
        let group = people
            .entry((d.seminar_ref.to_string(), d.authority_code.to_string()))
            .or_default();
        group.insert(d.email.folded());
        if group.len() > MAX_DELEGATES_PER_AUTHORITY {
            return Err(ImportError {
                file: file.to_string(),
                line: r.line,
                column: Some((4, "email".into())),
                reason: format!(
                    "{} would have {} delegates at {}: an authority sends at most {MAX_DELEGATES_PER_AUTHORITY}",
                    d.authority_code,
                    group.len(),
                    d.seminar_ref
                ),
            }
            .into());
        }
    }
    Ok(())
}

async fn existing(tx: &mut Tx<'_>, sql: &str) -> Result<HashSet<String>, sqlx::Error> {
    keys(tx, sql).await
}

fn count<T>(rows: &[Parsed<T>], before: &HashSet<String>) -> ImportReport {
    let updated = rows.iter().filter(|r| before.contains(&r.key)).count();
    ImportReport {
        added: rows.len() - updated,
        updated,
    }
}

async fn write_authorities(
    tx: &mut Tx<'_>,
    rows: Vec<Parsed<Authority>>,
) -> Result<ImportReport, sqlx::Error> {
    let before = existing(tx, "SELECT code FROM authorities").await?;
    for Parsed { value: a, .. } in &rows {
        sqlx::query(
            "INSERT INTO authorities (code, name, region, dcs_name, dcs_email, coordinator_email)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, region = excluded.region,
               dcs_name = excluded.dcs_name, dcs_email = excluded.dcs_email,
               coordinator_email = excluded.coordinator_email",
        )
        .bind(&a.code)
        .bind(&a.name)
        .bind(a.region.id())
        .bind(&a.dcs_name)
        .bind(a.dcs_email.as_str())
        .bind(a.coordinator_email.as_ref().map(EmailAddress::as_str))
        .execute(&mut **tx)
        .await?;
    }
    Ok(count(&rows, &before))
}

async fn write_cases(
    tx: &mut Tx<'_>,
    rows: Vec<Parsed<Case>>,
) -> Result<ImportReport, sqlx::Error> {
    let before = existing(tx, "SELECT case_ref FROM cases").await?;
    for Parsed { value: c, .. } in &rows {
        sqlx::query(
            "INSERT INTO cases (case_ref, authority_code, judgement, report_received_on,
               plan_received_on, lead_inspector_email, dfe_link_email, planning_event_on)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (case_ref) DO UPDATE SET authority_code = excluded.authority_code,
               judgement = excluded.judgement, report_received_on = excluded.report_received_on,
               plan_received_on = excluded.plan_received_on,
               lead_inspector_email = excluded.lead_inspector_email,
               dfe_link_email = excluded.dfe_link_email,
               -- A file without the column keeps a date recorded on the command line.
               planning_event_on = COALESCE(excluded.planning_event_on, cases.planning_event_on)",
        )
        .bind(&c.case_ref)
        .bind(&c.authority_code)
        .bind(c.judgement.id())
        .bind(c.report_received_on.to_string())
        .bind(c.plan_received_on.map(|d| d.to_string()))
        .bind(c.lead_inspector_email.as_str())
        .bind(c.dfe_link_email.as_ref().map(EmailAddress::as_str))
        .bind(c.planning_event_on.map(|d| d.to_string()))
        .execute(&mut **tx)
        .await?;
    }
    Ok(count(&rows, &before))
}

async fn write_visits(
    tx: &mut Tx<'_>,
    rows: Vec<Parsed<Visit>>,
) -> Result<ImportReport, sqlx::Error> {
    let before = existing(tx, "SELECT case_ref || '#' || visit_no FROM visits").await?;
    for Parsed { value: v, .. } in &rows {
        sqlx::query(
            "INSERT INTO visits (case_ref, visit_no, starts_on, lead_inspector_email, audited_cases, cancelled)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (case_ref, visit_no) DO UPDATE SET starts_on = excluded.starts_on,
               lead_inspector_email = excluded.lead_inspector_email,
               audited_cases = excluded.audited_cases, cancelled = excluded.cancelled",
        )
        .bind(&v.case_ref)
        .bind(v.visit_no as i64)
        .bind(v.starts_on.to_string())
        .bind(v.lead_inspector_email.as_str())
        .bind(v.audited_cases.join(";"))
        .bind(i64::from(v.cancelled))
        .execute(&mut **tx)
        .await?;
    }
    Ok(count(&rows, &before))
}

async fn write_seminars(
    tx: &mut Tx<'_>,
    rows: Vec<Parsed<Seminar>>,
) -> Result<ImportReport, sqlx::Error> {
    let before = existing(tx, "SELECT seminar_ref FROM seminars").await?;
    for Parsed { value: s, .. } in &rows {
        // A seminar cancelled on the command line stays cancelled on re-import;
        // one newly confirmed has its day recorded by the next pass.
        sqlx::query(
            "INSERT INTO seminars (seminar_ref, title, region, held_on, venue, confirmed, timetable)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (seminar_ref) DO UPDATE SET title = excluded.title,
               region = excluded.region, held_on = excluded.held_on, venue = excluded.venue,
               confirmed = excluded.confirmed,
               confirmed_on = CASE WHEN excluded.confirmed = 1 AND seminars.confirmed = 1
                 THEN seminars.confirmed_on END,
               timetable = COALESCE(excluded.timetable, seminars.timetable),
               sequence = seminars.sequence + CASE WHEN seminars.held_on <> excluded.held_on
                 OR seminars.venue <> excluded.venue THEN 1 ELSE 0 END",
        )
        .bind(&s.seminar_ref)
        .bind(&s.title)
        .bind(s.region.id())
        .bind(s.held_on.to_string())
        .bind(&s.venue)
        .bind(i64::from(s.confirmed))
        // A file without the column leaves a recorded timetable as it is.
        .bind((!s.timetable.is_empty()).then(|| s.timetable.to_string()))
        .execute(&mut **tx)
        .await?;
    }
    Ok(count(&rows, &before))
}

async fn write_invited(
    tx: &mut Tx<'_>,
    rows: Vec<Parsed<(Reference, Reference)>>,
) -> Result<ImportReport, sqlx::Error> {
    let before = existing(
        tx,
        "SELECT seminar_ref || ' ' || authority_code FROM invited_authorities",
    )
    .await?;
    for Parsed {
        value: (seminar_ref, code),
        ..
    } in &rows
    {
        sqlx::query(
            "INSERT INTO invited_authorities (seminar_ref, authority_code) VALUES ($1, $2)
             ON CONFLICT (seminar_ref, authority_code) DO NOTHING",
        )
        .bind(seminar_ref)
        .bind(code)
        .execute(&mut **tx)
        .await?;
    }
    Ok(count(&rows, &before))
}

async fn write_delegates(
    tx: &mut Tx<'_>,
    rows: Vec<Parsed<Delegate>>,
) -> Result<ImportReport, sqlx::Error> {
    let before = existing(
        tx,
        "SELECT seminar_ref || ' ' || lower(email) FROM delegates",
    )
    .await?;
    for Parsed { value: d, .. } in &rows {
        // The same person already invited under another capitalisation is updated.
        let updated = sqlx::query(
            "UPDATE delegates SET authority_code = $1, name = $2, email = $3
             WHERE seminar_ref = $4 AND lower(email) = lower($5)",
        )
        .bind(&d.authority_code)
        .bind(&d.name)
        .bind(d.email.as_str())
        .bind(&d.seminar_ref)
        .bind(d.email.as_str())
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO delegates (seminar_ref, authority_code, name, email) VALUES ($1, $2, $3, $4)",
            )
            .bind(&d.seminar_ref)
            .bind(&d.authority_code)
            .bind(&d.name)
            .bind(d.email.as_str())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(count(&rows, &before))
}
