//! Creating the file safely, and failing safely when the disk is full.

use std::{
    io,
    os::unix::fs::{PermissionsExt, symlink},
    sync::{Arc, Mutex},
};

use super::*;
use crate::record::writer::Sink;

#[test]
fn creates_mode_0600() {
    let (_d, path) = tmp();
    write(&path, &sample_items(), Options::default());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o600);
}

#[test]
fn refuses_to_overwrite_without_force() {
    let (_d, path) = tmp();
    std::fs::write(&path, b"precious").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Writer::create(&path, &host(), Options::default())
        .err()
        .unwrap();
    assert!(matches!(e, Error::Exists { .. }), "{e}");
    assert!(e.to_string().contains("--force"));
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");

    let force = Options {
        force: true,
        ..Options::default()
    };
    write(&path, &sample_items(), force);
    assert_eq!(read_path(&path).items, sample_items());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o600, "a replaced file is 0600 too");
}

#[test]
fn force_replaces_rather_than_truncates_a_hard_linked_file() {
    let (d, path) = tmp();
    let other = d.path().join("other");
    std::fs::write(&other, b"precious").unwrap();
    std::fs::hard_link(&other, &path).unwrap();
    let force = Options {
        force: true,
        ..Options::default()
    };
    write(&path, &[], force);
    assert_eq!(std::fs::read(&other).unwrap(), b"precious");
}

#[test]
fn refuses_symlinks_even_with_force() {
    let (d, path) = tmp();
    let target = d.path().join("target");
    std::fs::write(&target, b"precious").unwrap();
    symlink(&target, &path).unwrap();
    let dangling = d.path().join("dangling");
    symlink(d.path().join("nowhere"), &dangling).unwrap();
    for force in [false, true] {
        let opts = Options {
            force,
            ..Options::default()
        };
        for p in [&path, &dangling] {
            let e = Writer::create(p, &host(), opts.clone()).err().unwrap();
            assert!(matches!(e, Error::Symlink { .. }), "{e}");
        }
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert!(!d.path().join("nowhere").exists());
}

#[test]
fn refuses_to_replace_a_directory() {
    let (d, _) = tmp();
    let force = Options {
        force: true,
        ..Options::default()
    };
    let e = Writer::create(d.path(), &host(), force).err().unwrap();
    assert!(matches!(e, Error::NotRegular { .. }), "{e}");
}

/// A disk that fills up after `room` bytes, mid-write.
struct SmallDisk {
    bytes: Arc<Mutex<Vec<u8>>>,
    room: usize,
}

impl Sink for SmallDisk {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        let mut v = self.bytes.lock().unwrap();
        let fit = self.room.saturating_sub(v.len()).min(b.len());
        v.extend_from_slice(&b[..fit]);
        if fit < b.len() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.bytes.lock().unwrap().truncate(len as usize);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_disk_is_a_clear_error_and_leaves_a_readable_file() {
    let events: Vec<Event> = crate::record::churn::churn(200).collect();
    for room in [10, 3000, 5000, 9000] {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let disk = SmallDisk {
            bytes: bytes.clone(),
            room,
        };
        let opts = Options {
            chunk_bytes: 1000,
            ..Options::default()
        };
        let w = Writer::with_sink(Box::new(disk), Path::new("/rec"), &host(), opts);
        let mut w = match w {
            Ok(w) => w,
            Err(e) => {
                assert!(matches!(e, Error::DiskFull { kept: 0, .. }), "{e}");
                continue;
            }
        };
        let err = events
            .iter()
            .find_map(|e| w.push(e).err())
            .expect("the disk fills up");
        let Error::DiskFull { kept, .. } = err else {
            panic!("{err}")
        };
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(err.to_string().contains(&format!("offset {kept}")), "{err}");
        // The writer stays failed; nothing more is written.
        assert!(matches!(w.push(&events[0]), Err(Error::Failed { .. })));
        assert!(matches!(w.finish(), Err(Error::Failed { .. })));
        let bytes = bytes.lock().unwrap().clone();
        assert_eq!(bytes.len() as u64, kept, "partial chunk cut off");
        let r = read_bytes(&bytes).unwrap();
        assert!(r.errors.is_empty());
        assert!(!r.items.is_empty());
        assert_eq!(r.integrity.truncated.unwrap().offset, kept);
        let n = r.items.len();
        assert_eq!(
            r.items,
            events[..n]
                .iter()
                .copied()
                .map(Item::Event)
                .collect::<Vec<_>>()
        );
    }
}
