//! File writes that never leave a half-written file behind: content goes to a temporary file
//! in the destination directory, which is then renamed over the target.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `contents` to `path` atomically, creating parent directories.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write(path, contents, false)
}

/// Like [`write_atomic`], for files holding secrets: readable by the owner alone.
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<()> {
    write(path, contents, true)
}

fn write(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    // A symlink is written through to the file it names, and a special file (a device such as
    // `/dev/null`, a pipe) in place: renaming over either would replace it with a plain file.
    let resolved = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).ok(),
        _ => None,
    };
    let path = resolved.as_deref().unwrap_or(path);
    if fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir()) {
        return fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut file| file.write_all(contents))
            .with_context(|| format!("failed to write `{}`", path.display()));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".wreg-tmp")
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))?;
    tmp.write_all(contents)
        .and_then(|()| if private { Ok(()) } else { keep_permissions(tmp.as_file(), path) })
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    tmp.persist(path).with_context(|| format!("failed to write `{}`", path.display()))?;
    Ok(())
}

/// Gives the temporary file the permissions the replaced file had, or `rw-r--r--` for a new
/// one: temporary files start private (`rw-------`), which suits only secrets.
#[cfg(unix)]
fn keep_permissions(tmp: &fs::File, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let permissions = match fs::metadata(path) {
        Ok(meta) => meta.permissions(),
        Err(_) => fs::Permissions::from_mode(0o644),
    };
    tmp.set_permissions(permissions)
}

#[cfg(not(unix))]
fn keep_permissions(_: &fs::File, _: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Writes `contents` to `path` only when the file does not already hold exactly that, so
/// tools that watch modification times (cargo) see no change. Returns whether it wrote.
pub fn write_if_changed(path: &Path, contents: &[u8]) -> Result<bool> {
    match fs::read(path) {
        Ok(existing) if existing == contents => Ok(false),
        _ => write_atomic(path, contents).map(|()| true),
    }
}

/// Opens (creating it) the lock file at `path` and tries to take its exclusive lock, which
/// the operating system releases when the file is closed, even after a crash. Returns the
/// file and whether the lock was taken.
pub fn try_lock_file(path: &Path) -> Result<(fs::File, bool)> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let locked = file.try_lock().is_ok();
    Ok((file, locked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn special_files_and_symlinks_are_written_through() {
        write_atomic(Path::new("/dev/null"), b"discarded").unwrap();
        assert!(!fs::metadata("/dev/null").unwrap().is_file(), "/dev/null became a plain file");

        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.txt");
        let link = dir.path().join("link.txt");
        fs::write(&target, "old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
    }
}
