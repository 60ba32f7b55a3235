//! Sending through relays as they are: a real Postfix (STARTTLS, a SASL
//! login, a connection it closes), and a server that answers as Exchange
//! Online does (basic AUTH refused, SendAs denied, a recipient not found,
//! too many recipients, a slow final reply, XOAUTH2 with client-credentials
//! tokens from an endpoint of the test's own).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::daemon::eventually;
use crate::helpers::{SmtpServer, TestApp, rows_where};
use crate::postfix::{self, Postfix};

fn riv_request(app: &TestApp) -> serde_json::Value {
    rows_where(&app.outbox(), "child-data-request", "RIV-2026-01#1")[0].clone()
}

/// Through `postfix` with STARTTLS, trusting its certificate, logging in.
fn through(postfix: &Postfix, password: &str) -> TestApp {
    let mut app = TestApp::with_smtp(postfix.sink.addr);
    app.set("KEYDATES__MAIL__SMTP__PORT", &postfix.port.to_string());
    app.set("KEYDATES__MAIL__SMTP__TLS", "starttls");
    app.set(
        "KEYDATES__MAIL__SMTP__CA_FILE",
        postfix.tls.cert_path().to_str().unwrap(),
    );
    app.set("KEYDATES__MAIL__SMTP__USERNAME", postfix::USER);
    app.set("KEYDATES__MAIL__SMTP__PASSWORD", password);
    app
}

fn message_ids(received: &[crate::helpers::Received]) -> Vec<String> {
    let mut ids: Vec<String> = received
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    ids.sort();
    ids
}

fn no_row_sending(app: &TestApp) {
    let sending: Vec<_> = app
        .outbox()
        .into_iter()
        .filter(|r| r["status"] == "sending")
        .collect();
    assert!(sending.is_empty(), "{sending:?}");
}

#[test]
fn a_day_of_emails_goes_through_postfix_over_starttls_with_a_login_once_each() {
    // A password of digits reaches the relay as typed.
    let postfix = Postfix::start("0123", "300s");
    let app = through(&postfix, "0123");
    app.import_examples();
    app.pass("2026-11-24");
    let sent: Vec<_> = app
        .outbox()
        .into_iter()
        .filter(|r| r["status"] == "sent")
        .collect();
    assert!(sent.len() >= 3, "{sent:?}\n{}", postfix.log());
    let recipients: usize = sent
        .iter()
        .map(|r| r["delivered_to"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        postfix.wait_for(sent.len()),
        sent.len(),
        "{}",
        postfix.log()
    );
    let received = postfix.sink.received();
    let ids = message_ids(&received);
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "each email once");
    assert_eq!(
        received.iter().map(|m| m.to.len()).sum::<usize>(),
        recipients
    );
    for m in &received {
        // Postfix names how it took the message: ESMTPSA is ESMTP over TLS
        // with a login.
        let via = m.header("Received").unwrap();
        assert!(via.contains("with ESMTPSA"), "{via}");
        assert_eq!(
            m.header("Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
    }
    assert!(
        postfix
            .log()
            .contains(&format!("sasl_username={}", postfix::USER))
    );
    // A second pass sends nothing again.
    app.pass("2026-11-24T10:00:00Z");
    assert_eq!(postfix.settled().len(), received.len());
}

#[test]
fn postfix_closing_the_kept_connection_ends_no_daemon_and_sends_nothing_twice() {
    // Postfix closes a connection idle for a second; keydates keeps its
    // connection between emails, so the next email meets a closed socket.
    let postfix = Postfix::start("s3cret", "1s");
    let mut app = through(&postfix, "s3cret");
    app.set("KEYDATES__SCHEDULE__POLL", "* * * * * *");
    app.set("KEYDATES__MAIL__SMTP__POOL_SIZE", "1");
    app.import_same_day_cases(5);
    let mut daemon = crate::daemon::start(&app, &[], &["run", "--now", "2026-11-23"]);
    assert!(
        eventually(Duration::from_secs(60), || postfix.sink.received().len()
            >= 5),
        "{}\n{}",
        crate::daemon::log_of(&app),
        postfix.log()
    );
    for round in 0..3 {
        // Longer than Postfix's timeout: the kept connection is gone.
        std::thread::sleep(Duration::from_secs(3));
        let more = format!(
            "code,name,region,dcs_name,dcs_email,coordinator_email\nR{round},Round {round},london,DCS,dcs@round{round}.example.gov.uk,\n"
        );
        assert!(app.import("authorities", "r.csv", &more).status.success());
        let case = format!(
            "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\nCR{round},R{round},requires_improvement,2026-11-20,,hmi@ofsted.example.gov.uk,\n"
        );
        assert!(app.import("cases", "rc.csv", &case).status.success());
        let want = 6 + round;
        assert!(
            eventually(Duration::from_secs(60), || postfix.sink.received().len()
                >= want),
            "round {round}\n{}\n{}",
            crate::daemon::log_of(&app),
            postfix.log()
        );
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon lives");
    }
    assert!(
        postfix.log().contains("timeout after"),
        "Postfix closed idle connections:\n{}",
        postfix.log()
    );
    // Stopped, it sends nothing more: what Postfix then holds is all there is.
    crate::daemon::signal(&daemon, "TERM");
    let exit = crate::daemon::wait_exit(&mut daemon, Duration::from_secs(15));
    assert!(exit.success(), "{exit:?}");
    let ids = message_ids(&postfix.settled());
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "nothing twice");
    assert_eq!(ids.len(), 8);
    no_row_sending(&app);
}

/// A relay that closes the connection at each step of a send: no pass
/// dies (a signal from a socket ends nothing), nothing stays `sending`.
#[test]
fn a_relay_closing_the_connection_at_any_step_ends_no_pass() {
    use crate::smtp::Script;
    let steps: [(&str, Script); 4] = [
        (
            "421 at MAIL",
            Script {
                mail_reply: Some("421 4.7.66 Too many connections, throttled".into()),
                ..Script::default()
            },
        ),
        (
            "552 mid-message",
            Script {
                mid_data_reply_then_close: Some(
                    "552 5.3.4 Message size exceeds fixed limit".into(),
                ),
                ..Script::default()
            },
        ),
        (
            "after the final dot",
            Script {
                close_after_dot: true,
                ..Script::default()
            },
        ),
        (
            "after each message",
            Script {
                close_after_messages: Some(1),
                ..Script::default()
            },
        ),
    ];
    for (step, script) in steps {
        let (smtp, tls) = SmtpServer::start_tls("keydates", "pass");
        smtp.script(|s| *s = script.clone());
        let app = TestApp::with_starttls(&smtp, &tls, "keydates", "pass");
        app.import_examples();
        let out = app.run(&["run", "--once", "--now", "2026-11-24"]);
        assert!(
            out.status.code().is_some(),
            "{step}: the pass was ended by a signal: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        no_row_sending(&app);
    }
}

#[test]
fn an_email_that_breaks_the_connection_every_time_fails_after_three_tries() {
    let (smtp, tls) = SmtpServer::start_tls("keydates", "pass");
    smtp.script(|s| s.mid_data_close = true);
    let app = TestApp::with_starttls(&smtp, &tls, "keydates", "pass");
    app.import_examples();
    app.pass("2026-11-24");
    assert_eq!(riv_request(&app)["status"], "pending");
    app.pass("2026-11-24T11:00:00Z");
    assert_eq!(riv_request(&app)["status"], "pending");
    app.pass("2026-11-24T13:00:00Z");
    let row = riv_request(&app);
    assert_eq!(row["status"], "failed", "{row}");
    assert_eq!(row["broken_sends"], 3, "{row}");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("each of 3 tries"),
        "{row}"
    );
}

#[test]
fn exchange_refusing_basic_auth_fails_nothing_and_status_names_the_reply() {
    let (smtp, tls) = SmtpServer::start_tls("keydates", "pass");
    smtp.script(|s| {
        s.auth_reply =
            Some("550 5.7.30 Basic authentication is not supported for Client Submission.".into())
    });
    let app = TestApp::with_starttls(&smtp, &tls, "keydates", "pass");
    app.import_examples();
    app.pass_relay_down("2026-11-24");
    app.pass_relay_down("2026-11-25");
    let outbox = app.outbox();
    assert!(outbox.iter().all(|r| r["status"] != "failed"), "{outbox:?}");
    let row = riv_request(&app);
    assert_eq!(row["status"], "pending");
    assert!(
        row["last_error"].as_str().unwrap().contains("5.7.30"),
        "{row}"
    );
    let out = app.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("5.7.30 Basic authentication is not supported"),
        "{text}"
    );
    // The login works again: everything waiting goes.
    smtp.script(|s| s.auth_reply = None);
    app.pass("2026-11-25T11:00:00Z");
    assert_eq!(riv_request(&app)["status"], "sent");
}

#[test]
fn exchange_denying_send_as_fails_nothing() {
    let (smtp, tls) = SmtpServer::start_tls("keydates", "pass");
    smtp.script(|s| {
        s.final_reply = Some("554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception".into())
    });
    let app = TestApp::with_starttls(&smtp, &tls, "keydates", "pass");
    app.import_examples();
    app.pass_relay_down("2026-11-24");
    let outbox = app.outbox();
    assert!(outbox.iter().all(|r| r["status"] != "failed"), "{outbox:?}");
    let out = app.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SendAsDenied"));
}

#[test]
fn a_relay_fault_ends_when_the_relay_answers_about_one_email() {
    let (smtp, tls) = SmtpServer::start_tls("keydates", "pass");
    smtp.script(|s| s.auth_reply = Some("535 5.7.139 Authentication unsuccessful".into()));
    let app = TestApp::with_starttls(&smtp, &tls, "keydates", "pass");
    app.import_examples();
    app.pass_relay_down("2026-11-24");
    // The login works now; every recipient is refused: an email's fault.
    smtp.script(|s| s.auth_reply = None);
    smtp.set_mode(crate::helpers::Mode::RejectRecipients);
    app.pass("2026-11-24T11:00:00Z");
    assert_eq!(riv_request(&app)["status"], "failed");
    let text = String::from_utf8_lossy(&app.run(&["status"]).stdout).to_string();
    assert!(!text.contains("mail relay"), "{text}");
}

#[test]
fn one_refused_cc_still_reaches_the_others_and_a_retry_reaches_the_corrected_address() {
    let (smtp, tls) = SmtpServer::start_tls("keydates", "pass");
    smtp.script(|s| {
        s.refuse.insert(
            "dev.hmi@ofsted.example.gov.uk".into(),
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
                .into(),
        );
    });
    let app = TestApp::with_starttls(&smtp, &tls, "keydates", "pass");
    app.import_examples();
    app.pass("2026-11-24");
    let row = riv_request(&app);
    assert_eq!(row["status"], "sent", "{row}");
    assert_eq!(
        row["delivered_to"],
        serde_json::json!(["coordinator@riverton.example.gov.uk"])
    );
    assert_eq!(
        row["refused"][0]["address"],
        "dev.hmi@ofsted.example.gov.uk"
    );
    assert!(
        row["refused"][0]["reply"]
            .as_str()
            .unwrap()
            .contains("5.1.10"),
        "{row}"
    );
    let id = row["message_id"].as_str().unwrap().to_string();
    let copies = |smtp: &SmtpServer| {
        smtp.received()
            .into_iter()
            .filter(|m| m.header("Message-ID").as_deref() == Some(id.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(copies(&smtp).len(), 1);
    assert_eq!(copies(&smtp)[0].to, ["coordinator@riverton.example.gov.uk"]);
    // The digest tells IMS whom it reached and who refused it.
    app.pass("2026-11-25T09:00:00Z");
    let digest = smtp
        .received()
        .into_iter()
        .find(|m| m.to.iter().any(|t| t == "ims@example.org"))
        .expect("a digest");
    let body = digest.text();
    assert!(body.contains("REFUSED FOR SOME RECIPIENTS"), "{body}");
    assert!(
        body.contains("dev.hmi@ofsted.example.gov.uk (550 5.1.10"),
        "{body}"
    );

    // The address is corrected on the record; a retry goes to it alone.
    let visits = "case_ref,visit_no,starts_on,lead_inspector_email,audited_cases,cancelled\nRIV-2026-01,1,2026-12-08,dev.hmi2@ofsted.example.gov.uk,RIV-C-1041;RIV-C-1187;RIV-C-1202,false\n";
    assert!(app.import("visits", "v.csv", visits).status.success());
    app.ok(&["retry", &row["id"].to_string()]);
    app.pass("2026-11-25T10:00:00Z");
    let copies = copies(&smtp);
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert_eq!(copies[1].to, ["dev.hmi2@ofsted.example.gov.uk"]);
    let row = riv_request(&app);
    assert_eq!(row["status"], "sent");
    assert_eq!(row["refused"], serde_json::Value::Array(vec![]));
}

#[test]
fn too_many_recipients_gets_each_recipient_the_email_once() {
    let (smtp, tls) = SmtpServer::start_tls("keydates", "pass");
    smtp.script(|s| s.max_recipients = Some(2));
    let app = TestApp::with_starttls(&smtp, &tls, "keydates", "pass");
    app.import_examples();
    app.pass("2026-11-02");
    let outbox = app.outbox();
    let row = rows_where(&outbox, "planning-invitation", "SOU-2026-01")[0];
    assert_eq!(row["status"], "sent", "{row}");
    let expected = row["recipients"]["to"].as_array().unwrap().len()
        + row["recipients"]["cc"].as_array().unwrap().len();
    assert!(expected > 2, "{row}");
    let id = row["message_id"].as_str().unwrap();
    let mut reached: Vec<String> = smtp
        .received()
        .into_iter()
        .filter(|m| m.header("Message-ID").as_deref() == Some(id))
        .flat_map(|m| {
            assert!(m.to.len() <= 2);
            m.to
        })
        .collect();
    let count = reached.len();
    reached.sort();
    reached.dedup();
    assert_eq!(count, expected, "each recipient once");
    assert_eq!(reached.len(), expected);
}

#[test]
fn a_final_reply_slower_than_the_command_timeout_gives_one_copy() {
    let (smtp, tls) = SmtpServer::start_tls("keydates", "pass");
    // Slower than the command timeout (2 s), well within the final reply's.
    smtp.script(|s| s.final_delay = Duration::from_secs(4));
    let mut app = TestApp::with_starttls(&smtp, &tls, "keydates", "pass");
    app.set("KEYDATES__MAIL__SMTP__POOL_SIZE", "1");
    app.import_examples();
    app.pass("2026-11-24");
    assert_eq!(riv_request(&app)["status"], "sent");
    for at in ["2026-11-24T11:00:00Z", "2026-11-24T13:00:00Z"] {
        app.pass(at);
    }
    let id = riv_request(&app)["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let copies = smtp
        .received()
        .into_iter()
        .filter(|m| m.header("Message-ID").as_deref() == Some(id.as_str()))
        .count();
    assert_eq!(copies, 1);
}

#[test]
fn a_closed_reader_of_a_commands_output_ends_it_quietly() {
    let app = TestApp::new();
    app.import_examples();
    let mut child = app
        .command()
        .args(["holidays", "--format", "table"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// A token endpoint of the test's own: checks each client-credentials
/// request, hands out the tokens given in turn (the last one again), or
/// refuses with `invalid_client`.
struct TokenEndpoint {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TokenEndpoint {
    fn start(tokens: &[&str], refuse: bool) -> TokenEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/tenant/oauth2/v2.0/token",
            listener.local_addr().unwrap()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let tokens: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let body = String::from_utf8(body).unwrap();
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(body.clone());
                    seen.len()
                };
                let good = body.contains("grant_type=client_credentials")
                    && body.contains("client_id=app-1234")
                    && body.contains("client_secret=s%3Acr%2Ft-value")
                    && body.contains("scope=https%3A%2F%2Foutlook.office365.com%2F.default");
                let (status, answer) = if refuse || !good {
                    (
                        "401 Unauthorized",
                        r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#.to_string(),
                    )
                } else {
                    let token = &tokens[(n - 1).min(tokens.len() - 1)];
                    (
                        "200 OK",
                        format!(
                            r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"{token}"}}"#
                        ),
                    )
                };
                let mut out = stream;
                let _ = write!(
                    out,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        TokenEndpoint { url, requests }
    }

    fn requests(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn xoauth2_app(smtp: &SmtpServer, tls: &crate::helpers::Tls, endpoint: &TokenEndpoint) -> TestApp {
    let mut app = TestApp::with_smtp(smtp.addr);
    app.set("KEYDATES__MAIL__SMTP__TLS", "starttls");
    app.set(
        "KEYDATES__MAIL__SMTP__CA_FILE",
        tls.cert_path().to_str().unwrap(),
    );
    app.set("KEYDATES__MAIL__SMTP__USERNAME", "keydates@tenant.example");
    app.set("KEYDATES__MAIL__SMTP__AUTH", "xoauth2");
    app.set("KEYDATES__MAIL__SMTP__OAUTH2__TOKEN_URL", &endpoint.url);
    app.set("KEYDATES__MAIL__SMTP__OAUTH2__CLIENT_ID", "app-1234");
    app.set(
        "KEYDATES__MAIL__SMTP__OAUTH2__CLIENT_SECRET",
        "s:cr/t-value",
    );
    app
}

#[test]
fn twenty_emails_go_through_xoauth2_with_one_cached_token_and_the_secret_never_shown() {
    let (smtp, tls) = SmtpServer::start_xoauth2("keydates@tenant.example", "token-1");
    let endpoint = TokenEndpoint::start(&["token-1"], false);
    let app = xoauth2_app(&smtp, &tls, &endpoint);
    app.import_same_day_cases(20);
    let out = app.run(&["run", "--once", "--now", "2026-11-23"]);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{logs}");
    assert_eq!(smtp.received().len(), 20, "{logs}");
    assert!(smtp.received().iter().all(|m| m.tls && m.login.is_some()));
    assert_eq!(endpoint.requests(), 1, "one token for every connection");
    let checked = app.ok(&["check-config"]);
    for text in [&logs, &checked] {
        assert!(!text.contains("s:cr/t-value"), "{text}");
        assert!(!text.contains("token-1"), "{text}");
    }
    assert!(checked.contains("auth=xoauth2"), "{checked}");
}

#[test]
fn a_refused_token_is_fetched_anew_once() {
    // The relay takes only the second token: the first was revoked.
    let (smtp, tls) = SmtpServer::start_xoauth2("keydates@tenant.example", "token-2");
    let endpoint = TokenEndpoint::start(&["token-1", "token-2"], false);
    let mut app = xoauth2_app(&smtp, &tls, &endpoint);
    app.set("KEYDATES__MAIL__SMTP__POOL_SIZE", "1");
    app.import_examples();
    app.pass("2026-11-24");
    assert_eq!(riv_request(&app)["status"], "sent");
    assert_eq!(endpoint.requests(), 2);
    let tokens: Vec<String> = smtp.logins().into_iter().map(|(_, t)| t).collect();
    assert_eq!(tokens[..2], ["token-1", "token-2"]);
}

#[test]
fn a_token_endpoint_refusing_the_client_is_a_relay_fault() {
    let (smtp, tls) = SmtpServer::start_xoauth2("keydates@tenant.example", "token-1");
    let endpoint = TokenEndpoint::start(&["token-1"], true);
    let app = xoauth2_app(&smtp, &tls, &endpoint);
    app.import_examples();
    app.pass_relay_down("2026-11-24");
    assert!(app.outbox().iter().all(|r| r["status"] != "failed"));
    let out = app.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains("s:cr/t-value"), "{text}");
    let err = app.fails(&["send-test", "--to", "admin@example.org"]);
    assert!(err.contains("invalid_client"), "{err}");
}

#[test]
fn a_token_endpoint_over_plain_http_elsewhere_is_refused_by_check_config() {
    let mut app = TestApp::new();
    app.set("KEYDATES__MAIL__TRANSPORT", "smtp");
    app.set("KEYDATES__MAIL__SMTP__USERNAME", "keydates@tenant.example");
    app.set("KEYDATES__MAIL__SMTP__AUTH", "xoauth2");
    app.set(
        "KEYDATES__MAIL__SMTP__OAUTH2__TOKEN_URL",
        "http://login.example.com/tenant/oauth2/v2.0/token",
    );
    app.set("KEYDATES__MAIL__SMTP__OAUTH2__CLIENT_ID", "app-1234");
    let err = app.fails(&["check-config"]);
    assert!(err.contains("mail.smtp.oauth2.token_url"), "{err}");
    assert!(err.contains("plain http"), "{err}");
}

#[test]
fn the_relay_down_alert_goes_once_by_the_second_path() {
    let (smtp, tls) = SmtpServer::start_tls("keydates", "pass");
    smtp.script(|s| s.auth_reply = Some("535 5.7.139 Authentication unsuccessful".into()));
    let mut app = TestApp::with_starttls(&smtp, &tls, "keydates", "pass");
    let said = app.dir.path().join("alerts.txt");
    let script = app.write(
        "alert.sh",
        &format!(
            "#!/bin/sh\ncat >> {}\necho >> {}\n",
            said.display(),
            said.display()
        ),
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    app.set("KEYDATES__MAIL__ALERT_TO", script.to_str().unwrap());
    app.import_examples();
    app.pass_relay_down("2026-11-24");
    app.pass_relay_down("2026-11-24T11:00:00Z");
    let text = std::fs::read_to_string(&said).unwrap();
    assert_eq!(
        text.matches("cannot use its mail relay").count(),
        1,
        "{text}"
    );
    assert!(text.contains("5.7.139"), "{text}");
    smtp.script(|s| s.auth_reply = None);
    let out = app.pass("2026-11-24T13:00:00Z");
    let text = std::fs::read_to_string(&said).unwrap();
    assert_eq!(
        text.matches("keydates: the mail relay works again").count(),
        1,
        "{text}\n{out}"
    );
}

/// What a log must not hold for a login with `password`: the password, and
/// the forms it crosses the wire in (AUTH PLAIN and AUTH LOGIN).
fn password_forms(password: &str) -> Vec<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        password.to_string(),
        b64.encode(format!("\0{}\0{password}", postfix::USER)),
        b64.encode(password),
    ]
}

#[test]
fn a_password_from_a_file_or_a_systemd_credential_logs_in_and_is_never_logged() {
    let password = "0042-Str0ng pass";
    let postfix = Postfix::start(password, "300s");

    // From mail.smtp.password_file (its first line), logging everything.
    let mut app = through(&postfix, "");
    let file = app.write("smtp-password", &format!("{password}\nsecond line\n"));
    app.set(
        "KEYDATES__MAIL__SMTP__PASSWORD_FILE",
        file.to_str().unwrap(),
    );
    app.set("KEYDATES__LOG__LEVEL", "trace");
    app.import_examples();
    let out = app.run(&["run", "--once", "--now", "2026-11-24"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}\n{}", postfix.log());
    let sent = "SELECT COUNT(*) FROM outbox WHERE status = 'sent'";
    assert!(app.count(sent) >= 1, "{said}\n{}", postfix.log());
    for form in password_forms(password) {
        assert!(!said.contains(&form), "`{form}` in the log:\n{said}");
    }

    // From the systemd credential `smtp-password`, in the daemon.
    let mut app = through(&postfix, "");
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("smtp-password"), password).unwrap();
    app.set("KEYDATES__LOG__LEVEL", "trace");
    app.import_examples();
    let directory = credentials.path().to_str().unwrap();
    let mut daemon = crate::daemon::start(
        &app,
        &[("CREDENTIALS_DIRECTORY", directory)],
        &["run", "--now", "2026-11-24"],
    );
    assert!(
        eventually(Duration::from_secs(60), || app.count(sent) >= 1),
        "{}\n{}",
        crate::daemon::log_of(&app),
        postfix.log()
    );
    crate::daemon::signal(&daemon, "TERM");
    let exit = crate::daemon::wait_exit(&mut daemon, Duration::from_secs(15));
    assert!(exit.success(), "{exit:?}");
    let log = crate::daemon::log_of(&app);
    assert!(log.contains("keydates started"), "{log}");
    for form in password_forms(password) {
        assert!(!log.contains(&form), "`{form}` in the daemon's log:\n{log}");
    }
    assert!(
        postfix
            .log()
            .matches(&format!("sasl_username={}", postfix::USER))
            .count()
            >= 2,
        "both logged in:\n{}",
        postfix.log()
    );
}
