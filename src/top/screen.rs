//! The interactive view: the alternate screen in raw mode, redrawn every interval from fresh
//! reads; `q`, `Esc` or `Ctrl-C` quits. The terminal is restored when the view ends, however
//! it ends ([`TerminalGuard`] on drop).

use std::io::Write;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, queue, terminal};

use super::args::TopError;
use super::sample::{Reading, read_all};
use super::view::Frame;
use crate::status_cli::StatusClient;

/// Raw mode + alternate screen + hidden cursor while alive.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> std::io::Result<TerminalGuard> {
        terminal::enable_raw_mode()?;
        let guard = TerminalGuard;
        let mut out = std::io::stdout();
        queue!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
        out.flush()?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let restored = queue!(out, cursor::Show, terminal::LeaveAlternateScreen)
            .and_then(|()| out.flush())
            .and_then(|()| terminal::disable_raw_mode());
        if let Err(error) = restored {
            tracing::warn!(%error, "tickflow top: could not restore the terminal");
        }
    }
}

/// Whether a key quits the view.
fn quits(key: &KeyEvent) -> bool {
    key.kind != KeyEventKind::Release
        && match key.code {
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => true,
            KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

/// Draws `lines` from the top-left, cut to the terminal's size.
fn draw(out: &mut impl Write, lines: &[String]) -> std::io::Result<()> {
    let (cols, rows) = terminal::size().unwrap_or((120, 40));
    queue!(out, cursor::MoveTo(0, 0), terminal::Clear(terminal::ClearType::All))?;
    for (i, line) in lines.iter().take(usize::from(rows)).enumerate() {
        let cut: String = line.chars().take(usize::from(cols)).collect();
        // Raw mode: a line feed does not return the carriage.
        if i > 0 {
            out.write_all(b"\r\n")?;
        }
        out.write_all(cut.as_bytes())?;
    }
    out.flush()
}

/// Runs the live view until a quitting key.
pub fn run(
    client: &StatusClient,
    urls: &[String],
    interval: Duration,
    title: impl Fn(&Frame, Duration) -> String,
) -> Result<(), TopError> {
    let _guard = TerminalGuard::enter()?;
    let mut out = std::io::stdout();
    let mut prev: Vec<Reading> = Vec::new();
    loop {
        let cur = read_all(client, urls);
        let frame = Frame::build(urls, &prev, &cur);
        let mut lines = vec![title(&frame, interval), String::new()];
        lines.extend(frame.lines());
        draw(&mut out, &lines)?;
        prev = cur;
        let next = Instant::now() + interval;
        loop {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if event::poll(left)? {
                match event::read()? {
                    Event::Key(key) if quits(&key) => return Ok(()),
                    Event::Resize(..) => draw(&mut out, &lines)?,
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_escape_and_ctrl_c_quit_other_keys_do_not() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert!(quits(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Char('Q'), KeyModifiers::SHIFT)));
        assert!(quits(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!quits(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!quits(&key(KeyCode::Char('x'), KeyModifiers::NONE)));
    }
}
