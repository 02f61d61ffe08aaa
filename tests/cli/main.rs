//! Integration tests: the real `backstop` binary in temporary folders.
//! One test binary (see Cargo.toml) so it links once.

mod pty;
mod sandbox;

mod backups;
mod executables;
mod faults;
mod output;
mod settings;
mod spine;
mod toolbox;
