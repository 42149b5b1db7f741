//! The runtime against real components built from plugins/: answers are checked, and a
//! looping, trapping or memory-hungry plugin fails only its own call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// Kafka's default partitioner as the client implements it (checked there against Kafka's
// own test vectors): the reference for the murmur2 plugin.
use strom_client::partitioner::partition_for_key;

use strom_plugins::{
    artifacts, BatchContext, CallError, Header, KafkaRecord, Limits, LoadError, LoadedPlugin, PluginRuntime, Verdict,
    World,
};

fn record(key: Option<&[u8]>, value: &[u8]) -> KafkaRecord {
    KafkaRecord {
        offset_delta: 0,
        timestamp_ms: 1,
        key: key.map(|k| k.to_vec()),
        value: Some(value.to_vec()),
        headers: vec![Header {
            key: "h".into(),
            value: Some(b"1".to_vec()),
        }],
    }
}

fn ctx() -> BatchContext {
    BatchContext {
        topic: "t".into(),
        partition: 0,
        partition_count: 4,
        base_offset: -1,
        producer_id: -1,
        client_id: "test".into(),
        principal: "User:ANONYMOUS".into(),
    }
}

fn runtime() -> PluginRuntime {
    PluginRuntime::new(None).unwrap()
}

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Loads a built plugin with `config` (key, value pairs) and `limits`.
fn load(rt: &PluginRuntime, id: &str, path: &str, config_pairs: &[(&str, &str)], limits: Limits) -> LoadedPlugin {
    rt.load(id, &bytes(path), config(config_pairs), limits)
        .unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn inspect_knows_worlds_and_refuses_the_rest() {
    let rt = runtime();
    assert_eq!(
        rt.inspect(&bytes(artifacts::MURMUR2_PARTITIONER)).unwrap(),
        World::BatchPartitioner
    );
    assert_eq!(
        rt.inspect(&bytes(artifacts::JSON_FIELD_PARTITIONER)).unwrap(),
        World::Partitioner
    );
    assert_eq!(
        rt.inspect(&bytes(artifacts::HEADER_STAMP)).unwrap(),
        World::BatchInterceptor
    );
    assert_eq!(rt.inspect(&bytes(artifacts::FIELD_REDACT)).unwrap(), World::Interceptor);
    assert!(matches!(
        rt.inspect(b"definitely not wasm"),
        Err(LoadError::NotAComponent(_))
    ));
    let err = rt.inspect(&bytes(artifacts::TEST_NOT_A_PLUGIN)).unwrap_err();
    assert!(matches!(err, LoadError::UnknownWorld(_)), "{err}");
    assert!(err.to_string().contains("wasi:cli/run"), "{err}");
}

#[tokio::test]
async fn murmur2_partitioner_matches_kafkas_default_partitioner() {
    let rt = runtime();
    let p = load(&rt, "murmur2@1", artifacts::MURMUR2_PARTITIONER, &[], Limits::default());
    // Kafka's Utils.murmur2 vectors (UtilsTest): toPositive(murmur2(key)) % partitions.
    let keys: [&[u8]; 3] = [b"21", b"foobar", b"a-little-bit-long-string"];
    let expected_hash: [i32; 3] = [-973932308, -790332482, -985981536];
    let records: Vec<KafkaRecord> = keys.iter().map(|k| record(Some(k), b"v")).collect();
    let got = p.partition("t", 1000, &records).await.unwrap();
    let want: Vec<u32> = expected_hash.iter().map(|h| (*h as u32 & 0x7fff_ffff) % 1000).collect();
    assert_eq!(got, want);
    // The batch form (how the broker calls it) gives the same answer.
    let mut encoded = Vec::new();
    strom_plugins::codec::encode_records(&records, 0, &mut encoded);
    assert_eq!(p.partition_encoded("t", 1000, &encoded, 3, 0).await.unwrap(), want);
    // A batch whose bytes do not hold the records it claims is refused, not misread.
    let refused = p
        .partition_encoded("t", 1000, &encoded[..encoded.len() - 2], 3, 0)
        .await;
    assert!(
        matches!(refused, Err(CallError::Refused { error_code: 2, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn murmur2_partitioner_agrees_with_kafka_for_many_keys_and_partition_counts() {
    let rt = runtime();
    let p = load(&rt, "murmur2@1", artifacts::MURMUR2_PARTITIONER, &[], Limits::default());
    // Every seventh record has no key: the plugin hashes its value instead.
    let records: Vec<KafkaRecord> = (0..500)
        .map(|i| {
            let text = format!("customer-{}", i * 7919);
            match i % 7 {
                0 => record(None, text.as_bytes()),
                _ => record(Some(text.as_bytes()), b"v"),
            }
        })
        .collect();
    let mut encoded = Vec::new();
    strom_plugins::codec::encode_records(&records, 0, &mut encoded);
    for partitions in [1u32, 2, 3, 7, 12, 64, 1000, 4093] {
        let want: Vec<u32> = records
            .iter()
            .map(|r| {
                let hashed = r.key.as_deref().or(r.value.as_deref()).unwrap();
                partition_for_key(hashed, partitions as i32) as u32
            })
            .collect();
        assert_eq!(
            p.partition_encoded("t", partitions, &encoded, records.len(), 0)
                .await
                .unwrap(),
            want,
            "{partitions} partitions"
        );
    }
}

#[tokio::test]
async fn typed_partitioner_takes_encoded_batches_too() {
    let rt = runtime();
    let p = load(
        &rt,
        "by-customer@1",
        artifacts::JSON_FIELD_PARTITIONER,
        &[],
        Limits::default(),
    );
    let records: Vec<KafkaRecord> = ["a", "b", "a"]
        .iter()
        .map(|c| record(None, format!("{{\"customer_id\":\"{c}\"}}").as_bytes()))
        .collect();
    let typed = p.partition("t", 7, &records).await.unwrap();
    let mut encoded = Vec::new();
    strom_plugins::codec::encode_records(&records, 0, &mut encoded);
    assert_eq!(p.partition_encoded("t", 7, &encoded, 3, 0).await.unwrap(), typed);
    assert_eq!(typed[0], typed[2]);
}

#[tokio::test]
async fn interceptor_config_reaches_the_plugin() {
    let rt = runtime();
    let p = load(
        &rt,
        "stamp@1",
        artifacts::HEADER_STAMP,
        &[("header", "lineage"), ("value", "svc-a")],
        Limits::default(),
    );
    let verdicts = p.on_produce(&ctx(), &[record(None, b"x")]).await.unwrap();
    match &verdicts[0] {
        Verdict::Replace(r) => assert!(r
            .headers
            .iter()
            .any(|h| h.key == "lineage" && h.value.as_deref() == Some(b"svc-a".as_slice()))),
        other => panic!("expected a replacement, got {other:?}"),
    }
}

#[tokio::test]
async fn batch_interceptor_rewrites_every_record_shape_exactly() {
    // Through the SDK's batch reader and writer: one-, two- and three-byte varints (long
    // values, offset deltas past 63 and 8191), null keys and values, headers kept and
    // replaced. The answer must hold each record as it was plus the stamp, nothing else.
    let rt = runtime();
    let p = load(
        &rt,
        "stamp@1",
        artifacts::HEADER_STAMP,
        &[("header", "h"), ("value", "stamped")],
        Limits::default(),
    );
    let mut records = Vec::new();
    for i in 0..200 {
        let mut r = record(Some(format!("key-{i}").as_bytes()), &vec![i as u8; (i * 97) % 300]);
        r.offset_delta = if i == 199 { 9000 } else { i as i32 };
        r.timestamp_ms = 1_000 + i as i64 * 37;
        match i % 5 {
            0 => r.key = None,
            1 => r.value = None,
            2 => r.headers.push(Header {
                key: "other".into(),
                value: None,
            }),
            3 => r.value = Some(vec![7; 20_000]),
            _ => r.headers.clear(),
        }
        records.push(r);
    }
    let mut encoded = Vec::new();
    strom_plugins::codec::encode_records(&records, 1_000, &mut encoded);
    let replaced = p
        .intercept_encoded(&ctx(), &encoded, records.len(), 1_000, 9000, true)
        .await
        .unwrap()
        .expect("header-stamp replaces every batch");
    let got = strom_plugins::codec::decode_records(&replaced.records, replaced.count, 1_000).unwrap();
    let want: Vec<KafkaRecord> = records
        .into_iter()
        .map(|mut r| {
            r.headers.retain(|h| h.key != "h");
            r.headers.push(Header {
                key: "h".into(),
                value: Some(b"stamped".to_vec()),
            });
            r
        })
        .collect();
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
    assert_eq!(replaced.timestamp_deltas, (0, 199 * 37));
}

#[tokio::test]
async fn plugins_together_stay_within_the_memory_total() {
    let rt = runtime();
    rt.set_memory_total(24 << 20);
    // The hog's own limit would allow 64 MiB; the total stops it first.
    let limits = Limits {
        memory_bytes_max: 64 << 20,
        call_ms_max: 5_000,
    };
    let hog = load(&rt, "hog@1", artifacts::TEST_MISBEHAVE, &[("mode", "oom")], limits);
    let err = hog.on_produce(&ctx(), &[record(None, b"x")]).await.unwrap_err();
    assert_eq!(
        err,
        CallError::MemoryExhausted {
            plugin: "hog@1".into(),
            total_bytes: 24 << 20
        }
    );
    assert!(err.to_string().contains("all plugins together"), "{err}");
    // The failed instance gave its memory back, so other plugins still run.
    assert_eq!(rt.memory_used(), 0);
    let stamp = load(&rt, "stamp@1", artifacts::HEADER_STAMP, &[], Limits::default());
    assert!(stamp.on_produce(&ctx(), &[record(None, b"x")]).await.is_ok());
    let held = rt.memory_used();
    assert!(held > 0 && held <= 24 << 20, "the pooled instance holds {held} bytes");
}

#[tokio::test]
async fn a_leaking_plugin_is_replaced_before_it_runs_out_of_memory() {
    let rt = runtime();
    let limits = Limits {
        memory_bytes_max: 16 << 20,
        ..Limits::default()
    };
    let leak = load(&rt, "leak@1", artifacts::TEST_MISBEHAVE, &[("mode", "leak")], limits);
    // 1 MiB more per call: one instance would run out after about 15 calls.
    for call in 0..60 {
        let verdicts = leak
            .on_produce(&ctx(), &[record(None, b"x")])
            .await
            .unwrap_or_else(|e| panic!("call {call}: {e}"));
        assert_eq!(verdicts.len(), 1);
        assert!(
            rt.memory_used() <= 9 << 20,
            "call {call}: {} bytes held",
            rt.memory_used()
        );
    }
    assert_eq!(leak.stats(), (60, 0));
    // What counts is growth: an instance that merely starts big (over half its limit) is
    // kept for the next call, not replaced on every call.
    drop(leak);
    let roomy = load(&rt, "keep@1", artifacts::TEST_MISBEHAVE, &[], Limits::default());
    roomy.on_produce(&ctx(), &[record(None, b"x")]).await.unwrap();
    let baseline = rt.memory_used();
    assert!(baseline > 0);
    let tight = Limits {
        memory_bytes_max: (baseline + baseline / 2).max(1 << 16),
        ..Limits::default()
    };
    let big = load(&rt, "keep@2", artifacts::TEST_MISBEHAVE, &[], tight);
    for _ in 0..3 {
        big.on_produce(&ctx(), &[record(None, b"x")]).await.unwrap();
        assert_eq!(rt.memory_used(), 2 * baseline, "the instance stays pooled");
    }
}

#[tokio::test]
async fn refusals_carry_the_plugins_error_code_and_message() {
    let rt = runtime();
    let p = load(
        &rt,
        "validate@1",
        artifacts::JSON_VALIDATE,
        &[("required", "id,amount")],
        Limits::default(),
    );
    assert_eq!(
        p.on_produce(&ctx(), &[record(None, br#"{"id":1,"amount":3}"#)])
            .await
            .unwrap()
            .len(),
        1
    );
    let err = p.on_produce(&ctx(), &[record(None, br#"{"id":1}"#)]).await.unwrap_err();
    match err {
        CallError::Refused { error_code, message } => {
            assert_eq!(error_code, 87);
            assert!(message.contains("amount"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// A looping plugin, and one sleeping in WASI (where no epoch tick reaches it), each fail
/// their call with Timeout once their budget has passed and not before; the failure is
/// counted, the next call gets a fresh instance (stopped the same way), and the same
/// plugin without the bad mode serves.
#[tokio::test]
async fn looping_and_sleeping_plugins_are_stopped_at_their_budget() {
    let rt = runtime();
    let limits = Limits {
        call_ms_max: 50,
        ..Limits::default()
    };
    let budget = Duration::from_millis(limits.call_ms_max);
    for mode in ["loop", "sleep"] {
        let bad = load(&rt, "bad@1", artifacts::TEST_MISBEHAVE, &[("mode", mode)], limits);
        for call in 1..=2 {
            let started = Instant::now();
            let err = bad.on_produce(&ctx(), &[record(None, b"x")]).await.unwrap_err();
            let took = started.elapsed();
            assert_eq!(
                err,
                CallError::Timeout {
                    plugin: "bad@1".into(),
                    budget_ms: 50
                },
                "{mode}, call {call}"
            );
            assert!(
                took >= budget && took < Duration::from_secs(2),
                "{mode}, call {call}: stopped after {took:?}"
            );
            assert_eq!(bad.stats(), (call, call), "{mode}: every call counted as failed");
        }
    }
    let fine = load(&rt, "bad@1", artifacts::TEST_MISBEHAVE, &[], limits);
    assert_eq!(fine.on_produce(&ctx(), &[record(None, b"x")]).await.unwrap().len(), 1);
}

/// A plugin call is a future that yields at every epoch tick: a looping guest on a
/// single-threaded runtime leaves the runtime's other tasks running while it spins.
#[tokio::test(flavor = "current_thread")]
async fn a_looping_plugin_yields_to_other_tasks_until_its_budget_ends() {
    let rt = runtime();
    let limits = Limits {
        call_ms_max: 200,
        ..Limits::default()
    };
    let spin = load(&rt, "spin@1", artifacts::TEST_MISBEHAVE, &[("mode", "loop")], limits);
    let turns = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&turns);
    let other = tokio::spawn(async move {
        loop {
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    tokio::task::yield_now().await;
    let before = turns.load(Ordering::Relaxed);
    let err = spin.on_produce(&ctx(), &[record(None, b"x")]).await.unwrap_err();
    let during = turns.load(Ordering::Relaxed) - before;
    other.abort();
    assert!(matches!(err, CallError::Timeout { budget_ms: 200, .. }), "{err:?}");
    // 200 ms of spinning leaves room for about 100 turns of 2 ms; a call that held the
    // thread would leave none.
    assert!(during >= 20, "the other task ran {during} times while the plugin spun");
}

#[tokio::test]
async fn traps_and_memory_hogs_fail_their_call_only() {
    let rt = runtime();
    let trap = load(
        &rt,
        "trap@1",
        artifacts::TEST_MISBEHAVE,
        &[("mode", "trap")],
        Limits::default(),
    );
    assert!(matches!(
        trap.on_produce(&ctx(), &[record(None, b"x")]).await,
        Err(CallError::Trap { .. })
    ));
    assert!(
        matches!(
            trap.on_produce(&ctx(), &[record(None, b"x")]).await,
            Err(CallError::Trap { .. })
        ),
        "a second call gets a fresh instance and traps again"
    );
    let limits = Limits {
        memory_bytes_max: 16 << 20,
        call_ms_max: 5_000,
    };
    let hog = load(&rt, "hog@1", artifacts::TEST_MISBEHAVE, &[("mode", "oom")], limits);
    assert_eq!(
        hog.on_produce(&ctx(), &[record(None, b"x")]).await.unwrap_err(),
        CallError::OutOfMemory {
            plugin: "hog@1".into(),
            bytes: 16 << 20
        }
    );
    let bad = load(
        &rt,
        "bad@1",
        artifacts::TEST_MISBEHAVE,
        &[("mode", "bad-count")],
        Limits::default(),
    );
    assert!(matches!(
        bad.on_produce(&ctx(), &[record(None, b"x")]).await,
        Err(CallError::BadAnswer { .. })
    ));
    assert_eq!(bad.stats().1, 1);
}
