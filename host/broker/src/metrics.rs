//! Prometheus metrics, served as text at `GET /metrics` on the admin listener. Counters on
//! the request path are relaxed atomic adds; everything else (partitions, groups, plugins) is
//! read from its owner when scraped, so an idle broker does no metrics work at all.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use kafka_protocol::messages::ApiKey;

use crate::broker::Broker;

/// Highest API key we count (Kafka's keys are below 100).
const API_KEYS: usize = 100;

#[derive(Default)]
pub struct Metrics {
    requests: Vec<AtomicU64>,
    connections_opened: AtomicU64,
    connections_open: AtomicI64,
    connections_closed_by_error: AtomicU64,
    authentications_succeeded: AtomicU64,
    authentications_failed: AtomicU64,
    produced_bytes: AtomicU64,
    fetched_bytes: AtomicU64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            requests: (0..API_KEYS).map(|_| AtomicU64::new(0)).collect(),
            ..Metrics::default()
        }
    }

    pub fn request(&self, api: ApiKey) {
        if let Some(counter) = self.requests.get(api as usize) {
            counter.fetch_add(1, Relaxed);
        }
    }

    pub fn connection_opened(&self) {
        self.connections_opened.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
    }

    pub fn connection_closed(&self, by_error: bool) {
        self.connections_open.fetch_sub(1, Relaxed);
        if by_error {
            self.connections_closed_by_error.fetch_add(1, Relaxed);
        }
    }

    pub fn authentication(&self, succeeded: bool) {
        if succeeded {
            self.authentications_succeeded.fetch_add(1, Relaxed);
        } else {
            self.authentications_failed.fetch_add(1, Relaxed);
        }
    }

    pub fn produced(&self, bytes: usize) {
        self.produced_bytes.fetch_add(bytes as u64, Relaxed);
    }

    pub fn fetched(&self, bytes: usize) {
        self.fetched_bytes.fetch_add(bytes as u64, Relaxed);
    }
}

/// The Prometheus text exposition of every metric.
pub fn render(broker: &Broker) -> String {
    let m = &broker.metrics;
    let mut out =
        String::from("# HELP strom_requests_total Requests served, by API.\n# TYPE strom_requests_total counter\n");
    for (key, counter) in m.requests.iter().enumerate() {
        let count = counter.load(Relaxed);
        if count > 0 {
            let api = ApiKey::try_from(key as i16)
                .map(|k| format!("{k:?}"))
                .unwrap_or(key.to_string());
            let _ = writeln!(out, "strom_requests_total{{api=\"{api}\"}} {count}");
        }
    }
    let simple: [(&str, &str, &str, i64); 7] = [
        (
            "strom_connections_opened_total",
            "counter",
            "Client connections accepted.",
            m.connections_opened.load(Relaxed) as i64,
        ),
        (
            "strom_connections_open",
            "gauge",
            "Client connections open now.",
            m.connections_open.load(Relaxed),
        ),
        (
            "strom_connections_closed_by_error_total",
            "counter",
            "Connections closed because of a bad frame, a failed TLS handshake or authentication, or an I/O error.",
            m.connections_closed_by_error.load(Relaxed) as i64,
        ),
        (
            "strom_authentications_succeeded_total",
            "counter",
            "Successful SASL authentications (including re-authentications).",
            m.authentications_succeeded.load(Relaxed) as i64,
        ),
        (
            "strom_authentications_failed_total",
            "counter",
            "Failed SASL authentications.",
            m.authentications_failed.load(Relaxed) as i64,
        ),
        (
            "strom_produced_bytes_total",
            "counter",
            "Record batch bytes appended by produce requests.",
            m.produced_bytes.load(Relaxed) as i64,
        ),
        (
            "strom_fetched_bytes_total",
            "counter",
            "Record batch bytes returned to fetch requests.",
            m.fetched_bytes.load(Relaxed) as i64,
        ),
    ];
    for (name, kind, help, value) in simple {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
    let _ = writeln!(out, "# HELP strom_partition_log_end_offset The next offset of each partition.\n# TYPE strom_partition_log_end_offset gauge");
    let mut sizes = String::from("# HELP strom_partition_size_bytes Bytes on disk of each partition's log.\n# TYPE strom_partition_size_bytes gauge\n");
    for partition in broker.partitions.all() {
        let log = partition.log.read();
        let labels = format!("topic=\"{}\",partition=\"{}\"", partition.topic, partition.index);
        let _ = writeln!(
            out,
            "strom_partition_log_end_offset{{{labels}}} {}",
            log.log_end_offset()
        );
        let _ = writeln!(sizes, "strom_partition_size_bytes{{{labels}}} {}", log.size_bytes());
    }
    out.push_str(&sizes);
    let groups = broker.coordinator.list();
    let _ = writeln!(out, "# HELP strom_consumer_groups Consumer groups known to the coordinator, by state.\n# TYPE strom_consumer_groups gauge");
    let mut by_state = std::collections::BTreeMap::<String, u64>::new();
    for (_, _, state, _) in groups {
        *by_state.entry(state.to_string()).or_default() += 1;
    }
    for (state, count) in by_state {
        let _ = writeln!(out, "strom_consumer_groups{{state=\"{state}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "# HELP strom_plugin_calls_total Calls into each loaded plugin.\n# TYPE strom_plugin_calls_total counter"
    );
    let mut failures = String::from("# HELP strom_plugin_failures_total Plugin calls that trapped, ran out of time or memory, or returned an invalid answer.\n# TYPE strom_plugin_failures_total counter\n");
    let mut busy = String::from("# HELP strom_plugin_call_seconds_total Time requests spent in calls into each plugin, copies in and out included.\n# TYPE strom_plugin_call_seconds_total counter\n");
    for plugin in broker.metadata.image().plugins() {
        let id = plugin.id();
        let stats = broker.plugins.stats(&id);
        let _ = writeln!(out, "strom_plugin_calls_total{{plugin=\"{id}\"}} {}", stats.calls);
        let _ = writeln!(
            failures,
            "strom_plugin_failures_total{{plugin=\"{id}\"}} {}",
            stats.failures
        );
        let seconds = stats.busy.as_secs_f64();
        let _ = writeln!(busy, "strom_plugin_call_seconds_total{{plugin=\"{id}\"}} {seconds}");
    }
    out.push_str(&failures);
    out.push_str(&busy);
    process_metrics(&mut out);
    out
}

/// The standard Prometheus process metrics: CPU time (user and system) and resident memory.
/// Benchmarks read the CPU counter to report the broker's cost per record.
fn process_metrics(out: &mut String) {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0).then_some(usage)
    };
    if let Some(u) = usage {
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {:.6}",
            seconds(u.ru_utime) + seconds(u.ru_stime)
        );
    }
    // statm's second field is the resident set in pages.
    let resident_pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()));
    if let Some(pages) = resident_pages {
        // SAFETY: sysconf has no preconditions.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
            pages * page_size
        );
    }
}
