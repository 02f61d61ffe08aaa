//! Integration tests: the real `backstop` binary in temporary folders.
//! One test binary (see Cargo.toml) so it links once.

mod pty;
mod sandbox;

mod backups;
mod faults;
mod interrupts;
mod output;
mod preflight;
mod safety;
mod settings;
mod spine;
mod surprises;
mod toolbox;
