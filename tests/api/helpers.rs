//! Starts the real things: the keydates binary against a SQLite file in a
//! temporary folder (or a database on a real PostgreSQL server), and an SMTP
//! server on 127.0.0.1 that records what arrives.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Output;

pub use crate::smtp::{Mode, Received, SmtpServer, Tls};
use serde_json::Value;
use tempfile::TempDir;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

pub fn shipped_config() -> PathBuf {
    Path::new(REPO).join("config/keydates.toml")
}

pub fn examples() -> PathBuf {
    Path::new(REPO).join("config/examples")
}

/// Copies a folder and everything in it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One keydates installation: its config, database and spool in a temp folder.
pub struct TestApp {
    pub dir: TempDir,
    pub config: PathBuf,
    pub env: Vec<(String, String)>,
    /// Set once the database exists (and is migrated).
    opened: std::sync::atomic::AtomicBool,
    /// The console's socket, bound by the test and handed to each daemon.
    pub console: Option<TcpListener>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

thread_local! {
    static BACKEND: std::cell::Cell<Backend> = const { std::cell::Cell::new(Backend::Sqlite) };
}

/// Runs a test with every `TestApp` it makes on its own database on the
/// shared PostgreSQL server instead of a SQLite file.
pub fn on_postgres(test: fn()) {
    BACKEND.set(Backend::Postgres);
    test();
}

/// Runs the named tests of the enclosing module a second time, against
/// PostgreSQL, in a module `on_postgres` beside them.
#[macro_export]
macro_rules! on_postgres_too {
    ($($name:ident),* $(,)?) => {
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    $crate::helpers::on_postgres(super::$name)
                }
            )*
        }
    };
}

impl TestApp {
    /// The shipped config, writing mail as .eml files into the temp folder.
    pub fn new() -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = match BACKEND.get() {
            Backend::Sqlite => dir.path().join("keydates.db").display().to_string(),
            Backend::Postgres => crate::pg::shared().new_database(),
        };
        let env = vec![
            ("KEYDATES__DATABASE__URL".to_string(), database),
            (
                "KEYDATES__MAIL__SPOOL_DIR".to_string(),
                dir.path().join("mail").display().to_string(),
            ),
            // Tests run side by side: the console only where a test asks for it.
            ("KEYDATES__WEB__LISTEN".to_string(), String::new()),
        ];
        TestApp {
            dir,
            config: shipped_config(),
            env,
            opened: Default::default(),
            console: None,
        }
    }

    /// Turns the console on at a port this test binds and holds: each daemon
    /// is handed the socket as systemd's socket activation does, so nothing
    /// else can take the port between the test choosing it and the daemon
    /// serving it.
    pub fn hold_console(&mut self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        self.set("KEYDATES__WEB__LISTEN", &addr.to_string());
        self.console = Some(listener);
        addr
    }

    /// The shipped config, sending through the SMTP server at `addr` without TLS.
    pub fn with_smtp(addr: SocketAddr) -> TestApp {
        let mut app = TestApp::new();
        app.set("KEYDATES__MAIL__TRANSPORT", "smtp");
        app.set("KEYDATES__MAIL__SMTP__HOST", &addr.ip().to_string());
        app.set("KEYDATES__MAIL__SMTP__PORT", &addr.port().to_string());
        app.set("KEYDATES__MAIL__SMTP__TLS", "none");
        app.set("KEYDATES__MAIL__SMTP__TIMEOUT_SECS", "2");
        app.set("KEYDATES__SCHEDULE__BACKOFF_INITIAL_SECS", "60");
        app
    }

    /// Through `smtp` with STARTTLS (trusting its certificate) and a login.
    pub fn with_starttls(smtp: &SmtpServer, tls: &Tls, user: &str, password: &str) -> TestApp {
        let mut app = TestApp::with_smtp(smtp.addr);
        app.set("KEYDATES__MAIL__SMTP__TLS", "starttls");
        app.set(
            "KEYDATES__MAIL__SMTP__CA_FILE",
            &tls.dir.path().join("cert.pem").display().to_string(),
        );
        app.set("KEYDATES__MAIL__SMTP__USERNAME", user);
        app.set("KEYDATES__MAIL__SMTP__PASSWORD", password);
        app
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("keydates.db")
    }

    pub fn backend(&self) -> Backend {
        if self.database_url().starts_with("postgres://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// What `database.url` says: the SQLite file, or the PostgreSQL URL.
    pub fn database_url(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "KEYDATES__DATABASE__URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The same, as sqlx's `Any` takes it.
    pub fn sqlx_url(&self) -> String {
        match self.backend() {
            Backend::Postgres => self.database_url(),
            Backend::Sqlite => format!("sqlite://{}", self.db_path().display()),
        }
    }

    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Copies the shipped config into the temp folder (templates still from the
    /// repository) so a test can edit it.
    pub fn own_config(&mut self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(shipped_config()).unwrap();
        let path = self.dir.path().join("keydates.toml");
        std::fs::write(&path, edit(text)).unwrap();
        self.config = path;
        self.set(
            "KEYDATES__TEMPLATES__DIR",
            &Path::new(REPO)
                .join("config/templates")
                .display()
                .to_string(),
        );
    }

    pub fn command(&self) -> std::process::Command {
        let mut cmd =
            <std::process::Command as assert_cmd::cargo::CommandCargoExt>::cargo_bin("keydates")
                .expect("the keydates binary is built");
        cmd.arg("--config").arg(&self.config);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.env_remove("RUST_LOG");
        cmd.env("NO_COLOR", "1");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("keydates runs")
    }

    /// Runs and insists on success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "keydates {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and insists on failure, returning stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "keydates {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `preview --rule R --subject S --eml FILE`, returning the file.
    pub fn preview_eml(&self, rule: &str, subject: &str) -> PathBuf {
        let eml = self.dir.path().join(format!("{rule}.eml"));
        self.ok(&[
            "preview",
            "--rule",
            rule,
            "--subject",
            subject,
            "--eml",
            eml.to_str().unwrap(),
        ]);
        eml
    }

    pub fn import_examples(&self) {
        for kind in ["authorities", "cases", "visits", "seminars", "delegates"] {
            let file = examples().join(format!("{kind}.csv"));
            self.ok(&["import", kind, file.to_str().unwrap()]);
        }
    }

    /// `n` London authorities whose reports all arrived on Friday 20 November
    /// 2026, so `n` planning invitations fall due that day; a pass on Monday
    /// the 23rd sends them, within their limit.
    pub fn import_same_day_cases(&self, n: usize) {
        let mut authorities =
            String::from("code,name,region,dcs_name,dcs_email,coordinator_email\n");
        let mut cases = String::from(
            "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\n",
        );
        for i in 0..n {
            authorities.push_str(&format!(
                "A{i},Authority {i},london,DCS {i},dcs{i}@la{i}.example.gov.uk,\n"
            ));
            cases.push_str(&format!(
                "C{i},A{i},requires_improvement,2026-11-20,,hmi@ofsted.example.gov.uk,\n"
            ));
        }
        assert!(
            self.import("authorities", "a.csv", &authorities)
                .status
                .success()
        );
        assert!(self.import("cases", "c.csv", &cases).status.success());
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    pub fn import(&self, kind: &str, name: &str, content: &str) -> Output {
        let path = self.write(name, content);
        self.run(&["import", kind, path.to_str().unwrap()])
    }

    pub fn outbox(&self) -> Vec<Value> {
        serde_json::from_str(&self.ok(&["outbox", "--format", "json"])).unwrap()
    }

    pub fn agenda(&self, now: &str) -> Vec<Value> {
        serde_json::from_str(&self.ok(&["agenda", "--format", "json", "--now", now])).unwrap()
    }

    /// `run --once --now NOW`.
    pub fn pass(&self, now: &str) -> String {
        self.ok(&["run", "--once", "--now", now])
    }

    /// One pass that finds the relay unusable: `run --once` exits 2 and says so.
    pub fn pass_relay_down(&self, now: &str) -> String {
        let out = self.run(&["run", "--once", "--now", now]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(
            out.status.code(),
            Some(2),
            "run --once with the relay down\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("the mail relay cannot be used"), "{stdout}");
        stdout
    }

    /// The settings this app's commands run with, for a test that drives
    /// the library directly: the shipped config, this database, sending
    /// without TLS to `smtp`.
    pub fn settings_sending_to(&self, smtp: &SmtpServer) -> keydates::config::Settings {
        let mut settings = keydates::config::Settings::load(&shipped_config()).unwrap();
        settings.database.url = self.database_url();
        settings.mail.transport = keydates::config::TransportKind::Smtp;
        settings.mail.smtp.host = smtp.addr.ip().to_string();
        settings.mail.smtp.port = smtp.addr.port();
        settings.mail.smtp.tls = keydates::config::TlsMode::None;
        settings
    }

    /// Runs `work` on a pool of this app's database, made first if need be.
    fn on_database<T: Send + 'static>(
        &self,
        work: impl AsyncFnOnce(&sqlx::AnyPool) -> T + Send + 'static,
    ) -> T {
        use std::sync::atomic::Ordering;
        let made = self.backend() == Backend::Sqlite && self.db_path().is_file();
        if !self.opened.load(Ordering::SeqCst) && !made {
            // A run creates and migrates the database (a dry one changes nothing).
            self.ok(&["run", "--dry-run"]);
            self.opened.store(true, Ordering::SeqCst);
        }
        let url = self.sqlx_url();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(&url).await.unwrap();
                let out = work(&pool).await;
                pool.close().await;
                out
            })
    }

    /// Changes the database behind keydates' back, as a hand edit would.
    pub fn edit_by_hand(&self, sql: &str) {
        let sql = sql.to_string();
        self.on_database(async move |pool| {
            sqlx::query(&sql).execute(pool).await.unwrap();
        })
    }

    /// Counts rows straight from the database.
    pub fn count(&self, sql: &str) -> i64 {
        let sql = sql.to_string();
        self.on_database(async move |pool| {
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(pool)
                .await
                .unwrap()
        })
    }
}

/// A port nothing listens on (yet).
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A port held by this test and refusing connections (bound, not listening)
/// until `listen` opens it: a server that is down, then comes back, on a
/// port nothing else can take meanwhile.
pub struct ClosedPort(socket2::Socket);

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        ClosedPort(socket)
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap().as_socket().unwrap()
    }

    pub fn listen(self) -> TcpListener {
        self.0.listen(128).unwrap();
        self.0.into()
    }
}

/// A server that accepts connections and never says a word.
pub fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    addr
}

/// A relay that greets, accepts the envelope and DATA, then drops the
/// connection in the middle of the message, every time.
pub fn dropping_server() -> SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut out = stream.try_clone().unwrap();
            let mut lines = BufReader::new(stream);
            let _ = out.write_all(b"220 drops.example ESMTP\r\n");
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                let command = line.to_ascii_uppercase();
                let reply: &[u8] = if command.starts_with("EHLO") {
                    b"250-drops.example\r\n250 8BITMIME\r\n"
                } else if command.starts_with("DATA") {
                    b"354 go ahead\r\n"
                } else if command.starts_with("QUIT") {
                    b"221 bye\r\n"
                } else if command.starts_with("MAIL")
                    || command.starts_with("RCPT")
                    || command.starts_with("RSET")
                    || command.starts_with("NOOP")
                {
                    b"250 ok\r\n"
                } else {
                    // Inside the message: hang up mid-DATA.
                    break;
                };
                let _ = out.write_all(reply);
                line.clear();
            }
        }
    });
    addr
}

/// Reads one part of a zip archive (docx, xlsx) as text.
pub fn zip_part(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
    let mut file = archive.by_name(name).expect("the part exists");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).unwrap();
    text
}

/// Finds rows in JSON output by field values.
/// The agenda line of one rule for one subject.
pub fn agenda_item<'a>(agenda: &'a [Value], rule: &str, subject: &str) -> &'a Value {
    agenda
        .iter()
        .find(|a| a["rule"] == rule && a["subject"] == subject)
        .unwrap_or_else(|| panic!("no agenda line for {rule} on {subject}"))
}

pub fn rows_where<'a>(rows: &'a [Value], rule: &str, subject: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r["rule"] == rule && r["subject"] == subject)
        .collect()
}

/// One part of the attachment whose file name starts with `name`, in an .eml file.
pub fn attachment_xml(eml: &Path, name: &str, part: &str) -> String {
    use mail_parser::MimeHeaders;
    let bytes = std::fs::read(eml).unwrap();
    let message = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    let attachment = message
        .attachments()
        .find(|a| a.attachment_name().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("no attachment {name}"));
    zip_part(attachment.contents(), part)
}
