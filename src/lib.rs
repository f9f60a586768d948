//! virbackup: libvirt's checkpoint and incremental-backup API, implemented in Rust and
//! shipped as a C library (`libvirt.so.0`) that programs written for libvirt 9.0 compile
//! against or load unchanged.
//!
//! The layers, from the C caller down:
//!
//! * [`capi`]: the `extern "C"` entry points with libvirt's names. It checks handles,
//!   arguments and read-only access in libvirt's order, then calls the driver. The only
//!   module with `unsafe` code.
//! * [`driver`]: one trait method per libvirt driver callback, and the drivers: the
//!   in-memory test driver (`test:///default`) and the embedded QEMU driver
//!   (`qemu:///embed?root=DIR`).
//! * [`engine`]: the QEMU block layer that owns a domain's disks, reached over QMP.
//! * [`conf`]: pure XML parsing and printing of libvirt's documents.
//! * [`abi`]: the C types and constants, from which the header is generated.
//!
//! [`error::Error`] carries libvirt's error codes, domains and messages through all of
//! them.

#![deny(unsafe_op_in_unsafe_fn)]

// Only `abi` and `capi` feed the generated header; cbindgen skips the rest.
pub mod abi;
pub mod capi;
/// cbindgen:ignore
pub mod conf;
/// cbindgen:ignore
pub mod driver;
/// cbindgen:ignore
pub mod engine;
/// cbindgen:ignore
pub mod error;
/// cbindgen:ignore
pub mod moment;
/// cbindgen:ignore
pub mod uri;
/// cbindgen:ignore
pub mod uuid;
