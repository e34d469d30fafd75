//! Atomic file replacement: write a temporary file in the same directory, fsync it,
//! rename it over the target, fsync the directory. A crash at any point leaves either
//! the old file or the new one, never a torn mix.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::StoreError;

/// Replaces `path` with what `fill` writes. If `fill` fails, `path` is untouched and
/// the temporary file is removed.
pub(crate) fn replace<F>(path: &Path, fill: F) -> Result<(), StoreError>
where
    F: FnOnce(&mut BufWriter<&mut File>) -> Result<(), StoreError>,
{
    let io = |source: std::io::Error| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    // `tempfile` removes the file on drop unless it is persisted.
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(io)?;
    {
        let mut writer = BufWriter::new(temp.as_file_mut());
        fill(&mut writer)?;
        writer.flush().map_err(io)?;
    }
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    // Make the rename itself durable.
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn failed_fill_keeps_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("AAPL_1d.csv");
        std::fs::write(&path, "old").expect("seed");
        let result = replace(&path, |w| {
            w.write_all(b"half of the new cont")
                .map_err(|e| StoreError::Io {
                    path: path.clone(),
                    source: e,
                })?;
            Err(StoreError::Parse {
                file: "x".into(),
                line: 0,
                message: "simulated crash mid-write".into(),
            })
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn success_replaces_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/AAPL_1d.csv");
        replace(&path, |w| {
            w.write_all(b"new").map_err(|e| StoreError::Io {
                path: path.clone(),
                source: e,
            })
        })
        .expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
    }
}
