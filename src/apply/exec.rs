//! Child processes of executable migrations (issue 12), whatever they run:
//! each starts in its own process group, so Ctrl-C reaches it exactly once,
//! through backstop, together with anything it starts; on Linux it is killed
//! if backstop dies (the parent-death signal), so a `kill -9` of backstop never
//! leaves a migration writing behind a rerun's back. Its stdout and stderr are
//! read line by line and streamed to the observer as they come; the Python
//! runner also gets a private channel on fd 3 for its messages (the module's
//! own prints stay on stdout). What runs is decided by `script` and `python`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

use crate::migration::Migration;
use crate::observe::{Event, Interrupt, Observer, OutputLine, Stream};

/// How often the wait loop looks at Ctrl-C and redraws the elapsed time.
const POLL: Duration = Duration::from_millis(25);
/// After Ctrl-C, how long a child may take to stop (a module rolls back)
/// before its group is killed.
const GRACE: Duration = Duration::from_secs(10);
/// After the child exited, how long output from what it left running (a
/// background job holding the pipe) is still read.
const DRAIN: Duration = Duration::from_millis(300);
/// Lines kept per migration for `--json` (all are streamed to the observer).
const KEEP_LINES: usize = 10_000;
/// A longer line is split: a binary writing without newlines cannot fill memory.
const MAX_LINE: u64 = 64 * 1024;

enum Msg {
    Line(Stream, String),
    Message(String),
    Closed,
}

/// What `Child::next` stopped at.
pub(super) enum Next {
    /// A line on the private channel (the Python runner's JSON).
    Message(String),
    Exited(ExitStatus),
}

pub(super) struct Child {
    process: std::process::Child,
    pgid: Pid,
    stdin: Option<ChildStdin>,
    rx: Receiver<Msg>,
    open: usize,
    exited: Option<(ExitStatus, Instant)>,
    output: Vec<OutputLine>,
    dropped: usize,
    sigint_at: Option<Instant>,
    started: Instant,
}

impl Child {
    /// Starts `cmd` (stdin piped when `stdin`, the private channel when
    /// `messages`), stdout and stderr read by threads.
    pub fn spawn(mut cmd: Command, stdin: bool, messages: bool) -> io::Result<Child> {
        let channel = if messages {
            Some(cloexec_pipe()?)
        } else {
            None
        };
        let fd3 = channel.as_ref().map(|(_, w)| w.as_raw_fd());
        let parent = rustix::process::getpid();
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: the terminal's Ctrl-C reaches backstop only, which
            // passes it on once (see `forward_interrupt`).
            .process_group(0);
        // SAFETY: the closure runs between fork and exec and only makes raw
        // system calls (prctl, getppid, dup2, fcntl), which are async-signal-safe;
        // it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                #[cfg(target_os = "linux")]
                {
                    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                    // backstop died before the line above: do not run orphaned.
                    if rustix::process::getppid() != Some(parent) {
                        return Err(io::Error::from_raw_os_error(libc::ESRCH));
                    }
                }
                #[cfg(not(target_os = "linux"))]
                let _ = parent;
                if let Some(fd) = fd3 {
                    if fd == 3 {
                        if libc::fcntl(3, libc::F_SETFD, 0) != 0 {
                            return Err(io::Error::last_os_error());
                        }
                    } else if libc::dup2(fd, 3) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut process = cmd.spawn()?;
        let (tx, rx) = mpsc::channel();
        let mut open = 0;
        if let Some(out) = process.stdout.take() {
            lines(out, tx.clone(), |l| Msg::Line(Stream::Stdout, l));
            open += 1;
        }
        if let Some(err) = process.stderr.take() {
            lines(err, tx.clone(), |l| Msg::Line(Stream::Stderr, l));
            open += 1;
        }
        if let Some((read, write)) = channel {
            // Only the child keeps the write end: EOF when it is gone.
            drop(write);
            lines(read, tx, Msg::Message);
            open += 1;
        }
        Ok(Child {
            pgid: Pid::from_child(&process),
            stdin: process.stdin.take(),
            process,
            rx,
            open,
            exited: None,
            output: Vec::new(),
            dropped: 0,
            sigint_at: None,
            started: Instant::now(),
        })
    }

    /// Writes one line to the child's stdin.
    pub fn send(&mut self, line: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
        stdin.write_all(line.as_bytes())?;
        stdin.write_all(b"\n")?;
        stdin.flush()
    }

    /// Closes the child's stdin: what it reads from there now ends.
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Streams output to `obs` until a message arrives or the child exited
    /// (and its output was read), passing Ctrl-C on.
    pub fn next(&mut self, m: &Migration, obs: &mut dyn Observer, interrupt: &Interrupt) -> Next {
        let ticker = obs.ticker();
        let mut last_tick = Instant::now();
        loop {
            if let Some((status, at)) = self.exited {
                if self.open == 0 || at.elapsed() > DRAIN {
                    return Next::Exited(status);
                }
            }
            match self.rx.recv_timeout(POLL) {
                Ok(Msg::Line(stream, line)) => {
                    obs.event(Event::Output {
                        migration: m,
                        stream,
                        line: &line,
                    });
                    self.keep(stream, line);
                }
                Ok(Msg::Message(text)) => return Next::Message(text),
                Ok(Msg::Closed) => self.open = self.open.saturating_sub(1),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.open = 0,
            }
            self.forward_interrupt(interrupt);
            if self.exited.is_none() {
                if let Ok(Some(status)) = self.process.try_wait() {
                    self.exited = Some((status, Instant::now()));
                }
            }
            if let Some(tick) = &ticker {
                if last_tick.elapsed() >= Duration::from_millis(100) {
                    last_tick = Instant::now();
                    tick(self.started.elapsed());
                }
            }
        }
    }

    /// Waits for the child to exit (messages are not expected any more).
    pub fn wait(
        &mut self,
        m: &Migration,
        obs: &mut dyn Observer,
        interrupt: &Interrupt,
    ) -> ExitStatus {
        loop {
            if let Next::Exited(status) = self.next(m, obs, interrupt) {
                return status;
            }
        }
    }

    /// Ctrl-C was passed on to the child.
    pub fn interrupted(&self) -> bool {
        self.sigint_at.is_some()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The lines kept so far (the streamed ones, up to `KEEP_LINES`).
    pub fn take_output(&mut self) -> Vec<OutputLine> {
        let mut out = std::mem::take(&mut self.output);
        if self.dropped > 0 {
            out.push(OutputLine {
                stream: Stream::Stderr,
                line: format!("[backstop: {} more lines not kept]", self.dropped),
            });
        }
        out
    }

    /// The last `n` lines the child wrote to stderr, for the failure report.
    pub fn stderr_tail(&self, n: usize) -> Vec<String> {
        let mut tail: Vec<String> = self
            .output
            .iter()
            .rev()
            .filter(|l| l.stream == Stream::Stderr)
            .take(n)
            .map(|l| l.line.clone())
            .collect();
        tail.reverse();
        tail
    }

    fn keep(&mut self, stream: Stream, line: String) {
        if self.output.len() < KEEP_LINES {
            self.output.push(OutputLine { stream, line });
        } else {
            self.dropped += 1;
        }
    }

    /// Ctrl-C: SIGINT to the child's group, once; SIGKILL if it has not
    /// stopped after `GRACE` (a module's transaction is then rolled back by
    /// SQLite when the database is next opened).
    fn forward_interrupt(&mut self, interrupt: &Interrupt) {
        if self.exited.is_some() {
            return;
        }
        match self.sigint_at {
            None if interrupt.is_set() => {
                let _ = kill_process_group(self.pgid, Signal::INT);
                self.sigint_at = Some(Instant::now());
            }
            Some(at) if at.elapsed() > GRACE => {
                let _ = kill_process_group(self.pgid, Signal::KILL);
            }
            _ => {}
        }
    }
}

impl Drop for Child {
    /// A child still running when backstop stops waiting for it (an error on
    /// the way, a backup that failed) is killed with its group, and reaped.
    fn drop(&mut self) {
        self.stdin.take();
        if self.exited.is_none() && matches!(self.process.try_wait(), Ok(None)) {
            let _ = kill_process_group(self.pgid, Signal::KILL);
            let _ = self.process.wait();
        }
    }
}

/// Reads `from` line by line on a thread, sending each (lossy UTF-8, without
/// its line end) through `wrap`, then `Closed`.
fn lines<R: Read + Send + 'static>(
    from: R,
    tx: Sender<Msg>,
    wrap: impl Fn(String) -> Msg + Send + 'static,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    if tx
                        .send(wrap(String::from_utf8_lossy(&buf).into_owned()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Msg::Closed);
    });
}

/// A pipe whose ends are closed on exec (the child gets its end as fd 3 only).
fn cloexec_pipe() -> io::Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two new descriptors, owned from here on.
    let (read, write) = unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    for fd in [read.as_raw_fd(), write.as_raw_fd()] {
        // SAFETY: fcntl on a descriptor this function owns.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((read, write))
}

/// What a child's exit status says, in words ("exited with code 2").
pub(super) fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => "ended".into(),
    }
}
