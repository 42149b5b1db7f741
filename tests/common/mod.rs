//! Shared harness of the black-box tests: start the real `strom` binary on a free port with
//! a fresh data directory, stop it gracefully or with `kill -9`, restart it on the same port
//! and data, and run external clients (Python scripts, kcat, the `strom` CLI) with a time
//! limit on every wait.
//!
//! Every test file includes this module with `mod common;`; not every file uses every helper.
//! `members.rs` runs long-lived group members and reads their events. `wire.rs` builds Kafka frames and record batches by hand for the raw-socket tests.
#![allow(dead_code)]

pub mod members;
pub mod wire;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a broker may take from spawn to accepting TCP connections.
pub const BROKER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a Python client script may run before it is killed.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a CLI or kcat invocation may run before it is killed.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// Path of the `strom` binary under test: the one cargo built for this test, unless
/// `STROM_TEST_BIN` names another (a copy pinned while other checkouts that share the target
/// directory rebuild `target/debug/strom`).
pub fn strom_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| match std::env::var("STROM_TEST_BIN") {
        Ok(path) if !path.is_empty() => path,
        _ => env!("CARGO_BIN_EXE_strom").to_string(),
    })
}

/// Top-level `tests/` directory of the workspace.
pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests")
}

/// Directory of the Python client scripts.
pub fn clients_dir() -> PathBuf {
    tests_dir().join("clients")
}

/// A port that was free a moment ago (bound to 127.0.0.1:0, read, released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// A running (or stopped) `strom serve` child process with its own port and data directory.
pub struct Broker {
    pub port: u16,
    dir: tempfile::TempDir,
    opts: Vec<(String, String)>,
    child: Option<Child>,
    starts: u32,
    /// Named listeners (name, security protocol, port) of a broker started with
    /// [`Broker::start_listeners`]; empty for the default single PLAINTEXT listener.
    listeners: Vec<(String, String, u16)>,
    /// A settings file passed as `strom serve --config FILE`.
    config_file: Option<PathBuf>,
}

impl Broker {
    /// Start a broker with default settings.
    pub fn start() -> Broker {
        Broker::start_with(&[])
    }

    /// Start a broker with extra `-o key=value` settings.
    pub fn start_with(opts: &[(&str, &str)]) -> Broker {
        Broker::launch(&[], opts, None)
    }

    /// Start a broker with several named listeners, each `(NAME, SECURITY_PROTOCOL)` on its
    /// own free port of 127.0.0.1 (`listeners`, `advertised.listeners` and
    /// `listener.security.protocol.map` are set from them), plus `-o` settings `opts`. The
    /// first listener is the one [`Broker::addr`] names and the inter-broker listener unless
    /// `opts` set `inter.broker.listener.name`. With `config`, the broker also reads that
    /// settings file (`strom serve --config FILE`); the generated settings and `opts`
    /// override it.
    pub fn start_listeners(listeners: &[(&str, &str)], opts: &[(&str, &str)], config: Option<&Path>) -> Broker {
        assert!(!listeners.is_empty(), "start_listeners needs at least one listener");
        Broker::launch(listeners, opts, config)
    }

    /// Starts the broker; no `listeners` means the default single PLAINTEXT listener.
    fn launch(listeners: &[(&str, &str)], opts: &[(&str, &str)], config: Option<&Path>) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("strom-test-")
            .tempdir()
            .expect("create tempdir");
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let mut broker = Broker {
            port: 0,
            dir,
            opts: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            child: None,
            starts: 0,
            listeners: Vec::new(),
            config_file: config.map(Path::to_path_buf),
        };
        // Another test may grab a port between our probe and the broker's bind: retry with
        // fresh ports when the broker dies at once saying the address is in use.
        for attempt in 0..5 {
            broker.listeners = listeners
                .iter()
                .map(|(name, protocol)| (name.to_string(), protocol.to_string(), free_port()))
                .collect();
            broker.port = broker.listeners.first().map_or_else(free_port, |l| l.2);
            match broker.spawn() {
                Ok(()) => return broker,
                Err(log) if attempt < 4 && log.to_lowercase().contains("in use") => continue,
                Err(log) => panic!(
                    "broker on port {} (listeners {:?}) did not start:\n{}",
                    broker.port, broker.listeners, log
                ),
            }
        }
        unreachable!()
    }

    /// The port of the named listener of a broker started with [`Broker::start_listeners`].
    pub fn listener_port(&self, name: &str) -> u16 {
        self.listeners
            .iter()
            .find(|l| l.0 == name)
            .unwrap_or_else(|| panic!("no listener {name} among {:?}", self.listeners))
            .2
    }

    /// `127.0.0.1:PORT` of the named listener.
    pub fn listener_addr(&self, name: &str) -> String {
        format!("127.0.0.1:{}", self.listener_port(name))
    }

    /// `127.0.0.1:PORT`, the bootstrap address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn socket_addr(&self) -> SocketAddr {
        self.addr().parse().unwrap()
    }

    /// The broker's data directory (`log.dirs`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A scratch directory owned by this test (removed with the broker).
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// Everything the broker wrote to stdout/stderr over all its runs.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last `max` bytes of the broker log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log(), 20_000)
    }

    /// Spawn `strom serve` and wait until its port accepts TCP. Err carries the log when the
    /// process exits or the port never opens.
    fn spawn(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "broker already running");
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open broker log");
        writeln!(
            log,
            "===== strom serve start #{} on port {} =====",
            self.starts, self.port
        )
        .unwrap();
        let mut cmd = Command::new(strom_bin());
        cmd.arg("serve");
        if let Some(file) = &self.config_file {
            cmd.arg("--config").arg(file);
        }
        if self.listeners.is_empty() {
            cmd.arg("-o")
                .arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port));
        } else {
            // Every named listener on its own port of 127.0.0.1, advertised as bound (this
            // also replaces the advertised addresses of a settings file), with its protocol;
            // the first one is the inter-broker listener unless the test's settings say
            // otherwise (they come later and win).
            let list = |l: &[(String, String, u16)]| {
                l.iter()
                    .map(|(n, _, p)| format!("{n}://127.0.0.1:{p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let map = self
                .listeners
                .iter()
                .map(|(n, proto, _)| format!("{n}:{proto}"))
                .collect::<Vec<_>>();
            cmd.arg("-o")
                .arg(format!("listeners={}", list(&self.listeners)))
                .arg("-o")
                .arg(format!("advertised.listeners={}", list(&self.listeners)))
                .arg("-o")
                .arg(format!("listener.security.protocol.map={}", map.join(",")))
                .arg("-o")
                .arg(format!("inter.broker.listener.name={}", self.listeners[0].0));
        }
        cmd.arg("-o").arg(format!("log.dirs={}", self.data_dir().display()));
        // The admin API's default port is fixed; brokers of parallel tests would collide on
        // it. Tests that need it pass their own `admin.listener`.
        if !self.opts.iter().any(|(k, _)| k == "admin.listener") {
            cmd.arg("-o").arg("admin.listener=");
        }
        for (k, v) in &self.opts {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
        cmd.env("NO_COLOR", "1") // plain text in the log file
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        let child = cmd.spawn().map_err(|e| format!("spawn {}: {e}", strom_bin()))?;
        self.child = Some(child);
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!(
                    "broker exited during startup with {status}; log:\n{}",
                    self.log_tail()
                ));
            }
            let ports: Vec<u16> = if self.listeners.is_empty() {
                vec![self.port]
            } else {
                self.listeners.iter().map(|l| l.2).collect()
            };
            if ports.iter().all(|p| {
                let addr = SocketAddr::from(([127, 0, 0, 1], *p));
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            }) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let mut child = self.child.take().unwrap();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "broker did not accept TCP on {} within {:?}; log:\n{}",
                    self.addr(),
                    BROKER_START_TIMEOUT,
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sets (or replaces) a `-o key=value` setting for the next start.
    pub fn set_option(&mut self, key: &str, value: &str) {
        self.opts.retain(|(k, _)| k != key);
        self.opts.push((key.to_string(), value.to_string()));
    }

    /// Start the broker again on the same port and data directory.
    pub fn restart(&mut self) {
        if let Err(log) = self.spawn() {
            panic!("broker restart on port {} failed:\n{log}", self.port);
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker not running").id()
    }

    /// Panic (with the log) unless the broker process is still running.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("broker not running");
        if let Some(status) = child.try_wait().unwrap() {
            self.child = None;
            panic!("broker died with {status}; log:\n{}", self.log_tail());
        }
    }

    /// SIGKILL the broker and reap it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker not running");
        child.kill().expect("kill -9 broker");
        child.wait().expect("wait for killed broker");
    }

    /// SIGTERM the broker and wait up to `timeout` for it to exit. Returns its exit status and
    /// how long it took; on timeout, kills it and panics.
    pub fn sigterm(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("broker not running");
        let started = Instant::now();
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(st.success(), "kill -TERM failed");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {timeout:?} of SIGTERM; log:\n{}",
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "----- broker log (port {}) -----\n{}\n----- end of broker log -----",
                self.port,
                self.log_tail()
            );
        }
    }
}

/// The last `max` bytes of `s` (on a char boundary).
pub fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("[...]{}", &s[start..])
}

/// Run a command to completion with `stdin` fed to it, killing it after `timeout`.
/// Returns its output; panics (with what it printed) if it timed out.
pub fn run_with_timeout(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let writer = stdin.map(|data| {
        let data = data.to_vec();
        let mut pipe = child.stdin.take().unwrap();
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let out_reader = spawn_reader(child.stdout.take().unwrap());
    let err_reader = spawn_reader(child.stderr.take().unwrap());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    match status {
        Some(status) => Output { status, stdout, stderr },
        None => panic!(
            "{cmd:?} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
            tail(&String::from_utf8_lossy(&stdout), 20_000),
            tail(&String::from_utf8_lossy(&stderr), 20_000)
        ),
    }
}

fn spawn_reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Run `tests/clients/SCRIPT ARGS...` with python3; on success parse the last non-empty line
/// of its stdout as JSON. Panics with the script's output (and the broker log) on failure.
pub fn python(broker: &Broker, script: &str, args: &[&str]) -> serde_json::Value {
    python_with_timeout(broker, script, args, SCRIPT_TIMEOUT)
}

pub fn python_with_timeout(_broker: &Broker, script: &str, args: &[&str], timeout: Duration) -> serde_json::Value {
    let path = clients_dir().join(script);
    let mut cmd = Command::new("python3");
    cmd.arg(&path).args(args).env("PYTHONUNBUFFERED", "1");
    let out = run_with_timeout(&mut cmd, None, timeout);
    last_json_line(&format!("python3 {script} {args:?}"), &out)
}

/// Run a Node.js client script from tests/clients (KafkaJS, installed there by tests/setup)
/// and return the JSON object on its last non-empty stdout line.
pub fn node(_broker: &Broker, script: &str, args: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new("node");
    cmd.arg(clients_dir().join(script))
        .args(args)
        .env("KAFKAJS_NO_PARTITIONER_WARNING", "1");
    let out = run_with_timeout(&mut cmd, None, SCRIPT_TIMEOUT);
    last_json_line(&format!("node {script} {args:?}"), &out)
}

/// The JSON object a client program printed last, or a panic showing what went wrong.
fn last_json_line(what: &str, out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        panic!(
            "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            tail(&stdout, 20_000),
            tail(&stderr, 20_000)
        );
    }
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("{what} printed nothing; stderr:\n{stderr}"));
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{what}: last stdout line is not JSON ({e}): {last}\nstderr:\n{stderr}"))
}

/// Run the `strom` CLI (a client subcommand) and return its output, whatever the exit code.
pub fn strom_cli(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(strom_bin());
    cmd.args(args);
    run_with_timeout(&mut cmd, stdin, TOOL_TIMEOUT)
}

/// Run the `strom` CLI and panic unless it exits 0; returns stdout as a string.
pub fn strom_ok(args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = strom_cli(args, stdin);
    if !out.status.success() {
        panic!(
            "strom {args:?} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).expect("strom output is UTF-8")
}

/// Run kcat with `args` (and stdin), panic unless it exits 0; returns stdout bytes.
pub fn kcat_ok(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut cmd = Command::new("kcat");
    cmd.args(args);
    let out = run_with_timeout(&mut cmd, stdin, TOOL_TIMEOUT);
    if !out.status.success() {
        panic!(
            "kcat {args:?} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.stdout
}

/// Panic with a readable message unless `v[key]` is a JSON array that is empty.
pub fn assert_no_mismatches(v: &serde_json::Value, key: &str) {
    let arr = v[key]
        .as_array()
        .unwrap_or_else(|| panic!("result has no array {key:?}: {v}"));
    assert!(
        arr.is_empty(),
        "{} {key} (first ones shown): {}",
        arr.len(),
        serde_json::to_string_pretty(&arr.iter().take(10).collect::<Vec<_>>()).unwrap()
    );
}

/// `v[key]` as i64, or panic.
pub fn int(v: &serde_json::Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("result has no integer {key:?}: {v}"))
}

/// A blocking TCP connection with read/write timeouts, for raw-protocol tests.
pub fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Write `s` to `path`, for test fixtures.
pub fn write_file(path: &Path, s: &str) {
    File::create(path)
        .and_then(|mut f| f.write_all(s.as_bytes()))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// `pyflink/lib` of the installed shigawire-apache-flink-libraries package, if any.
pub fn pyflink_lib() -> Option<std::path::PathBuf> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u; s = u.find_spec('pyflink'); \
             print(list(s.submodule_search_locations)[0] if s else '')",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    if dir.is_empty() {
        return None;
    }
    let lib = std::path::PathBuf::from(dir).join("lib");
    lib.join("kafka-clients.jar").exists().then_some(lib)
}

/// Runs a single-file Java program from tests/clients with `classpath` and `args`, in the
/// broker's scratch directory; panics with its output unless it succeeds, and returns the
/// last JSON line it printed.
/// The Java client's classpath (kafka-clients 3.9.1 and the jars it needs), if installed.
pub fn java_classpath() -> Option<String> {
    let lib = pyflink_lib()?;
    Some(
        ["kafka-clients", "slf4j-api", "lz4-java", "snappy-java", "zstd-jni"]
            .iter()
            .map(|j| lib.join(format!("{j}.jar")).display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
    )
}

pub fn run_java(
    broker: &Broker,
    classpath: &str,
    program: &str,
    args: &[&str],
    timeout: std::time::Duration,
) -> serde_json::Value {
    let mut cmd = std::process::Command::new("java");
    cmd.arg("-cp")
        .arg(classpath)
        .arg(clients_dir().join(program))
        .args(args)
        .current_dir(broker.scratch_dir());
    let out = run_with_timeout(&mut cmd, None, timeout);
    last_json_line(&format!("java {program} {args:?}"), &out)
}
