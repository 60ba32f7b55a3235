//! The console, served by the real daemon on 127.0.0.1: who may see and do
//! what, checked over plain HTTP, and a support officer's morning driven in a
//! real headless Chromium.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{Datelike, Utc};
use keydates::calendar::{Calendar, Direction};

use crate::daemon::{Daemon, eventually, log_of, start};
use crate::helpers::{SmtpServer, TestApp, free_addr};

pub(crate) const EDITOR: (&str, &str) = ("pat", "correct horse battery staple");
pub(crate) const VIEWER: (&str, &str) = ("val", "a viewer's own password");

pub(crate) fn hash(app: &TestApp, password: &str) -> String {
    let mut child = app
        .command()
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The next working day from today: when the test's chase falls due.
pub(crate) fn chase_day() -> chrono::NaiveDate {
    Calendar::default()
        .roll(Utc::now().date_naive(), Direction::Forward)
        .unwrap()
}

/// An installation with the console on a free port, an editor and a viewer,
/// and one requires-improvement case whose plan chase falls due on
/// `chase_day()`; the daemon runs as of that day.
pub(crate) fn console(smtp: &SmtpServer) -> (TestApp, SocketAddr, Daemon) {
    console_with(smtp, None, &[])
}

/// As `console`, with the daemon's open-file limit and environment given.
pub(crate) fn console_with(
    smtp: &SmtpServer,
    nofile: Option<u32>,
    env: &[(&str, &str)],
) -> (TestApp, SocketAddr, Daemon) {
    let mut app = TestApp::with_smtp(smtp.addr);
    let users = format!(
        "\n[[web.users]]\nname = \"{}\"\npassword_hash = \"{}\"\nrole = \"editor\"\n\n[[web.users]]\nname = \"{}\"\npassword_hash = \"{}\"\nrole = \"viewer\"\n",
        EDITOR.0,
        hash(&app, EDITOR.1),
        VIEWER.0,
        hash(&app, VIEWER.1)
    );
    // The chase carries the planning record, as an admin may attach one, so
    // that an email with an annex is there to open.
    app.own_config(|t| {
        t.replacen("[log]", &format!("{users}\n[log]"), 1).replacen(
            "template = \"plan-chase\"\n",
            "template = \"plan-chase\"\nannexes = [\"planning-record\"]\n",
            1,
        )
    });
    let addr = app.hold_console();
    let day = chase_day();
    let report = Calendar::default().add_working_days(day, -50).unwrap();
    assert!(
        app.import(
            "authorities",
            "a.csv",
            "code,name,region,dcs_name,dcs_email,coordinator_email\nWES,Westmere Council,london,Dana Reed,dcs@westmere.example.gov.uk,\n",
        )
        .status
        .success()
    );
    let cases = format!(
        "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\nWES-1,WES,requires_improvement,{report},,hmi@ofsted.example.gov.uk,\n"
    );
    assert!(app.import("cases", "c.csv", &cases).status.success());
    let args = ["run", "--now", &day.to_string()];
    let daemon = match nofile {
        Some(n) => crate::daemon::start_with_file_limit(&app, n, env, &args),
        None => start(&app, env, &args),
    };
    assert!(
        crate::daemon::console_up(&app),
        "the console never listened:\n{}",
        log_of(&app)
    );
    (app, addr, daemon)
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

/// The sign-in form's token, as the sign-in page gives it: the cookie to
/// send back (`NAME=VALUE`) and the form field's value.
pub(crate) fn sign_in_form(addr: SocketAddr) -> (String, String) {
    let page = get(addr, "/login", None);
    let cookie = page
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("keydates_signin="))
        .expect("the sign-in page sets its cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body = page.into_string().unwrap();
    let at = body.find("name=\"signin\" value=\"").unwrap() + "name=\"signin\" value=\"".len();
    (cookie, body[at..at + 64].to_string())
}

/// Posts the sign-in form as the sign-in page would.
pub(crate) fn post_sign_in(addr: SocketAddr, name: &str, password: &str) -> ureq::Response {
    let (cookie, token) = sign_in_form(addr);
    post(
        addr,
        "/login",
        Some(&cookie),
        &[("name", name), ("password", password), ("signin", &token)],
    )
}

/// Signs in and returns the session cookie.
pub(crate) fn sign_in(addr: SocketAddr, (name, password): (&str, &str)) -> String {
    let response = post_sign_in(addr, name, password);
    assert_eq!(response.status(), 303);
    assert_eq!(response.header("location"), Some("/"));
    let cookie = response.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

pub(crate) fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> ureq::Response {
    let mut request = agent().get(&format!("http://{addr}{path}"));
    if let Some(c) = cookie {
        request = request.set("Cookie", c);
    }
    match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    }
}

pub(crate) fn post(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> ureq::Response {
    let mut request = agent().post(&format!("http://{addr}{path}"));
    if let Some(c) = cookie {
        request = request.set("Cookie", c);
    }
    match request.send_form(form) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    }
}

/// The CSRF token in a page's forms.
pub(crate) fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[at..at + 64].to_string()
}

/// The held chase's row, once the daemon has stored it (0 until then).
pub(crate) fn chase_id(app: &TestApp) -> i64 {
    app.count(
        "SELECT COALESCE(MAX(id), 0) FROM outbox WHERE rule_id = 'plan-chase' AND subject = 'WES-1'",
    )
}

#[test]
fn nothing_is_seen_or_done_without_a_session_its_form_token_and_the_editor_role() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    assert!(eventually(Duration::from_secs(20), || chase_id(&app) > 0));
    let id = chase_id(&app);

    // Without a session every page and action goes to the sign-in page.
    for path in [
        "/",
        "/agenda",
        &format!("/outbox/{id}"),
        "/authorities",
        "/authorities/WES",
        "/preview?rule=plan-deadline&subject=WES-1",
    ] {
        let r = get(addr, path, None);
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.header("location"), Some("/login"), "{path}");
    }
    for action in [
        format!("/outbox/{id}/confirm"),
        "/cases/WES-1/plan-received".to_string(),
        "/seminars/X/cancel".to_string(),
    ] {
        let r = post(
            addr,
            &action,
            None,
            &[("csrf", "x"), ("date", "2026-12-01")],
        );
        assert_eq!(r.header("location"), Some("/login"), "{action}");
    }
    // The sign-in page itself is plain and framed by nobody.
    let r = get(addr, "/login", None);
    assert_eq!(r.status(), 200);
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    // A wrong password is refused.
    let r = post_sign_in(addr, EDITOR.0, "guess");
    assert_eq!(r.header("location"), Some("/login?failed"));

    // Signed in, an action without the form's token is refused.
    let editor = sign_in(addr, EDITOR);
    let r = post(addr, &format!("/outbox/{id}/confirm"), Some(&editor), &[]);
    assert_eq!(r.status(), 403);
    // The agenda filters by region; a planned email can be previewed.
    let london = get(addr, "/agenda?region=london", Some(&editor))
        .into_string()
        .unwrap();
    assert!(london.contains("WES-1"), "{london}");
    let north = get(addr, "/agenda?region=north-west", Some(&editor))
        .into_string()
        .unwrap();
    assert!(
        !north.contains("WES-1") && north.contains("Nothing."),
        "{north}"
    );
    let planned = get(
        addr,
        "/preview?rule=plan-deadline&subject=WES-1",
        Some(&editor),
    );
    assert_eq!(planned.status(), 200);
    assert!(planned.into_string().unwrap().contains("Overdue"));
    // The email as it would go, with its annex to download; not without a session.
    let preview = get(addr, &format!("/outbox/{id}/preview"), Some(&editor));
    assert_eq!(preview.status(), 200);
    let page = preview.into_string().unwrap();
    assert!(
        page.contains("dcs@westmere.example.gov.uk") && page.contains("planning-record-WES"),
        "{page}"
    );
    let annex = get(addr, &format!("/outbox/{id}/annex/0"), Some(&editor));
    assert_eq!(
        annex.header("content-type"),
        Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    );
    assert!(
        annex
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    for path in [
        format!("/outbox/{id}/preview"),
        format!("/outbox/{id}/annex/0"),
        format!("/outbox/{id}/preview.html"),
    ] {
        assert_eq!(
            get(addr, &path, None).header("location"),
            Some("/login"),
            "{path}"
        );
    }
    // A viewer sees, but cannot act even with the token.
    let viewer = sign_in(addr, VIEWER);
    let page = get(addr, &format!("/outbox/{id}"), Some(&viewer))
        .into_string()
        .unwrap();
    assert!(page.contains("awaiting confirmation"), "{page}");
    // Titled by its subject line, with a way back to its authority.
    assert!(
        page.contains("<h1>Westmere Council: your written statement of action is due by")
            && page.contains("<title>Westmere Council: your written statement"),
        "{page}"
    );
    assert!(page.contains("href=\"/authorities/WES\""), "{page}");
    assert!(!page.contains("/confirm\""), "no buttons for a viewer");
    let r = post(
        addr,
        &format!("/outbox/{id}/confirm"),
        Some(&viewer),
        &[("csrf", &csrf(&page))],
    );
    assert_eq!(r.status(), 403);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM outbox WHERE id = {id} AND status = 'awaiting_confirmation'"
        )),
        1,
        "nothing changed"
    );
}

#[test]
fn a_non_loopback_console_needs_users() {
    let mut app = TestApp::new();
    app.set("KEYDATES__WEB__LISTEN", "0.0.0.0:8765");
    let err = app.fails(&["check-config"]);
    assert!(
        err.contains("web.listen") && err.contains("web.users"),
        "{err}"
    );
}

/// chromedriver on a free port, for a headless Chromium. chromedriver binds
/// its port itself: should another process take it first, chromedriver
/// exits, and another port is tried.
pub(crate) fn chromedriver() -> (std::process::Child, u16) {
    for _ in 0..5 {
        let port = free_addr().port();
        let mut child = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium chromium-driver)");
        let listening = eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                || child.try_wait().unwrap().is_some()
        });
        // A port some other process holds answers too: chromedriver, failing
        // to bind it, is gone a moment later.
        std::thread::sleep(Duration::from_millis(300));
        if listening && child.try_wait().unwrap().is_none() {
            return (child, port);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("chromedriver did not start")
}

/// A headless Chromium session through the chromedriver on `port`.
pub(crate) async fn browser(port: u16) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"] }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    for _ in 0..50 {
        if let Ok(c) = fantoccini::ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("chromedriver did not answer on port {port}")
}

/// Signs in through the form.
pub(crate) async fn sign_in_browser(c: &fantoccini::Client, addr: SocketAddr) {
    use fantoccini::Locator;
    c.goto(&format!("http://{addr}/")).await.unwrap();
    c.find(Locator::Css("#name"))
        .await
        .unwrap()
        .send_keys(EDITOR.0)
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(EDITOR.1)
        .await
        .unwrap();
    c.find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    main_text_with(c, "Today,").await;
}

/// The text of the page's main part once `wanted` shows in it: a click that
/// navigates replaces the page under the driver, so this asks again.
pub(crate) async fn main_text_with(c: &fantoccini::Client, wanted: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(main) = c.find(fantoccini::Locator::Css("main")).await
            && let Ok(text) = main.text().await
        {
            if text.contains(wanted) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{wanted}` never showed; the page said:\n{last}")
}

/// A support officer's morning in a real browser: sign in, see what waits,
/// confirm the held chase, and see it go.
#[test]
fn in_a_browser_an_editor_confirms_a_held_chase_and_it_goes() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    assert!(eventually(Duration::from_secs(20), || chase_id(&app) > 0));
    let (mut driver, driver_port) = chromedriver();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        use fantoccini::Locator;
        let c = browser(driver_port).await;
        let base = format!("http://{addr}");
        c.goto(&format!("{base}/")).await?;
        assert!(c.current_url().await?.as_str().ends_with("/login"));
        c.find(Locator::Css("#name"))
            .await?
            .send_keys(EDITOR.0)
            .await?;
        c.find(Locator::Css("#password"))
            .await?
            .send_keys(EDITOR.1)
            .await?;
        c.find(Locator::Css("main button[type=submit]"))
            .await?
            .click()
            .await?;
        let today = main_text_with(&c, "Waiting for a person").await;
        // A phone's width: nothing runs off the side.
        c.set_window_size(390, 844).await?;
        let fits = c
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                vec![],
            )
            .await?;
        assert_eq!(fits, serde_json::Value::Bool(true), "fits a phone");
        c.set_window_size(1200, 900).await?;
        assert!(
            today.contains("plan-chase") && today.contains("awaiting confirmation"),
            "{today}"
        );
        std::fs::create_dir_all(concat!(env!("CARGO_TARGET_TMPDIR"), "/console")).unwrap();
        let shot = c.screenshot().await?;
        std::fs::write(
            concat!(env!("CARGO_TARGET_TMPDIR"), "/console/today.png"),
            shot,
        )
        .unwrap();
        c.find(Locator::LinkText("WES-1")).await?.click().await?;
        main_text_with(&c, "History").await;
        // Each role asked confirms in turn; the page says who has.
        c.find(Locator::XPath(
            "//button[text()='Confirm as lead inspector']",
        ))
        .await?
        .click()
        .await?;
        main_text_with(&c, &format!("lead inspector: confirmed by {}", EDITOR.0)).await;
        c.find(Locator::XPath("//button[text()='Confirm as shmi']"))
            .await?
            .click()
            .await?;
        // The history names the action and who did it.
        let page = main_text_with(&c, &format!("{} confirm", EDITOR.0)).await;
        assert!(!page.contains("No changes."), "{page}");
        // The daemon is woken, plans and sends at once.
        let sent = eventually(Duration::from_secs(20), || {
            smtp.received()
                .iter()
                .any(|m| m.to.iter().any(|t| t == "dcs@westmere.example.gov.uk"))
        });
        assert!(sent, "the confirmed chase went:\n{}", log_of(&app));
        c.refresh().await?;
        main_text_with(&c, "sent").await;
        c.close().await
    });
    let _ = driver.kill();
    let _ = driver.wait();
    result.unwrap();
}

/// The authority's timeline follows a moved visit.
#[test]
fn in_a_browser_moving_a_visit_moves_it_on_the_timeline() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    let starts = chase_day() + chrono::Days::new(40);
    let cases = format!(
        "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\nWES-2,WES,inadequate,{},,hmi@ofsted.example.gov.uk,\n",
        chase_day() - chrono::Days::new(100)
    );
    assert!(app.import("cases", "c2.csv", &cases).status.success());
    let visits = format!(
        "case_ref,visit_no,starts_on,lead_inspector_email,audited_cases,cancelled\nWES-2,1,{starts},hmi@ofsted.example.gov.uk,,false\n"
    );
    assert!(app.import("visits", "v.csv", &visits).status.success());
    let (mut driver, driver_port) = chromedriver();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        use fantoccini::Locator;
        let c = browser(driver_port).await;
        sign_in_browser(&c, addr).await;
        c.goto(&format!("http://{addr}/authorities/WES")).await?;
        main_text_with(&c, "Timeline").await;
        let mark = |rule: &'static str| {
            let c = c.clone();
            async move {
                c.find(Locator::Css(&format!("g.mark[data-rule='{rule}']")))
                    .await?
                    .attr("data-date")
                    .await
            }
        };
        let before = mark("child-data-request").await?.unwrap();
        let moved = starts + chrono::Days::new(14);
        // The GOV.UK date input: day, month and year, typed.
        for (part, value) in [
            ("day", moved.day()),
            ("month", moved.month()),
            ("year", moved.year() as u32),
        ] {
            c.find(Locator::Css(&format!("#move-WES-2-1-{part}")))
                .await?
                .send_keys(&value.to_string())
                .await?;
        }
        c.find(Locator::Css("form[action='/visits/WES-2/1/move'] button"))
            .await?
            .click()
            .await?;
        main_text_with(&c, "visit 1: move").await;
        let after = mark("child-data-request").await?.unwrap();
        assert_ne!(before, after, "the data request moved with the visit");
        let shot = c.screenshot().await?;
        std::fs::create_dir_all(concat!(env!("CARGO_TARGET_TMPDIR"), "/console")).unwrap();
        std::fs::write(
            concat!(env!("CARGO_TARGET_TMPDIR"), "/console/timeline.png"),
            shot,
        )
        .unwrap();
        c.close().await
    });
    let _ = driver.kill();
    let _ = driver.wait();
    result.unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM visits WHERE case_ref = 'WES-2' AND starts_on = '{}'",
            starts + chrono::Days::new(14)
        )),
        1
    );
}

#[test]
fn metrics_are_served_without_a_login_when_switched_on() {
    let smtp = SmtpServer::start();
    let mut app = TestApp::with_smtp(smtp.addr);
    let addr = app.hold_console();
    app.import_examples();
    // Off by default.
    let daemon = start(&app, &[], &["run", "--now", "2026-11-24"]);
    assert!(crate::daemon::console_up(&app), "{}", log_of(&app));
    assert_eq!(get(addr, "/metrics", None).status(), 404);
    drop(daemon);

    app.set("KEYDATES__WEB__METRICS", "true");
    let addr = app.hold_console();
    // Two days on, the audited-case notice goes.
    let _daemon = start(&app, &[], &["run", "--now", "2026-11-26"]);
    let mut body = String::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            body = get(addr, "/metrics", None)
                .into_string()
                .unwrap_or_default();
            // Sends are counted as they happen, passes when they end.
            body.contains("keydates_sends_total") && body.contains("keydates_passes_total")
        }),
        "{body}\n{}",
        log_of(&app)
    );
    for metric in [
        "keydates_passes_total",
        "keydates_last_pass_timestamp_seconds",
        "keydates_outbox_rows{state=\"sent\"}",
        "keydates_oldest_due_age_seconds{state=\"pending\"}",
        "outcome=\"sent\"",
    ] {
        assert!(body.contains(metric), "{metric}:\n{body}");
    }
    assert!(!body.contains("@"), "no addresses in the figures");
}

/// Replaces the first `from` in the daemon's config file with `to`, sends
/// SIGHUP, and waits for the daemon to say it reloaded.
fn reload_with(app: &TestApp, daemon: &Daemon, from: &str, to: &str) {
    let config = std::fs::read_to_string(&app.config).unwrap();
    assert!(config.contains(from), "the config has no `{from}`");
    std::fs::write(&app.config, config.replacen(from, to, 1)).unwrap();
    let reloads = || log_of(app).matches("config reloaded").count();
    let before = reloads();
    crate::daemon::signal(daemon, "HUP");
    assert!(
        eventually(Duration::from_secs(20), || reloads() > before),
        "{}",
        log_of(app)
    );
}

/// Whether `cookie` opens the Today page (rather than sending to sign-in).
fn signed_in(addr: SocketAddr, cookie: &str) -> bool {
    get(addr, "/", Some(cookie)).status() == 200
}

#[test]
fn a_session_outlives_a_restart_and_ends_when_its_user_is_removed() {
    let smtp = SmtpServer::start();
    let (app, addr, mut daemon) = console(&smtp);
    let editor = sign_in(addr, EDITOR);
    let viewer = sign_in(addr, VIEWER);
    assert!(signed_in(addr, &editor) && signed_in(addr, &viewer));
    // The token is never stored as it is.
    let token = editor.split_once('=').unwrap().1;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM web_sessions WHERE token_hash = '{token}'"
        )),
        0
    );

    // Restarted, the daemon still knows both sessions.
    crate::daemon::signal(&daemon, "TERM");
    crate::daemon::wait_exit(&mut daemon, Duration::from_secs(15));
    let day = chase_day().to_string();
    let daemon = start(&app, &[], &["run", "--now", &day]);
    assert!(crate::daemon::console_up(&app), "{}", log_of(&app));
    assert!(signed_in(addr, &editor), "{}", log_of(&app));
    assert!(signed_in(addr, &viewer));

    // The editor is removed from the config: at the reload their session ends;
    // the viewer's goes on.
    reload_with(
        &app,
        &daemon,
        &format!("[[web.users]]\nname = \"{}\"", EDITOR.0),
        "[[web.users]]\nname = \"someone-else\"",
    );
    assert!(!signed_in(addr, &editor), "the removed user is signed out");
    assert!(signed_in(addr, &viewer));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM web_sessions WHERE user_name = '{}'",
            EDITOR.0
        )),
        0,
        "and the session is gone"
    );
    drop(daemon);
}

#[test]
fn a_sign_in_or_sign_out_from_another_site_is_refused() {
    let smtp = SmtpServer::start();
    let (_app, addr, _daemon) = console(&smtp);
    let (cookie, token) = sign_in_form(addr);
    let form = [
        ("name", EDITOR.0),
        ("password", EDITOR.1),
        ("signin", token.as_str()),
    ];
    let send = |headers: &[(&str, &str)], form: &[(&str, &str)]| {
        let mut request = agent().post(&format!("http://{addr}/login"));
        for (k, v) in headers {
            request = request.set(k, v);
        }
        match request.send_form(form) {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        }
    };
    let welcomed = |r: &ureq::Response| {
        r.all("set-cookie")
            .iter()
            .any(|c| c.starts_with("keydates_session"))
    };
    // Posted from a page elsewhere: refused, however right the password.
    let r = send(
        &[("Cookie", &cookie), ("Origin", "http://attacker.example")],
        &form,
    );
    assert_eq!(r.status(), 403);
    assert!(!welcomed(&r));
    let r = send(
        &[("Cookie", &cookie), ("Sec-Fetch-Site", "cross-site")],
        &form,
    );
    assert_eq!(r.status(), 403);
    assert!(!welcomed(&r));
    // Without the sign-in page's own token (a form made elsewhere): refused.
    let r = send(&[], &form[..2]);
    assert_eq!(r.status(), 403);
    assert!(!welcomed(&r));
    let r = send(&[("Cookie", &cookie)], &form[..2]);
    assert_eq!(r.status(), 403);
    // From the sign-in page itself: welcome.
    let origin = format!("http://{addr}");
    let r = send(&[("Cookie", &cookie), ("Origin", &origin)], &form);
    assert_eq!(r.status(), 303);
    assert!(welcomed(&r));

    // Sign-out from elsewhere ends nothing.
    let session = sign_in(addr, EDITOR);
    let page = get(addr, "/", Some(&session)).into_string().unwrap();
    let csrf = csrf(&page);
    let r = agent()
        .post(&format!("http://{addr}/logout"))
        .set("Cookie", &session)
        .set("Origin", "http://attacker.example")
        .send_form(&[("csrf", &csrf)]);
    let r = match r {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    assert_ne!(r.header("location"), Some("/login"));
    assert!(signed_in(addr, &session), "still signed in");
}

#[test]
fn metrics_follow_web_metrics_at_a_reload() {
    let smtp = SmtpServer::start();
    let mut app = TestApp::with_smtp(smtp.addr);
    app.own_config(|t| t);
    let addr = app.hold_console();
    app.import_examples();
    let daemon = start(&app, &[], &["run", "--now", "2026-11-24"]);
    assert!(crate::daemon::console_up(&app), "{}", log_of(&app));
    assert_eq!(get(addr, "/metrics", None).status(), 404);
    reload_with(&app, &daemon, "\nmetrics = false", "\nmetrics = true");
    let on = get(addr, "/metrics", None);
    assert_eq!(on.status(), 200);
    assert!(
        on.into_string()
            .unwrap()
            .contains("keydates_config_reloads_total")
    );
    reload_with(&app, &daemon, "\nmetrics = true", "\nmetrics = false");
    assert_eq!(get(addr, "/metrics", None).status(), 404);
}

/// A GET of `path` naming `host` in its `Host` header; the status.
fn status_for_host(addr: SocketAddr, host: &str, path: &str) -> u16 {
    match agent()
        .get(&format!("http://{addr}{path}"))
        .set("Host", host)
        .call()
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn only_the_consoles_own_names_are_answered_and_an_https_address_makes_cookies_secure() {
    let smtp = SmtpServer::start();
    let (_app, addr, _daemon) = console(&smtp);
    let port = addr.port();
    // A name pointed here afterwards (DNS rebinding) reaches nothing.
    assert_eq!(status_for_host(addr, "attacker.example", "/login"), 421);
    assert_eq!(
        status_for_host(addr, &format!("attacker.example:{port}"), "/login"),
        421
    );
    assert_eq!(
        status_for_host(addr, &format!("localhost:{port}"), "/login"),
        200
    );
    let plain = sign_in(addr, EDITOR);
    assert!(
        plain.starts_with(&format!("keydates_session_{port}=")),
        "{plain}"
    );

    let smtp = SmtpServer::start();
    let public = ("KEYDATES__WEB__PUBLIC_URL", "https://keydates.example.org/");
    let (app, addr, _daemon) = console_with(&smtp, None, &[public]);
    assert_eq!(status_for_host(addr, "keydates.example.org", "/login"), 200);
    assert_eq!(status_for_host(addr, "other.example.org", "/login"), 421);
    let (cookie, token) = sign_in_form(addr);
    let r = post(
        addr,
        "/login",
        Some(&cookie),
        &[
            ("name", EDITOR.0),
            ("password", EDITOR.1),
            ("signin", &token),
        ],
    );
    assert_eq!(r.status(), 303, "{}", log_of(&app));
    let session = r
        .all("set-cookie")
        .into_iter()
        .find(|c| c.contains("keydates_session"))
        .unwrap()
        .to_string();
    assert!(session.starts_with("__Host-keydates_session="), "{session}");
    assert!(
        session.contains("Secure") && session.contains("Path=/"),
        "{session}"
    );
}

/// The statuses of eleven wrong sign-ins, each under its own name, said to
/// come from `forwarded_for`.
fn sign_ins_from(addr: SocketAddr, forwarded_for: &str, round: &str) -> Vec<u16> {
    let (cookie, token) = sign_in_form(addr);
    (0..11)
        .map(|i| {
            let name = format!("nobody-{round}-{i}");
            let r = agent()
                .post(&format!("http://{addr}/login"))
                .set("Cookie", &cookie)
                .set("X-Forwarded-For", forwarded_for)
                .send_form(&[("name", &name), ("password", "x"), ("signin", &token)]);
            match r {
                Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
                Err(e) => panic!("{e}"),
            }
        })
        .collect()
}

#[test]
fn behind_a_trusted_proxy_sign_ins_are_limited_by_the_forwarded_client_address() {
    let smtp = SmtpServer::start();
    let (app, addr, daemon) = console(&smtp);
    reload_with(
        &app,
        &daemon,
        "[web]\n",
        "[web]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    // Ten attempts a minute from one client; the eleventh waits.
    let first = sign_ins_from(addr, "192.0.2.1", "a");
    assert_eq!(first.iter().filter(|s| **s == 303).count(), 10, "{first:?}");
    assert_eq!(first[10], 429, "{first:?}");
    // Another client behind the same proxy is not held up by the first.
    let second = sign_ins_from(addr, "10.1.2.3, 192.0.2.2", "b");
    assert_eq!(second[0], 303, "{second:?}");

    // Not trusted, the proxy is the client: the header is ignored.
    let smtp = SmtpServer::start();
    let (_app, addr, _daemon) = console(&smtp);
    let first = sign_ins_from(addr, "192.0.2.1", "a");
    assert_eq!(first[10], 429, "{first:?}");
    let second = sign_ins_from(addr, "192.0.2.2", "b");
    assert_eq!(second[0], 429, "{second:?}");
}

#[test]
fn a_seminars_timetable_is_recorded_on_an_authoritys_page_and_a_bad_one_is_refused() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    let seminar = "seminar_ref,title,region,held_on,venue,confirmed\nG2G-L-1,Getting to good: early help,london,2027-06-10,Regional office,true\n";
    assert!(app.import("seminars", "s.csv", seminar).status.success());
    let delegate = "seminar_ref,authority_code,name,email\nG2G-L-1,WES,Lee Park,lee.park@westmere.example.gov.uk\n";
    assert!(app.import("delegates", "d.csv", delegate).status.success());
    let editor = sign_in(addr, EDITOR);
    let page = get(addr, "/authorities/WES", Some(&editor))
        .into_string()
        .unwrap();
    assert!(page.contains("Record the timetable of G2G-L-1"), "{page}");
    let token = csrf(&page);
    let stored = |app: &TestApp, value: &str| {
        app.count(&format!(
            "SELECT COUNT(*) FROM seminars WHERE seminar_ref = 'G2G-L-1' AND timetable = '{value}'"
        ))
    };
    let r = post(
        addr,
        "/seminars/G2G-L-1/timetable",
        Some(&editor),
        &[
            ("csrf", &token),
            ("back", "WES"),
            ("timetable", "09:30 Arrival;10:00  Welcome"),
        ],
    );
    assert_eq!(r.status(), 303, "{}", r.into_string().unwrap_or_default());
    assert_eq!(stored(&app, "09:30 Arrival; 10:00 Welcome"), 1);
    // The page shows it, ready to change.
    let page = get(addr, "/authorities/WES", Some(&editor))
        .into_string()
        .unwrap();
    assert!(
        page.contains("value=\"09:30 Arrival; 10:00 Welcome\""),
        "{page}"
    );
    // A session without a time is refused, and the recorded one stays.
    let r = post(
        addr,
        "/seminars/G2G-L-1/timetable",
        Some(&editor),
        &[("csrf", &token), ("back", "WES"), ("timetable", "Welcome")],
    );
    assert_eq!(r.status(), 400);
    assert!(
        r.into_string()
            .unwrap()
            .contains("does not start with a time")
    );
    assert_eq!(stored(&app, "09:30 Arrival; 10:00 Welcome"), 1);
}
