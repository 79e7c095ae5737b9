//! A program in a pseudo-terminal, its output fed through a terminal emulator (`vt100`), so
//! tests read the screen a person would see and check what the program leaves the terminal
//! in when it exits.

use std::{
    fs::File,
    io::{Read, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    os::unix::process::CommandExt,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

/// A child running on a pty of `cols`×`rows`, and the emulated screen.
pub struct PtyChild {
    pub child: Child,
    master: File,
    chunks: mpsc::Receiver<Vec<u8>>,
    /// Everything the child wrote.
    pub raw: Vec<u8>,
    pub parser: vt100::Parser,
    /// The child closed the terminal (all its output has been read).
    closed: bool,
}

impl PtyChild {
    /// Starts `cmd` as a session leader with the pty as its controlling terminal and stdio.
    pub fn spawn(mut cmd: Command, cols: u16, rows: u16) -> PtyChild {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let (mut m, mut s) = (-1, -1);
        // SAFETY: openpty writes two fds; the winsize is read only.
        let rc =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: fresh fds owned by nothing else.
        let (master, slave) = unsafe { (File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty"));
        cmd.stdin(io(&slave)).stdout(io(&slave)).stderr(io(&slave));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        // Only the child holds the slave now: reads end (EIO) when it is gone.
        drop(cmd);
        drop(slave);
        let mut reader = master.try_clone().expect("dup pty master");
        let (tx, chunks) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        PtyChild {
            child,
            master,
            chunks,
            raw: Vec::new(),
            parser: vt100::Parser::new(nonzero(rows), nonzero(cols), 0),
            closed: false,
        }
    }

    /// Reads output until `done(screen)` holds or `timeout` passes; true if it held.
    pub fn wait_for(&mut self, timeout: Duration, done: impl Fn(&vt100::Screen) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self.parser.screen()) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.closed || left.is_zero() {
                return false;
            }
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => {
                    self.parser.process(&chunk);
                    self.raw.extend_from_slice(&chunk);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => self.closed = true,
            }
        }
    }

    /// The screen's text, one line per row.
    pub fn text(&self) -> String {
        self.parser.screen().contents()
    }

    /// The screen's rows, padded to the width.
    pub fn rows(&self) -> Vec<String> {
        let s = self.parser.screen();
        let cols = s.size().1.get();
        s.rows(0, cols)
            .map(|r| format!("{r:<width$}", width = usize::from(cols)))
            .collect()
    }

    /// Types `bytes` at the terminal.
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// Waits (bounded) for the child to exit, then reads the rest of its output.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait for the child") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "the child did not exit within {timeout:?}; screen:\n{}",
                    self.text()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        self.wait_for(Duration::from_secs(5), |_| false);
        assert!(
            self.closed,
            "the terminal stayed open after the child exited"
        );
        status
    }

    /// The terminal's local modes now (the master reports the pty's termios).
    pub fn lflag(&self) -> libc::tcflag_t {
        // SAFETY: tcgetattr fills a termios; zeroed is valid input.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid fd and a writable termios.
        let rc = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
        assert_eq!(rc, 0, "tcgetattr: {}", std::io::Error::last_os_error());
        t.c_lflag
    }

    /// Where `needle` last occurs in the output.
    pub fn last(&self, needle: &[u8]) -> Option<usize> {
        self.raw.windows(needle.len()).rposition(|w| w == needle)
    }

    /// Checks that the program left the terminal as it found it: off the alternate screen,
    /// cursor shown (both as the last word in the output and on the emulated screen), and
    /// the line discipline cooked again (ICANON, ECHO).
    pub fn assert_restored(&self) {
        let s = self.parser.screen();
        assert!(!s.alternate_screen(), "still on the alternate screen");
        assert!(!s.hide_cursor(), "cursor still hidden");
        let (enter, leave) = (self.last(b"\x1b[?1049h"), self.last(b"\x1b[?1049l"));
        assert!(enter.is_some(), "never entered the alternate screen");
        assert!(leave > enter, "did not leave the alternate screen last");
        assert!(
            self.last(b"\x1b[?25h") > self.last(b"\x1b[?25l"),
            "cursor not shown last"
        );
        let l = self.lflag();
        assert!(
            l & libc::ICANON != 0 && l & libc::ECHO != 0,
            "raw mode still on (lflag {l:#o})"
        );
    }
}

fn nonzero(n: u16) -> std::num::NonZero<u16> {
    std::num::NonZero::new(n).expect("a terminal of zero rows or columns")
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
