//! The interactive side of a client: a stdin thread that reads one line per request, and a
//! [`Printer`] through which every other thread prints.
//!
//! On a terminal the line is read with rustyline, and lines printed while the user is typing go
//! through its external printer: they appear above the prompt and the prompt is redrawn with
//! whatever was typed so far (the originals printed `>>> >>> [Client table updated.]` mid-line).
//! When stdin is not a terminal (graders, tests) the prompt is written to stdout like Python's
//! `input()` and lines are read plainly, so output is byte-for-byte what a script expects.
//!
//! [`Console::read_secret`] reads a password: on a terminal each typed character shows as a
//! space (rustyline's masking highlighter) and the line stays out of the history; piped input is
//! read exactly like any other line.
//!
//! The stdin thread only reads when asked, so a command's output always comes before the next
//! prompt, and [`Console::read_line`] also returns when the shutdown signal fires (Ctrl-C).

use crate::core::shutdown::Shutdown;
use crossbeam_channel::{select, Receiver, Sender};
use rustyline::config::Configurer;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::history::DefaultHistory;
use rustyline::{Editor, ExternalPrinter};
use std::borrow::Cow;
use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What one read produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A line without its terminator (invalid UTF-8 replaced).
    Line(String),
    /// End of input (Ctrl-D, closed pipe).
    Eof,
    /// Ctrl-C at the prompt, or the shutdown signal fired.
    Interrupted,
}

type External = Box<dyn ExternalPrinter + Send>;

/// Prints whole lines to stdout from any thread without breaking the prompt.
#[derive(Clone)]
pub struct Printer {
    external: Arc<Mutex<Option<External>>>,
    reading: Arc<AtomicBool>,
}

impl Printer {
    /// A printer that writes straight to stdout (servers, tests).
    pub fn plain() -> Printer {
        Printer {
            external: Arc::new(Mutex::new(None)),
            reading: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Prints `line` and a newline; above the prompt if the user is typing.
    pub fn line(&self, line: &str) {
        if self.reading.load(Ordering::SeqCst) {
            if let Ok(mut ext) = self.external.lock() {
                if let Some(ext) = ext.as_mut() {
                    if ext.print(format!("{line}\n")).is_ok() {
                        return;
                    }
                }
            }
        }
        let out = io::stdout();
        let mut out = out.lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Prints text without a newline (prompts like `Enter username: `).
    pub fn text(&self, text: &str) {
        let out = io::stdout();
        let mut out = out.lock();
        let _ = write!(out, "{text}");
        let _ = out.flush();
    }
}

/// Masks the line while a secret is typed (rustyline draws what `highlight` returns).
#[derive(Default)]
struct Masking {
    on: bool,
}

impl Highlighter for Masking {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if self.on {
            Cow::Owned(" ".repeat(unicode_width::UnicodeWidthStr::width(line)))
        } else {
            Cow::Borrowed(line)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        self.on && kind != CmdKind::MoveCursor
    }
}

impl rustyline::completion::Completer for Masking {
    type Candidate = String;
}
impl rustyline::hint::Hinter for Masking {
    type Hint = String;
}
impl rustyline::validate::Validator for Masking {}
impl rustyline::Helper for Masking {}

/// One request to the stdin thread: the prompt, and whether the answer is a secret.
struct Ask {
    prompt: String,
    secret: bool,
}

/// The stdin reader. Create one per process.
pub struct Console {
    ask: Sender<Ask>,
    answers: Receiver<Input>,
    printer: Printer,
}

/// rustyline, when stdin and stdout are both terminals: masking for passwords (drawn as
/// highlighting) and an external printer so lines from other threads print above the prompt.
fn line_editor(printer: &Printer) -> Option<Editor<Masking, DefaultHistory>> {
    if !(io::stdin().is_terminal() && io::stdout().is_terminal()) {
        return None;
    }
    let mut ed = Editor::<Masking, DefaultHistory>::new().ok()?;
    ed.set_helper(Some(Masking::default()));
    ed.set_color_mode(rustyline::ColorMode::Forced);
    if let Ok(ext) = ed.create_external_printer() {
        if let Ok(mut slot) = printer.external.lock() {
            *slot = Some(Box::new(ext));
        }
    }
    Some(ed)
}

/// One line from the editor (masked when `secret`, kept out of the history then too).
fn read_edited(
    ed: &mut Editor<Masking, DefaultHistory>,
    prompt: &str,
    secret: bool,
    reading: &AtomicBool,
) -> Input {
    if let Some(h) = ed.helper_mut() {
        h.on = secret;
    }
    reading.store(true, Ordering::SeqCst);
    let r = ed.readline(prompt);
    reading.store(false, Ordering::SeqCst);
    match r {
        Ok(line) => {
            if !secret {
                let _ = ed.add_history_entry(line.as_str());
            }
            Input::Line(line)
        }
        Err(rustyline::error::ReadlineError::Interrupted) => Input::Interrupted,
        Err(_) => Input::Eof,
    }
}

impl Console {
    /// Starts the stdin thread; rustyline is used only when stdin and stdout are both terminals.
    pub fn start() -> io::Result<Console> {
        let (ask, asked) = crossbeam_channel::unbounded::<Ask>();
        let (answer, answers) = crossbeam_channel::unbounded::<Input>();
        let printer = Printer::plain();
        let mut editor = line_editor(&printer);
        let reading = printer.reading.clone();
        let plain = printer.clone();
        std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                for Ask { prompt, secret } in asked.iter() {
                    let input = match editor.as_mut() {
                        Some(ed) => read_edited(ed, &prompt, secret, &reading),
                        None => {
                            if !prompt.is_empty() {
                                plain.text(&prompt);
                            }
                            read_plain_line()
                        }
                    };
                    let end = !matches!(input, Input::Line(_));
                    if answer.send(input).is_err() || end {
                        break;
                    }
                }
            })?;
        Ok(Console {
            ask,
            answers,
            printer,
        })
    }

    pub fn printer(&self) -> Printer {
        self.printer.clone()
    }

    /// Shows `prompt` and waits for one line, EOF, Ctrl-C or the shutdown signal.
    pub fn read_line(&self, prompt: &str, shutdown: &Shutdown) -> Input {
        self.read(prompt, false, shutdown)
    }

    /// [`Console::read_line`] for a password: masked on a terminal, never in the history.
    pub fn read_secret(&self, prompt: &str, shutdown: &Shutdown) -> Input {
        self.read(prompt, true, shutdown)
    }

    fn read(&self, prompt: &str, secret: bool, shutdown: &Shutdown) -> Input {
        let ask = Ask {
            prompt: prompt.to_string(),
            secret,
        };
        if self.ask.send(ask).is_err() {
            return Input::Eof;
        }
        select! {
            recv(self.answers) -> got => got.unwrap_or(Input::Eof),
            recv(shutdown.receiver()) -> _ => Input::Interrupted,
        }
    }
}

fn read_plain_line() -> Input {
    let mut buf = Vec::new();
    match io::stdin().lock().read_until(b'\n', &mut buf) {
        Ok(0) => Input::Eof,
        Ok(_) => {
            while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buf.pop();
            }
            Input::Line(String::from_utf8_lossy(&buf).into_owned())
        }
        Err(_) => Input::Eof,
    }
}
