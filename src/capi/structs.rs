//! The release functions of the public structures libvirt hands out filled in (file
//! system, IOThread and interface information, DHCP leases, domain statistics records).
//! Each frees the structure's `malloc()` members and then the structure itself; NULL is
//! a no-op. Like libvirt's, none of them clears the thread's last error, except that
//! `virDomainStatsRecordListFree()` releases each record's domain with `virDomainFree()`,
//! which does.

use super::alloc::free;
use super::domain::virDomainFree;
use super::typedparams::virTypedParamsFree;
use crate::abi::{
    virDomainFSInfoPtr, virDomainIOThreadInfoPtr, virDomainInterfacePtr, virDomainStatsRecordPtr,
    virNetworkDHCPLeasePtr,
};

/// Releases a file system description from `virDomainGetFSInfo()`: its mount point, name,
/// type, each of its `ndevAlias` device aliases and their array, then the structure.
///
/// # Safety
/// `info` must be NULL or a `malloc()` block holding a `virDomainFSInfo` whose pointer
/// members are NULL or `malloc()` blocks (`devAlias` with `ndevAlias` entries), none of
/// them used again.
///
/// Since: 1.2.11
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainFSInfoFree(info: virDomainFSInfoPtr) {
    if info.is_null() {
        return;
    }
    // SAFETY: `info` and its members are malloc blocks or NULL (contract); `devAlias` has
    // `ndevAlias` entries when it is not NULL. Each block is freed once.
    unsafe {
        let fs = &*info;
        free(fs.mountpoint);
        free(fs.name);
        free(fs.fstype);
        if !fs.devAlias.is_null() {
            for i in 0..fs.ndevAlias {
                free(*fs.devAlias.add(i));
            }
        }
        free(fs.devAlias);
        free(info);
    }
}

/// Releases an IOThread description from `virDomainGetIOThreadInfo()`: its CPU map, then
/// the structure.
///
/// # Safety
/// `info` must be NULL or a `malloc()` block holding a `virDomainIOThreadInfo` whose
/// `cpumap` is NULL or a `malloc()` block, neither used again.
///
/// Since: 1.2.14
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainIOThreadInfoFree(info: virDomainIOThreadInfoPtr) {
    if info.is_null() {
        return;
    }
    // SAFETY: `info` and `cpumap` are malloc blocks or NULL (contract), freed once.
    unsafe {
        free((*info).cpumap);
        free(info);
    }
}

/// Releases an interface description from `virDomainInterfaceAddresses()`: its name,
/// hardware address, the text of each of its `naddrs` addresses and their array, then
/// the structure.
///
/// # Safety
/// `iface` must be NULL or a `malloc()` block holding a `virDomainInterface` whose
/// strings are NULL or `malloc()` blocks and whose `addrs` is NULL or a `malloc()` array
/// of `naddrs` addresses, none of them used again.
///
/// Since: 1.2.14
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainInterfaceFree(iface: virDomainInterfacePtr) {
    if iface.is_null() {
        return;
    }
    // SAFETY: `iface` and its members are malloc blocks or NULL (contract); `addrs` has
    // `naddrs` entries when it is not NULL. Each block is freed once.
    unsafe {
        let it = &*iface;
        free(it.name);
        free(it.hwaddr);
        if !it.addrs.is_null() {
            for i in 0..it.naddrs as usize {
                free((*it.addrs.add(i)).addr);
            }
        }
        free(it.addrs);
        free(iface);
    }
}

/// Releases a list of domain statistics records from `virConnectGetAllDomainStats()` or
/// `virDomainListGetStats()`: for each record up to the terminating NULL, its typed
/// parameters (`virTypedParamsFree()`), its domain reference (`virDomainFree()`, which
/// reports an error for a record without a domain, as libvirt's does) and the record;
/// then the array.
///
/// # Safety
/// `stats` must be NULL or a `malloc()` array of record pointers ending with NULL; each
/// record a `malloc()` block whose `params` is NULL or a `malloc()` array of `nparams`
/// parameters and whose `dom` is NULL or a domain handle the list owns a reference on.
///
/// Since: 1.2.8
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainStatsRecordListFree(stats: *mut virDomainStatsRecordPtr) {
    if stats.is_null() {
        return;
    }
    let mut i = 0;
    loop {
        // SAFETY: the array ends with NULL (contract), so slot `i` is readable until it
        // has been seen.
        let record = unsafe { *stats.add(i) };
        if record.is_null() {
            break;
        }
        // SAFETY: `record` is a malloc block with the members the contract describes; each
        // is released once, the record last.
        unsafe {
            virTypedParamsFree((*record).params, (*record).nparams);
            virDomainFree((*record).dom);
            free(record);
        }
        i += 1;
    }
    // SAFETY: `stats` is a malloc block (contract), freed once.
    unsafe { free(stats) };
}

/// Releases a DHCP lease from `virNetworkGetDHCPLeases()`: its interface name, MAC
/// address, IAID, IP address, host name and client id, then the structure.
///
/// # Safety
/// `lease` must be NULL or a `malloc()` block holding a `virNetworkDHCPLease` whose
/// strings are NULL or `malloc()` blocks, none of them used again.
///
/// Since: 1.2.6
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virNetworkDHCPLeaseFree(lease: virNetworkDHCPLeasePtr) {
    if lease.is_null() {
        return;
    }
    // SAFETY: `lease` and its strings are malloc blocks or NULL (contract), freed once.
    unsafe {
        let l = &*lease;
        free(l.iface);
        free(l.mac);
        free(l.iaid);
        free(l.ipaddr);
        free(l.hostname);
        free(l.clientid);
        free(lease);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{
        _virDomainFSInfo, _virDomainIOThreadInfo, _virDomainInterface, _virDomainInterfaceIPAddress,
        _virDomainStatsRecord, _virNetworkDHCPLease,
    };
    use crate::capi::alloc::malloc_string;
    use crate::capi::error;
    use crate::capi::typedparams::virTypedParamsAddString;
    use std::ffi::{CStr, c_int};
    use std::ptr;

    /// A `malloc()` block holding `value`.
    fn boxed<T>(value: T) -> *mut T {
        // SAFETY: malloc has no preconditions; the block is checked and then written once.
        unsafe {
            let p = libc::malloc(size_of::<T>()) as *mut T;
            assert!(!p.is_null());
            p.write(value);
            p
        }
    }

    fn text(s: &str) -> *mut std::ffi::c_char {
        malloc_string(s).unwrap()
    }

    /// Leaves an error in the thread's record without printing it.
    fn plant_error() {
        unsafe extern "C" fn quiet(_: *mut std::ffi::c_void, _: crate::abi::virErrorPtr) {}
        error::virSetErrorFunc(ptr::null_mut(), Some(quiet));
        let (mut p, mut n, mut max) = (ptr::null_mut(), 0, 0);
        let long = std::ffi::CString::new("n".repeat(80)).unwrap();
        // SAFETY: valid out-parameters; the name is too long, so nothing is added.
        unsafe {
            assert_eq!(virTypedParamsAddString(&mut p, &mut n, &mut max, long.as_ptr(), ptr::null()), -1);
            virTypedParamsFree(p, n);
        }
    }

    fn last_message() -> Option<String> {
        let e = error::virGetLastError();
        // SAFETY: a non-NULL record is the thread's own, with a NUL-terminated message.
        (!e.is_null()).then(|| unsafe { CStr::from_ptr((*e).message) }.to_string_lossy().into_owned())
    }

    #[test]
    fn null_is_a_no_op_and_keeps_the_last_error() {
        plant_error();
        // SAFETY: NULL is allowed for each.
        unsafe {
            virDomainFSInfoFree(ptr::null_mut());
            virDomainIOThreadInfoFree(ptr::null_mut());
            virDomainInterfaceFree(ptr::null_mut());
            virNetworkDHCPLeaseFree(ptr::null_mut());
            virDomainStatsRecordListFree(ptr::null_mut());
        }
        assert!(last_message().unwrap().contains("too long"));
    }

    #[test]
    fn structures_built_with_malloc_are_released() {
        plant_error();
        let aliases = boxed([text("vda"), text("vdb")]) as *mut *mut std::ffi::c_char;
        let fs = boxed(_virDomainFSInfo {
            mountpoint: text("/"),
            name: text("sda1"),
            fstype: text("ext4"),
            ndevAlias: 2,
            devAlias: aliases,
        });
        let io = boxed(_virDomainIOThreadInfo { iothread_id: 1, cpumap: text("\u{3}").cast(), cpumaplen: 1 });
        let addrs = boxed([
            _virDomainInterfaceIPAddress { r#type: 0, addr: text("192.0.2.1"), prefix: 24 },
            _virDomainInterfaceIPAddress { r#type: 1, addr: text("2001:db8::1"), prefix: 64 },
        ]) as *mut _virDomainInterfaceIPAddress;
        let iface =
            boxed(_virDomainInterface { name: text("eth0"), hwaddr: text("52:54:00:00:00:01"), naddrs: 2, addrs });
        let lease = boxed(_virNetworkDHCPLease {
            iface: text("virbr0"),
            expirytime: 1,
            r#type: 0,
            mac: text("52:54:00:00:00:01"),
            iaid: ptr::null_mut(),
            ipaddr: text("192.0.2.10"),
            prefix: 24,
            hostname: text("guest"),
            clientid: ptr::null_mut(),
        });
        let empty_fs = boxed(_virDomainFSInfo {
            mountpoint: ptr::null_mut(),
            name: ptr::null_mut(),
            fstype: ptr::null_mut(),
            ndevAlias: 3,
            devAlias: ptr::null_mut(),
        });
        let empty_list = boxed(ptr::null_mut::<_virDomainStatsRecord>());
        // SAFETY: every structure and member above came from malloc and is freed once
        // (Miri or valgrind would see a double free or a leak).
        unsafe {
            virDomainFSInfoFree(fs);
            virDomainFSInfoFree(empty_fs);
            virDomainIOThreadInfoFree(io);
            virDomainInterfaceFree(iface);
            virNetworkDHCPLeaseFree(lease);
            virDomainStatsRecordListFree(empty_list);
        }
        // None of them touched the last error.
        assert!(last_message().unwrap().contains("too long"));
    }

    #[test]
    fn a_record_without_a_domain_reports_virDomainFree_s_error() {
        unsafe extern "C" fn quiet(_: *mut std::ffi::c_void, _: crate::abi::virErrorPtr) {}
        error::virSetErrorFunc(ptr::null_mut(), Some(quiet));
        let (mut params, mut n, mut max) = (ptr::null_mut(), 0 as c_int, 0 as c_int);
        // SAFETY: valid out-parameters and strings.
        assert_eq!(unsafe { virTypedParamsAddString(&mut params, &mut n, &mut max, c"x".as_ptr(), c"y".as_ptr()) }, 0);
        let record = boxed(_virDomainStatsRecord { dom: ptr::null_mut(), params, nparams: n });
        let list = boxed([record, ptr::null_mut()]) as *mut virDomainStatsRecordPtr;
        // SAFETY: a NULL-terminated malloc list of one malloc record.
        unsafe { virDomainStatsRecordListFree(list) };
        assert_eq!(last_message().as_deref(), Some("invalid domain pointer in virDomainFree"));
    }
}
