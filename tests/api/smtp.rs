//! An SMTP server on 127.0.0.1 that records what arrives, with STARTTLS
//! (rustls, ring) and AUTH PLAIN, LOGIN and XOAUTH2, and a script for the
//! replies a real Postfix cannot be made to give: Exchange Online's, a
//! recipient refused by name, too many recipients, a slow final reply, a
//! connection dropped at a chosen step. The real relay tests use Postfix
//! (`postfix.rs`); this one is for the rest.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tempfile::TempDir;

/// A message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender.
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// Whether the session had been upgraded to TLS.
    pub tls: bool,
    /// Who logged in, if anyone.
    pub login: Option<String>,
}

impl Received {
    /// The bytes of the first attachment whose name ends with `suffix`.
    pub fn attachment_ending(&self, suffix: &str) -> Vec<u8> {
        let parsed = self.parsed();
        parsed
            .attachments()
            .find(|a| {
                mail_parser::MimeHeaders::attachment_name(*a).is_some_and(|n| n.ends_with(suffix))
            })
            .unwrap_or_else(|| panic!("no {suffix} attached"))
            .contents()
            .to_vec()
    }

    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parseable message")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed().header_raw(name).map(|s| s.trim().to_string())
    }

    /// The plain-text body.
    pub fn text(&self) -> String {
        self.parsed().body_text(0).unwrap().to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// Every recipient refused with 550.
    RejectRecipients,
    /// 450 to each recipient: try again later.
    TempFail,
    /// 421 to MAIL FROM: the relay is closing.
    Closing,
}

/// Replies and faults beyond the modes, set per test.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The reply to every AUTH, instead of checking the login.
    pub auth_reply: Option<String>,
    /// The reply to MAIL FROM, instead of 250.
    pub mail_reply: Option<String>,
    /// Recipients refused by address (lower case), with the reply.
    pub refuse: HashMap<String, String>,
    /// At most this many recipients a transaction; the rest get 452 4.5.3.
    pub max_recipients: Option<usize>,
    /// The reply to the final dot, instead of 250 (the message is then not kept).
    pub final_reply: Option<String>,
    /// Waits this long before answering the final dot.
    pub final_delay: Duration,
    /// Keeps the message, then closes without answering the final dot.
    pub close_after_dot: bool,
    /// Answers this in the middle of the message, then closes.
    pub mid_data_reply_then_close: Option<String>,
    /// Closes the connection in the middle of the message, without a word.
    pub mid_data_close: bool,
    /// Closes the connection after this many messages on it.
    pub close_after_messages: Option<usize>,
}

struct Shared {
    received: Mutex<Vec<Received>>,
    mode: Mutex<Mode>,
    script: Mutex<Script>,
    /// Every AUTH line's decoded credentials (`user` and password or token).
    logins: Mutex<Vec<(String, String)>>,
}

/// The login the server takes.
#[derive(Clone)]
enum Login {
    None,
    Password(String, String),
    Token(String, String),
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

pub struct Tls {
    pub cert_pem: String,
    pub dir: TempDir,
}

impl Tls {
    /// A self-signed certificate for 127.0.0.1 and localhost, as PEM files.
    pub fn make() -> Tls {
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_pem = certified.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
        std::fs::write(
            dir.path().join("key.pem"),
            certified.key_pair.serialize_pem(),
        )
        .unwrap();
        Tls { cert_pem, dir }
    }

    pub fn cert_path(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_file(self.dir.path().join("cert.pem")).unwrap();
        let key = PrivateKeyDer::from_pem_file(self.dir.path().join("key.pem")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap(),
        )
    }
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), None, Login::None)
    }

    /// With STARTTLS (a self-signed certificate for 127.0.0.1) and AUTH required.
    pub fn start_tls(user: &str, password: &str) -> (SmtpServer, Tls) {
        let tls = Tls::make();
        let server = Self::start_on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            Some(tls.server_config()),
            Login::Password(user.into(), password.into()),
        );
        (server, tls)
    }

    /// With STARTTLS and AUTH XOAUTH2 only, taking `token` for `user`.
    pub fn start_xoauth2(user: &str, token: &str) -> (SmtpServer, Tls) {
        let tls = Tls::make();
        let server = Self::start_on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            Some(tls.server_config()),
            Login::Token(user.into(), token.into()),
        );
        (server, tls)
    }

    /// Listens on a port that was free, for the "server comes back" tests.
    /// On a listener the test already holds.
    pub fn start_with(listener: TcpListener) -> SmtpServer {
        Self::start_on(listener, None, Login::None)
    }

    fn start_on(
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        login: Login,
    ) -> SmtpServer {
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            mode: Mutex::new(Mode::Accept),
            script: Mutex::new(Script::default()),
            logins: Mutex::new(Vec::new()),
        });
        let for_thread = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = for_thread.clone();
                let tls = tls.clone();
                let login = login.clone();
                std::thread::spawn(move || {
                    let _ = Session::new(stream, shared, tls, login).run();
                });
            }
        });
        SmtpServer { addr, shared }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Changes the script for the connections' next commands.
    pub fn script(&self, edit: impl FnOnce(&mut Script)) {
        edit(&mut self.shared.script.lock().unwrap());
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The credentials of every AUTH tried, decoded: (user, password or token).
    pub fn logins(&self) -> Vec<(String, String)> {
        self.shared.logins.lock().unwrap().clone()
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
    Gone,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Gone => Ok(0),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Gone => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Gone => Ok(()),
        }
    }
}

struct Session {
    stream: Stream,
    buffer: Vec<u8>,
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
    login: Login,
    logged_in: Option<String>,
    from: Option<String>,
    to: Vec<String>,
    messages: usize,
}

type Io = std::io::Result<()>;

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

impl Session {
    fn new(
        stream: TcpStream,
        shared: Arc<Shared>,
        tls: Option<Arc<rustls::ServerConfig>>,
        login: Login,
    ) -> Session {
        let _ = stream.set_nodelay(true);
        Session {
            stream: Stream::Plain(stream),
            buffer: Vec::new(),
            shared,
            tls,
            login,
            logged_in: None,
            from: None,
            to: Vec::new(),
            messages: 0,
        }
    }

    /// One reply in one write: with Nagle's algorithm on, a reply split in
    /// two writes waits for the client's delayed ACK.
    fn say(&mut self, line: &str) -> Io {
        self.stream.write_all(format!("{line}\r\n").as_bytes())?;
        self.stream.flush()
    }

    /// One line without its CRLF; `None` at the end of the stream.
    fn line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(at) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = self.buffer[..at].to_vec();
                self.buffer.drain(..at + 2);
                return Ok(Some(line));
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    fn script(&self) -> Script {
        self.shared.script.lock().unwrap().clone()
    }

    fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    fn run(mut self) -> Io {
        self.say("220 sink.test ESMTP")?;
        while let Some(line) = self.line()? {
            let text = String::from_utf8_lossy(&line).to_string();
            let upper = text.to_ascii_uppercase();
            let mode = *self.shared.mode.lock().unwrap();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                let mut lines = vec!["250-sink.test".to_string(), "250-8BITMIME".into()];
                if self.tls.is_some() && !self.is_tls() {
                    lines.push("250-STARTTLS".into());
                }
                match &self.login {
                    Login::None => {}
                    Login::Password(..) => lines.push("250-AUTH PLAIN LOGIN".into()),
                    Login::Token(..) => lines.push("250-AUTH XOAUTH2".into()),
                }
                lines.push("250 SMTPUTF8".into());
                self.say(&lines.join("\r\n"))?;
            } else if upper.starts_with("STARTTLS") {
                self.say("220 2.0.0 Ready to start TLS")?;
                let config = self.tls.clone().expect("offered only with TLS");
                let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
                    return Ok(());
                };
                let conn = rustls::ServerConnection::new(config).unwrap();
                self.stream = Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)));
            } else if upper.starts_with("AUTH") {
                self.auth(&text)?;
            } else if upper.starts_with("MAIL") {
                if mode == Mode::Closing {
                    self.say("421 4.3.2 Service shutting down")?;
                    return Ok(());
                }
                if !matches!(self.login, Login::None) && self.logged_in.is_none() {
                    self.say("530 5.7.0 Authentication required")?;
                    continue;
                }
                if let Some(reply) = self.script().mail_reply {
                    self.say(&reply)?;
                    if reply.starts_with("421") {
                        return Ok(());
                    }
                    continue;
                }
                self.from = Some(between(&text, '<', '>'));
                self.to.clear();
                self.say("250 2.1.0 Ok")?;
            } else if upper.starts_with("RCPT") {
                let to = between(&text, '<', '>');
                let script = self.script();
                if let Some(reply) = script.refuse.get(&to.to_ascii_lowercase()) {
                    self.say(reply)?;
                } else if script.max_recipients.is_some_and(|m| self.to.len() >= m) {
                    self.say("452 4.5.3 Too many recipients")?;
                } else if mode == Mode::RejectRecipients {
                    self.say("550 5.1.1 No such user here")?;
                } else if mode == Mode::TempFail {
                    self.say("450 4.2.1 Mailbox busy")?;
                } else {
                    self.to.push(to);
                    self.say("250 2.1.5 Ok")?;
                }
            } else if upper.starts_with("DATA") {
                if self.to.is_empty() {
                    self.say("554 5.5.1 No valid recipients")?;
                    continue;
                }
                self.say("354 End data with <CR><LF>.<CR><LF>")?;
                if !self.data()? {
                    return Ok(());
                }
            } else if upper.starts_with("RSET") {
                self.from = None;
                self.to.clear();
                self.say("250 2.0.0 Ok")?;
            } else if upper.starts_with("NOOP") {
                self.say("250 2.0.0 Ok")?;
            } else if upper.starts_with("QUIT") {
                self.say("221 2.0.0 Bye")?;
                return Ok(());
            } else {
                self.say("502 5.5.2 Command not recognised")?;
            }
        }
        Ok(())
    }

    fn auth(&mut self, text: &str) -> Io {
        let words: Vec<&str> = text.split_whitespace().collect();
        let mechanism = words
            .get(1)
            .map(|m| m.to_ascii_uppercase())
            .unwrap_or_default();
        let (user, secret) = match mechanism.as_str() {
            "PLAIN" => {
                let payload = match words.get(2) {
                    Some(p) => p.to_string(),
                    None => {
                        self.say("334 ")?;
                        String::from_utf8_lossy(&self.line()?.unwrap_or_default()).to_string()
                    }
                };
                let decoded = b64(&payload);
                let mut parts = decoded.split('\0').skip(1);
                (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                )
            }
            "LOGIN" => {
                self.say("334 VXNlcm5hbWU6")?;
                let user = b64(&String::from_utf8_lossy(&self.line()?.unwrap_or_default()));
                self.say("334 UGFzc3dvcmQ6")?;
                let password = b64(&String::from_utf8_lossy(&self.line()?.unwrap_or_default()));
                (user, password)
            }
            "XOAUTH2" => {
                let decoded = b64(words.get(2).unwrap_or(&""));
                let mut user = String::new();
                let mut token = String::new();
                for field in decoded.split('\x01') {
                    if let Some(u) = field.strip_prefix("user=") {
                        user = u.to_string();
                    } else if let Some(t) = field.strip_prefix("auth=Bearer ") {
                        token = t.to_string();
                    }
                }
                (user, token)
            }
            _ => {
                return self.say("504 5.5.4 Unrecognized authentication type");
            }
        };
        self.shared
            .logins
            .lock()
            .unwrap()
            .push((user.clone(), secret.clone()));
        if let Some(reply) = self.script().auth_reply {
            return self.say(&reply);
        }
        let ok = match (&self.login, mechanism.as_str()) {
            (Login::Password(u, p), "PLAIN" | "LOGIN") => *u == user && *p == secret,
            (Login::Token(u, t), "XOAUTH2") => *u == user && *t == secret,
            _ => false,
        };
        if ok {
            self.logged_in = Some(user);
            self.say("235 2.7.0 Authentication successful")
        } else {
            self.say("535 5.7.8 Error: authentication failed")
        }
    }

    /// Reads the message up to its final dot and answers as the script says.
    /// `false` when the connection is to be closed.
    fn data(&mut self) -> std::io::Result<bool> {
        let script = self.script();
        let mut data = Vec::new();
        let mut lines = 0usize;
        loop {
            let Some(line) = self.line()? else {
                return Ok(false);
            };
            if line == b"." {
                break;
            }
            lines += 1;
            if lines == 5 {
                if let Some(reply) = &script.mid_data_reply_then_close {
                    self.say(reply)?;
                    return Ok(false);
                }
                if script.mid_data_close {
                    return Ok(false);
                }
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
        std::thread::sleep(script.final_delay);
        if let Some(reply) = &script.final_reply {
            self.say(reply)?;
            return Ok(!reply.starts_with("421"));
        }
        self.shared.received.lock().unwrap().push(Received {
            from: self.from.clone().unwrap_or_default(),
            to: std::mem::take(&mut self.to),
            data,
            tls: self.is_tls(),
            login: self.logged_in.clone(),
        });
        self.messages += 1;
        if script.close_after_dot {
            return Ok(false);
        }
        self.say("250 2.0.0 Ok: queued")?;
        Ok(script
            .close_after_messages
            .is_none_or(|n| self.messages < n))
    }
}

fn between(text: &str, open: char, close: char) -> String {
    let start = text.find(open).map_or(0, |i| i + 1);
    let end = text[start..].find(close).map_or(text.len(), |i| start + i);
    text[start..end].to_string()
}
