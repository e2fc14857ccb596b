//! Crash-safe file replacement and private directories: the two primitives every local
//! file in qgate is written through.
//!
//! `write_atomic` gives the guarantee "after a crash at any point the path holds either the
//! old or the new complete content": the bytes go to a fresh temp file in the same
//! directory (same filesystem, so `rename` is atomic), are fsynced, renamed over the
//! target, and the directory is fsynced so the rename itself is durable.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Files we write hold credentials: owner read/write only.
const PRIVATE_FILE_MODE: u32 = 0o600;
/// Directories holding those files: owner only.
const PRIVATE_DIR_MODE: u32 = 0o700;
/// A name collision of our temp files means another writer raced us with the same counter
/// value in another process; a handful of retries with fresh names is plenty.
const TEMP_NAME_ATTEMPTS: u32 = 16;

/// Replace `path` with `bytes` so that a crash leaves either the old or the new file.
///
/// The temp file is created with `O_EXCL` and mode 0600 next to `path`; on any failure
/// before the rename it is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// `write_atomic` with the content step injectable, so tests can fail it half-way.
pub(crate) fn write_atomic_with(
    path: &Path,
    write_content: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = parent_dir(path);
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "atomic write target has no file name",
        )
    })?;
    let (temp_path, mut file) = create_temp_file(dir, file_name)?;

    let before_rename = write_content(&mut file).and_then(|()| file.sync_all());
    drop(file);
    if let Err(err) = before_rename.and_then(|()| fs::rename(&temp_path, path)) {
        // Best effort: the temp file is garbage either way, the error that matters is `err`.
        let _ = fs::remove_file(&temp_path);
        return Err(err);
    }
    // The new content is in place; syncing the directory makes the rename survive a power
    // loss. If that fails the file is still complete, but the caller should know.
    File::open(dir)?.sync_all()
}

/// Create `path` as a directory with mode 0700, or tighten an existing directory that this
/// process's user owns to 0700. A directory owned by someone else is left alone (we may
/// not chmod it, and silently changing a shared directory would surprise its owner).
pub fn ensure_private_dir(path: &Path) -> io::Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let owned_by_us = meta.uid() == rustix::process::geteuid().as_raw();
            if owned_by_us && meta.mode() & 0o777 != PRIVATE_DIR_MODE {
                fs::set_permissions(path, Permissions::from_mode(PRIVATE_DIR_MODE))?;
            }
            Ok(())
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", path.display()),
        )),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(PRIVATE_DIR_MODE)
                .create(path)?;
            // The umask may only clear bits, but a concurrent creator may have won the race
            // with another mode; make the result certain.
            fs::set_permissions(path, Permissions::from_mode(PRIVATE_DIR_MODE))
        }
        Err(err) => Err(err),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// `.{name}.{unique}.tmp`: hidden, recognisably ours, and unique per process and call so
/// concurrent writers of the same target never share a temp file.
fn create_temp_file(dir: &Path, file_name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last_err = None;
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let unique = format!(
            "{}.{}.{nanos:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut name = OsString::from(".");
        name.push(file_name);
        name.push(format!(".{unique}.tmp"));
        let temp_path = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&temp_path)
        {
            Ok(file) => return Ok((temp_path, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last_err = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("could not create a unique temp file")))
}

#[cfg(test)]
mod tests;
