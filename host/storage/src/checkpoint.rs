//! Small durable files (offsets, markers) written so a crash leaves the old or the new
//! content, never a mix: write a temporary file, fsync it, rename it over, fsync the dir.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{Result, StorageError};

pub fn write_atomically(path: &Path, content: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(|e| StorageError::io("creating checkpoint", &tmp, e))?;
    file.write_all(content)
        .and_then(|_| file.sync_all())
        .map_err(|e| StorageError::io("writing checkpoint", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StorageError::io("renaming checkpoint", path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io("syncing directory", dir, e))
}

/// Writes an offset as decimal text.
pub fn write_offset(path: &Path, offset: i64) -> Result<()> {
    write_atomically(path, format!("{offset}\n").as_bytes())
}

/// Reads an offset written by [`write_offset`]; `None` if missing or unreadable.
pub fn read_offset(path: &Path) -> Option<i64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}
