//! A real Postfix relay of the test's own: its own configuration and queue
//! in a temporary folder, listening on a free port of 127.0.0.1, TLS
//! required (STARTTLS, with a certificate the test makes), and a Cyrus SASL
//! login required before it relays. What it accepts it relays to an SMTP
//! server inside the test process, which records what arrives.
//!
//! Needs Debian's `postfix`, `sasl2-bin` and `libsasl2-modules`, and root
//! (Postfix's master runs as root and its daemons as `postfix`); `.ci/run`
//! installs them.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::helpers::{SmtpServer, Tls, free_addr};

const MASTER: &str = "/usr/lib/postfix/sbin/master";

pub struct Postfix {
    pub port: u16,
    /// Where Postfix relays what it accepts.
    pub sink: SmtpServer,
    /// The relay's certificate, for `mail.smtp.ca_file`.
    pub tls: Tls,
    dir: TempDir,
}

pub const USER: &str = "keydates";

/// The Postfix services besides the SMTP server, as master.cf lists them.
const SERVICES: &str = "cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix - - n 1000? 1 tlsmgr
showq     unix n - n - - showq
";

impl Postfix {
    /// Postfix with `password` for `USER`, and `smtpd_timeout` (how long it
    /// waits for the client before closing the connection, e.g. `"300s"`).
    pub fn start(password: &str, smtpd_timeout: &str) -> Postfix {
        assert!(
            Path::new(MASTER).exists() && Path::new("/usr/sbin/saslpasswd2").exists(),
            "the relay tests need Postfix and Cyrus SASL: apt-get install postfix sasl2-bin libsasl2-modules"
        );
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the relay tests start Postfix, which runs as root"
        );
        let sink = SmtpServer::start();
        let tls = Tls::make();
        let dir = tempfile::Builder::new()
            .prefix("keydates-postfix.")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["etc/sasl", "queue", "data"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        // The daemons run as `postfix`: they must reach every file.
        chmod(d, 0o755);
        std::fs::copy(tls.dir.path().join("cert.pem"), d.join("etc/cert.pem")).unwrap();
        std::fs::copy(tls.dir.path().join("key.pem"), d.join("etc/key.pem")).unwrap();
        let root = d.display();
        std::fs::write(
            d.join("etc/main.cf"),
            format!(
                "compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.test
mydomain = relay.test
myorigin = relay.test
mydestination =
mynetworks = 127.0.0.1/32
relayhost = [127.0.0.1]:{sink}
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
smtpd_tls_cert_file = {root}/etc/cert.pem
smtpd_tls_key_file = {root}/etc/key.pem
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_local_domain = relay.test
smtpd_timeout = {smtpd_timeout}
smtp_tls_security_level = none
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
",
                sink = sink.addr.port()
            ),
        )
        .unwrap();
        // Debian's Postfix reads Cyrus's settings from CONFIG/sasl/smtpd.conf.
        std::fs::write(
            d.join("etc/sasl/smtpd.conf"),
            format!(
                "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {root}/etc/sasl/sasldb2\n"
            ),
        )
        .unwrap();
        let mut saslpasswd = Command::new("/usr/sbin/saslpasswd2")
            .args(["-p", "-c", "-f"])
            .arg(d.join("etc/sasl/sasldb2"))
            .args(["-u", "relay.test", USER])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut saslpasswd.stdin.take().unwrap(), password.as_bytes())
            .unwrap();
        assert!(saslpasswd.wait().unwrap().success());
        let chown = Command::new("chown")
            .args(["-R", "postfix"])
            .arg(d.join("data"))
            .arg(d.join("etc/sasl/sasldb2"))
            .status()
            .unwrap();
        assert!(chown.success());
        // The queue's folders, as `postfix set-permissions` makes them.
        let queue = d.join("queue");
        std::fs::create_dir_all(queue.join("pid")).unwrap();
        for (sub, mode, group) in [
            ("active", 0o700, None),
            ("bounce", 0o700, None),
            ("corrupt", 0o700, None),
            ("defer", 0o700, None),
            ("deferred", 0o700, None),
            ("flush", 0o700, None),
            ("hold", 0o700, None),
            ("incoming", 0o700, None),
            ("private", 0o700, None),
            ("saved", 0o700, None),
            ("trace", 0o700, None),
            ("maildrop", 0o730, Some("postdrop")),
            ("public", 0o710, Some("postdrop")),
        ] {
            let path = queue.join(sub);
            std::fs::create_dir_all(&path).unwrap();
            let owner = match group {
                Some(g) => format!("postfix:{g}"),
                None => "postfix".to_string(),
            };
            assert!(
                Command::new("chown")
                    .arg(owner)
                    .arg(&path)
                    .status()
                    .unwrap()
                    .success()
            );
            chmod(&path, mode);
        }
        // Postfix binds its port itself: should another process take the
        // port between its choice and the bind, try another.
        let mut tries = 0;
        let (port, started) = loop {
            tries += 1;
            let port = free_addr().port();
            std::fs::write(
                d.join("etc/master.cf"),
                format!("127.0.0.1:{port} inet n - n - - smtpd\n{SERVICES}"),
            )
            .unwrap();
            // -w: back once the master runs.
            let started = Command::new(MASTER)
                .arg("-c")
                .arg(d.join("etc"))
                .arg("-w")
                .status()
                .unwrap();
            let log = std::fs::read_to_string(d.join("maillog")).unwrap_or_default();
            if started.success() || tries == 5 || !log.contains("Address already in use") {
                break (port, started);
            }
        };
        let postfix = Postfix {
            port,
            sink,
            tls,
            dir,
        };
        assert!(
            started.success(),
            "Postfix did not start:\n{}",
            postfix.log()
        );
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "Postfix does not listen:\n{}",
                postfix.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        postfix
    }

    /// Postfix's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Waits until Postfix holds no message (each accepted one is relayed to
    /// the sink or bounced), then gives what the sink has.
    pub fn settled(&self) -> Vec<crate::helpers::Received> {
        let queue = self.dir.path().join("queue");
        let held = || {
            ["maildrop", "incoming", "active", "deferred", "hold"]
                .iter()
                .map(|q| files_under(&queue.join(q)))
                .sum::<usize>()
        };
        let start = Instant::now();
        while held() > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "Postfix still holds {} messages:\n{}",
                held(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.sink.received()
    }

    /// Waits until the sink has `n` messages (Postfix relays them on its
    /// own time), or 30 seconds have passed.
    pub fn wait_for(&self, n: usize) -> usize {
        let start = Instant::now();
        while self.sink.received().len() < n && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.sink.received().len()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let pid_file = self.dir.path().join("queue/pid/master.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let start = Instant::now();
            while unsafe { libc::kill(pid, 0) } == 0 && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => files_under(&e.path()),
                Ok(_) => 1,
                Err(_) => 0,
            })
            .sum()
    })
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
