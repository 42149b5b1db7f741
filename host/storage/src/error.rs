//! Storage errors. Kafka error codes are chosen at the broker's edge, not here.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{context} ({path}): {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt record batch: {0}")]
    CorruptBatch(String),
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    #[error("record batch magic {0} is not supported; only magic 2 is")]
    UnsupportedMagic(i8),
    #[error("record batch of {size} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge { size: usize, max: usize },
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16, current: i16 },
    #[error("producer {producer_id} sent sequence {received} but {expected} was expected")]
    OutOfOrderSequence {
        producer_id: i64,
        received: i32,
        expected: i32,
    },
}

impl StorageError {
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io {
            context,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
