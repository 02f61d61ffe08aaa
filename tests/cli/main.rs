//! Integration tests: the real `backstop` binary in temporary folders.
//! One test binary (see Cargo.toml) so it links once.

mod pty;
mod sandbox;

mod adopt;
mod backups;
mod baseline_check;
mod executables;
mod extensions;
mod faults;
mod interrupts;
mod layouts;
mod orphans;
mod output;
mod preflight;
mod safety;
mod settings;
mod spine;
mod startup;
mod surprises;
mod toolbox;
