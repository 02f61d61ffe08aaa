//! One file per subcommand: build options, call one library function, render.

pub mod adopt;
pub mod backup;
pub mod baseline;
pub mod down;
pub mod failure;
pub mod log;
pub mod new;
pub mod repair;
pub mod restore;
pub mod status;
pub mod up;
pub mod verify;
