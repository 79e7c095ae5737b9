//! A traced mode that needs a terminal (the TUI): its standard input and output on a
//! pseudo-terminal of the harness's, as a session leader with it as its controlling terminal;
//! what it draws is read and thrown away, so that it never blocks on a full terminal.

use std::{
    fs::File,
    io::Read,
    os::fd::{FromRawFd, OwnedFd},
    os::unix::process::CommandExt,
    process::{Child, Command, Stdio},
    thread::{self, JoinHandle},
};

use crate::tracer::StdoutSeen;

/// The size of the terminal: a full-size screen, so that every pane is drawn.
const COLS: u16 = 160;
const ROWS: u16 = 48;

/// Starts `cmd` (its stderr already set) on a new pty; the thread drains the screen.
pub fn spawn(mut cmd: Command) -> std::io::Result<(Child, JoinHandle<StdoutSeen>)> {
    let ws = libc::winsize {
        ws_row: ROWS,
        ws_col: COLS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let (mut m, mut s) = (-1, -1);
    // SAFETY: openpty writes two fds; the winsize is only read.
    let rc = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: two fresh fds that nothing else owns.
    let (mut master, slave) = unsafe { (File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // Only the child holds the slave now: the reads end (EIO) when it has exited.
    drop(cmd);
    drop(slave);
    let screen = thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(1..) = master.read(&mut buf) {}
        StdoutSeen::Text(String::new())
    });
    Ok((child, screen))
}
