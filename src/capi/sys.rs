//! Operating-system facts the C API reports.

use std::ffi::CStr;
use std::ptr;

/// The host name as libvirt reports it: the kernel's host name, or, when that is not
/// fully qualified, the canonical name the resolver gives for it (unless that is a
/// `localhost` name).
pub fn hostname() -> std::io::Result<String> {
    let short = std::fs::read_to_string("/proc/sys/kernel/hostname")?.trim().to_string();
    if short.contains('.') {
        return Ok(short);
    }
    Ok(canonical_name(&short).filter(|c| !c.starts_with("localhost")).unwrap_or(short))
}

/// glibc's `AI_CANONIDN` (return the canonical name in the local encoding), which the
/// libc crate does not name.
const AI_CANONIDN: libc::c_int = 0x0080;

fn canonical_name(host: &str) -> Option<String> {
    let node = std::ffi::CString::new(host).ok()?;
    // SAFETY: a zeroed addrinfo is the documented way to start a hints structure.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME | AI_CANONIDN;
    hints.ai_family = libc::AF_UNSPEC;
    let mut info: *mut libc::addrinfo = ptr::null_mut();
    // SAFETY: valid NUL-terminated node, valid hints, and an out pointer.
    let rc = unsafe { libc::getaddrinfo(node.as_ptr(), ptr::null(), &hints, &mut info) };
    if rc != 0 || info.is_null() {
        return None;
    }
    // SAFETY: getaddrinfo succeeded, so `info` is a valid list until freed below.
    unsafe {
        let canon = (*info).ai_canonname;
        let name = (!canon.is_null()).then(|| CStr::from_ptr(canon).to_string_lossy().into_owned());
        libc::freeaddrinfo(info);
        name
    }
}
