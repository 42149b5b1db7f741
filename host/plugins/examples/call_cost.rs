//! The cost of one plugin call on a typical batch, measured in-process (no broker, no
//! network): `cargo run --release -p strom-plugins --example call_cost [FILTER]`.
//! It calls the shipped murmur2 batch partitioner and the header-stamp batch interceptor
//! with a batch of 135 records (16-byte keys, 100-byte values: a 16 KiB producer batch)
//! and prints the median time per call and per record; then four such batches in four
//! calls and in one (the broker calls a partitioner once per produce request); the same
//! four batches through a partitioner that reads nothing (the floor under any batch
//! partitioner: the call, the copies in and out, the host's check); the host's check of an
//! interceptor's answer for scale; and the same work as the two plugins compiled natively
//! (the SDK's reader and writer, the client's murmur2): the floor a guest's own work cannot
//! go below. An argument keeps only the cases whose label contains it; `python-memory`
//! instead follows the Python example partitioner's memory over 14,000 calls (build
//! `examples/` first).

use std::collections::BTreeMap;
use std::time::Instant;

use strom_client::partitioner;
use strom_plugin_sdk::batch::{Records, RecordsWriter};
use strom_plugins::{artifacts, codec, BatchContext, KafkaRecord, Limits, PluginRuntime};

const RECORDS: usize = 135;
const CALLS: usize = 20_000;

fn main() -> anyhow::Result<()> {
    let records: Vec<KafkaRecord> = (0..RECORDS)
        .map(|i| KafkaRecord {
            offset_delta: i as i32,
            timestamp_ms: 1_700_000_000_000,
            key: Some(format!("key-{i:012}").into_bytes()),
            value: Some(vec![(i % 251) as u8; 100]),
            headers: Vec::new(),
        })
        .collect();
    let mut encoded = Vec::new();
    codec::encode_records(&records, 1_700_000_000_000, &mut encoded);
    let runtime = PluginRuntime::new(None)?;
    // Plugin calls are futures; this thread drives them one at a time, as a broker
    // connection's task does.
    let executor = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let load = |path: &str| -> anyhow::Result<strom_plugins::LoadedPlugin> {
        let bytes = std::fs::read(path)?;
        Ok(runtime.load("bench@1", &bytes, BTreeMap::new(), Limits::default())?)
    };
    let partitioner = load(artifacts::MURMUR2_PARTITIONER)?;
    let interceptor = load(artifacts::HEADER_STAMP)?;
    let ctx = BatchContext {
        topic: "t".into(),
        partition: 0,
        partition_count: 4,
        base_offset: -1,
        producer_id: -1,
        client_id: "bench".into(),
        principal: "User:ANONYMOUS".into(),
    };
    report("murmur2 partitioner (batch)", RECORDS, || {
        executor
            .block_on(partitioner.partition_encoded("t", 4, &encoded, RECORDS, 0))
            .expect("partitioner call");
    });
    // A produce request usually carries a batch for each of several partitions; the broker
    // hands them to the partitioner in one call, copying them into one buffer first.
    let four: Vec<Vec<u8>> = (0..4).map(|_| encoded.clone()).collect();
    report("murmur2 partitioner, 4 batches, 4 calls", 4 * RECORDS, || {
        for batch in &four {
            executor
                .block_on(partitioner.partition_encoded("t", 4, batch, RECORDS, 0))
                .expect("partitioner call");
        }
    });
    // One call for the four batches, copied into one buffer first (inside the timing, as
    // the broker does it for every request).
    let in_one_call = |plugin: &strom_plugins::LoadedPlugin| {
        let joined = four.concat();
        executor
            .block_on(plugin.partition_encoded("t", 4, &joined, 4 * RECORDS, 0))
            .expect("partitioner call");
    };
    report("murmur2 partitioner, 4 batches, 1 call", 4 * RECORDS, || {
        in_one_call(&partitioner)
    });
    // The floor under any batch partitioner: the same request through a guest that reads
    // nothing and puts every record in partition 0 (the test partitioner's default mode).
    // What remains is the call itself, the copies in and out, and the host's check.
    let empty = load(artifacts::TEST_MISBEHAVE_PARTITIONER)?;
    report("empty partitioner, 4 batches, 1 call", 4 * RECORDS, || {
        in_one_call(&empty)
    });
    let mut one = Vec::new();
    codec::encode_records(&records[..1], 1_700_000_000_000, &mut one);
    report("murmur2 partitioner, 1 record", 1, || {
        executor
            .block_on(partitioner.partition_encoded("t", 4, &one, 1, 0))
            .expect("partitioner call");
    });
    report("header-stamp interceptor (batch)", RECORDS, || {
        executor
            .block_on(interceptor.intercept_encoded(&ctx, &encoded, RECORDS, 0, RECORDS as i32 - 1, true))
            .expect("interceptor call");
    });
    if std::env::args().nth(1).as_deref() == Some("python-memory") {
        // How a Python plugin's memory grows over many calls.
        let python = runtime.load(
            "py@1",
            &std::fs::read("target/examples/python_partitioner.wasm")?,
            BTreeMap::new(),
            Limits {
                call_ms_max: 5_000,
                ..Limits::default()
            },
        )?;
        for i in 0..=14_000 {
            executor
                .block_on(python.partition_encoded("t", 4, &encoded, RECORDS, 0))
                .expect("python call");
            if i % 1000 == 0 {
                println!(
                    "after {i:>5} calls: plugin memory {:>6.1} MiB",
                    runtime.memory_used() as f64 / (1 << 20) as f64
                );
            }
        }
    }
    report("native: check_records (host)", RECORDS, || {
        codec::check_records(&encoded, RECORDS, RECORDS as i32 - 1).expect("well-formed");
    });
    // What the plugins do, compiled natively: no sandbox, no copies in or out, no call.
    let batch = Records::new(&encoded, RECORDS as u32);
    report("native: murmur2 partitioner's work", RECORDS, || {
        let partitions: Vec<i32> = batch
            .keys()
            .map(|record| {
                let key = record.expect("well-formed").key.expect("keyed");
                partitioner::partition_for_key(key, 4)
            })
            .collect();
        std::hint::black_box(partitions);
    });
    report("native: header-stamp's work", RECORDS, || {
        let mut out = RecordsWriter::with_capacity(encoded.len() + 20 * RECORDS);
        for record in batch.iter() {
            out.keep_with_header(&record.expect("well-formed"), "x-strom-stamp", Some(b"v1"));
        }
        std::hint::black_box(out.finish());
    });
    Ok(())
}

/// Runs `call` (the work on `records` records) CALLS times in rounds of 1000 and prints the
/// median round (only the cases
/// whose label contains the first argument, if one is given).
fn report(label: &str, records: usize, mut call: impl FnMut()) {
    if std::env::args().nth(1).is_some_and(|only| !label.contains(&only)) {
        return;
    }
    for _ in 0..1000 {
        call();
    }
    let mut rounds: Vec<f64> = (0..CALLS / 1000)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..1000 {
                call();
            }
            start.elapsed().as_secs_f64() * 1e6 / 1000.0
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    let us = rounds[rounds.len() / 2];
    println!(
        "{label:<40} {us:>8.2} µs for {records} records  {:>6.1} ns per record",
        us * 1000.0 / records as f64
    );
}
