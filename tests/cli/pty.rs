//! The real binary on a pseudo-terminal (expectrl), for prompts: piped stdin
//! never reaches dialoguer. stdin, stdout and stderr are all the pty, and every
//! byte read or written is kept for the failure message.

use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use expectrl::session::{OsProcess, OsProcessStream};
use expectrl::stream::log::LogStream;
use expectrl::{Eof, Session, WaitStatus};

use crate::sandbox::Sandbox;

/// Everything the session read and wrote, for failure messages.
#[derive(Clone, Default)]
struct Transcript(Arc<Mutex<Vec<u8>>>);

impl Write for Transcript {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Pty {
    session: Session<OsProcess, LogStream<OsProcessStream, Transcript>>,
    transcript: Transcript,
    command: String,
}

impl Pty {
    /// Runs `backstop ARGS` in the sandbox with all three standard streams on a
    /// fresh pty (80x24), colors off.
    pub fn spawn(s: &Sandbox, args: &[&str]) -> Pty {
        let mut all = vec!["--color", "never"];
        all.extend_from_slice(args);
        let mut c = s.command(&all);
        // The sandbox's command reads from /dev/null; here stdin must be the pty
        // (the forked child's fds 0-2 are the pty before exec).
        c.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        c.env("TERM", "xterm");
        let session = Session::spawn(c).expect("spawn backstop on a pty");
        let transcript = Transcript::default();
        let mut session =
            expectrl::session::log(session, transcript.clone()).expect("log the pty session");
        session.set_expect_timeout(Some(Duration::from_secs(10)));
        Pty {
            session,
            transcript,
            command: format!("backstop {}", all.join(" ")),
        }
    }

    fn seen(&self) -> String {
        let bytes = self
            .transcript
            .0
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits for `text` on the terminal.
    #[track_caller]
    pub fn expect(&mut self, text: &str) {
        if let Err(e) = self.session.expect(text) {
            panic!(
                "`{}` never printed {text:?} ({e}); transcript:\n{}",
                self.command,
                self.seen()
            );
        }
    }

    /// Waits for a match of the regular expression `re`.
    #[track_caller]
    pub fn expect_regex(&mut self, re: &str) {
        if let Err(e) = self.session.expect(expectrl::Regex(re)) {
            panic!(
                "`{}` never printed /{re}/ ({e}); transcript:\n{}",
                self.command,
                self.seen()
            );
        }
    }

    /// Types `keys` (e.g. "\r" for Enter, "\x1b[B" for arrow-down).
    #[track_caller]
    pub fn send(&mut self, keys: &str) {
        self.session.send(keys).expect("write to the pty");
    }

    /// Reads until the program closes the terminal and returns its exit code.
    #[track_caller]
    pub fn exit_code(mut self) -> i32 {
        if let Err(e) = self.session.expect(Eof) {
            panic!(
                "`{}` did not finish ({e}); transcript:\n{}",
                self.command,
                self.seen()
            );
        }
        match self.session.get_process().wait() {
            Ok(WaitStatus::Exited(_, code)) => code,
            other => panic!(
                "`{}` ended with {other:?}; transcript:\n{}",
                self.command,
                self.seen()
            ),
        }
    }

    /// The transcript so far (for assertion messages).
    pub fn transcript(&self) -> String {
        self.seen()
    }
}
