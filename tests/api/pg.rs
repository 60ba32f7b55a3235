//! A real PostgreSQL server for the tests: Debian's binaries, a cluster in a
//! temporary folder, reached only through a Unix socket in that folder (no
//! TCP port, so nothing else on the machine can take it), run as the unprivileged
//! `postgres` user when the tests run as root (PostgreSQL refuses root).
//! The server dies with the thread that started it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where Debian installs the server: the newest `/usr/lib/postgresql/N/bin`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).expect(
        "PostgreSQL's server is not installed: `apt-get install postgresql` \
         (the tests start their own server from /usr/lib/postgresql/N/bin)",
    )
}

/// The user to run the server as, when we are root.
fn server_user() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "the tests run as root and there is no `postgres` user to run PostgreSQL as \
         (Debian's postgresql package creates it)"
    );
    let pw = unsafe { &*pw };
    Some((pw.pw_uid, pw.pw_gid))
}

fn command(bin: &Path, user: Option<(u32, u32)>, die_with_parent: bool) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_remove("PGDATA").env("LC_ALL", "C");
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = user
                && (libc::setgid(gid) != 0 || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            // After setuid, which would clear it: a test that ends, or a
            // test binary that is killed, takes its server with it.
            if die_with_parent && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// The temporary folders' names begin with this, so that those left by a
/// test binary that was killed can be found and removed.
const PREFIX: &str = "keydates-pg-";

/// The port in the socket's name (`.s.PGSQL.5432`); the socket is in the
/// cluster's own folder, so every server can use the same one.
const PORT: &str = "5432";

pub struct PgServer {
    dir: TempDir,
    user: Option<(u32, u32)>,
    child: Option<Child>,
}

impl PgServer {
    /// A new cluster, started. `durable` keeps fsync on, for tests of what
    /// survives the server stopping.
    pub fn start(durable: bool) -> PgServer {
        let bin = bin_dir();
        let user = server_user();
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
        }
        let out = command(&bin.join("initdb"), user, false)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = PgServer {
            dir,
            user,
            child: None,
        };
        let fsync = if durable { "on" } else { "off" };
        std::fs::write(
            data.join("postgresql.auto.conf"),
            format!(
                "listen_addresses = ''\nmax_connections = 300\nfsync = {fsync}\n\
                 synchronous_commit = {fsync}\nfull_page_writes = {fsync}\n"
            ),
        )
        .unwrap();
        server.up();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server on its port and waits until it takes connections.
    pub fn up(&mut self) {
        let child = command(&bin_dir().join("postgres"), self.user, true)
            .arg("-D")
            .arg(self.data())
            .args(["-p", PORT, "-k"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let socket = self.dir.path().join(format!(".s.PGSQL.{PORT}"));
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Accepting connections comes before accepting logins.
        loop {
            let ready = self
                .client("pg_isready")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept logins"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server as `pg_ctl stop -m fast` would: clients are cut off.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            child.wait().unwrap();
        }
    }

    /// One of PostgreSQL's client programs, pointed at this server.
    fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(bin_dir().join(program));
        cmd.arg("-h")
            .arg(self.dir.path())
            .args(["-U", "postgres", "-p", PORT]);
        cmd
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@localhost/{database}?host={}&port={PORT}",
            self.dir.path().display()
        )
    }

    /// A new, empty database on this server, by its URL.
    pub fn new_database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("keydates_{}", NEXT.fetch_add(1, Ordering::SeqCst));
        let out = self
            .client("psql")
            .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "CREATE DATABASE failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.down();
    }
}

/// One server for the whole test binary, started on first use from a
/// thread that lives as long as the binary (the server dies with it). At
/// exit the server is stopped and its folder removed; folders of servers
/// whose binary was killed are removed when the next one starts.
pub fn shared() -> &'static PgServer {
    static SERVER: OnceLock<&'static PgServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        remove_abandoned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let server: &'static PgServer = Box::leak(Box::new(PgServer::start(false)));
            tx.send(server).unwrap();
            loop {
                std::thread::park();
            }
        });
        let server: &'static PgServer = rx.recv().expect("the PostgreSQL server started");
        let pid = server.child.as_ref().map_or(0, Child::id);
        AT_EXIT
            .set((pid, server.dir.path().to_path_buf()))
            .expect("one shared server");
        unsafe { libc::atexit(stop_shared) };
        server
    })
}

static AT_EXIT: OnceLock<(u32, PathBuf)> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some((pid, dir)) = AT_EXIT.get() {
        unsafe {
            libc::kill(*pid as i32, libc::SIGQUIT);
            libc::waitpid(*pid as i32, std::ptr::null_mut(), 0);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes the folders of servers that no longer run (their test binary was
/// killed before it could).
fn remove_abandoned() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let pid = std::fs::read_to_string(entry.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        let running = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        // A folder still being set up has no pid yet: leave the young ones.
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(600)));
        if !running && old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
