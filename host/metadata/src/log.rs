//! Where metadata records are kept. [`MetadataLog`] is the seam the Raft quorum replaces:
//! today [`LocalMetadataLog`] is a single voter's durable file; tomorrow an openraft log
//! replicated to the controller quorum. Handlers only see [`crate::MetadataStore`].

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::records::MetadataRecord;
use crate::MetadataError;

/// The checksum of an entry: CRC-32C, as Kafka's record batches use.
fn crc32c(bytes: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

/// A durable, ordered log of metadata records.
pub trait MetadataLog: Send + Sync {
    /// Appends records; returns once they are committed (durable on a quorum).
    fn append(&self, records: &[MetadataRecord]) -> Result<(), MetadataError>;
    /// Every committed record, in order (used to build the image at start).
    fn replay(&self) -> Result<Vec<MetadataRecord>, MetadataError>;
}

/// Largest encoded record accepted; bigger means corruption.
const RECORD_BYTES_MAX: usize = 16 << 20;

/// The single-node metadata log: one file of `[length u32][crc32c u32][json]` entries,
/// fsync'd on every append. A torn or corrupt tail is truncated when the log is opened.
pub struct LocalMetadataLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl LocalMetadataLog {
    pub fn open(dir: &Path) -> Result<LocalMetadataLog, MetadataError> {
        fs::create_dir_all(dir).map_err(|e| MetadataError::io("creating metadata directory", dir, e))?;
        let path = dir.join("metadata.log");
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| MetadataError::io("opening metadata log", &path, e))?;
        let log = LocalMetadataLog {
            path,
            file: Mutex::new(file),
        };
        let (_, valid) = log.read_entries()?;
        let len = log
            .file
            .lock()
            .metadata()
            .map_err(|e| MetadataError::io("reading metadata log", &log.path, e))?
            .len();
        if valid < len {
            tracing::warn!(path = %log.path.display(), valid, len, "truncating torn tail of the metadata log");
            let file = log.file.lock();
            file.set_len(valid)
                .map_err(|e| MetadataError::io("truncating metadata log", &log.path, e))?;
            file.sync_all()
                .map_err(|e| MetadataError::io("syncing metadata log", &log.path, e))?;
        }
        Ok(log)
    }

    /// Decodes entries from the start; returns them and the length of the valid prefix.
    fn read_entries(&self) -> Result<(Vec<MetadataRecord>, u64), MetadataError> {
        let mut raw = Vec::new();
        File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut raw))
            .map_err(|e| MetadataError::io("reading metadata log", &self.path, e))?;
        let mut records = Vec::new();
        let mut pos = 0usize;
        while raw.len() - pos >= 8 {
            let len = u32::from_be_bytes(raw[pos..pos + 4].try_into().unwrap()) as usize;
            let crc = u32::from_be_bytes(raw[pos + 4..pos + 8].try_into().unwrap());
            if len > RECORD_BYTES_MAX || raw.len() - pos - 8 < len {
                break;
            }
            let body = &raw[pos + 8..pos + 8 + len];
            if crc32c(body) != crc {
                break;
            }
            let Ok(record) = serde_json::from_slice(body) else {
                break;
            };
            records.push(record);
            pos += 8 + len;
        }
        Ok((records, pos as u64))
    }
}

impl MetadataLog for LocalMetadataLog {
    fn append(&self, records: &[MetadataRecord]) -> Result<(), MetadataError> {
        let mut buf = Vec::new();
        for record in records {
            let body = serde_json::to_vec(record).expect("metadata records always serialize");
            buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
            buf.extend_from_slice(&crc32c(&body).to_be_bytes());
            buf.extend_from_slice(&body);
        }
        let mut file = self.file.lock();
        file.write_all(&buf)
            .and_then(|_| file.sync_data())
            .map_err(|e| MetadataError::io("appending to metadata log", &self.path, e))
    }

    fn replay(&self) -> Result<Vec<MetadataRecord>, MetadataError> {
        Ok(self.read_entries()?.0)
    }
}
