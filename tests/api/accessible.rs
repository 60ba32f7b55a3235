//! The console for everyone it serves (WCAG 2.2 AA): axe-core in a real
//! headless Chromium over every page state, and what axe cannot see: the
//! focus indicator's contrast and reflow at 320 CSS pixels.

use std::net::SocketAddr;
use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::console::{browser, chase_id, chromedriver, console, main_text_with, sign_in_browser};
use crate::daemon::eventually;
use crate::forms::with_a_visit;
use crate::helpers::{SmtpServer, TestApp};

/// axe-core's script, as `.ci/run` installs it from the npm registry.
fn axe_source() -> String {
    let path = std::env::var("AXE_CORE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/axe/node_modules/axe-core/axe.min.js"
        )
        .into()
    });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("axe-core at {path} ({e}): npm install --prefix target/axe axe-core@4.14.1 (.ci/run does)")
    })
}

/// What axe-core finds against WCAG 2.2 A and AA on the page shown now.
async fn violations(c: &Client, axe: &str) -> Vec<String> {
    c.execute(axe, vec![]).await.unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } })
               .then(r => done(r.violations.map(v => v.id + ' (' + v.help + '): ' + v.nodes.map(n => n.target.join(' ')).join(' | '))),
                     e => done(['axe did not run: ' + e]));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn type_in(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// A WES seminar with a delegate, so that every form on its page shows.
fn with_a_seminar(app: &TestApp) {
    let seminar = "seminar_ref,title,region,held_on,venue,confirmed\nG2G-L-1,Getting to good: early help,london,2027-06-10,Regional office,true\n";
    assert!(app.import("seminars", "s.csv", seminar).status.success());
    let delegate = "seminar_ref,authority_code,name,email\nG2G-L-1,WES,Lee Park,lee.park@westmere.example.gov.uk\n";
    assert!(app.import("delegates", "d.csv", delegate).status.success());
}

/// Runs `check` against each page state a support person meets, as its
/// heading names it.
async fn each_page_state<F>(c: &Client, addr: SocketAddr, id: i64, mut check: F)
where
    F: AsyncFnMut(&Client, &str),
{
    let base = format!("http://{addr}");
    c.goto(&format!("{base}/login")).await.unwrap();
    check(c, "sign in").await;
    sign_in_browser(c, addr).await;
    for (path, wanted) in [
        ("/", "Today,"),
        ("/agenda", "Agenda"),
        ("/authorities", "Authorities"),
        ("/authorities/WES", "Timeline"),
        ("/status", "Emails by state"),
        (&format!("/outbox/{id}"), "Confirmations"),
        (&format!("/outbox/{id}/preview"), "Attached"),
        ("/nowhere", "Page not found"),
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        main_text_with(c, wanted).await;
        check(c, path).await;
    }
    // A bad date: the page with its error summary and the value kept.
    c.goto(&format!("{base}/authorities/WES")).await.unwrap();
    for (part, value) in [("day", "31"), ("month", "2"), ("year", "2027")] {
        type_in(c, &format!("#move-WES-2-1-{part}"), value).await;
    }
    click(c, "form[action='/visits/WES-2/1/move'] button").await;
    main_text_with(c, "There is a problem").await;
    check(c, "a bad date").await;
    // A question before closing a case, and the page after.
    c.goto(&format!("{base}/authorities/WES")).await.unwrap();
    click(c, "form[action='/cases/WES-1/close'] button").await;
    main_text_with(c, "Close case WES-1?").await;
    check(c, "close a case?").await;
    click(c, "main form button").await;
    main_text_with(c, "Case WES-1 closed").await;
    check(c, "case closed").await;
    // A change's banner.
    c.goto(&format!("{base}/authorities/WES")).await.unwrap();
    let audited = "form[action='/visits/WES-2/1/audited']";
    type_in(c, &format!("{audited} input[name=refs]"), "AC-1").await;
    click(c, &format!("{audited} button")).await;
    main_text_with(c, "are recorded").await;
    check(c, "a change done").await;
}

/// In a browser against the console fixture with a visit and a seminar.
fn in_a_browser(run: impl AsyncFnOnce(&Client, SocketAddr, i64)) {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    with_a_visit(&app);
    with_a_seminar(&app);
    assert!(eventually(Duration::from_secs(20), || chase_id(&app) > 0));
    let id = chase_id(&app);
    let (mut driver, port) = chromedriver();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = browser(port).await;
        run(&c, addr, id).await;
        c.close().await.unwrap();
    });
    let _ = driver.kill();
    let _ = driver.wait();
}

#[test]
fn axe_core_finds_nothing_against_wcag_2_2_aa_on_any_page_state() {
    let axe = axe_source();
    in_a_browser(async |c, addr, id| {
        let mut found = Vec::new();
        each_page_state(c, addr, id, async |c, state| {
            for v in violations(c, &axe).await {
                found.push(format!("{state}: {v}"));
            }
        })
        .await;
        assert!(found.is_empty(), "{}", found.join("\n"));
    });
}

/// The relative luminance of an sRGB colour (WCAG 2.2).
fn luminance([r, g, b]: [f64; 3]) -> f64 {
    let channel = |c: f64| {
        let c = c / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
}

fn contrast(a: [f64; 3], b: [f64; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Every `rgb(...)` colour in a computed style value.
fn colours(value: &str) -> Vec<[f64; 3]> {
    value
        .split("rgb")
        .skip(1)
        .filter_map(|part| {
            let inside = part
                .trim_start_matches('a')
                .strip_prefix('(')?
                .split(')')
                .next()?;
            let n: Vec<f64> = inside
                .split(',')
                .filter_map(|x| x.trim().parse().ok())
                .collect();
            // A fully transparent colour draws nothing.
            if n.len() == 4 && n[3] == 0.0 {
                return None;
            }
            (n.len() >= 3).then(|| [n[0], n[1], n[2]])
        })
        .collect()
}

/// WCAG 1.4.11: what shows focus on a link, a button and a text field
/// contrasts at least 3:1 with the white page around it.
#[test]
fn the_focus_indicator_contrasts_three_to_one_with_the_page() {
    in_a_browser(async |c, addr, _id| {
        sign_in_browser(c, addr).await;
        c.goto(&format!("http://{addr}/authorities/WES"))
            .await
            .unwrap();
        main_text_with(c, "Timeline").await;
        let white = [255.0, 255.0, 255.0];
        for selector in [
            "main a",
            "form[action='/visits/WES-2/1/move'] button",
            "#move-WES-2-1-day",
            "header nav a",
            "details.change summary",
        ] {
            let el = c.find(Locator::Css(selector)).await.unwrap();
            let style = c
                .execute(
                    "const el = arguments[0]; el.focus();
                     const s = getComputedStyle(el);
                     return [s.outlineStyle === 'none' ? '' : s.outlineColor, s.boxShadow];",
                    vec![serde_json::to_value(&el).unwrap()],
                )
                .await
                .unwrap();
            let [outline, shadow]: [String; 2] = serde_json::from_value(style).unwrap();
            let best = colours(&outline)
                .into_iter()
                .chain(colours(&shadow))
                .map(|c| contrast(c, white))
                .fold(0.0, f64::max);
            assert!(
                best >= 3.0,
                "{selector}: focus shown by outline `{outline}` and shadow `{shadow}`: {best:.1}:1"
            );
        }
    });
}

/// WCAG 1.4.10: at 320 CSS pixels wide nothing scrolls sideways.
#[test]
fn every_page_state_reflows_at_320_pixels() {
    in_a_browser(async |c, addr, id| {
        c.set_window_size(320, 900).await.unwrap();
        let mut wide = Vec::new();
        each_page_state(c, addr, id, async |c, state| {
            let found = c
                .execute(
                    "const root = document.documentElement, w = root.clientWidth;
                     const over = [...document.body.querySelectorAll('*')]
                       .filter(e => e.getBoundingClientRect().right > w + 0.5)
                       .slice(0, 5)
                       .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && e.className.baseVal === undefined ? '.' + e.className : ''));
                     return [root.scrollWidth, w, over.join(' ')];",
                    vec![],
                )
                .await
                .unwrap();
            let (scroll, client, over): (u64, u64, String) = serde_json::from_value(found).unwrap();
            if scroll > client {
                wide.push(format!("{state}: {scroll} px wide in {client} ({over})"));
            }
        })
        .await;
        assert!(wide.is_empty(), "{}", wide.join("\n"));
    });
}

/// The values of `attribute` on the elements whose markup starts with `start`.
fn attributes(page: &str, start: &str, attribute: &str) -> Vec<String> {
    let mut found: Vec<String> = page
        .split(start)
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            let at = tag.find(&format!("{attribute}=\""))? + attribute.len() + 2;
            Some(tag[at..at + tag[at..].find('"')?].to_string())
        })
        .collect();
    found.sort();
    found
}

/// WCAG 1.1.1, 1.4.1: the timeline's dates are all in a table beside it,
/// the agenda's and the records' alike, and each state has a shape of its
/// own that the legend names.
#[test]
fn the_timeline_has_every_date_in_a_table_and_a_legend_for_every_mark() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    with_a_visit(&app);
    with_a_seminar(&app);
    assert!(eventually(Duration::from_secs(20), || chase_id(&app) > 0));
    let viewer = crate::console::sign_in(addr, crate::console::VIEWER);
    let page = crate::console::get(addr, "/authorities/WES", Some(&viewer))
        .into_string()
        .unwrap();
    let drawn = attributes(&page, "<g class=\"mark ", "data-date");
    let listed = attributes(&page, "<tr ", "data-date");
    assert!(drawn.len() > 5, "{drawn:?}");
    assert_eq!(drawn, listed);
    // Every dated email the agenda holds for WES, and the records' dates.
    let now = chrono::Utc::now().to_rfc3339();
    for item in app.agenda(&now) {
        if item["authority"] == "WES"
            && let Some(due) = item["due_on"].as_str()
        {
            assert!(listed.iter().any(|d| d == due), "{} on {due}", item["rule"]);
        }
    }
    for record in [
        "visit 1 starts",
        "WES-1: report received",
        "seminar G2G-L-1",
    ] {
        assert!(page.contains(&format!("<td>{record}</td>")), "{record}");
    }
    // A legend names each shape drawn.
    let legend = &page[page.find("class=\"legend\"").unwrap()..];
    for (shape, meaning) in [
        ("sent", "sent"),
        ("to_come", "to come"),
        ("waiting", "waiting for a person"),
        ("problem", "failed or missed"),
        ("cancelled", "cancelled"),
        ("record", "a date in the records"),
    ] {
        assert!(
            legend.contains(&format!("<g class=\"mark {shape}\">")) && legend.contains(meaning),
            "{shape}"
        );
    }
}
