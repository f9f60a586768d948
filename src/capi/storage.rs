//! The storage pool, volume and network calls tools make before anything else
//! (`libvirt-storage.c`, `libvirt-network.c`): listings and lookups. The drivers of this
//! library manage no pools or networks, so listings are empty and lookups end in
//! libvirt's "not found" errors; every other call on those objects is one of the
//! generated entry points that report `VIR_ERR_NO_SUPPORT`.

use std::ffi::{c_char, c_int, c_uchar, c_uint};
use std::ptr;
use std::sync::Arc;

use super::alloc::{fill_strings, malloc_null_terminated};
use super::handles::{ConnectHandle, Handle, HandleKind, NetworkRef, ObjectRef, StoragePoolRef, StorageVolRef};
use super::{Call, entry};
use crate::abi::{VIR_UUID_BUFLEN, virConnectPtr, virNetworkPtr, virStoragePoolPtr, virStorageVolPtr};
use crate::driver::{NetworkKey, PoolKey, VolumeKey};
use crate::error::{Code, Domain, Error, Result};
use crate::uuid::Uuid;

const FROM_STORAGE: Domain = Domain::VIR_FROM_STORAGE;
const FROM_NETWORK: Domain = Domain::VIR_FROM_NETWORK;

/// Which objects a listing asks for.
#[derive(Clone, Copy)]
enum Objects {
    Pools,
    Networks,
}

impl Objects {
    fn names(self, conn: &ConnectHandle, flags: u32) -> Result<Vec<String>> {
        match self {
            Objects::Pools => conn.driver.connect_list_storage_pools(flags),
            Objects::Networks => conn.driver.connect_list_networks(flags),
        }
    }
}

/// The listing filters the older calls stand for: active ones (`virConnectListNetworks`)
/// or inactive ones (`virConnectListDefinedNetworks`). Bits 0 and 1 are INACTIVE and
/// ACTIVE for both pools and networks.
const ACTIVE: u32 = 1 << 1;
const INACTIVE: u32 = 1 << 0;

/// `virConnectListAll*`: a `malloc()` array of new handles with a NULL after the last.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `out` NULL or writable.
unsafe fn list_all<K: HandleKind>(
    call: &mut Call,
    conn: virConnectPtr,
    out: *mut *mut *mut K::Opaque,
    flags: c_uint,
    objects: Objects,
    make: impl Fn(Arc<ConnectHandle>, &str) -> Arc<Handle<K>>,
) -> Result<c_int> {
    // SAFETY: forwarded from the contract.
    let conn = unsafe { call.conn(conn)? };
    let names = objects.names(&conn, flags)?;
    if !out.is_null() {
        let handles = names.iter().map(|n| Handle::into_ptr(make(conn.clone(), n))).collect();
        // SAFETY: `out` is writable (contract).
        unsafe { *out = malloc_null_terminated(handles)? };
    }
    Ok(c_int::try_from(names.len()).unwrap_or(c_int::MAX))
}

/// `virConnectList*`: up to `maxnames` names into the caller's array.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `names` NULL or `maxnames` writable slots.
unsafe fn list_names(
    call: &mut Call,
    conn: virConnectPtr,
    names: *mut *mut c_char,
    maxnames: c_int,
    objects: Objects,
    filter: u32,
) -> Result<c_int> {
    // SAFETY: forwarded from the contract.
    let conn = unsafe { call.conn(conn)? };
    call.array(names, i128::from(maxnames), "names")?;
    call.number(i128::from(maxnames), super::unsupported::Number::NonNegative, "maxnames")?;
    let found = objects.names(&conn, filter)?;
    let wanted: Vec<&str> = found.iter().take(usize::try_from(maxnames).unwrap_or(0)).map(String::as_str).collect();
    // SAFETY: `names` has `maxnames` slots (contract) and `wanted` is no longer.
    let written = unsafe { fill_strings(names, &wanted)? };
    Ok(c_int::try_from(written).unwrap_or(c_int::MAX))
}

/// `virConnectNumOf*`.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
unsafe fn count(call: &mut Call, conn: virConnectPtr, objects: Objects, filter: u32) -> Result<c_int> {
    // SAFETY: forwarded from the contract.
    let conn = unsafe { call.conn(conn)? };
    Ok(c_int::try_from(objects.names(&conn, filter)?.len()).unwrap_or(c_int::MAX))
}

/// Reads a raw UUID argument.
///
/// # Safety
/// `uuid` must be NULL or point to `VIR_UUID_BUFLEN` readable bytes.
unsafe fn raw_uuid(call: &Call, uuid: *const c_uchar) -> Result<Uuid> {
    call.non_null(uuid, "uuid")?;
    let mut raw = [0u8; VIR_UUID_BUFLEN];
    // SAFETY: `uuid` points to VIR_UUID_BUFLEN readable bytes (contract).
    unsafe { ptr::copy_nonoverlapping(uuid, raw.as_mut_ptr(), VIR_UUID_BUFLEN) };
    Ok(Uuid(raw))
}

/// Parses a UUID in text form, with libvirt's error for one that is not.
fn text_uuid(call: &Call, text: &str) -> Result<Uuid> {
    Uuid::parse(text).ok_or_else(|| {
        Error::arg(
            call.from,
            Code::VIR_ERR_INVALID_ARG,
            call.api,
            "uuidstr",
            format!("uuidstr in {} must be a valid UUID", call.api),
        )
    })
}

fn pool(conn: Arc<ConnectHandle>, name: &str) -> Arc<Handle<StoragePoolRef>> {
    Handle::new(ObjectRef::new(conn, name))
}

fn network(conn: Arc<ConnectHandle>, name: &str) -> Arc<Handle<NetworkRef>> {
    Handle::new(ObjectRef::new(conn, name))
}

/// Looks a pool up with the driver and hands out a new handle.
fn lookup_pool(conn: Arc<ConnectHandle>, key: PoolKey<'_>) -> Result<virStoragePoolPtr> {
    let name = conn.driver.storage_pool_lookup(key)?;
    Ok(Handle::into_ptr(pool(conn, &name)))
}

/// Lists the storage pools (handles in a `malloc()` array with a NULL after the last;
/// free each with `virStoragePoolFree()` and the array with `free()`). The drivers here
/// manage no pools: the answer is 0 and an array holding only the NULL.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `pools` NULL or writable.
///
/// Since: 0.10.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectListAllStoragePools(
    conn: virConnectPtr,
    pools: *mut *mut virStoragePoolPtr,
    flags: c_uint,
) -> c_int {
    if !pools.is_null() {
        // SAFETY: `pools` is writable (contract).
        unsafe { *pools = ptr::null_mut() };
    }
    // SAFETY: forwarded from the contract.
    entry(FROM_STORAGE, "virConnectListAllStoragePools", |call| unsafe {
        list_all(call, conn, pools, flags, Objects::Pools, pool)
    })
}

/// The number of active storage pools (0 here).
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.4.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectNumOfStoragePools(conn: virConnectPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_STORAGE, "virConnectNumOfStoragePools", |call| unsafe { count(call, conn, Objects::Pools, ACTIVE) })
}

/// The number of inactive storage pools (0 here).
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.4.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectNumOfDefinedStoragePools(conn: virConnectPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_STORAGE, "virConnectNumOfDefinedStoragePools", |call| unsafe {
        count(call, conn, Objects::Pools, INACTIVE)
    })
}

/// Writes the names of up to `maxnames` active storage pools into `names` (each freed
/// by the caller with `free()`); returns how many.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `names` NULL or `maxnames` writable slots.
///
/// Since: 0.4.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectListStoragePools(
    conn: virConnectPtr,
    names: *mut *mut c_char,
    maxnames: c_int,
) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_STORAGE, "virConnectListStoragePools", |call| unsafe {
        list_names(call, conn, names, maxnames, Objects::Pools, ACTIVE)
    })
}

/// Like `virConnectListStoragePools()`, for inactive pools.
///
/// # Safety
/// As for `virConnectListStoragePools()`.
///
/// Since: 0.4.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectListDefinedStoragePools(
    conn: virConnectPtr,
    names: *mut *mut c_char,
    maxnames: c_int,
) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_STORAGE, "virConnectListDefinedStoragePools", |call| unsafe {
        list_names(call, conn, names, maxnames, Objects::Pools, INACTIVE)
    })
}

/// Looks a storage pool up by name: `VIR_ERR_NO_STORAGE_POOL` when there is none.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `name` NULL or a NUL-terminated string.
///
/// Since: 0.4.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virStoragePoolLookupByName(conn: virConnectPtr, name: *const c_char) -> virStoragePoolPtr {
    entry(FROM_STORAGE, "virStoragePoolLookupByName", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, name) = unsafe { (call.conn(conn)?, call.string(name, "name")?) };
        lookup_pool(conn, PoolKey::Name(name))
    })
}

/// Looks a storage pool up by raw UUID.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `uuid` NULL or `VIR_UUID_BUFLEN` bytes.
///
/// Since: 0.4.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virStoragePoolLookupByUUID(conn: virConnectPtr, uuid: *const c_uchar) -> virStoragePoolPtr {
    entry(FROM_STORAGE, "virStoragePoolLookupByUUID", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, uuid) = unsafe { (call.conn(conn)?, raw_uuid(call, uuid)?) };
        lookup_pool(conn, PoolKey::Uuid(&uuid))
    })
}

/// Looks a storage pool up by UUID in text form.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `uuidstr` NULL or a NUL-terminated string.
///
/// Since: 0.4.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virStoragePoolLookupByUUIDString(
    conn: virConnectPtr,
    uuidstr: *const c_char,
) -> virStoragePoolPtr {
    entry(FROM_STORAGE, "virStoragePoolLookupByUUIDString", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, text) = unsafe { (call.conn(conn)?, call.string(uuidstr, "uuidstr")?) };
        let uuid = text_uuid(call, text)?;
        lookup_pool(conn, PoolKey::Uuid(&uuid))
    })
}

/// Looks a storage pool up by the folder or device it keeps its volumes in.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `path` NULL or a NUL-terminated string.
///
/// Since: 4.1.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virStoragePoolLookupByTargetPath(
    conn: virConnectPtr,
    path: *const c_char,
) -> virStoragePoolPtr {
    entry(FROM_STORAGE, "virStoragePoolLookupByTargetPath", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, path) = unsafe { (call.conn(conn)?, call.string(path, "path")?) };
        lookup_pool(conn, PoolKey::TargetPath(path))
    })
}

/// Looks a storage volume up by its key: `VIR_ERR_NO_STORAGE_VOL` when there is none.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `key` NULL or a NUL-terminated string.
///
/// Since: 0.4.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virStorageVolLookupByKey(conn: virConnectPtr, key: *const c_char) -> virStorageVolPtr {
    entry(FROM_STORAGE, "virStorageVolLookupByKey", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, key) = unsafe { (call.conn(conn)?, call.string(key, "key")?) };
        let name = conn.driver.storage_vol_lookup(VolumeKey::Key(key))?;
        Ok(Handle::into_ptr(Handle::<StorageVolRef>::new(ObjectRef::new(conn, &name))))
    })
}

/// Looks a storage volume up by its path.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `path` NULL or a NUL-terminated string.
///
/// Since: 0.4.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virStorageVolLookupByPath(conn: virConnectPtr, path: *const c_char) -> virStorageVolPtr {
    entry(FROM_STORAGE, "virStorageVolLookupByPath", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, path) = unsafe { (call.conn(conn)?, call.string(path, "path")?) };
        let name = conn.driver.storage_vol_lookup(VolumeKey::Path(path))?;
        Ok(Handle::into_ptr(Handle::<StorageVolRef>::new(ObjectRef::new(conn, &name))))
    })
}

/// Lists the networks, as `virConnectListAllStoragePools()` lists pools: none here.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `nets` NULL or writable.
///
/// Since: 0.10.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectListAllNetworks(
    conn: virConnectPtr,
    nets: *mut *mut virNetworkPtr,
    flags: c_uint,
) -> c_int {
    if !nets.is_null() {
        // SAFETY: `nets` is writable (contract).
        unsafe { *nets = ptr::null_mut() };
    }
    // SAFETY: forwarded from the contract.
    entry(FROM_NETWORK, "virConnectListAllNetworks", |call| unsafe {
        list_all(call, conn, nets, flags, Objects::Networks, network)
    })
}

/// The number of active networks (0 here).
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.2.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectNumOfNetworks(conn: virConnectPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_NETWORK, "virConnectNumOfNetworks", |call| unsafe { count(call, conn, Objects::Networks, ACTIVE) })
}

/// The number of inactive networks (0 here).
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.2.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectNumOfDefinedNetworks(conn: virConnectPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_NETWORK, "virConnectNumOfDefinedNetworks", |call| unsafe {
        count(call, conn, Objects::Networks, INACTIVE)
    })
}

/// Writes the names of up to `maxnames` active networks into `names`.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `names` NULL or `maxnames` writable slots.
///
/// Since: 0.2.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectListNetworks(
    conn: virConnectPtr,
    names: *mut *mut c_char,
    maxnames: c_int,
) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_NETWORK, "virConnectListNetworks", |call| unsafe {
        list_names(call, conn, names, maxnames, Objects::Networks, ACTIVE)
    })
}

/// Like `virConnectListNetworks()`, for inactive networks.
///
/// # Safety
/// As for `virConnectListNetworks()`.
///
/// Since: 0.2.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectListDefinedNetworks(
    conn: virConnectPtr,
    names: *mut *mut c_char,
    maxnames: c_int,
) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_NETWORK, "virConnectListDefinedNetworks", |call| unsafe {
        list_names(call, conn, names, maxnames, Objects::Networks, INACTIVE)
    })
}

/// Looks a network up by name: `VIR_ERR_NO_NETWORK` when there is none.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `name` NULL or a NUL-terminated string.
///
/// Since: 0.2.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virNetworkLookupByName(conn: virConnectPtr, name: *const c_char) -> virNetworkPtr {
    entry(FROM_NETWORK, "virNetworkLookupByName", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, name) = unsafe { (call.conn(conn)?, call.string(name, "name")?) };
        let found = conn.driver.network_lookup(NetworkKey::Name(name))?;
        Ok(Handle::into_ptr(network(conn, &found)))
    })
}

/// Looks a network up by raw UUID.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `uuid` NULL or `VIR_UUID_BUFLEN` bytes.
///
/// Since: 0.2.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virNetworkLookupByUUID(conn: virConnectPtr, uuid: *const c_uchar) -> virNetworkPtr {
    entry(FROM_NETWORK, "virNetworkLookupByUUID", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, uuid) = unsafe { (call.conn(conn)?, raw_uuid(call, uuid)?) };
        let found = conn.driver.network_lookup(NetworkKey::Uuid(&uuid))?;
        Ok(Handle::into_ptr(network(conn, &found)))
    })
}

/// Looks a network up by UUID in text form.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `uuidstr` NULL or a NUL-terminated string.
///
/// Since: 0.2.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virNetworkLookupByUUIDString(conn: virConnectPtr, uuidstr: *const c_char) -> virNetworkPtr {
    entry(FROM_NETWORK, "virNetworkLookupByUUIDString", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, text) = unsafe { (call.conn(conn)?, call.string(uuidstr, "uuidstr")?) };
        let uuid = text_uuid(call, text)?;
        let found = conn.driver.network_lookup(NetworkKey::Uuid(&uuid))?;
        Ok(Handle::into_ptr(network(conn, &found)))
    })
}
