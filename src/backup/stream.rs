//! The byte copy of a backup: the copy is written straight from a memory map
//! of the source to the disk (`O_DIRECT`), a second thread hashes the same
//! pages through that map, and nothing passes through the page cache twice.
//!
//! Before (issue 14), chunks were written from SQLite's memory map through
//! the page cache, which faulted every page in inside `write` and cost twice
//! the time of the whole copy in system time. The kernel's own copy
//! (`copy_file_range`, from SQLite's descriptor) fixed that, but still copied
//! every byte in memory from the source's cached pages to the copy's: on a
//! disk faster than that copy, more time than the writing itself. A direct
//! write hands the source's cached pages to the disk as they are. Where the
//! filesystem refuses direct writes (tmpfs) the kernel copies; where it
//! cannot (no confirmed descriptor, another filesystem on an old kernel),
//! chunks are read into a few reused buffers, written and hashed.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;

use sha2::{Digest, Sha256};

use super::copy::Target;
use super::file::DbFile;
use super::map::Map;
use super::os_copy::{direct_write, kernel_copy, open_direct, prefetch, unsupported, Flusher};
use super::Problem;
use crate::checksum::hex;
use crate::observe::{Event, Observer};

/// Bytes per chunk: few system calls, and with `BUFFERS` of them the
/// buffered path stays at a few MiB whatever the size of the file.
pub(super) const CHUNK: usize = 1 << 20;
/// Bytes per direct write: the disk waits for each, so fewer and larger
/// (4 MiB: 25% faster than 1 MiB here; the hasher drops them as it goes).
pub(super) const DIRECT_CHUNK: usize = 4 * CHUNK;
/// One being read, one being hashed, one in between.
const BUFFERS: usize = 3;
/// What the byte copy found.
pub(super) struct Streamed {
    pub sha256: String,
    pub size: u64,
    /// The header's file change counter (bytes 24..28), as copied.
    pub change_counter: Option<u32>,
    /// Bytes written straight to the disk (the rest went through the page
    /// cache). Read by the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub direct: u64,
}

/// How the copy's first bytes differ from the source's.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Header {
    AsIs,
    /// A WAL database copied from its main file: the copy says rollback
    /// journal (header bytes 18 and 19), so it opens on its own and never
    /// looks for a `-wal` beside it, as a copy made by the backup API would.
    RollbackJournal,
}

/// A chunk for the hasher: where it is in the source map, or its bytes.
enum Piece {
    /// `head`, when given, stands for the chunk's first bytes: the copy's
    /// rewritten header (see `Copier::patch_copied_header`).
    Mapped {
        offset: usize,
        len: usize,
        head: Option<Vec<u8>>,
    },
    Read(Vec<u8>),
}

/// Copies `input` to the temporary file, synced; SHA-256 of the bytes
/// written, on a second thread. Stops between chunks on Ctrl-C.
pub(super) fn copy_bytes(
    input: DbFile,
    header: Header,
    to: &Target<'_>,
    obs: &mut dyn Observer,
) -> Result<Streamed, Problem> {
    copy_with(input, header, Route::Direct, to, obs)
}

/// How the bytes get to the copy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    /// Written from a map of the source with `O_DIRECT` where the filesystem
    /// takes it (the first chunk and an unaligned tail go the kernel route).
    Direct,
    /// `copy_file_range` where it can, hashing through a map of the source.
    #[cfg_attr(not(test), allow(dead_code))]
    Kernel,
    /// Read into buffers, written and hashed from them.
    #[cfg_attr(not(test), allow(dead_code))]
    Buffered,
}

fn copy_with(
    mut input: DbFile,
    header: Header,
    route: Route,
    to: &Target<'_>,
    obs: &mut dyn Observer,
) -> Result<Streamed, Problem> {
    let total = input.size;
    let map = match route {
        Route::Direct | Route::Kernel => input.fd().and_then(|fd| Map::new(fd, total)),
        Route::Buffered => None,
    };
    let direct = match (route, &map) {
        (Route::Direct, Some(_)) => open_direct(to.tmp),
        _ => None,
    };
    std::thread::scope(|scope| {
        let (send, pieces) = mpsc::sync_channel::<Piece>(BUFFERS);
        let (give_back, returned) = mpsc::channel::<Vec<u8>>();
        let map = map.as_ref();
        let hasher = scope.spawn(move || hash(pieces, map, give_back));
        let copied = Copier {
            to,
            header,
            map,
            direct,
            send,
            returned,
            made: 0,
        }
        .run(&mut input, obs);
        let sha256 = hasher.join().map_err(|_| Problem::Check {
            path: to.tmp.to_path_buf(),
            detail: "hashing thread failed".into(),
        })?;
        let (size, change_counter, direct) = copied?;
        Ok(Streamed {
            sha256,
            size,
            change_counter,
            direct,
        })
    })
}

/// The hashing thread: SHA-256 of the pieces in order, each as the copy has it.
fn hash(
    pieces: mpsc::Receiver<Piece>,
    map: Option<&Map>,
    give_back: mpsc::Sender<Vec<u8>>,
) -> String {
    let mut h = Sha256::new();
    for piece in pieces {
        match (piece, map) {
            (Piece::Mapped { offset, len, head }, Some(map)) => {
                let bytes = map.bytes(offset, len);
                match head {
                    Some(head) => {
                        h.update(&head);
                        h.update(&bytes[head.len().min(bytes.len())..]);
                    }
                    None => h.update(bytes),
                }
                map.drop_pages(offset, offset + len);
            }
            (Piece::Read(buf), _) => {
                h.update(&buf);
                // The copier may be gone after an error: nothing to give back to.
                let _ = give_back.send(buf);
            }
            (Piece::Mapped { .. }, None) => unreachable!("mapped pieces come with a map"),
        }
    }
    hex(&h.finalize())
}

/// The copying side of `copy_bytes`.
struct Copier<'a, 't> {
    to: &'a Target<'t>,
    header: Header,
    map: Option<&'a Map>,
    /// The temporary opened for direct writes, while they work.
    direct: Option<File>,
    send: mpsc::SyncSender<Piece>,
    returned: mpsc::Receiver<Vec<u8>>,
    /// Buffers made so far for the buffered path.
    made: usize,
}

impl Copier<'_, '_> {
    /// Returns the size copied, the change counter and the bytes written direct.
    fn run(
        mut self,
        input: &mut DbFile,
        obs: &mut dyn Observer,
    ) -> Result<(u64, Option<u32>, u64), Problem> {
        let out = self.to.out;
        let total = input.size;
        let mut kernel = self.map.is_some();
        let mut flush = Flusher::default();
        let mut done = 0u64;
        let mut direct = 0u64;
        let mut counter = None;
        while done < total {
            if self.to.interrupt.is_set() {
                return Err(Problem::Interrupted);
            }
            // The first chunk goes through the page cache: its header may be
            // rewritten there.
            let chunk = if self.direct.is_some() && done > 0 {
                DIRECT_CHUNK
            } else {
                CHUNK
            };
            let n = (total - done).min(chunk as u64) as usize;
            let piece = match (kernel, input.fd(), self.map) {
                (true, fd, Some(map)) if done > 0 && self.write_direct(map, fd, done, n)? => {
                    direct += n as u64;
                    Some(Piece::Mapped {
                        offset: done as usize,
                        len: n,
                        head: None,
                    })
                }
                (true, Some(fd), Some(map)) => match kernel_copy(fd, out, done, n) {
                    Ok(()) => {
                        let mut head = None;
                        if done == 0 {
                            (counter, head) = self.patch_copied_header(map)?;
                        }
                        Some(Piece::Mapped {
                            offset: done as usize,
                            len: n,
                            head,
                        })
                    }
                    Err(e) if unsupported(&e) => {
                        kernel = false;
                        None
                    }
                    Err(e) => return Err(self.io(e)),
                },
                _ => None,
            };
            let piece = match piece {
                Some(p) => p,
                None => {
                    let (buf, c) = self.read_chunk(input, done, n)?;
                    if done == 0 {
                        counter = c;
                    }
                    Piece::Read(buf)
                }
            };
            done += n as u64;
            flush.written(out, done);
            self.send
                .send(piece)
                .map_err(|_| self.io(io::Error::other("the hashing thread stopped")))?;
            obs.event(Event::BackupProgress { done, total });
        }
        out.sync_all().map_err(|e| self.io(e))?;
        // An empty file is an empty database: counter 0.
        Ok((done, counter.or((done == 0).then_some(0)), direct))
    }

    /// `n` bytes at `offset` written straight from the source's map to the
    /// disk. False, and no more direct writes, when the filesystem refuses
    /// them or the range is not aligned as it needs (a tail of small pages):
    /// the chunk then takes the kernel route.
    fn write_direct(
        &mut self,
        map: &Map,
        source: Option<BorrowedFd<'_>>,
        offset: u64,
        n: usize,
    ) -> Result<bool, Problem> {
        let Some(file) = &self.direct else {
            return Ok(false);
        };
        if let Some(fd) = source {
            prefetch(fd, offset + n as u64, DIRECT_CHUNK as u64);
        }
        let written = direct_write(file, map.bytes(offset as usize, n), offset);
        match written {
            // The write mapped the pages into this process; the hasher maps
            // them again from the page cache, one chunk at a time, so memory
            // stays flat however far the copy runs ahead of the hash.
            Ok(true) => map.drop_pages(offset as usize, offset as usize + n),
            Ok(false) => self.direct = None,
            Err(_) => {}
        }
        written.map_err(|e| self.io(e))
    }

    /// After the kernel copied the first chunk: the header rewritten in the
    /// copy where `header` says so. Returns the change counter, and the
    /// rewritten bytes for the hasher when they differ from the source's.
    fn patch_copied_header(&self, map: &Map) -> Result<(Option<u32>, Option<Vec<u8>>), Problem> {
        let source = map.bytes(0, 100);
        let mut head = source.to_vec();
        let counter = first_chunk(&mut head, self.header);
        if head == source {
            return Ok((counter, None));
        }
        self.to.out.write_all_at(&head, 0).map_err(|e| self.io(e))?;
        Ok((counter, Some(head)))
    }

    /// The buffered path: `n` bytes at `offset` read through SQLite's file
    /// handle into a reused buffer, the header rewritten, written at `offset`.
    fn read_chunk(
        &mut self,
        input: &mut DbFile,
        offset: u64,
        n: usize,
    ) -> Result<(Vec<u8>, Option<u32>), Problem> {
        let mut buf = if self.made < BUFFERS {
            self.made += 1;
            Vec::with_capacity(CHUNK)
        } else {
            self.returned
                .recv()
                .map_err(|_| self.io(io::Error::other("the hashing thread stopped")))?
        };
        buf.resize(n, 0);
        input.seek_to(offset);
        let got = read_full(input, &mut buf).map_err(|e| self.io(e))?;
        if got < n {
            return Err(self.io(io::Error::from(io::ErrorKind::UnexpectedEof)));
        }
        let counter = if offset == 0 {
            first_chunk(&mut buf, self.header)
        } else {
            None
        };
        self.to
            .out
            .write_all_at(&buf, offset)
            .map_err(|e| self.io(e))?;
        Ok((buf, counter))
    }

    fn io(&self, source: io::Error) -> Problem {
        Problem::Io {
            path: self.to.tmp.to_path_buf(),
            source,
        }
    }
}

/// Reads the change counter from the header and rewrites what `header` asks.
fn first_chunk(buf: &mut [u8], header: Header) -> Option<u32> {
    if header == Header::RollbackJournal && buf.len() >= 20 && buf[18] == 2 && buf[19] == 2 {
        buf[18] = 1;
        buf[19] = 1;
    }
    (buf.len() >= 28).then(|| u32::from_be_bytes([buf[24], buf[25], buf[26], buf[27]]))
}

/// Fills `buf` unless the end comes first; returns how much was read.
pub(super) fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
