//! Reading the files a configuration names — the file itself, `include`s, certificates,
//! DKIM keys — so that a wrong path cannot hang or exhaust the loader: only regular files
//! are read (a FIFO would block `open` until someone writes, `/dev/zero` never ends), and
//! only up to a size.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest configuration file (main or included) petrel reads: far more than the
/// largest real configurations (tens of thousands of `<domain>` and `<virtual-mta>`
/// blocks), small enough that the loader's memory stays bounded.
pub(crate) const MAX_CONFIG_FILE: u64 = 32 << 20;
/// What all files of one configuration may add up to (includes by glob can be many).
pub(crate) const MAX_CONFIG_TOTAL: u64 = 128 << 20;
/// The largest certificate or key file: a PEM chain is a few KiB.
pub(crate) const MAX_KEY_FILE: u64 = 1 << 20;

/// Reads `path` whole if it is a regular file of at most `limit` bytes. The error says
/// why not, for a `FILE:LINE: message` diagnostic.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below).
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        ""
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    if !what.is_empty() {
        return Err(format!(
            "not a regular file ({what}); only regular files are read"
        ));
    }
    if meta.len() > limit {
        return Err(too_large(meta.len(), limit));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > limit {
        // It grew while being read.
        return Err(too_large(buf.len() as u64, limit));
    }
    Ok(buf)
}

fn too_large(len: u64, limit: u64) -> String {
    format!(
        "{len} bytes is over the limit of {} MiB for this kind of file",
        limit >> 20
    )
}
