//! The library's error value, shaped like libvirt's `virError` so that the C boundary can
//! hand it over field by field.
//!
//! libvirt builds error records in two styles, and callers can see the difference in
//! `str1`, `str2` and the `int` fields, so both are kept:
//!
//! * reported errors ([`Error::new`], [`Error::bare`]): the message is the code's fixed
//!   text with the detail appended (`"Domain not found: no domain with matching name"`),
//!   `str1` is the format, `str2` the detail, `int1 = int2 = -1`;
//! * argument checks ([`Error::arg`], [`Error::unsupported_flags`]): the message is given
//!   whole, `str1` is the function name, `str2` the argument name, `int1 = int2 = 0`.

use std::fmt;

pub use crate::abi::{virErrorDomain as Domain, virErrorNumber as Code};

/// An error as libvirt reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub domain: Domain,
    pub message: String,
    pub str1: Option<String>,
    pub str2: Option<String>,
    pub str3: Option<String>,
    pub int1: i32,
    pub int2: i32,
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A reported error with a detail text: `"<code text>: <detail>"`.
    pub fn new(domain: Domain, code: Code, detail: impl Into<String>) -> Error {
        let detail = detail.into();
        let (_, format) = texts(code);
        Error {
            code,
            domain,
            message: format.replacen("%s", &detail, 1),
            str1: Some(format.to_string()),
            str2: Some(detail),
            str3: None,
            int1: -1,
            int2: -1,
        }
    }

    /// A reported error without detail: just the code's short text.
    pub fn bare(domain: Domain, code: Code) -> Error {
        let (short, _) = texts(code);
        Error {
            code,
            domain,
            message: short.to_string(),
            str1: Some(short.to_string()),
            str2: None,
            str3: None,
            int1: -1,
            int2: -1,
        }
    }

    /// An argument-check error: `message` is the whole text, `func` and `arg` name the
    /// function and the argument.
    pub fn arg(domain: Domain, code: Code, func: &str, arg: &str, message: impl Into<String>) -> Error {
        Error {
            code,
            domain,
            message: message.into(),
            str1: Some(func.to_string()),
            str2: Some(arg.to_string()),
            str3: None,
            int1: 0,
            int2: 0,
        }
    }

    /// `"<arg> in <func> must not be NULL"`.
    pub fn null_arg(domain: Domain, func: &str, arg: &str) -> Error {
        Error::arg(domain, Code::VIR_ERR_INVALID_ARG, func, arg, format!("{arg} in {func} must not be NULL"))
    }

    /// The error of a driver's flag check: `"unsupported flags (0x<bits>) in function
    /// <func>"`, where `bits` are only the flags the function does not accept.
    pub fn unsupported_flags(domain: Domain, func: &str, bits: u32) -> Error {
        Error::arg(
            domain,
            Code::VIR_ERR_INVALID_ARG,
            func,
            "flags",
            format!("unsupported flags (0x{bits:x}) in function {func}"),
        )
    }

    /// Fails with [`Error::unsupported_flags`] when `flags` has bits outside `allowed`.
    pub fn check_flags(domain: Domain, func: &str, flags: u32, allowed: u32) -> Result<()> {
        match flags & !allowed {
            0 => Ok(()),
            bits => Err(Error::unsupported_flags(domain, func, bits)),
        }
    }

    /// The error of a public entry point whose driver lacks the operation.
    pub fn no_support(domain: Domain, func: &str) -> Error {
        Error::new(domain, Code::VIR_ERR_NO_SUPPORT, func)
    }

    /// `VIR_ERR_INTERNAL_ERROR` with a detail.
    pub fn internal(domain: Domain, detail: impl Into<String>) -> Error {
        Error::new(domain, Code::VIR_ERR_INTERNAL_ERROR, detail)
    }

    /// An operating-system failure: `"<what>: <strerror>"`, code `VIR_ERR_SYSTEM_ERROR`,
    /// with the errno in `int1` as libvirt records it.
    pub fn system(domain: Domain, what: impl fmt::Display, err: &std::io::Error) -> Error {
        let detail = format!("{what}: {}", strerror(err));
        let mut e = Error::new(domain, Code::VIR_ERR_SYSTEM_ERROR, detail);
        e.int1 = err.raw_os_error().unwrap_or(0);
        e
    }

    /// The error libvirt records when a call fails without saying why.
    pub fn unknown_cause() -> Error {
        Error {
            code: Code::VIR_ERR_INTERNAL_ERROR,
            domain: Domain::VIR_FROM_NONE,
            message: "An error occurred, but the cause is unknown".to_string(),
            str1: None,
            str2: None,
            str3: None,
            int1: 0,
            int2: 0,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The C library's text for an errno value (as `g_strerror` gives it), without Rust's
/// " (os error N)" suffix.
fn strerror(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The short text and the detail format (`%s` marks the detail) of an error code, as
/// libvirt 9.0 words them.
pub fn texts(code: Code) -> (&'static str, &'static str) {
    use Code::*;
    // Most codes read "<short>: <detail>"; `custom` spells out the others.
    macro_rules! table {
        ($($code:ident => $short:literal $(custom $format:literal)?,)*) => {
            match code {
                VIR_ERR_OK => ("", ""),
                $($code => ($short, table!(@format $short $($format)?)),)*
            }
        };
        (@format $short:literal) => { concat!($short, ": %s") };
        (@format $short:literal $format:literal) => { $format };
    }
    table! {
        VIR_ERR_INTERNAL_ERROR => "internal error",
        VIR_ERR_NO_MEMORY => "out of memory",
        VIR_ERR_NO_SUPPORT => "this function is not supported by the connection driver",
        VIR_ERR_UNKNOWN_HOST => "unknown host" custom "unknown host %s",
        VIR_ERR_NO_CONNECT => "no connection driver available" custom "no connection driver available for %s",
        VIR_ERR_INVALID_CONN => "invalid connection pointer in" custom "invalid connection pointer in %s",
        VIR_ERR_INVALID_DOMAIN => "invalid domain pointer in" custom "invalid domain pointer in %s",
        VIR_ERR_INVALID_ARG => "invalid argument",
        VIR_ERR_OPERATION_FAILED => "operation failed",
        VIR_ERR_GET_FAILED => "GET operation failed",
        VIR_ERR_POST_FAILED => "POST operation failed",
        VIR_ERR_HTTP_ERROR => "got unknown HTTP error code" custom "got unknown HTTP error code %s",
        VIR_ERR_SEXPR_SERIAL => "failed to serialize S-Expr",
        VIR_ERR_NO_XEN => "could not use Xen hypervisor entry" custom "could not use Xen hypervisor entry %s",
        VIR_ERR_XEN_CALL => "failed Xen syscall" custom "failed Xen syscall %s",
        VIR_ERR_OS_TYPE => "unknown OS type" custom "unknown OS type %s",
        VIR_ERR_NO_KERNEL => "missing kernel information",
        VIR_ERR_NO_ROOT => "missing root device information" custom "missing root device information in %s",
        VIR_ERR_NO_SOURCE => "missing source information for device" custom "missing source information for device %s",
        VIR_ERR_NO_TARGET => "missing target information for device" custom "missing target information for device %s",
        VIR_ERR_NO_NAME => "missing name information" custom "missing name information in %s",
        VIR_ERR_NO_OS => "missing operating system information" custom "missing operating system information for %s",
        VIR_ERR_NO_DEVICE => "missing devices information" custom "missing devices information for %s",
        VIR_ERR_NO_XENSTORE => "could not connect to Xen Store" custom "could not connect to Xen Store %s",
        VIR_ERR_DRIVER_FULL => "too many drivers registered" custom "too many drivers registered in %s",
        VIR_ERR_CALL_FAILED => "library call failed",
        VIR_ERR_XML_ERROR => "XML description is invalid or not well formed" custom "XML error: %s",
        VIR_ERR_DOM_EXIST => "this domain exists already" custom "domain %s exists already",
        VIR_ERR_OPERATION_DENIED => "operation forbidden for read only access" custom "operation forbidden: %s",
        VIR_ERR_OPEN_FAILED => "failed to open configuration file" custom "failed to open configuration file %s",
        VIR_ERR_READ_FAILED => "failed to read configuration file" custom "failed to read configuration file %s",
        VIR_ERR_PARSE_FAILED => "failed to parse configuration file" custom "failed to parse configuration file %s",
        VIR_ERR_CONF_SYNTAX => "configuration file syntax error",
        VIR_ERR_WRITE_FAILED => "failed to write configuration file",
        VIR_ERR_XML_DETAIL => "parser error" custom "%s",
        VIR_ERR_INVALID_NETWORK => "invalid network pointer in" custom "invalid network pointer in %s",
        VIR_ERR_NETWORK_EXIST => "this network exists already" custom "network %s exists already",
        VIR_ERR_SYSTEM_ERROR => "system call error" custom "%s",
        VIR_ERR_RPC => "RPC error" custom "%s",
        VIR_ERR_GNUTLS_ERROR => "GNUTLS call error" custom "%s",
        VIR_WAR_NO_NETWORK => "Failed to find the network",
        VIR_ERR_NO_DOMAIN => "Domain not found",
        VIR_ERR_NO_NETWORK => "Network not found",
        VIR_ERR_INVALID_MAC => "invalid MAC address",
        VIR_ERR_AUTH_FAILED => "authentication failed",
        VIR_ERR_INVALID_STORAGE_POOL => "invalid storage pool pointer in" custom "invalid storage pool pointer in %s",
        VIR_ERR_INVALID_STORAGE_VOL => "invalid storage volume pointer in" custom "invalid storage volume pointer in %s",
        VIR_WAR_NO_STORAGE => "Failed to find a storage driver",
        VIR_ERR_NO_STORAGE_POOL => "Storage pool not found",
        VIR_ERR_NO_STORAGE_VOL => "Storage volume not found",
        VIR_WAR_NO_NODE => "Failed to find a node driver",
        VIR_ERR_INVALID_NODE_DEVICE => "invalid node device pointer" custom "invalid node device pointer in %s",
        VIR_ERR_NO_NODE_DEVICE => "Node device not found",
        VIR_ERR_NO_SECURITY_MODEL => "Security model not found",
        VIR_ERR_OPERATION_INVALID => "Requested operation is not valid",
        VIR_WAR_NO_INTERFACE => "Failed to find the interface",
        VIR_ERR_NO_INTERFACE => "Interface not found",
        VIR_ERR_INVALID_INTERFACE => "invalid interface pointer in" custom "invalid interface pointer in %s",
        VIR_ERR_MULTIPLE_INTERFACES => "multiple matching interfaces found",
        VIR_WAR_NO_NWFILTER => "Failed to start the nwfilter driver",
        VIR_ERR_INVALID_NWFILTER => "Invalid network filter",
        VIR_ERR_NO_NWFILTER => "Network filter not found",
        VIR_ERR_BUILD_FIREWALL => "Error while building firewall",
        VIR_WAR_NO_SECRET => "Failed to find a secret storage driver",
        VIR_ERR_INVALID_SECRET => "Invalid secret",
        VIR_ERR_NO_SECRET => "Secret not found",
        VIR_ERR_CONFIG_UNSUPPORTED => "unsupported configuration",
        VIR_ERR_OPERATION_TIMEOUT => "Timed out during operation",
        VIR_ERR_MIGRATE_PERSIST_FAILED => "Failed to make domain persistent after migration",
        VIR_ERR_HOOK_SCRIPT_FAILED => "Hook script execution failed",
        VIR_ERR_INVALID_DOMAIN_SNAPSHOT => "Invalid domain snapshot",
        VIR_ERR_NO_DOMAIN_SNAPSHOT => "Domain snapshot not found",
        VIR_ERR_INVALID_STREAM => "invalid stream pointer" custom "invalid stream pointer in %s",
        VIR_ERR_ARGUMENT_UNSUPPORTED => "argument unsupported",
        VIR_ERR_STORAGE_PROBE_FAILED => "Storage pool probe failed",
        VIR_ERR_STORAGE_POOL_BUILT => "Storage pool already built",
        VIR_ERR_SNAPSHOT_REVERT_RISKY => "revert requires force",
        VIR_ERR_OPERATION_ABORTED => "operation aborted",
        VIR_ERR_AUTH_CANCELLED => "authentication cancelled",
        VIR_ERR_NO_DOMAIN_METADATA => "metadata not found",
        VIR_ERR_MIGRATE_UNSAFE => "Unsafe migration",
        VIR_ERR_OVERFLOW => "numerical overflow",
        VIR_ERR_BLOCK_COPY_ACTIVE => "block copy still active",
        VIR_ERR_OPERATION_UNSUPPORTED => "Operation not supported",
        VIR_ERR_SSH => "SSH transport error",
        VIR_ERR_AGENT_UNRESPONSIVE => "Guest agent is not responding",
        VIR_ERR_RESOURCE_BUSY => "resource busy",
        VIR_ERR_ACCESS_DENIED => "access denied",
        VIR_ERR_DBUS_SERVICE => "error from service",
        VIR_ERR_STORAGE_VOL_EXIST => "this storage volume exists already" custom "storage volume %s exists already",
        VIR_ERR_CPU_INCOMPATIBLE => "the CPU is incompatible with host CPU",
        VIR_ERR_XML_INVALID_SCHEMA => "XML document failed to validate against schema",
        VIR_ERR_MIGRATE_FINISH_OK => "migration successfully aborted",
        VIR_ERR_AUTH_UNAVAILABLE => "authentication unavailable",
        VIR_ERR_NO_SERVER => "Server not found",
        VIR_ERR_NO_CLIENT => "Client not found",
        VIR_ERR_AGENT_UNSYNCED => "guest agent replied with wrong id to guest-sync command",
        VIR_ERR_LIBSSH => "libssh transport error",
        VIR_ERR_DEVICE_MISSING => "device not found",
        VIR_ERR_INVALID_NWFILTER_BINDING => "Invalid network filter binding",
        VIR_ERR_NO_NWFILTER_BINDING => "Network filter binding not found",
        VIR_ERR_INVALID_DOMAIN_CHECKPOINT => "Invalid domain checkpoint",
        VIR_ERR_NO_DOMAIN_CHECKPOINT => "Domain checkpoint not found",
        VIR_ERR_NO_DOMAIN_BACKUP => "Domain backup job id not found",
        VIR_ERR_INVALID_NETWORK_PORT => "Invalid network port pointer",
        VIR_ERR_NETWORK_PORT_EXIST => "this network port exists already" custom "network port %s exists already",
        VIR_ERR_NO_NETWORK_PORT => "network port not found",
        VIR_ERR_NO_HOSTNAME => "no hostname found",
        VIR_ERR_CHECKPOINT_INCONSISTENT => "checkpoint inconsistent",
        VIR_ERR_MULTIPLE_DOMAINS => "multiple matching domains found",
    }
}

/// The name libvirt prints for an error domain in `libvirt: <name> error : <message>`.
pub fn domain_name(domain: i32) -> &'static str {
    const NAMES: [&str; 73] = [
        "",
        "Xen Driver",
        "Xen Daemon",
        "Xen Store",
        "S-Expression",
        "XML Util",
        "Domain",
        "XML-RPC",
        "Proxy Daemon",
        "Config File",
        "QEMU Driver",
        "Network",
        "Test Driver",
        "Remote Driver",
        "OpenVZ Driver",
        "Xen XM Driver",
        "Linux Statistics",
        "LXC Driver",
        "Storage Driver",
        "Network Driver",
        "Domain Config",
        "User Mode Linux Driver",
        "Node Device Driver",
        "Xen Inotify Driver",
        "Security Driver",
        "VirtualBox Driver",
        "Network Interface Driver",
        "Open Nebula Driver",
        "ESX Driver",
        "Power Hypervisor Driver",
        "Secrets Driver",
        "CPU Driver",
        "XenAPI Driver",
        "Network Filter Driver",
        "Lifecycle Hook",
        "Domain Snapshot",
        "Audit Utils",
        "Sysinfo Utils",
        "I/O Stream Utils",
        "VMware Driver",
        "Event Loop",
        "Xen Light Driver",
        "Lock Driver",
        "Hyper-V Driver",
        "Capabilities Utils",
        "URI Utils",
        "Authentication Utils",
        "DBus Utils",
        "Parallels Cloud Server",
        "Device Config",
        "SSH transport layer",
        "Lock Space",
        "Init control",
        "Identity",
        "Cgroup",
        "Access Manager",
        "Systemd",
        "Bhyve",
        "Crypto",
        "Firewall",
        "Polkit",
        "Thread jobs",
        "Admin Interface",
        "Log Manager",
        "Xen XL Config",
        "Perf",
        "Libssh transport layer",
        "Resource control",
        "FirewallD",
        "Domain Checkpoint",
        "TPM",
        "BPF",
        "Cloud-Hypervisor Driver",
    ];
    usize::try_from(domain).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or("Unknown")
}

/// The code with this number, if libvirt 9.0 has one.
pub fn code_from_i32(n: i32) -> Option<Code> {
    use Code::*;
    const ALL: [Code; 111] = [
        VIR_ERR_OK,
        VIR_ERR_INTERNAL_ERROR,
        VIR_ERR_NO_MEMORY,
        VIR_ERR_NO_SUPPORT,
        VIR_ERR_UNKNOWN_HOST,
        VIR_ERR_NO_CONNECT,
        VIR_ERR_INVALID_CONN,
        VIR_ERR_INVALID_DOMAIN,
        VIR_ERR_INVALID_ARG,
        VIR_ERR_OPERATION_FAILED,
        VIR_ERR_GET_FAILED,
        VIR_ERR_POST_FAILED,
        VIR_ERR_HTTP_ERROR,
        VIR_ERR_SEXPR_SERIAL,
        VIR_ERR_NO_XEN,
        VIR_ERR_XEN_CALL,
        VIR_ERR_OS_TYPE,
        VIR_ERR_NO_KERNEL,
        VIR_ERR_NO_ROOT,
        VIR_ERR_NO_SOURCE,
        VIR_ERR_NO_TARGET,
        VIR_ERR_NO_NAME,
        VIR_ERR_NO_OS,
        VIR_ERR_NO_DEVICE,
        VIR_ERR_NO_XENSTORE,
        VIR_ERR_DRIVER_FULL,
        VIR_ERR_CALL_FAILED,
        VIR_ERR_XML_ERROR,
        VIR_ERR_DOM_EXIST,
        VIR_ERR_OPERATION_DENIED,
        VIR_ERR_OPEN_FAILED,
        VIR_ERR_READ_FAILED,
        VIR_ERR_PARSE_FAILED,
        VIR_ERR_CONF_SYNTAX,
        VIR_ERR_WRITE_FAILED,
        VIR_ERR_XML_DETAIL,
        VIR_ERR_INVALID_NETWORK,
        VIR_ERR_NETWORK_EXIST,
        VIR_ERR_SYSTEM_ERROR,
        VIR_ERR_RPC,
        VIR_ERR_GNUTLS_ERROR,
        VIR_WAR_NO_NETWORK,
        VIR_ERR_NO_DOMAIN,
        VIR_ERR_NO_NETWORK,
        VIR_ERR_INVALID_MAC,
        VIR_ERR_AUTH_FAILED,
        VIR_ERR_INVALID_STORAGE_POOL,
        VIR_ERR_INVALID_STORAGE_VOL,
        VIR_WAR_NO_STORAGE,
        VIR_ERR_NO_STORAGE_POOL,
        VIR_ERR_NO_STORAGE_VOL,
        VIR_WAR_NO_NODE,
        VIR_ERR_INVALID_NODE_DEVICE,
        VIR_ERR_NO_NODE_DEVICE,
        VIR_ERR_NO_SECURITY_MODEL,
        VIR_ERR_OPERATION_INVALID,
        VIR_WAR_NO_INTERFACE,
        VIR_ERR_NO_INTERFACE,
        VIR_ERR_INVALID_INTERFACE,
        VIR_ERR_MULTIPLE_INTERFACES,
        VIR_WAR_NO_NWFILTER,
        VIR_ERR_INVALID_NWFILTER,
        VIR_ERR_NO_NWFILTER,
        VIR_ERR_BUILD_FIREWALL,
        VIR_WAR_NO_SECRET,
        VIR_ERR_INVALID_SECRET,
        VIR_ERR_NO_SECRET,
        VIR_ERR_CONFIG_UNSUPPORTED,
        VIR_ERR_OPERATION_TIMEOUT,
        VIR_ERR_MIGRATE_PERSIST_FAILED,
        VIR_ERR_HOOK_SCRIPT_FAILED,
        VIR_ERR_INVALID_DOMAIN_SNAPSHOT,
        VIR_ERR_NO_DOMAIN_SNAPSHOT,
        VIR_ERR_INVALID_STREAM,
        VIR_ERR_ARGUMENT_UNSUPPORTED,
        VIR_ERR_STORAGE_PROBE_FAILED,
        VIR_ERR_STORAGE_POOL_BUILT,
        VIR_ERR_SNAPSHOT_REVERT_RISKY,
        VIR_ERR_OPERATION_ABORTED,
        VIR_ERR_AUTH_CANCELLED,
        VIR_ERR_NO_DOMAIN_METADATA,
        VIR_ERR_MIGRATE_UNSAFE,
        VIR_ERR_OVERFLOW,
        VIR_ERR_BLOCK_COPY_ACTIVE,
        VIR_ERR_OPERATION_UNSUPPORTED,
        VIR_ERR_SSH,
        VIR_ERR_AGENT_UNRESPONSIVE,
        VIR_ERR_RESOURCE_BUSY,
        VIR_ERR_ACCESS_DENIED,
        VIR_ERR_DBUS_SERVICE,
        VIR_ERR_STORAGE_VOL_EXIST,
        VIR_ERR_CPU_INCOMPATIBLE,
        VIR_ERR_XML_INVALID_SCHEMA,
        VIR_ERR_MIGRATE_FINISH_OK,
        VIR_ERR_AUTH_UNAVAILABLE,
        VIR_ERR_NO_SERVER,
        VIR_ERR_NO_CLIENT,
        VIR_ERR_AGENT_UNSYNCED,
        VIR_ERR_LIBSSH,
        VIR_ERR_DEVICE_MISSING,
        VIR_ERR_INVALID_NWFILTER_BINDING,
        VIR_ERR_NO_NWFILTER_BINDING,
        VIR_ERR_INVALID_DOMAIN_CHECKPOINT,
        VIR_ERR_NO_DOMAIN_CHECKPOINT,
        VIR_ERR_NO_DOMAIN_BACKUP,
        VIR_ERR_INVALID_NETWORK_PORT,
        VIR_ERR_NETWORK_PORT_EXIST,
        VIR_ERR_NO_NETWORK_PORT,
        VIR_ERR_NO_HOSTNAME,
        VIR_ERR_CHECKPOINT_INCONSISTENT,
        VIR_ERR_MULTIPLE_DOMAINS,
    ];
    usize::try_from(n).ok().and_then(|i| ALL.get(i)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_indexed_by_value() {
        for n in 0..111 {
            assert_eq!(code_from_i32(n).map(|c| c as i32), Some(n));
        }
        assert_eq!(code_from_i32(111), None);
        assert_eq!(code_from_i32(-1), None);
    }

    #[test]
    fn reported_error_has_format_and_detail() {
        let e = Error::new(
            Domain::VIR_FROM_TEST,
            Code::VIR_ERR_NO_DOMAIN_CHECKPOINT,
            "no domain checkpoint with matching name 'x'",
        );
        assert_eq!(e.message, "Domain checkpoint not found: no domain checkpoint with matching name 'x'");
        assert_eq!(e.str1.as_deref(), Some("Domain checkpoint not found: %s"));
        assert_eq!((e.int1, e.int2), (-1, -1));
        let e = Error::new(Domain::VIR_FROM_NONE, Code::VIR_ERR_NO_CONNECT, "x:///");
        assert_eq!(e.message, "no connection driver available for x:///");
        let e = Error::new(Domain::VIR_FROM_DOMAIN, Code::VIR_ERR_XML_DETAIL, "raw");
        assert_eq!(e.message, "raw");
    }

    #[test]
    fn bare_error_is_short_text() {
        let e = Error::bare(Domain::VIR_FROM_TEST, Code::VIR_ERR_NO_DOMAIN);
        assert_eq!(e.message, "Domain not found");
        assert_eq!(e.str2, None);
    }

    #[test]
    fn flag_check_names_only_the_bad_bits() {
        let e = Error::check_flags(Domain::VIR_FROM_TEST, "f", 0x13, 0x3).unwrap_err();
        assert_eq!(e.message, "unsupported flags (0x10) in function f");
        assert_eq!((e.str1.as_deref(), e.str2.as_deref(), e.int1), (Some("f"), Some("flags"), 0));
        assert!(Error::check_flags(Domain::VIR_FROM_TEST, "f", 0x3, 0x3).is_ok());
    }

    #[test]
    fn every_code_has_a_one_slot_format() {
        for n in 1..111 {
            let (short, format) = texts(code_from_i32(n).unwrap());
            assert!(!short.is_empty(), "{n}");
            assert_eq!(format.matches("%s").count(), 1, "{n}");
        }
    }

    #[test]
    fn domain_names() {
        assert_eq!(domain_name(12), "Test Driver");
        assert_eq!(domain_name(69), "Domain Checkpoint");
        assert_eq!(domain_name(72), "Cloud-Hypervisor Driver");
        assert_eq!(domain_name(73), "Unknown");
        assert_eq!(domain_name(-3), "Unknown");
    }

    #[test]
    fn system_error_keeps_errno() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = Error::system(Domain::VIR_FROM_QEMU, "cannot open '/x'", &io);
        assert_eq!(e.message, "cannot open '/x': No such file or directory");
        assert_eq!(e.int1, 2);
    }
}
