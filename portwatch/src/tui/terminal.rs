//! The only place with terminal I/O: raw mode and the alternate screen on the way in, and
//! their undoing on every way out — normal return, error (the guard's `Drop`), panic (a hook
//! that restores before the panic message prints), and signals (the session calls
//! [`restore`] from its SIGTERM/SIGINT handler).

use std::{
    io::{self, Stdout, Write},
    sync::{
        Once,
        atomic::{AtomicBool, Ordering},
    },
};

use crossterm::{
    cursor,
    terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::{Terminal, backend::CrosstermBackend};

use super::{app::App, render};

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// The terminal is in raw mode on the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Puts the terminal back as it was: leaves the alternate screen, shows the cursor, ends raw
/// mode. Safe to call any number of times, from any exit path.
pub fn restore() -> io::Result<()> {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let mut out = io::stdout();
    let a = crossterm::execute!(out, LeaveAlternateScreen, cursor::Show);
    let b = terminal::disable_raw_mode();
    let _ = out.flush();
    a.and(b)
}

/// Installs (once) a panic hook that restores the terminal, then runs the previous hook so
/// the panic message lands on the normal screen.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = restore();
            prev(info);
        }));
    });
}

/// The terminal while the TUI owns it; dropping it restores the terminal.
pub struct TerminalGuard {
    pub term: Term,
}

impl TerminalGuard {
    /// Raw mode, alternate screen, hidden cursor, panic hook.
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let mut out = io::stdout();
        if let Err(e) = crossterm::execute!(out, EnterAlternateScreen, cursor::Hide) {
            let _ = restore();
            return Err(e);
        }
        match Terminal::new(CrosstermBackend::new(out)) {
            Ok(term) => Ok(TerminalGuard { term }),
            Err(e) => {
                let _ = restore();
                Err(e)
            }
        }
    }

    /// Draws the App (call at the session's refresh rate, after keys and on resize).
    pub fn draw(&mut self, app: &App) -> io::Result<()> {
        self.term.draw(|f| render::draw(f, app))?;
        Ok(())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = restore();
    }
}

/// Runs `f` with the terminal set up, restoring it however `f` ends (value, error, panic).
pub fn run_terminal<T>(
    f: impl FnOnce(&mut TerminalGuard) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut guard = TerminalGuard::enter()?;
    let out = f(&mut guard);
    drop(guard);
    out
}
