//! What an email's templates are given, and header-safe text.

use minijinja::Value;
use serde_json::json;

use crate::config::Settings;
use crate::delivery::compose::Draft;

pub use crate::delivery::compose::templates::{Rendered, Renderer, TemplateError, one_line};

/// Everything a template may use about one action.
pub fn context(settings: &Settings, draft: &Draft, annexes: &[String]) -> Value {
    let Draft {
        rule,
        involved,
        anchor_on,
        due_on,
        dates,
        recipients,
        now,
        ..
    } = draft;
    // The day it goes, as its readers count days: wording such as "today"
    // or "this week" is true only on the day itself.
    let sent_on = now.with_timezone(&settings.time_zone()).date_naive();
    let region = involved.region();
    let contacts = region.and_then(|r| settings.region(r));
    let authority = involved.authority.map(|a| {
        json!({
            "code": a.code, "name": a.name, "region": a.region.id(),
            "region_name": a.region.name(), "dcs_name": a.dcs_name,
            "dcs_email": a.dcs_email.as_str(),
            "coordinator_email": a.coordinator_email.as_ref().unwrap_or(&a.dcs_email).as_str(),
        })
    });
    let case = involved.case.map(|c| {
        json!({
            "case_ref": c.case_ref, "judgement": c.judgement.id(),
            "judgement_text": c.judgement.text(),
            "report_received_on": c.report_received_on.to_string(),
            "plan_received_on": c.plan_received_on.map(|d| d.to_string()),
            "plan_due_on": dates.plan_due_on,
            // 001 §23: the first monitoring visit, within four weeks of the plan's deadline.
            "first_visit_by": dates.plan_due_on.and_then(|d| d.checked_add_days(chrono::Days::new(28))),
            "planning_event_on": c.planning_event_on,
            "planning_window_from": dates.planning_window.map(|w| w.0),
            "planning_window_to": dates.planning_window.map(|w| w.1),
            "lead_inspector_email": c.lead_inspector_email.as_str(),
            "dfe_link_email": c.dfe_link_email.as_ref().map(|e| e.as_str()),
        })
    });
    let visit = involved.visit.map(|v| {
        json!({
            "visit_no": v.visit_no, "starts_on": v.starts_on.to_string(),
            "lead_inspector_email": v.lead_inspector_email.as_str(),
            "audited_cases": v.audited_cases,
            "files_due_on": dates.files_due_on,
            "data_due_on": dates.data_due_on,
            "report_published": v.visit_no > 1,
        })
    });
    let seminar = involved.seminar.map(|s| {
        json!({
            "seminar_ref": s.seminar_ref, "title": s.title, "region": s.region.id(),
            "region_name": s.region.name(), "held_on": s.held_on.to_string(), "venue": s.venue,
            "timetable": super::timetable(settings, involved)
                .into_iter()
                .map(|(time, session)| json!({ "time": time, "session": session }))
                .collect::<Vec<_>>(),
        })
    });
    let delegate = involved.delegate.map(|d| {
        json!({ "name": d.name, "email": d.email.as_str(), "authority_code": d.authority_code })
    });
    let delegates: Vec<_> = involved
        .delegates
        .iter()
        .map(|d| json!({ "name": d.name, "email": d.email.as_str(), "authority_code": d.authority_code }))
        .collect();
    Value::from_serialize(json!({
        "rule": { "id": rule.id, "description": rule.description },
        "due_on": due_on,
        "anchor_on": anchor_on,
        // The region whose office sends it: the seminar's for a delegate,
        // else the authority's. The text and HTML parts both sign with it.
        "region_name": region.map(|r| r.name()),
        "sent_on": sent_on,
        "late": sent_on > *due_on,
        "held_due_on": dates.held_due_on,
        // The console's address, for links; without `web.public_url` the
        // templates say in words where to go.
        "console": settings.web.public_url.as_ref().map(|u| u.link("")),
        "authority": authority,
        "case": case,
        "visit": visit,
        "seminar": seminar,
        "delegate": delegate,
        "delegates": delegates,
        // The six-month conversation as it took place, and the record's due
        // date: within seven days of it (000 §38).
        "conversation": involved.conversation_on.map(|on| json!({
            "held_on": on,
            "record_due_on": on.checked_add_days(chrono::Days::new(7)),
        })),
        "contacts": {
            "shmi": contacts.map(|c| c.shmi.as_str()),
            "regional_director": contacts.map(|c| c.regional_director.as_str()),
            "support_team": contacts.map(|c| c.support_team.as_str()),
            "ims": settings.contacts.ims.as_str(),
            "national_director": settings.contacts.national_director.as_str(),
        },
        "reply_to": recipients.reply_to.first(),
        "upload_route": settings.mail.upload_route,
        "annexes": annexes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_folded_onto_one_line() {
        assert_eq!(
            one_line("Southshire\r\nBcc: x@y.org"),
            "Southshire Bcc: x@y.org"
        );
        assert_eq!(one_line("  a\t b  "), "a b");
    }
}
