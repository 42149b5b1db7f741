//! Long-running group members for the black-box group tests: a client process that prints
//! one JSON event per line (assign, revoke, lost, record, member_id) is collected by [`Proc`],
//! so a test can wait for a state and act (SIGSTOP, kill -9, restart) in between; plus
//! helpers that read those events.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{clients_dir, int, tail, Broker};

/// How long a test waits for a group to reach a state it must reach.
pub const STATE_WAIT: Duration = Duration::from_secs(60);

pub fn set(v: &[i32]) -> BTreeSet<i32> {
    v.iter().copied().collect()
}

pub fn ints(v: &Value) -> Vec<i32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_i64().unwrap_or_else(|| panic!("not an integer: {x}")) as i32)
        .collect()
}

/// A client process that prints one JSON event per line; events are collected as they come.
pub struct Proc {
    name: String,
    child: Option<Child>,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    pub fn python(name: &str, script: &str, args: &[&str]) -> Proc {
        let mut cmd = Command::new("python3");
        cmd.arg(clients_dir().join(script))
            .args(args)
            .env("PYTHONUNBUFFERED", "1");
        Proc::spawn(name, cmd)
    }

    /// A single-file Java program from `tests/clients` run with `classpath`.
    pub fn java(name: &str, classpath: &str, program: &str, args: &[&str]) -> Proc {
        let mut cmd = Command::new("java");
        cmd.arg("-cp")
            .arg(classpath)
            .arg(clients_dir().join(program))
            .args(args);
        Proc::spawn(name, cmd)
    }

    /// Runs `cmd`, collecting the JSON events it prints, one per line.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let sink = events.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line).unwrap_or_else(|_| json!({ "ev": "raw", "line": line }));
                sink.lock().unwrap().push(v);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let err_sink = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                err_sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Proc {
            name: name.to_string(),
            child: Some(child),
            events,
            stderr,
        }
    }

    /// A confluent-kafka member (`groups_ck.py member`).
    pub fn ck_member(broker: &Broker, topic: &str, group: &str, name: &str, opts: &[&str]) -> Proc {
        let addr = broker.addr();
        let mut args = vec!["member", &addr[..], topic, group, name];
        args.extend_from_slice(opts);
        Proc::python(name, "groups_ck.py", &args)
    }

    /// A kafka-python member (`groups_kp.py member`).
    pub fn kp_member(broker: &Broker, topic: &str, group: &str, name: &str, opts: &[&str]) -> Proc {
        let addr = broker.addr();
        let mut args = vec!["member", &addr[..], topic, group, name];
        args.extend_from_slice(opts);
        Proc::python(name, "groups_kp.py", &args)
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("process running").id()
    }

    /// Everything known about the process, for failure messages.
    pub fn report(&self) -> String {
        let events: Vec<String> = self.events().iter().map(|e| e.to_string()).collect();
        format!(
            "--- {} events ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            tail(&events.join("\n"), 12_000),
            self.name,
            tail(&self.stderr.lock().unwrap(), 8_000)
        )
    }

    /// Waits until `f` finds what it looks for in the events; panics after `timeout`, or at
    /// once if the process exits meanwhile.
    pub fn wait_for<T>(&mut self, what: &str, timeout: Duration, f: impl Fn(&[Value]) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = f(&self.events()) {
                return found;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                thread::sleep(Duration::from_millis(200));
                panic!(
                    "{}: exited with {status} while waiting for {what}\n{}",
                    self.name,
                    self.report()
                );
            }
            if Instant::now() > deadline {
                panic!("{}: no {what} within {timeout:?}\n{}", self.name, self.report());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics (with what the process printed) if it has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
            thread::sleep(Duration::from_millis(200));
            panic!("{}: exited with {status}\n{}", self.name, self.report());
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.name);
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

/// The partitions a member owns after its events (eager protocol: an assignment replaces
/// what it owned, a revocation or loss removes partitions).
pub fn owned(events: &[Value]) -> BTreeSet<i32> {
    let mut owned = BTreeSet::new();
    for e in events {
        match e["ev"].as_str() {
            Some("assign") => owned = set(&ints(&e["partitions"])),
            Some("revoke") | Some("lost") => {
                for p in ints(&e["partitions"]) {
                    owned.remove(&p);
                }
            }
            _ => {}
        }
    }
    owned
}

pub fn rebalance_events(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| matches!(e["ev"].as_str(), Some("assign" | "revoke" | "lost")))
        .cloned()
        .collect()
}

/// (partition, offset) of every record event.
pub fn records(events: &[Value]) -> Vec<(i32, i64)> {
    events
        .iter()
        .filter(|e| e["ev"] == "record")
        .map(|e| (int(e, "p") as i32, int(e, "o")))
        .collect()
}

pub fn member_id(events: &[Value]) -> Option<String> {
    events
        .iter()
        .rev()
        .find(|e| e["ev"] == "member_id")
        .map(|e| e["id"].as_str().unwrap().to_string())
}

/// Waits until `a` and `b` own disjoint sets covering partitions 0..4, two each (as `owned`
/// reads their events: [`owned`] for eager assignors, [`owned_incremental`] for incremental
/// ones), and nothing but records arrives for `quiet`; returns (a's, b's).
pub fn settle_pair(
    a: &mut Proc,
    b: &mut Proc,
    quiet: Duration,
    owned: fn(&[Value]) -> BTreeSet<i32>,
) -> (BTreeSet<i32>, BTreeSet<i32>) {
    let deadline = Instant::now() + STATE_WAIT;
    loop {
        let (oa, ob) = (owned(&a.events()), owned(&b.events()));
        let union: BTreeSet<i32> = oa.union(&ob).copied().collect();
        if oa.len() == 2 && ob.len() == 2 && union == set(&[0, 1, 2, 3]) {
            let (ea, eb) = (a.events().len(), b.events().len());
            thread::sleep(quiet);
            let unsettled = a.events()[ea..]
                .iter()
                .chain(b.events()[eb..].iter())
                .any(|e| e["ev"] != "record");
            if !unsettled {
                return (oa, ob);
            }
        }
        if Instant::now() > deadline {
            panic!(
                "no settled 2+2 split within {STATE_WAIT:?}: {} owns {oa:?}, {} owns {ob:?}\n{}\n{}",
                a.name,
                b.name,
                a.report(),
                b.report()
            );
        }
        a.assert_running();
        b.assert_running();
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `groups_ck.py SCENARIO BOOTSTRAP ARGS...` to completion; returns its JSON result.
pub fn groups_ck(broker: &Broker, args: &[&str]) -> Value {
    let addr = broker.addr();
    let mut all: Vec<&str> = vec![args[0], &addr];
    all.extend_from_slice(&args[1..]);
    super::python(broker, "groups_ck.py", &all)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The partitions a member owns after its events when assignments are incremental (the
/// consumer protocol, cooperative-sticky): an assignment adds, a revocation or loss removes.
pub fn owned_incremental(events: &[Value]) -> BTreeSet<i32> {
    let mut owned = BTreeSet::new();
    for e in events {
        match e["ev"].as_str() {
            Some("assign") => owned.extend(ints(&e["partitions"])),
            Some("revoke") | Some("lost") => {
                for p in ints(&e["partitions"]) {
                    owned.remove(&p);
                }
            }
            _ => {}
        }
    }
    owned
}
