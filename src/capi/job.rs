//! Backup and job entry points (`libvirt-domain.c`).

use std::ffi::{c_char, c_int, c_uint, c_ulong};
use std::ptr;

use super::alloc::malloc_string;
use super::entry;
use super::typedparams::malloc_params;
use crate::abi::{
    virDomainBlockJobInfo, virDomainBlockJobInfoPtr, virDomainJobInfo, virDomainJobInfoPtr, virDomainPtr,
    virTypedParameterPtr,
};
use crate::error::Domain;

const FROM: Domain = Domain::VIR_FROM_DOMAIN;

/// Starts a backup job described by `<domainbackup>` XML: push (copy the disks into
/// target files) or pull (export a point-in-time view of them over NBD). With
/// `checkpointXML`, a checkpoint is created at the same instant. Returns 0 once the job
/// runs; it ends on its own (push) or with `virDomainAbortJob()` (pull), and raises
/// `VIR_DOMAIN_EVENT_ID_JOB_COMPLETED` when it ends. Flags: `virDomainBackupBeginFlags`.
///
/// # Safety
/// `domain` must be NULL or a domain handle; the XML arguments NULL or NUL-terminated.
///
/// Since: 6.0.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainBackupBegin(
    domain: virDomainPtr,
    backupXML: *const c_char,
    checkpointXML: *const c_char,
    flags: c_uint,
) -> c_int {
    entry(FROM, "virDomainBackupBegin", |call| {
        // SAFETY: forwarded from the contract.
        let (dom, backup) = unsafe { (call.domain(domain)?, call.string(backupXML, "backupXML")?) };
        call.writable(&dom.conn)?;
        let checkpoint = if checkpointXML.is_null() {
            None
        } else {
            // SAFETY: forwarded from the contract.
            Some(unsafe { call.string(checkpointXML, "checkpointXML")? })
        };
        dom.conn.driver.backup_begin(&dom.id, backup, checkpoint, flags)?;
        Ok(0)
    })
}

/// Returns the running backup's `<domainbackup>` XML with every default filled in; the
/// caller frees it with `free()`. `flags` must be 0.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 6.0.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainBackupGetXMLDesc(domain: virDomainPtr, flags: c_uint) -> *mut c_char {
    entry(FROM, "virDomainBackupGetXMLDesc", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        malloc_string(&dom.conn.driver.backup_get_xml_desc(&dom.id, flags)?)
    })
}

/// Aborts the domain's job. A pull backup ends successfully this way; a push backup is
/// cancelled and the target files it created are removed. Returns 0 once the job was
/// told to stop, or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.7.7
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainAbortJob(domain: virDomainPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe { abort(domain, 0, "virDomainAbortJob") }
}

/// Like `virDomainAbortJob()`, with `virDomainAbortJobFlagsValues`.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 8.5.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainAbortJobFlags(domain: virDomainPtr, flags: c_uint) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe { abort(domain, flags, "virDomainAbortJobFlags") }
}

/// # Safety
/// `domain` must be NULL or a domain handle.
unsafe fn abort(domain: virDomainPtr, flags: c_uint, api: &'static str) -> c_int {
    entry(FROM, api, |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.writable(&dom.conn)?;
        dom.conn.driver.domain_abort_job(&dom.id, flags)?;
        Ok(0)
    })
}

/// Fills `info` with the progress of the domain's job (`type` NONE when there is none).
/// Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `info` NULL or writable.
///
/// Since: 0.7.7
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetJobInfo(domain: virDomainPtr, info: virDomainJobInfoPtr) -> c_int {
    entry(FROM, "virDomainGetJobInfo", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.non_null(info, "info")?;
        // SAFETY: `info` is writable (contract).
        unsafe { info.write(virDomainJobInfo::default()) };
        let job = dom.conn.driver.domain_get_job_info(&dom.id)?;
        // SAFETY: as above.
        unsafe {
            info.write(virDomainJobInfo {
                r#type: job.job_type,
                timeElapsed: job.elapsed_ms,
                dataTotal: job.data_total,
                dataProcessed: job.data_processed,
                dataRemaining: job.data_remaining,
                fileTotal: job.file_total,
                fileProcessed: job.file_processed,
                fileRemaining: job.file_remaining,
                ..Default::default()
            })
        };
        Ok(0)
    })
}

/// Reports the statistics of the domain's job (or, with `VIR_DOMAIN_JOB_STATS_COMPLETED`,
/// of the last completed one) as typed parameters the caller frees with
/// `virTypedParamsFree()`. Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; the out pointers NULL or writable.
///
/// Since: 1.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetJobStats(
    domain: virDomainPtr,
    r#type: *mut c_int,
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    flags: c_uint,
) -> c_int {
    entry(FROM, "virDomainGetJobStats", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.non_null(r#type, "type")?;
        call.non_null(params, "params")?;
        call.non_null(nparams, "nparams")?;
        let stats = dom.conn.driver.domain_get_job_stats(&dom.id, flags)?;
        let (array, n) = if stats.params.is_empty() { (ptr::null_mut(), 0) } else { malloc_params(&stats.params)? };
        // SAFETY: the out pointers are non-NULL and writable (contract).
        unsafe {
            *r#type = stats.job_type;
            *params = array;
            *nparams = n;
        }
        Ok(0)
    })
}

/// Reports the block job on a disk (named by target or source path): 1 and `info` when a
/// job runs (a backup shows as `VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP`), 0 when none, -1 on
/// error.
///
/// # Safety
/// `dom` must be NULL or a domain handle; `disk` NULL or NUL-terminated; `info` NULL or
/// writable.
///
/// Since: 0.9.4
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetBlockJobInfo(
    dom: virDomainPtr,
    disk: *const c_char,
    info: virDomainBlockJobInfoPtr,
    flags: c_uint,
) -> c_int {
    entry(FROM, "virDomainGetBlockJobInfo", |call| {
        // SAFETY: forwarded from the contract.
        let (dom, disk) = unsafe { (call.domain(dom)?, call.string(disk, "disk")?) };
        call.non_null(info, "info")?;
        // SAFETY: `info` is writable (contract).
        unsafe { info.write(virDomainBlockJobInfo::default()) };
        match dom.conn.driver.domain_get_block_job_info(&dom.id, disk, flags)? {
            None => Ok(0),
            Some(job) => {
                // SAFETY: as above.
                unsafe {
                    info.write(virDomainBlockJobInfo {
                        r#type: job.job_type,
                        bandwidth: job.bandwidth as c_ulong,
                        cur: job.cur,
                        end: job.end,
                    })
                };
                Ok(1)
            }
        }
    })
}

/// Ends the block job on a disk (named by target or source path). For the disk of a
/// backup this ends the whole backup, as `virDomainAbortJob()` does; without
/// `VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC` the call returns once the job has ended.
/// `VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT` does not apply to backups. Returns 0 or -1.
///
/// # Safety
/// `dom` must be NULL or a domain handle; `disk` NULL or a NUL-terminated string.
///
/// Since: 0.9.4
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainBlockJobAbort(dom: virDomainPtr, disk: *const c_char, flags: c_uint) -> c_int {
    entry(FROM, "virDomainBlockJobAbort", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(dom)? };
        call.read_only()?;
        // SAFETY: forwarded from the contract.
        let disk = unsafe { call.string(disk, "disk")? };
        dom.conn.driver.domain_block_job_abort(&dom.id, disk, flags)?;
        Ok(0)
    })
}
