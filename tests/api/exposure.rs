//! What anyone who can reach the console can do to the daemon, tried
//! against the real process: floods of sign-ins, huge names, and more slow
//! connections than it has file descriptors. The daemon must keep its
//! memory, its journal, its mail and its watchdog.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::console::{EDITOR, console_with, get, sign_in};
use crate::daemon::{eventually, log_of};
use crate::helpers::SmtpServer;

/// A kibibyte figure from the daemon's /proc status (`VmHWM:` peak, `VmRSS:` now).
fn memory_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// One sign-in over a plain connection; the status code (0 when the
/// connection was closed without one).
fn sign_in_status(addr: SocketAddr, form: &(String, String), name: &str, password: &str) -> u16 {
    let (cookie, token) = form;
    let body = format!("name={name}&password={password}&signin={token}");
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut head = [0u8; 12];
    match s.read_exact(&mut head) {
        Ok(()) => String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0),
        Err(_) => 0,
    }
}

#[test]
fn a_flood_of_sign_ins_is_turned_away_with_memory_and_journal_kept() {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let (app, addr, daemon) = console_with(
        &smtp,
        None,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            // Keepalives every half second.
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let pid = daemon.id();
    // The right password works before the flood.
    let cookie = sign_in(addr, EDITOR);

    let form = crate::console::sign_in_form(addr);
    let flooding = std::sync::atomic::AtomicBool::new(true);
    let (statuses, longest): (Vec<u16>, Duration) = std::thread::scope(|scope| {
        let watch = scope.spawn(|| {
            let (mut last, mut longest) = (std::time::Instant::now(), Duration::ZERO);
            let mut buf = [0u8; 4096];
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf)
                    && String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1")
                {
                    longest = longest.max(last.elapsed());
                    last = std::time::Instant::now();
                }
            }
            longest.max(last.elapsed())
        });
        let form = &form;
        let all: Vec<_> = (0..200)
            .map(|i| {
                scope.spawn(move || sign_in_status(addr, form, EDITOR.0, &format!("wrong-{i}")))
            })
            .collect();
        let statuses = all.into_iter().map(|t| t.join().unwrap()).collect();
        std::thread::sleep(Duration::from_secs(1));
        flooding.store(false, std::sync::atomic::Ordering::Relaxed);
        (statuses, watch.join().unwrap())
    });
    eprintln!(
        "200 concurrent sign-ins: the longest gap between keepalives {longest:?} (every 500 ms asked)"
    );
    assert!(
        longest < Duration::from_millis(750),
        "keepalive gap {longest:?}"
    );
    let busy = statuses.iter().filter(|s| **s == 429).count();
    let refused = statuses.iter().filter(|s| **s == 303).count();
    assert_eq!(busy + refused, 200, "every attempt answered: {statuses:?}");
    assert!(busy >= 190, "most turned away at once: {busy} of 200");
    assert!(refused >= 1, "a few were checked, and refused");
    let peak = memory_kib(pid, "VmHWM:") / 1024;
    eprintln!(
        "200 concurrent sign-ins: {busy} turned away (429), {refused} checked; peak memory {peak} MiB"
    );
    assert!(peak < 300, "peak memory {peak} MiB");

    // Names a megabyte long are refused unread, and barely reach the journal.
    let log_before = log_of(&app).len();
    let rss_before = memory_kib(pid, "VmRSS:");
    let huge: Vec<u16> = std::thread::scope(|scope| {
        let form = &form;
        let all: Vec<_> = (0..60)
            .map(|i| {
                scope.spawn(move || {
                    let name = format!("{i}{}", "n".repeat(1024 * 1024));
                    sign_in_status(addr, form, &name, "x")
                })
            })
            .collect();
        all.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(
        huge.iter().all(|s| *s == 413 || *s == 0),
        "refused unread: {huge:?}"
    );
    let grown = memory_kib(pid, "VmRSS:").saturating_sub(rss_before) / 1024;
    assert!(grown < 64, "memory grew by {grown} MiB");
    let logged = log_of(&app).len() - log_before;
    eprintln!("60 sign-ins with 1 MiB names: memory +{grown} MiB, journal +{logged} bytes");
    assert!(logged < 1024 * 1024, "the journal grew by {logged} bytes");

    // The session from before still works; the console still answers.
    assert_eq!(get(addr, "/", Some(&cookie)).status(), 200);
}

#[test]
fn more_slow_connections_than_file_descriptors_leave_the_console_mail_and_watchdog_working() {
    // This test holds 1,100 connections itself.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    limit.rlim_cur = limit.rlim_max.min(8192);
    if limit.rlim_max < 8192 {
        // As root the hard limit may be raised too.
        limit.rlim_max = 8192;
        limit.rlim_cur = 8192;
    }
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert!(limit.rlim_cur >= 2048, "the test needs 2,048 descriptors");

    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let (app, addr, daemon) = console_with(
        &smtp,
        Some(1024),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "2000000"),
            ("KEYDATES__SCHEDULE__POLL", "*/2 * * * * *"),
        ],
    );
    let cookie = sign_in(addr, EDITOR);
    // The chase due today has gone through the relay.
    assert!(
        eventually(Duration::from_secs(20), || !smtp.received().is_empty()),
        "{}",
        log_of(&app)
    );

    // 1,100 clients that open a request and never finish its headers.
    let slow: Vec<TcpStream> = (0..1100)
        .filter_map(|_| {
            let mut s = TcpStream::connect(addr).ok()?;
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n");
            Some(s)
        })
        .collect();
    assert!(slow.len() >= 1000, "{} connections opened", slow.len());

    // A signed-in user is still served, at once.
    let asked = std::time::Instant::now();
    let page = crate::console::agent()
        .get(&format!("http://{addr}/"))
        .set("Cookie", &cookie)
        .timeout(Duration::from_secs(5))
        .call()
        .expect("served within 5 s");
    assert_eq!(page.status(), 200);
    eprintln!(
        "{} slow connections at a file limit of 1,024: a signed-in page served in {:?}",
        slow.len(),
        asked.elapsed()
    );

    // The watchdog is still fed.
    let mut buf = [0u8; 4096];
    while socket.recv(&mut buf).is_ok() {} // what came before
    let fed = eventually(Duration::from_secs(5), || {
        socket
            .recv(&mut buf)
            .is_ok_and(|n| String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1"))
    });
    assert!(fed, "no keepalive while the console is flooded");

    // A case recorded now is planned at the next poll, and its chase goes
    // through the relay while the console is flooded.
    let before = smtp.received().len();
    let report = keydates::calendar::Calendar::default()
        .add_working_days(crate::console::chase_day(), -50)
        .unwrap();
    let cases = format!(
        "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\nWES-2,WES,requires_improvement,{report},,hmi@ofsted.example.gov.uk,\n"
    );
    assert!(app.import("cases", "c2.csv", &cases).status.success());
    assert!(
        eventually(Duration::from_secs(30), || smtp.received().len() > before),
        "the new case's email did not go\n{}",
        log_of(&app)
    );
    drop(slow);
    drop(daemon);
}
