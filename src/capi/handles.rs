//! The objects behind `virConnectPtr`, `virDomainPtr` and the other opaque handles.
//!
//! A handle is an `Arc` whose raw pointer is what C sees. C references are strong counts
//! of the `Arc`, so a connection stays alive while domain handles (each holding an `Arc`
//! of it) are alive. The first field is a magic number naming the handle's kind: a NULL
//! pointer or a handle of another kind is refused before anything else is read, and a
//! released handle has its magic cleared.

use std::ffi::{CStr, CString};
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::error::{ErrorRecord, Handler};
use crate::abi::{
    _virConnect, _virDomain, _virDomainCheckpoint, _virDomainSnapshot, _virInterface, _virNWFilter,
    _virNWFilterBinding, _virNetwork, _virNetworkPort, _virNodeDevice, _virSecret, _virStoragePool, _virStorageVol,
    _virStream,
};
use crate::driver::{DomainId, Driver};
use crate::error::{Code, Domain};

/// A kind of handle: its magic number and the opaque C type its pointers have.
pub trait HandleKind: Send + Sync + 'static {
    const MAGIC: u64;
    type Opaque;
}

/// A reference-counted object handed to C as `*mut Kind::Opaque`.
#[repr(C)]
pub struct Handle<T: HandleKind> {
    magic: AtomicU64,
    value: T,
}

impl<T: HandleKind> Handle<T> {
    /// Wraps a value in a new handle with one reference.
    pub fn new(value: T) -> Arc<Handle<T>> {
        Arc::new(Handle { magic: AtomicU64::new(T::MAGIC), value })
    }

    /// Takes a new reference on the handle behind `ptr`, or `None` when `ptr` is NULL or
    /// not a live handle of this kind.
    ///
    /// # Safety
    /// `ptr` must be NULL or point to readable memory at least as large as the magic
    /// field. When the magic matches, `ptr` must come from [`Handle::into_ptr`] of this
    /// kind and still hold at least one reference.
    pub unsafe fn from_ptr(ptr: *mut T::Opaque) -> Option<Arc<Handle<T>>> {
        if ptr.is_null() {
            return None;
        }
        let handle = ptr as *const Handle<T>;
        // SAFETY: `ptr` is non-NULL and readable (contract); `magic` is the first field of
        // a #[repr(C)] struct.
        let magic = unsafe { (*handle).magic.load(Ordering::Acquire) };
        if magic != T::MAGIC {
            return None;
        }
        // SAFETY: the magic says this is a live handle of this kind from `Arc::into_raw`.
        unsafe {
            Arc::increment_strong_count(handle);
            Some(Arc::from_raw(handle))
        }
    }

    /// Hands one reference to C.
    pub fn into_ptr(this: Arc<Handle<T>>) -> *mut T::Opaque {
        Arc::into_raw(this) as *mut T::Opaque
    }

    /// The C pointer of a handle, without adding a reference (for getters that return a
    /// borrowed handle).
    pub fn as_ptr(this: &Arc<Handle<T>>) -> *mut T::Opaque {
        Arc::as_ptr(this) as *mut T::Opaque
    }

    /// Drops one C reference. The caller must hold its own `Arc` (from
    /// [`Handle::from_ptr`]) so the object outlives this call; the number of references
    /// left besides that one is returned.
    ///
    /// # Safety
    /// `ptr` must be the pointer of `this`, and the caller must own the C reference
    /// being dropped.
    pub unsafe fn release(this: &Arc<Handle<T>>, ptr: *mut T::Opaque) -> usize {
        // SAFETY: the caller owns one C reference of this Arc (contract).
        unsafe { Arc::decrement_strong_count(ptr as *const Handle<T>) };
        Arc::strong_count(this) - 1
    }
}

impl<T: HandleKind> Deref for Handle<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: HandleKind> Drop for Handle<T> {
    fn drop(&mut self) {
        self.magic.store(0, Ordering::Release);
    }
}

/// What a `virConnectPtr` holds.
pub struct Connection {
    pub uri: String,
    pub read_only: bool,
    pub driver: Arc<dyn Driver>,
    /// `virConnectGetType()`'s answer; owned here because C gets a `const char *`.
    pub type_name: CString,
    /// The connection's copy of the last error (`virConnGetLastError()`).
    pub(crate) last_error: Mutex<ErrorRecord>,
    /// The connection's error callback (`virConnSetErrorFunc()`).
    pub(crate) handler: Mutex<Handler>,
    /// The callback `virConnectRegisterCloseCallback()` registered.
    pub(crate) close_callback: Mutex<Option<CloseCallback>>,
}

/// A close callback and its data. The in-process drivers never lose their connection,
/// so the callback is never called; its free function runs when it is unregistered or
/// replaced, or when the connection goes.
pub struct CloseCallback {
    pub cb: crate::abi::virConnectCloseFunc,
    pub opaque: usize,
    pub free: crate::abi::virFreeCallback,
}

impl CloseCallback {
    /// Releases the application's data with its free function.
    pub fn release(self) {
        if let Some(free) = self.free {
            // SAFETY: the application registered `free` for exactly this data.
            unsafe { free(self.opaque as *mut std::ffi::c_void) };
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(callback) = self.close_callback.get_mut().take() {
            callback.release();
        }
    }
}

impl HandleKind for Connection {
    const MAGIC: u64 = u64::from_le_bytes(*b"vbConnct");
    type Opaque = _virConnect;
}

/// The handle type of connections.
pub type ConnectHandle = Handle<Connection>;

impl Connection {
    /// A connection to `driver` under the URI the caller gave.
    pub fn new(uri: String, read_only: bool, driver: Arc<dyn Driver>) -> Arc<ConnectHandle> {
        let type_name = CString::new(driver.connect_get_type()).unwrap_or_default();
        Handle::new(Connection {
            uri,
            read_only,
            driver,
            type_name,
            last_error: Mutex::new(ErrorRecord::empty()),
            handler: Mutex::new(Handler::none()),
            close_callback: Mutex::new(None),
        })
    }
}

/// What a `virDomainPtr` holds: the domain's identity and a reference on the connection.
pub struct DomainRef {
    pub conn: Arc<ConnectHandle>,
    pub id: DomainId,
    /// `virDomainGetName()`'s answer; owned here because C gets a `const char *`.
    pub name: CString,
    /// The id `virDomainGetID()` reports: the live id when the handle was made, updated
    /// when the domain is started or stopped through this handle (as libvirt does).
    live_id: AtomicI32,
}

impl HandleKind for DomainRef {
    const MAGIC: u64 = u64::from_le_bytes(*b"vbDomain");
    type Opaque = _virDomain;
}

/// The handle type of domains.
pub type DomainHandle = Handle<DomainRef>;

impl DomainRef {
    /// A new handle (one reference) for a domain of `conn`.
    pub fn new(conn: Arc<ConnectHandle>, id: DomainId) -> Arc<DomainHandle> {
        let name = CString::new(id.name.clone()).unwrap_or_default();
        let live_id = AtomicI32::new(id.id);
        Handle::new(DomainRef { conn, id, name, live_id })
    }

    /// The id as `virDomainGetID()` reports it.
    pub fn live_id(&self) -> i32 {
        self.live_id.load(Ordering::Relaxed)
    }

    /// Records a new live id (-1 once stopped).
    pub fn set_live_id(&self, id: i32) {
        self.live_id.store(id, Ordering::Relaxed);
    }

    /// The name as C sees it.
    pub fn c_name(&self) -> &CStr {
        &self.name
    }
}

/// What a `virDomainCheckpointPtr` holds: a name and a reference on the domain handle.
pub struct CheckpointRef {
    pub domain: Arc<DomainHandle>,
    pub name: String,
    /// `virDomainCheckpointGetName()`'s answer.
    c_name: CString,
}

impl HandleKind for CheckpointRef {
    const MAGIC: u64 = u64::from_le_bytes(*b"vbChkpnt");
    type Opaque = _virDomainCheckpoint;
}

/// The handle type of checkpoints.
pub type CheckpointHandle = Handle<CheckpointRef>;

impl CheckpointRef {
    /// A new handle (one reference) for checkpoint `name` of `domain`.
    pub fn new(domain: Arc<DomainHandle>, name: String) -> Arc<CheckpointHandle> {
        let c_name = CString::new(name.clone()).unwrap_or_default();
        Handle::new(CheckpointRef { domain, name, c_name })
    }

    /// The name as C sees it.
    pub fn c_name(&self) -> &CStr {
        &self.c_name
    }
}

/// A kind of handle for the objects of libvirt's other drivers (networks, storage,
/// streams, ...): what its public checks report when a pointer is not a live handle of
/// the kind, and the connection it belongs to.
pub trait ObjectKind: HandleKind {
    /// The error domain and code of libvirt's check of this kind of handle.
    const INVALID: (Domain, Code);
    fn conn(&self) -> &Arc<ConnectHandle>;
}

/// The handle of an object of a kind that virbackup has no driver for: lookups never
/// find one, so such handles exist only where libvirt makes them without a driver
/// (`virStreamNew()`). It names its object and holds a reference on the connection.
pub struct ObjectRef<K> {
    pub conn: Arc<ConnectHandle>,
    pub name: CString,
    kind: std::marker::PhantomData<K>,
}

impl<K> ObjectRef<K> {
    pub fn new(conn: Arc<ConnectHandle>, name: &str) -> ObjectRef<K> {
        ObjectRef { conn, name: CString::new(name).unwrap_or_default(), kind: std::marker::PhantomData }
    }
}

macro_rules! object_kinds {
    ($($(#[$doc:meta])* $alias:ident = $marker:ident, $opaque:ty, $magic:literal, $from:ident, $code:ident;)*) => {$(
        $(#[$doc])*
        pub struct $marker;
        $(#[$doc])*
        pub type $alias = ObjectRef<$marker>;
        impl HandleKind for ObjectRef<$marker> {
            const MAGIC: u64 = u64::from_le_bytes(*$magic);
            type Opaque = $opaque;
        }
        impl ObjectKind for ObjectRef<$marker> {
            const INVALID: (Domain, Code) = (Domain::$from, Code::$code);
            fn conn(&self) -> &Arc<ConnectHandle> {
                &self.conn
            }
        }
    )*};
}

object_kinds! {
    /// `virNetworkPtr`.
    NetworkRef = NetworkKind, _virNetwork, b"vbNetwrk", VIR_FROM_NETWORK, VIR_ERR_INVALID_NETWORK;
    /// `virNetworkPortPtr`.
    NetworkPortRef = NetworkPortKind, _virNetworkPort, b"vbNetPrt", VIR_FROM_NETWORK, VIR_ERR_INVALID_NETWORK_PORT;
    /// `virInterfacePtr`.
    InterfaceRef = InterfaceKind, _virInterface, b"vbIfface", VIR_FROM_INTERFACE, VIR_ERR_INVALID_INTERFACE;
    /// `virStoragePoolPtr`.
    StoragePoolRef = StoragePoolKind, _virStoragePool, b"vbStPool", VIR_FROM_STORAGE, VIR_ERR_INVALID_STORAGE_POOL;
    /// `virStorageVolPtr`.
    StorageVolRef = StorageVolKind, _virStorageVol, b"vbStrVol", VIR_FROM_STORAGE, VIR_ERR_INVALID_STORAGE_VOL;
    /// `virNodeDevicePtr`.
    NodeDeviceRef = NodeDeviceKind, _virNodeDevice, b"vbNodDev", VIR_FROM_NODEDEV, VIR_ERR_INVALID_NODE_DEVICE;
    /// `virSecretPtr`.
    SecretRef = SecretKind, _virSecret, b"vbSecret", VIR_FROM_SECRET, VIR_ERR_INVALID_SECRET;
    /// `virStreamPtr`.
    StreamRef = StreamKind, _virStream, b"vbStream", VIR_FROM_STREAMS, VIR_ERR_INVALID_STREAM;
    /// `virNWFilterPtr`.
    NWFilterRef = NWFilterKind, _virNWFilter, b"vbNWFltr", VIR_FROM_NWFILTER, VIR_ERR_INVALID_NWFILTER;
    /// `virNWFilterBindingPtr`.
    NWFilterBindingRef = NWFilterBindingKind, _virNWFilterBinding, b"vbNWBind", VIR_FROM_NWFILTER,
        VIR_ERR_INVALID_NWFILTER_BINDING;
}

/// What a `virDomainSnapshotPtr` holds: a name and a reference on the domain handle.
pub struct SnapshotRef {
    pub domain: Arc<DomainHandle>,
    pub name: String,
    /// `virDomainSnapshotGetName()`'s answer.
    c_name: CString,
}

/// The handle type of snapshots.
pub type SnapshotHandle = Handle<SnapshotRef>;

impl SnapshotRef {
    /// A new handle (one reference) for snapshot `name` of `domain`.
    pub fn new(domain: Arc<DomainHandle>, name: String) -> Arc<SnapshotHandle> {
        let c_name = CString::new(name.clone()).unwrap_or_default();
        Handle::new(SnapshotRef { domain, name, c_name })
    }

    /// The name as C sees it.
    pub fn c_name(&self) -> &CStr {
        &self.c_name
    }
}

impl HandleKind for SnapshotRef {
    const MAGIC: u64 = u64::from_le_bytes(*b"vbSnapst");
    type Opaque = _virDomainSnapshot;
}

impl ObjectKind for SnapshotRef {
    const INVALID: (Domain, Code) = (Domain::VIR_FROM_DOMAIN_SNAPSHOT, Code::VIR_ERR_INVALID_DOMAIN_SNAPSHOT);
    fn conn(&self) -> &Arc<ConnectHandle> {
        &self.domain.conn
    }
}

static_assertions::assert_impl_all!(ConnectHandle: Send, Sync);
static_assertions::assert_impl_all!(CheckpointHandle: Send, Sync);
static_assertions::assert_impl_all!(SnapshotHandle: Send, Sync);
static_assertions::assert_impl_all!(DomainHandle: Send, Sync);
static_assertions::assert_not_impl_any!(ConnectHandle: Clone, Copy);
