//! Every broker setting Strom knows: name, default, type and documentation. This table is
//! the single source for defaults, validation, DescribeConfigs and `config/strom.toml`.

/// Kafka's config types, with the numeric ids DescribeConfigs v3+ reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}

#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    /// The topic-level config this broker setting is the default for, if any.
    pub topic_config: Option<&'static str>,
    pub doc: &'static str,
}

const fn s(
    name: &'static str,
    default: &'static str,
    kind: Kind,
    topic_config: Option<&'static str>,
    doc: &'static str,
) -> Setting {
    Setting {
        name,
        default,
        kind,
        topic_config,
        doc,
    }
}

use Kind::*;

pub const LONG_MAX: &str = "9223372036854775807";

pub static SETTINGS: &[Setting] = &[
    s("node.id", "1", Int, None, "The id of this node in the cluster."),
    s("process.roles", "broker,controller", List, None, "Roles this node plays. A single node is both broker and the one voter of the metadata quorum."),
    s("listeners", "PLAINTEXT://127.0.0.1:9092", List, None, "Comma-separated NAME://host:port the broker binds. An empty host binds every interface. The security protocol of each NAME comes from listener.security.protocol.map."),
    s("advertised.listeners", "", List, None, "NAME://host:port that clients are told in Metadata, per listener. Empty: the same as listeners (an empty or 0.0.0.0 host is advertised as this machine's hostname)."),
    s("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT", List, None, "Maps each listener name to its security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."),
    s("inter.broker.listener.name", "PLAINTEXT", String, None, "The listener other brokers use to reach this one."),
    s("controller.listener.names", "CONTROLLER", List, None, "Listeners reserved for the metadata quorum; never advertised to clients. A single node needs none bound."),
    s("log.dirs", "./data", String, None, "Where partition logs and the metadata log live."),
    s("num.partitions", "1", Int, None, "Partitions of a topic created without a partition count (including auto-created topics)."),
    s("default.replication.factor", "1", Short, None, "Replication factor of a topic created without one."),
    s("auto.create.topics.enable", "true", Boolean, None, "Create a topic when a client asks Metadata for one that does not exist."),
    s("message.max.bytes", "1048588", Int, Some("max.message.bytes"), "The largest record batch the broker accepts (after compression), in bytes."),
    s("socket.request.max.bytes", "104857600", Int, None, "The largest request frame a connection may send; a larger size prefix closes the connection."),
    s("connections.max.idle.ms", "600000", Long, None, "Close connections idle this long."),
    s("log.segment.bytes", "1073741824", Int, Some("segment.bytes"), "Roll a new segment when the active one would grow past this size."),
    s("log.roll.ms", "604800000", Long, Some("segment.ms"), "Roll a new segment when the active one is this old."),
    s("log.index.interval.bytes", "4096", Int, Some("index.interval.bytes"), "Bytes of log between two offset index entries."),
    s("log.index.size.max.bytes", "10485760", Int, Some("segment.index.bytes"), "Maximum size of an offset index (accepted for compatibility; Strom's indexes grow as needed)."),
    s("log.retention.ms", "604800000", Long, Some("retention.ms"), "Delete a segment once its newest record is older than this (-1: forever)."),
    s("log.retention.bytes", "-1", Long, Some("retention.bytes"), "Delete old segments while a partition is larger than this (-1: no limit)."),
    s("log.retention.check.interval.ms", "300000", Long, None, "How often retention runs."),
    s("log.cleanup.policy", "delete", List, Some("cleanup.policy"), "delete, compact or both. Retention by time and size applies with delete; compaction is stored but not yet run by this version."),
    s("log.flush.interval.messages", LONG_MAX, Long, Some("flush.messages"), "fsync a partition after this many records. The default leaves flushing to the OS, as Kafka does: acknowledged records survive a process crash (kill -9), not a power loss."),
    s("log.flush.interval.ms", LONG_MAX, Long, Some("flush.ms"), "fsync a partition when its oldest unflushed record is this old."),
    s("log.flush.scheduler.interval.ms", "1000", Long, None, "How often the broker checks for partitions due for a time-based flush."),
    s("log.message.timestamp.type", "CreateTime", String, Some("message.timestamp.type"), "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock."),
    s("min.insync.replicas", "1", Int, Some("min.insync.replicas"), "With acks=all, a produce fails with NOT_ENOUGH_REPLICAS when fewer replicas are in sync."),
    s("compression.type", "producer", String, Some("compression.type"), "Codec of stored batches. Only producer (keep what the producer sent) is supported today."),
    s("log.cleaner.delete.retention.ms", "86400000", Long, Some("delete.retention.ms"), "How long tombstones are kept by compaction (accepted; compaction is not yet run)."),
    s("log.cleaner.min.compaction.lag.ms", "0", Long, Some("min.compaction.lag.ms"), "Minimum age before a record may be compacted (accepted; compaction is not yet run)."),
    s("log.cleaner.max.compaction.lag.ms", LONG_MAX, Long, Some("max.compaction.lag.ms"), "Maximum time a record may stay uncompacted (accepted; compaction is not yet run)."),
    s("log.cleaner.min.cleanable.ratio", "0.5", Double, Some("min.cleanable.dirty.ratio"), "Dirty ratio that triggers compaction (accepted; compaction is not yet run)."),
    s("unclean.leader.election.enable", "false", Boolean, Some("unclean.leader.election.enable"), "Allow an out-of-sync replica to become leader (meaningful with replication)."),
    s("group.initial.rebalance.delay.ms", "3000", Int, None, "How long a new consumer group waits for more members before its first rebalance completes."),
    s("group.min.session.timeout.ms", "6000", Int, None, "The smallest session.timeout.ms a group member may ask for."),
    s("group.max.session.timeout.ms", "1800000", Int, None, "The largest session.timeout.ms a group member may ask for."),
    s("group.consumer.session.timeout.ms", "45000", Int, None, "Session timeout of consumer-protocol (KIP-848) group members: a member that sends no heartbeat for this long is removed."),
    s("group.consumer.min.session.timeout.ms", "45000", Int, None, "The smallest group.consumer.session.timeout.ms allowed."),
    s("group.consumer.max.session.timeout.ms", "60000", Int, None, "The largest group.consumer.session.timeout.ms allowed."),
    s("group.consumer.heartbeat.interval.ms", "5000", Int, None, "How often consumer-protocol (KIP-848) group members are told to send heartbeats."),
    s("group.consumer.min.heartbeat.interval.ms", "5000", Int, None, "The smallest group.consumer.heartbeat.interval.ms allowed."),
    s("group.consumer.max.heartbeat.interval.ms", "15000", Int, None, "The largest group.consumer.heartbeat.interval.ms allowed."),
    s("group.consumer.max.size", "2147483647", Int, None, "The most members a consumer-protocol (KIP-848) group may have; a member beyond it is refused with GROUP_MAX_SIZE_REACHED."),
    s("group.consumer.assignors", "uniform,range", List, None, "Server-side assignors of consumer-protocol groups (uniform, range; Kafka's class names are accepted too). The first is the default; members choose with group.remote.assignor."),
    s("offsets.retention.minutes", "10080", Int, None, "Committed offsets of a group expire this long after the group became empty (KIP-211); offsets of a group without members or group state expire this long after their commit."),
    s("offsets.retention.ms", "-1", Long, None, "Strom only: offsets.retention.minutes in milliseconds, for finer control (-1: use offsets.retention.minutes)."),
    s("offsets.retention.check.interval.ms", "600000", Long, None, "How often expired committed offsets are looked for and deleted."),
    s("offsets.topic.num.partitions", "50", Int, None, "Partitions of the internal __consumer_offsets topic, created on first use."),
    s("offsets.topic.segment.bytes", "104857600", Int, None, "Segment size of the __consumer_offsets topic."),
    s("admin.listener", "127.0.0.1:9644", String, None, "host:port of the admin HTTP API (plugin upload and listing); empty disables it."),
    s("partitioner", "", String, Some("partitioner"), "A partitioner plugin NAME@VERSION applied to produced records (empty: none)."),
    s("partitioner.mode", "route", String, Some("partitioner.mode"), "route: the broker appends each record to the partition the plugin picks; enforce: a record sent to another partition than the plugin's choice is refused with INVALID_RECORD."),
    s("interceptors.produce", "", List, Some("interceptors.produce"), "Record interceptor plugins NAME@VERSION run in order on produced batches."),
    s("interceptors.fetch", "", List, Some("interceptors.fetch"), "Record interceptor plugins NAME@VERSION run in order on fetched batches; what is stored does not change."),
    s("plugins.call.ms.max", "100", Long, Some("plugins.call.ms.max"), "Time budget of one plugin call; a plugin over budget fails that call."),
    s("plugins.memory.bytes.max", "67108864", Long, Some("plugins.memory.bytes.max"), "Linear memory a plugin instance may grow to (at most 1 GiB)."),
    s("plugins.memory.total.bytes.max", "2147483648", Long, None, "Linear memory all plugin instances together may hold (idle pooled instances included); a plugin that would grow past it fails that call."),
    s("ssl.keystore.type", "PEM", String, None, "Format of ssl.keystore.location; PEM is the only one supported."),
    s("ssl.keystore.location", "", String, None, "PEM file with the listener's certificate chain and its unencrypted private key (PKCS#8, RSA or EC), as Kafka's PEM keystore. Required by SSL and SASL_SSL listeners. Per listener: listener.name.<name>.ssl.keystore.location."),
    s("ssl.truststore.type", "PEM", String, None, "Format of ssl.truststore.location; PEM is the only one supported."),
    s("ssl.truststore.location", "", String, None, "PEM file of CA certificates that client certificates are verified against (needed when ssl.client.auth is requested or required)."),
    s("ssl.client.auth", "none", String, None, "none, requested or required: whether TLS clients must present a certificate. A verified certificate's subject becomes the principal (User:CN=...,O=...) unless SASL authenticates."),
    s("ssl.enabled.protocols", "TLSv1.2,TLSv1.3", List, None, "TLS versions accepted."),
    s("ssl.reload.interval.ms", "60000", Long, None, "How often the keystore and truststore files are checked; a changed file is loaded for new connections without a restart (certificate rotation)."),
    s("sasl.enabled.mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN", List, None, "SASL mechanisms offered on SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, or a mechanism named in sasl.mechanism.plugins. PLAIN checks the password against the user's SCRAM credential. Per listener: listener.name.<name>.sasl.enabled.mechanisms."),
    s("sasl.mechanism.plugins", "", List, None, "SASL mechanisms provided by WASM plugins, as MECHANISM=NAME@VERSION (a plugin of the sasl-plugin world)."),
    s("sasl.oauthbearer.unsecured.validation.enable", "false", Boolean, None, "Accept unsigned (alg none) OAUTHBEARER tokens, as Kafka's unsecured validator does; for tests and development only. OAUTHBEARER cannot be enabled without it."),
    s("sasl.oauthbearer.sub.claim.name", "sub", String, None, "The token claim that names the principal."),
    s("sasl.oauthbearer.expected.audience", "", List, None, "If not empty, a token's aud claim must contain one of these."),
    s("sasl.oauthbearer.clock.skew.seconds", "30", Int, None, "Tolerance when checking a token's exp and iat."),
    s("connections.max.reauth.ms", "0", Long, None, "If positive, SASL sessions expire after this long (KIP-368): clients re-authenticate on the same connection, and a connection that does not is closed at its next request."),
    s("authorizer.class.name", "", String, None, "Empty: no authorization, every principal may do everything. strom (or Kafka's org.apache.kafka.metadata.authorizer.StandardAuthorizer): ACLs are enforced."),
    s("super.users", "", String, None, "Principals allowed everything, separated by semicolons: User:admin;User:CN=ops,O=Strom."),
    s("allow.everyone.if.no.acl.found", "false", Boolean, None, "With ACLs on, allow an operation on a resource that no ACL matches."),
    s("shutdown.timeout.ms", "30000", Long, None, "On SIGTERM, how long to let in-flight requests finish before logs are closed."),
];

/// Values of `authorizer.class.name` that turn on Strom's ACL authorizer.
pub const AUTHORIZER_NAMES: &[&str] = &[
    "strom",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
];

/// Settings that may be set for one listener as `listener.name.<name>.<setting>`.
pub const PER_LISTENER: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "sasl.enabled.mechanisms",
];

/// `name@version` with both parts non-empty.
pub fn is_plugin_id(text: &str) -> bool {
    text.split_once('@')
        .is_some_and(|(n, v)| !n.is_empty() && !v.is_empty() && !v.contains('@'))
}

pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The broker setting that gives a topic config its default.
pub fn for_topic_config(topic_config: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.topic_config == Some(topic_config))
}

/// Topic-level config names, sorted.
pub fn topic_config_names() -> Vec<&'static str> {
    let mut names: Vec<_> = SETTINGS.iter().filter_map(|s| s.topic_config).collect();
    names.sort_unstable();
    names
}

/// Checks that `value` is well-formed for `setting`; the message says what is wrong.
pub fn validate(setting: &Setting, value: &str) -> Result<(), std::string::String> {
    let name = setting.name;
    let bad = |what: &str| Err(format!("invalid value {value:?} for {name}: {what}"));
    match setting.kind {
        Boolean if value != "true" && value != "false" => bad("expected true or false"),
        Int if value.parse::<i32>().is_err() => bad("expected a 32-bit integer"),
        Short if value.parse::<i16>().is_err() => bad("expected a 16-bit integer"),
        Long if value.parse::<i64>().is_err() => bad("expected a 64-bit integer"),
        Double if value.parse::<f64>().is_err() => bad("expected a number"),
        _ => match (name, value) {
            ("log.message.timestamp.type", v) if v != "CreateTime" && v != "LogAppendTime" => {
                bad("expected CreateTime or LogAppendTime")
            }
            ("log.cleanup.policy", v) if v.split(',').any(|p| !matches!(p.trim(), "delete" | "compact")) => {
                bad("expected delete, compact or delete,compact")
            }
            ("group.consumer.assignors", v)
                if v.split(',')
                    .any(|a| crate::coordinator::assignor::canonical_name(a).is_none()) =>
            {
                bad("expected a comma-separated list of uniform and range")
            }
            ("partitioner.mode", v) if v != "route" && v != "enforce" => bad("expected route or enforce"),
            ("ssl.keystore.type" | "ssl.truststore.type", v) if v != "PEM" => bad("only PEM is supported"),
            ("ssl.client.auth", v) if !matches!(v, "none" | "requested" | "required") => {
                bad("expected none, requested or required")
            }
            ("ssl.enabled.protocols", v)
                if v.split(',')
                    .map(str::trim)
                    .any(|p| !matches!(p, "TLSv1.2" | "TLSv1.3" | "")) =>
            {
                bad("expected TLSv1.2 and/or TLSv1.3")
            }
            ("authorizer.class.name", v) if !v.is_empty() && !AUTHORIZER_NAMES.contains(&v) => bad(
                "expected empty (no authorization), strom, or org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ),
            ("sasl.mechanism.plugins", v)
                if v.split(',').map(str::trim).filter(|p| !p.is_empty()).any(|p| {
                    p.split_once('=')
                        .is_none_or(|(m, id)| m.trim().is_empty() || !is_plugin_id(id.trim()))
                }) =>
            {
                bad("expected a comma-separated list of MECHANISM=NAME@VERSION")
            }
            ("partitioner", v) if !v.is_empty() && !is_plugin_id(v) => bad("expected NAME@VERSION"),
            ("interceptors.produce" | "interceptors.fetch", v)
                if v.split(',').map(str::trim).any(|p| !p.is_empty() && !is_plugin_id(p)) =>
            {
                bad("expected a comma-separated list of NAME@VERSION")
            }
            ("plugins.memory.bytes.max", v) if v.parse::<i64>().is_ok_and(|n| !(1 << 16..=1 << 30).contains(&n)) => {
                bad("must be between 65536 and 1073741824")
            }
            ("plugins.call.ms.max", v) if v.parse::<i64>().is_ok_and(|n| n < 1) => bad("must be at least 1"),
            ("plugins.memory.total.bytes.max", v) if v.parse::<i64>().is_ok_and(|n| n < 1 << 20) => {
                bad("must be at least 1048576 (1 MiB)")
            }
            ("compression.type", v) if v != "producer" => {
                bad("only producer is supported: batches are stored as the producer compressed them")
            }
            ("log.segment.bytes", v) if v.parse::<i64>().is_ok_and(|n| n < 14) => bad("must be at least 14"),
            ("message.max.bytes" | "socket.request.max.bytes", v) if v.parse::<i64>().is_ok_and(|n| n <= 0) => {
                bad("must be positive")
            }
            ("offsets.retention.minutes" | "offsets.retention.check.interval.ms" | "group.consumer.max.size", v)
                if v.parse::<i64>().is_ok_and(|n| n < 1) =>
            {
                bad("must be at least 1")
            }
            ("min.insync.replicas" | "num.partitions" | "default.replication.factor", v)
                if v.parse::<i64>().is_ok_and(|n| n < 1) =>
            {
                bad("must be at least 1")
            }
            _ => Ok(()),
        },
    }
}
