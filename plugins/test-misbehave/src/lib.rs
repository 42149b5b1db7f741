//! A deliberately bad interceptor for the tests: `plugin.<name>.mode` chooses how it
//! misbehaves on produce: `loop` spins forever, `sleep` waits an hour in WASI, `trap`
//! panics, `oom` allocates without bound, `leak` keeps 1 MiB more with every call (and
//! answers correctly), `bad-count` answers with the wrong number of verdicts; anything
//! else keeps records unchanged.

use strom_plugin_sdk::host;
use strom_plugin_sdk::interceptor::{BatchContext, Guest, KafkaRecord, PluginError, Verdict};

struct Misbehave;

impl Guest for Misbehave {
    fn on_produce(_ctx: BatchContext, records: Vec<KafkaRecord>) -> Result<Vec<Verdict>, PluginError> {
        match host::config("mode").as_deref() {
            Some("loop") => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            Some("sleep") => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(records.iter().map(|_| Verdict::Keep).collect())
            }
            Some("trap") => panic!("test-misbehave was told to trap"),
            Some("oom") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Some("leak") => {
                std::hint::black_box(Box::leak(vec![1u8; 1 << 20].into_boxed_slice()));
                Ok(records.iter().map(|_| Verdict::Keep).collect())
            }
            Some("bad-count") => Ok(vec![Verdict::Keep; records.len() + 1]),
            _ => Ok(records.iter().map(|_| Verdict::Keep).collect()),
        }
    }

    fn on_fetch(_ctx: BatchContext, records: Vec<KafkaRecord>) -> Result<Vec<Verdict>, PluginError> {
        Ok(records.iter().map(|_| Verdict::Keep).collect())
    }
}

strom_plugin_sdk::export_interceptor!(Misbehave);
