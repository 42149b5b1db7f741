//! A deliberately bad batch partitioner for the tests: `plugin.<name>.mode` chooses how it
//! misbehaves: `loop` spins forever, `trap` panics; anything else puts every record in
//! partition 0.

use strom_plugin_sdk::batch::{BatchPartitioner, Records};
use strom_plugin_sdk::{host, PluginError};

struct Misbehave;

impl BatchPartitioner for Misbehave {
    fn partition(_topic: &str, _partition_count: u32, records: &Records<'_>) -> Result<Vec<u32>, PluginError> {
        match host::config("mode").as_deref() {
            Some("loop") => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            Some("trap") => panic!("test-misbehave-partitioner was told to trap"),
            _ => Ok(vec![0; records.len()]),
        }
    }
}

strom_plugin_sdk::export_batch_partitioner!(Misbehave);
