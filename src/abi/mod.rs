//! The C-visible types and constants of libvirt's public headers, as `#[repr(C)]` Rust
//! items with libvirt's exact names and values.
//!
//! cbindgen turns this module (with the function prototypes of `capi`) into
//! `include/libvirt/libvirt.h`. Nothing here has behaviour; the core code uses these
//! enums for error codes and flag values so that each value is written down once.

#![allow(non_camel_case_types, non_snake_case)]
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod domain;
pub mod error;
pub mod event;
pub mod generated;
pub mod host;
pub mod job;
pub mod snapshot;
pub mod typedparam;

pub use checkpoint::*;
pub use domain::*;
pub use error::*;
pub use event::*;
pub use generated::*;
pub use host::*;
pub use job::*;
pub use snapshot::*;
pub use typedparam::*;
