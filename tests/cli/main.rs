//! Integration tests: the real `backstop` binary in temporary folders.
//! One test binary (see Cargo.toml) so it links once.

mod sandbox;

mod faults;
mod spine;
