//! The embedded QEMU driver, `qemu:///embed?root=DIR` and `qemu:///session`: domains
//! defined from libvirt XML, their disks owned by a QEMU block layer reached over QMP
//! (see [`crate::engine`]), checkpoints kept as persistent qcow2 dirty bitmaps, and all
//! state under DIR (see [`store`]).
//!
//! Unlike libvirt's QEMU driver, checkpoints of shut-off domains work: the driver starts
//! a `qemu-storage-daemon` on the disks for the operation and stops it afterwards.
//!
//! Several processes may use the same root: every operation holds an exclusive lock on
//! `DIR/run/qemu/.lock`, and a generation counter tells a process when another one
//! changed the state, so it reloads before going on.
//!
//! The driver is a table: each `Driver` method below forwards to the function of the
//! same name in the file of its topic — [`state`] (the registry, loading, the lock,
//! recovery), `domain.rs`, `checkpoint.rs`, `snapshot.rs`, and `backup/` (begin and undo, the watcher,
//! the job record) — with `intent.rs` (what an operation may leave behind) and
//! [`store`] (the files under the root) beneath them.

mod backup;
mod checkpoint;
mod config;
mod domain;
mod intent;
mod snapshot;
mod state;
pub mod store;

pub use state::{NAMESPACE, QemuDriver, check_root, session_root};

use crate::driver::{
    BlockInfo, BlockJobInfo, DomainId, DomainInfo, Driver, JobInfo as DomainJobInfo, JobStats, Listing,
};
use crate::error::Result;
use crate::uuid::Uuid;

impl Driver for QemuDriver {
    fn connect_get_type(&self) -> &'static str {
        "QEMU"
    }

    fn connect_get_version(&self) -> Result<u64> {
        domain::connect_get_version(self)
    }

    fn connect_list_all_domains(&self, flags: u32) -> Result<Vec<DomainId>> {
        domain::connect_list_all_domains(self, flags)
    }

    fn connect_num_of_domains(&self) -> Result<i32> {
        domain::connect_num_of_domains(self)
    }

    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainId> {
        domain::domain_lookup_by_name(self, name)
    }

    fn domain_lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainId> {
        domain::domain_lookup_by_uuid(self, uuid)
    }

    fn domain_lookup_by_id(&self, id: i32) -> Result<DomainId> {
        domain::domain_lookup_by_id(self, id)
    }

    fn domain_is_active(&self, dom: &DomainId) -> Result<bool> {
        domain::domain_is_active(self, dom)
    }

    fn domain_is_persistent(&self, dom: &DomainId) -> Result<bool> {
        domain::domain_is_persistent(self, dom)
    }

    fn domain_get_state(&self, dom: &DomainId, flags: u32) -> Result<(i32, i32)> {
        domain::domain_get_state(self, dom, flags)
    }

    fn domain_get_info(&self, dom: &DomainId) -> Result<DomainInfo> {
        domain::domain_get_info(self, dom)
    }

    fn domain_get_xml_desc(&self, dom: &DomainId, flags: u32) -> Result<String> {
        domain::domain_get_xml_desc(self, dom, flags)
    }

    fn domain_define_xml(&self, xml: &str, flags: u32) -> Result<DomainId> {
        domain::domain_define_xml(self, xml, flags)
    }

    fn domain_undefine(&self, dom: &DomainId, flags: u32) -> Result<()> {
        domain::domain_undefine(self, dom, flags)
    }

    fn domain_create(&self, dom: &DomainId, flags: u32) -> Result<i32> {
        domain::domain_create(self, dom, flags)
    }

    fn domain_destroy(&self, dom: &DomainId, flags: u32) -> Result<()> {
        domain::domain_destroy(self, dom, flags)
    }

    fn domain_shutdown(&self, dom: &DomainId, flags: u32) -> Result<()> {
        domain::domain_shutdown(self, dom, flags)
    }

    fn checkpoint_create_xml(&self, dom: &DomainId, xml: &str, flags: u32) -> Result<String> {
        checkpoint::checkpoint_create_xml(self, dom, xml, flags)
    }

    fn checkpoint_get_xml_desc(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        checkpoint::checkpoint_get_xml_desc(self, dom, name, flags)
    }

    fn list_all_checkpoints(&self, dom: &DomainId, flags: u32, count_only: bool) -> Result<Listing> {
        checkpoint::list_all_checkpoints(self, dom, flags, count_only)
    }

    fn checkpoint_list_all_children(
        &self,
        dom: &DomainId,
        name: &str,
        flags: u32,
        count_only: bool,
    ) -> Result<Listing> {
        checkpoint::checkpoint_list_all_children(self, dom, name, flags, count_only)
    }

    fn checkpoint_lookup_by_name(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        checkpoint::checkpoint_lookup_by_name(self, dom, name, flags)
    }

    fn checkpoint_get_parent(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        checkpoint::checkpoint_get_parent(self, dom, name, flags)
    }

    fn checkpoint_delete(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        checkpoint::checkpoint_delete(self, dom, name, flags)
    }

    fn snapshot_create_xml(&self, dom: &DomainId, xml: &str, flags: u32) -> Result<String> {
        snapshot::snapshot_create_xml(self, dom, xml, flags)
    }

    fn snapshot_get_xml_desc(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        snapshot::snapshot_get_xml_desc(self, dom, name, flags)
    }

    fn list_all_snapshots(&self, dom: &DomainId, flags: u32, count_only: bool, api: &'static str) -> Result<Listing> {
        snapshot::list_all_snapshots(self, dom, flags, count_only, api)
    }

    fn snapshot_list_all_children(
        &self,
        dom: &DomainId,
        name: &str,
        flags: u32,
        count_only: bool,
        api: &'static str,
    ) -> Result<Listing> {
        snapshot::snapshot_list_all_children(self, dom, name, flags, count_only, api)
    }

    fn snapshot_lookup_by_name(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        snapshot::snapshot_lookup_by_name(self, dom, name, flags)
    }

    fn has_current_snapshot(&self, dom: &DomainId, flags: u32) -> Result<bool> {
        snapshot::has_current_snapshot(self, dom, flags)
    }

    fn snapshot_get_parent(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        snapshot::snapshot_get_parent(self, dom, name, flags)
    }

    fn snapshot_current(&self, dom: &DomainId, flags: u32) -> Result<String> {
        snapshot::snapshot_current(self, dom, flags)
    }

    fn snapshot_is_current(&self, dom: &DomainId, name: &str, flags: u32) -> Result<bool> {
        snapshot::snapshot_is_current(self, dom, name, flags)
    }

    fn snapshot_has_metadata(&self, dom: &DomainId, name: &str, flags: u32) -> Result<bool> {
        snapshot::snapshot_has_metadata(self, dom, name, flags)
    }

    fn revert_to_snapshot(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        snapshot::revert_to_snapshot(self, dom, name, flags)
    }

    fn snapshot_delete(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        snapshot::snapshot_delete(self, dom, name, flags)
    }

    fn backup_begin(&self, dom: &DomainId, backup_xml: &str, checkpoint_xml: Option<&str>, flags: u32) -> Result<()> {
        backup::backup_begin(self, dom, backup_xml, checkpoint_xml, flags)
    }

    fn backup_get_xml_desc(&self, dom: &DomainId, flags: u32) -> Result<String> {
        backup::job::backup_get_xml_desc(self, dom, flags)
    }

    fn domain_abort_job(&self, dom: &DomainId, flags: u32) -> Result<()> {
        backup::job::domain_abort_job(self, dom, flags)
    }

    fn domain_get_job_info(&self, dom: &DomainId) -> Result<DomainJobInfo> {
        backup::job::domain_get_job_info(self, dom)
    }

    fn domain_get_job_stats(&self, dom: &DomainId, flags: u32) -> Result<JobStats> {
        backup::job::domain_get_job_stats(self, dom, flags)
    }

    fn domain_get_block_job_info(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<Option<BlockJobInfo>> {
        backup::job::domain_get_block_job_info(self, dom, disk, flags)
    }

    fn domain_block_job_abort(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<()> {
        backup::job::domain_block_job_abort(self, dom, disk, flags)
    }

    fn domain_get_block_info(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<BlockInfo> {
        domain::domain_get_block_info(self, dom, disk, flags)
    }

    fn domain_get_autostart(&self, dom: &DomainId) -> Result<bool> {
        domain::domain_get_autostart(self, dom)
    }

    fn domain_set_autostart(&self, dom: &DomainId, autostart: bool) -> Result<()> {
        domain::domain_set_autostart(self, dom, autostart)
    }

    fn domain_fs_freeze(&self, dom: &DomainId, mountpoints: &[String], flags: u32) -> Result<i32> {
        domain::domain_fs_freeze(self, dom, mountpoints, flags)
    }

    fn domain_fs_thaw(&self, dom: &DomainId, mountpoints: &[String], flags: u32) -> Result<i32> {
        domain::domain_fs_thaw(self, dom, mountpoints, flags)
    }

    fn domain_qemu_agent_command(&self, dom: &DomainId, cmd: &str, timeout: i32, flags: u32) -> Result<String> {
        domain::domain_qemu_agent_command(self, dom, cmd, timeout, flags)
    }

    fn domain_qemu_monitor_command(&self, dom: &DomainId, cmd: &str, flags: u32) -> Result<String> {
        domain::domain_qemu_monitor_command(self, dom, cmd, flags)
    }
}
