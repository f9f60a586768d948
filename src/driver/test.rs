//! The test driver, `test:///default`: libvirt's built-in fake hypervisor, in memory.
//!
//! As in libvirt, every connection of the process shares one set of state, which starts
//! with a single running domain `test` (id 1) with one disk `vda`. Nothing is kept between
//! processes.

use std::sync::{Arc, LazyLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::checkpoints::{self, Checkpoints};
use super::events;
use super::jobs::{self, Finished, JobSlot, Outcome, Progress};
use super::snapshots::{self, Snapshots};
use super::{
    BlockInfo, BlockJobInfo, DomainFacts, DomainId, DomainInfo, Driver, JobInfo, JobStats, LIST_DOMAINS_ALL, Listing,
    NetworkKey, PoolKey, VolumeKey, list_filter_accepts,
};
use crate::abi::{
    VIR_DOMAIN_SNAPSHOT_XML_SECURE, virDomainCheckpointCreateFlags as CreateFlags,
    virDomainCheckpointXMLFlags as CheckpointXmlFlags, virDomainDefineFlags as DefineFlags,
    virDomainDestroyFlagsValues as DestroyFlags, virDomainPausedReason, virDomainRunningReason, virDomainShutoffReason,
    virDomainSnapshotCreateFlags as SnapshotCreate, virDomainSnapshotDeleteFlags as SnapshotDelete,
    virDomainSnapshotRevertFlags as Revert, virDomainState, virDomainUndefineFlagsValues as UndefineFlags,
    virDomainXMLFlags as XmlFlags,
};
use crate::conf::backup::{BackupDef, BackupMode};
use crate::conf::checkpoint::CheckpointDef;
use crate::conf::domain::{DomainDef, FormatOptions};
use crate::conf::snapshot::{SnapshotDef, SnapshotLocation, SnapshotParse, SnapshotState};
use crate::error::{Code, Domain, Error, Result};
use crate::uuid::Uuid;

const FROM: Domain = Domain::VIR_FROM_TEST;

/// The definition libvirt's test driver starts with (as `virsh -c test:///default
/// dumpxml test` shows it).
pub(crate) const DEFAULT_DOMAIN_XML: &str = "\
<domain type='test'>
  <name>test</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='i686'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <source file='/guest/diskimage1'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </disk>
    <interface type='network'>
      <mac address='aa:bb:cc:dd:ee:ff'/>
      <source network='default'/>
      <target dev='testnet0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
    </interface>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </memballoon>
  </devices>
</domain>
";

/// One domain of the test driver.
#[derive(Debug, Clone)]
struct TestDomain {
    def: Arc<DomainDef>,
    /// Live id, or -1 when shut off.
    id: i32,
    state: i32,
    reason: i32,
    persistent: bool,
    autostart: bool,
    /// The guest's two fictional file systems, `/` and `/boot`: frozen or not.
    frozen: [bool; 2],
    checkpoints: Checkpoints,
    snapshots: Snapshots,
    /// The running backup job: only pull jobs stay, push jobs end as they begin.
    job: Option<TestJob>,
    jobs: JobSlot,
}

/// A pull backup of the test driver: a definition and a clock, over fictional disks.
#[derive(Debug, Clone)]
struct TestJob {
    def: BackupDef,
    started: Instant,
}

impl TestJob {
    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A push job has copied everything; a pull job holds nothing in scratch.
    fn progress(&self) -> Progress {
        let bytes = self.def.disks.iter().filter(|d| d.backup).count() as u64 * FICTIONAL_DISK_SIZE;
        match self.def.mode {
            BackupMode::Push => Progress { total: bytes, processed: bytes, ..Default::default() },
            BackupMode::Pull => Progress { temp_total: bytes, ..Default::default() },
        }
    }
}

/// Every disk of the test driver pretends to hold this many bytes.
const FICTIONAL_DISK_SIZE: u64 = 1 << 30;

impl TestDomain {
    fn handle(&self) -> DomainId {
        DomainId { name: self.def.name.clone(), uuid: self.def.uuid, id: self.id }
    }

    fn is_active(&self) -> bool {
        self.id >= 0
    }

    fn facts(&self) -> DomainFacts {
        DomainFacts {
            active: self.is_active(),
            persistent: self.persistent,
            state: self.state,
            autostart: self.autostart,
            checkpoints: self.checkpoints.len(),
            snapshots: self.snapshots.len(),
            ..Default::default()
        }
    }

    /// Stops the domain; a backup job running on it fails. Returns the events to raise.
    fn shut_off(&mut self, reason: virDomainShutoffReason, driver: usize) -> Vec<events::DomainEvent> {
        self.id = -1;
        self.state = virDomainState::VIR_DOMAIN_SHUTOFF as i32;
        self.reason = reason as i32;
        self.end_job(driver, Outcome::Failed, Some("domain is not running".to_string()))
    }

    /// Ends the running backup job, keeping its final figures; returns the events its end
    /// raises (none when no job ran).
    fn end_job(&mut self, driver: usize, outcome: Outcome, error: Option<String>) -> Vec<events::DomainEvent> {
        let Some(mut job) = self.job.take() else { return Vec::new() };
        job.def.disks.iter_mut().filter(|d| d.backup).for_each(|d| d.state = Some(outcome.disk_state()));
        let finished =
            Finished { outcome, mode: job.def.mode, elapsed_ms: job.elapsed_ms(), progress: job.progress(), error };
        let events = finished.events(driver, &self.handle(), &job.def, &self.disk_paths());
        self.jobs.completed = Some(finished);
        events
    }

    /// Each disk's target and source path, for block job events.
    fn disk_paths(&self) -> Vec<(String, String)> {
        self.def.disks.iter().map(|d| (d.target.clone(), d.source.clone().unwrap_or_default())).collect()
    }
}

fn emit_all(list: Vec<events::DomainEvent>) {
    list.into_iter().for_each(events::emit);
}

#[derive(Debug)]
struct State {
    /// In definition order (libvirt keeps a hash table, so callers see no particular order).
    domains: Vec<TestDomain>,
    /// The id the next started domain gets.
    next_id: i32,
}

impl State {
    fn initial() -> State {
        let def = DomainDef::parse(DEFAULT_DOMAIN_XML).expect("the built-in test domain parses");
        State {
            domains: vec![TestDomain {
                def: Arc::new(def),
                id: 1,
                state: virDomainState::VIR_DOMAIN_RUNNING as i32,
                reason: 0,
                persistent: true,
                autostart: false,
                frozen: [false; 2],
                checkpoints: Checkpoints::new(FROM),
                snapshots: Snapshots::new(FROM),
                job: None,
                jobs: JobSlot::default(),
            }],
            next_id: 2,
        }
    }

    fn position(&self, dom: &DomainId) -> Result<usize> {
        self.domains.iter().position(|d| d.def.uuid == dom.uuid).ok_or_else(|| vanished(dom))
    }

    /// The domain a handle names, or libvirt's "no domain with matching uuid" error.
    fn domain(&self, dom: &DomainId) -> Result<&TestDomain> {
        Ok(&self.domains[self.position(dom)?])
    }

    fn domain_mut(&mut self, dom: &DomainId) -> Result<&mut TestDomain> {
        let at = self.position(dom)?;
        Ok(&mut self.domains[at])
    }

    /// A transient domain disappears when it stops.
    fn forget_if_transient(&mut self, dom: &DomainId) {
        self.domains.retain(|d| d.def.uuid != dom.uuid || d.persistent);
    }
}

fn vanished(dom: &DomainId) -> Error {
    Error::new(FROM, Code::VIR_ERR_NO_DOMAIN, format!("no domain with matching uuid '{}' ({})", dom.uuid, dom.name))
}

fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The test driver. All connections to `test:///default` share [`TestDriver::shared`].
#[derive(Debug)]
pub struct TestDriver {
    state: Mutex<State>,
}

impl TestDriver {
    /// A driver in its initial state.
    pub fn new() -> TestDriver {
        TestDriver { state: Mutex::new(State::initial()) }
    }

    /// The process-wide instance behind `test:///default`.
    pub fn shared() -> Arc<TestDriver> {
        static SHARED: LazyLock<Arc<TestDriver>> = LazyLock::new(|| Arc::new(TestDriver::new()));
        SHARED.clone()
    }

    /// The check `testConnectOpen` makes: only `VIR_CONNECT_RO` is accepted.
    pub fn check_open_flags(flags: u32) -> Result<()> {
        Error::check_flags(FROM, "testConnectOpen", flags, crate::abi::virConnectFlags::VIR_CONNECT_RO as u32)
    }
}

impl Default for TestDriver {
    fn default() -> Self {
        TestDriver::new()
    }
}

impl Driver for TestDriver {
    fn connect_get_type(&self) -> &'static str {
        "TEST"
    }

    fn connect_get_version(&self) -> Result<u64> {
        Ok(2)
    }

    fn connect_list_all_domains(&self, flags: u32) -> Result<Vec<DomainId>> {
        Error::check_flags(FROM, "testConnectListAllDomains", flags, LIST_DOMAINS_ALL)?;
        let state = self.state.lock();
        Ok(state.domains.iter().filter(|d| list_filter_accepts(flags, &d.facts())).map(TestDomain::handle).collect())
    }

    fn connect_num_of_domains(&self) -> Result<i32> {
        let state = self.state.lock();
        Ok(state.domains.iter().filter(|d| d.is_active()).count() as i32)
    }

    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainId> {
        let state = self.state.lock();
        state
            .domains
            .iter()
            .find(|d| d.def.name == name)
            .map(TestDomain::handle)
            .ok_or_else(|| Error::bare(FROM, Code::VIR_ERR_NO_DOMAIN))
    }

    fn domain_lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainId> {
        let state = self.state.lock();
        state
            .domains
            .iter()
            .find(|d| d.def.uuid == *uuid)
            .map(TestDomain::handle)
            .ok_or_else(|| Error::bare(FROM, Code::VIR_ERR_NO_DOMAIN))
    }

    fn domain_lookup_by_id(&self, id: i32) -> Result<DomainId> {
        let state = self.state.lock();
        state
            .domains
            .iter()
            .find(|d| d.is_active() && d.id == id)
            .map(TestDomain::handle)
            .ok_or_else(|| Error::bare(FROM, Code::VIR_ERR_NO_DOMAIN))
    }

    fn domain_is_active(&self, dom: &DomainId) -> Result<bool> {
        Ok(self.state.lock().domain(dom)?.is_active())
    }

    fn domain_is_persistent(&self, dom: &DomainId) -> Result<bool> {
        Ok(self.state.lock().domain(dom)?.persistent)
    }

    fn domain_get_state(&self, dom: &DomainId, flags: u32) -> Result<(i32, i32)> {
        Error::check_flags(FROM, "testDomainGetState", flags, 0)?;
        let state = self.state.lock();
        let d = state.domain(dom)?;
        Ok((d.state, d.reason))
    }

    fn domain_get_info(&self, dom: &DomainId) -> Result<DomainInfo> {
        let state = self.state.lock();
        let d = state.domain(dom)?;
        // libvirt's test driver reports the wall clock as CPU time.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Ok(DomainInfo {
            state: d.state,
            max_memory_kib: d.def.max_memory_kib,
            memory_kib: d.def.memory_kib,
            vcpus: u16::try_from(d.def.vcpus).unwrap_or(u16::MAX),
            cpu_time_ns: u64::try_from(now.as_micros()).unwrap_or(u64::MAX) * 1000,
        })
    }

    fn domain_get_xml_desc(&self, dom: &DomainId, flags: u32) -> Result<String> {
        let allowed = XmlFlags::VIR_DOMAIN_XML_SECURE as u32
            | XmlFlags::VIR_DOMAIN_XML_INACTIVE as u32
            | XmlFlags::VIR_DOMAIN_XML_MIGRATABLE as u32;
        Error::check_flags(FROM, "testDomainGetXMLDesc", flags, allowed)?;
        let state = self.state.lock();
        let d = state.domain(dom)?;
        let inactive = flags & XmlFlags::VIR_DOMAIN_XML_INACTIVE as u32 != 0;
        let options = FormatOptions {
            id: (d.is_active() && !inactive).then_some(d.id),
            secure: flags & XmlFlags::VIR_DOMAIN_XML_SECURE as u32 != 0,
        };
        Ok(d.def.format(options))
    }

    fn domain_define_xml(&self, xml: &str, flags: u32) -> Result<DomainId> {
        Error::check_flags(FROM, "testDomainDefineXMLFlags", flags, DefineFlags::VIR_DOMAIN_DEFINE_VALIDATE as u32)?;
        let def = if flags & DefineFlags::VIR_DOMAIN_DEFINE_VALIDATE as u32 != 0 {
            DomainDef::parse_validated(xml)?
        } else {
            DomainDef::parse(xml)?
        };
        let failed = |detail: String| Error::new(Domain::VIR_FROM_DOMAIN, Code::VIR_ERR_OPERATION_FAILED, detail);
        let mut state = self.state.lock();
        if let Some(same_name) = state.domains.iter().find(|d| d.def.name == def.name && d.def.uuid != def.uuid) {
            return Err(failed(format!("domain '{}' already exists with uuid {}", def.name, same_name.def.uuid)));
        }
        if let Some(same_uuid) = state.domains.iter().find(|d| d.def.uuid == def.uuid && d.def.name != def.name) {
            return Err(failed(format!("domain '{}' is already defined with uuid {}", same_uuid.def.name, def.uuid)));
        }
        let def = Arc::new(def);
        match state.domains.iter_mut().find(|d| d.def.uuid == def.uuid) {
            Some(existing) => {
                existing.def = def;
                existing.persistent = true;
                Ok(existing.handle())
            }
            None => {
                let new = TestDomain {
                    def,
                    id: -1,
                    state: virDomainState::VIR_DOMAIN_SHUTOFF as i32,
                    reason: virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_UNKNOWN as i32,
                    persistent: true,
                    autostart: false,
                    frozen: [false; 2],
                    checkpoints: Checkpoints::new(FROM),
                    snapshots: Snapshots::new(FROM),
                    job: None,
                    jobs: JobSlot::default(),
                };
                let handle = new.handle();
                state.domains.push(new);
                Ok(handle)
            }
        }
    }

    fn domain_undefine(&self, dom: &DomainId, flags: u32) -> Result<()> {
        let allowed = UndefineFlags::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE as u32
            | UndefineFlags::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA as u32;
        Error::check_flags(FROM, "testDomainUndefineFlags", flags, allowed)?;
        let mut state = self.state.lock();
        let d = state.domain_mut(dom)?;
        let snapshots = d.snapshots.len();
        if !d.is_active() && snapshots > 0 && flags & UndefineFlags::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA as u32 == 0
        {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_INVALID,
                format!("cannot delete inactive domain with {snapshots} snapshots"),
            ));
        }
        if d.is_active() {
            // A running domain loses its persistent definition but keeps running (and
            // keeps its checkpoints and snapshots) as a transient domain.
            d.persistent = false;
        } else {
            let uuid = d.def.uuid;
            state.domains.retain(|d| d.def.uuid != uuid);
        }
        Ok(())
    }

    fn domain_create(&self, dom: &DomainId, flags: u32) -> Result<i32> {
        Error::check_flags(FROM, "testDomainCreateWithFlags", flags, 0)?;
        let mut state = self.state.lock();
        let id = state.next_id;
        let d = state.domain_mut(dom)?;
        if d.is_active() {
            return Err(Error::internal(FROM, format!("Domain '{}' is already running", d.def.name)));
        }
        d.id = id;
        d.state = virDomainState::VIR_DOMAIN_RUNNING as i32;
        d.reason = virDomainRunningReason::VIR_DOMAIN_RUNNING_BOOTED as i32;
        state.next_id += 1;
        Ok(id)
    }

    fn domain_destroy(&self, dom: &DomainId, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "testDomainDestroyFlags", flags, DestroyFlags::VIR_DOMAIN_DESTROY_GRACEFUL as u32)?;
        let mut state = self.state.lock();
        let d = state.domain_mut(dom)?;
        if !d.is_active() {
            return Err(not_running());
        }
        let raised = d.shut_off(virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_DESTROYED, events::driver_key(self));
        state.forget_if_transient(dom);
        drop(state);
        emit_all(raised);
        Ok(())
    }

    fn domain_shutdown(&self, dom: &DomainId, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "testDomainShutdownFlags", flags, 0)?;
        let mut state = self.state.lock();
        let d = state.domain_mut(dom)?;
        if !d.is_active() {
            return Err(Error::internal(FROM, format!("domain '{}' not running", d.def.name)));
        }
        let raised = d.shut_off(virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_SHUTDOWN, events::driver_key(self));
        state.forget_if_transient(dom);
        drop(state);
        emit_all(raised);
        Ok(())
    }

    fn checkpoint_create_xml(&self, dom: &DomainId, xml: &str, flags: u32) -> Result<String> {
        let redefine = CreateFlags::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE as u32;
        let quiesce = CreateFlags::VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE as u32;
        Error::check_flags(FROM, "testDomainCheckpointCreateXML", flags, redefine | quiesce)?;
        let mut state = self.state.lock();
        let d = state.domain_mut(dom)?;
        if !d.snapshots.is_empty() {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                "cannot create checkpoint while snapshot exists",
            ));
        }
        // The test driver wants a running domain even to restore metadata.
        if !d.is_active() {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                "cannot create checkpoint for inactive domain",
            ));
        }
        let prepared = if flags & redefine != 0 {
            d.checkpoints.prepare_redefine(CheckpointDef::parse(xml, true)?, &d.def.uuid)?
        } else {
            d.checkpoints.prepare_create(CheckpointDef::parse(xml, false)?, &d.def, now_seconds())?
        };
        let name = prepared.def.name.clone();
        d.checkpoints.commit(prepared)?;
        Ok(name)
    }

    fn checkpoint_get_xml_desc(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        Error::check_flags(FROM, "testDomainCheckpointGetXMLDesc", flags, checkpoints::XML_FLAGS)?;
        let state = self.state.lock();
        let d = state.domain(dom)?;
        d.checkpoints.get(name)?;
        // libvirt's test driver checks the domain for SIZE but has no sizes to report,
        // so no size attribute is ever printed.
        if flags & CheckpointXmlFlags::VIR_DOMAIN_CHECKPOINT_XML_SIZE as u32 != 0 && !d.is_active() {
            return Err(not_running());
        }
        let without_size = flags & !(CheckpointXmlFlags::VIR_DOMAIN_CHECKPOINT_XML_SIZE as u32);
        d.checkpoints.format(name, without_size)
    }

    fn list_all_checkpoints(&self, dom: &DomainId, flags: u32, count_only: bool) -> Result<Listing> {
        Error::check_flags(FROM, "testDomainListAllCheckpoints", flags, checkpoints::LIST_FLAGS)?;
        let state = self.state.lock();
        let list = &state.domain(dom)?.checkpoints;
        list.listing(None, flags, count_only)
    }

    fn checkpoint_list_all_children(
        &self,
        dom: &DomainId,
        name: &str,
        flags: u32,
        count_only: bool,
    ) -> Result<Listing> {
        Error::check_flags(FROM, "testDomainCheckpointListAllChildren", flags, checkpoints::LIST_FLAGS)?;
        let state = self.state.lock();
        let list = &state.domain(dom)?.checkpoints;
        list.listing(Some(name), flags, count_only)
    }

    fn checkpoint_lookup_by_name(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "testDomainCheckpointLookupByName", flags, 0)?;
        let state = self.state.lock();
        state.domain(dom)?.checkpoints.get(name).map(|_| ())
    }

    fn checkpoint_get_parent(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        Error::check_flags(FROM, "testDomainCheckpointGetParent", flags, 0)?;
        let state = self.state.lock();
        state.domain(dom)?.checkpoints.parent(name)
    }

    fn checkpoint_delete(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "testDomainCheckpointDelete", flags, checkpoints::DELETE_FLAGS)?;
        let mut state = self.state.lock();
        // Metadata is all the test driver has, so METADATA_ONLY changes nothing.
        state.domain_mut(dom)?.checkpoints.delete(name, flags).map(|_| ())
    }

    fn snapshot_create_xml(&self, dom: &DomainId, xml: &str, flags: u32) -> Result<String> {
        use SnapshotCreate::*;
        // DISK_ONLY, REUSE_EXT and NO_METADATA are refused as unsupported flags, as by
        // libvirt's test driver.
        let allowed = [
            VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE,
            VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT,
            VIR_DOMAIN_SNAPSHOT_CREATE_HALT,
            VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE,
            VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC,
            VIR_DOMAIN_SNAPSHOT_CREATE_LIVE,
            VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE,
        ]
        .iter()
        .fold(0, |all, f| all | *f as u32);
        Error::check_flags(FROM, "testDomainSnapshotCreateXML", flags, allowed)?;
        let set = |f: SnapshotCreate| flags & f as u32 != 0;
        let redefine = set(VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE);
        let mut state = self.state.lock();
        let d = state.domain_mut(dom)?;
        if !d.checkpoints.is_empty() {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                "cannot create snapshot while checkpoint exists",
            ));
        }
        if !d.persistent && set(VIR_DOMAIN_SNAPSHOT_CREATE_HALT) {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_INVALID,
                "cannot halt after transient domain snapshot",
            ));
        }
        let how = SnapshotParse { redefine, validate: set(VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE), ..Default::default() };
        let def = SnapshotDef::parse(xml, how)?;
        let prepared =
            if redefine { d.snapshots.prepare_redefine(def, &d.def.uuid, flags)? } else { prepare_snapshot(d, def)? };
        let name = prepared.def.name.clone();
        d.snapshots.commit(prepared)?;
        if set(VIR_DOMAIN_SNAPSHOT_CREATE_HALT) && d.is_active() {
            let raised = d.shut_off(virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT, events::driver_key(self));
            drop(state);
            emit_all(raised);
        }
        Ok(name)
    }

    fn snapshot_get_xml_desc(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        Error::check_flags(FROM, "testDomainSnapshotGetXMLDesc", flags, VIR_DOMAIN_SNAPSHOT_XML_SECURE as u32)?;
        let state = self.state.lock();
        let d = state.domain(dom)?;
        d.snapshots.format(name, flags, &d.def.uuid)
    }

    fn list_all_snapshots(&self, dom: &DomainId, flags: u32, count_only: bool, api: &'static str) -> Result<Listing> {
        Error::check_flags(FROM, &super::driver_function("test", api), flags, snapshots::LIST_FLAGS)?;
        let state = self.state.lock();
        state.domain(dom)?.snapshots.listing(None, flags, count_only)
    }

    fn snapshot_list_all_children(
        &self,
        dom: &DomainId,
        name: &str,
        flags: u32,
        count_only: bool,
        api: &'static str,
    ) -> Result<Listing> {
        Error::check_flags(FROM, &super::driver_function("test", api), flags, snapshots::LIST_FLAGS)?;
        let state = self.state.lock();
        state.domain(dom)?.snapshots.listing(Some(name), flags, count_only)
    }

    fn snapshot_lookup_by_name(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "testDomainSnapshotLookupByName", flags, 0)?;
        let state = self.state.lock();
        state.domain(dom)?.snapshots.get(name).map(|_| ())
    }

    fn has_current_snapshot(&self, dom: &DomainId, flags: u32) -> Result<bool> {
        Error::check_flags(FROM, "testDomainHasCurrentSnapshot", flags, 0)?;
        Ok(self.state.lock().domain(dom)?.snapshots.current().is_some())
    }

    fn snapshot_get_parent(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        Error::check_flags(FROM, "testDomainSnapshotGetParent", flags, 0)?;
        self.state.lock().domain(dom)?.snapshots.parent(name)
    }

    fn snapshot_current(&self, dom: &DomainId, flags: u32) -> Result<String> {
        Error::check_flags(FROM, "testDomainSnapshotCurrent", flags, 0)?;
        let state = self.state.lock();
        let current = state.domain(dom)?.snapshots.current().map(str::to_string);
        current.ok_or_else(|| {
            Error::new(FROM, Code::VIR_ERR_NO_DOMAIN_SNAPSHOT, "the domain does not have a current snapshot")
        })
    }

    fn snapshot_is_current(&self, dom: &DomainId, name: &str, flags: u32) -> Result<bool> {
        Error::check_flags(FROM, "testDomainSnapshotIsCurrent", flags, 0)?;
        let state = self.state.lock();
        let list = &state.domain(dom)?.snapshots;
        list.get(name)?;
        Ok(list.current() == Some(name))
    }

    fn snapshot_has_metadata(&self, dom: &DomainId, name: &str, flags: u32) -> Result<bool> {
        Error::check_flags(FROM, "testDomainSnapshotHasMetadata", flags, 0)?;
        // Metadata is all the test driver's snapshots are.
        self.state.lock().domain(dom)?.snapshots.get(name).map(|_| true)
    }

    fn revert_to_snapshot(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        let allowed = Revert::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING as u32
            | Revert::VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED as u32
            | Revert::VIR_DOMAIN_SNAPSHOT_REVERT_FORCE as u32;
        Error::check_flags(FROM, "testDomainRevertToSnapshot", flags, allowed)?;
        let mut state = self.state.lock();
        let next_id = state.next_id;
        let d = state.domain_mut(dom)?;
        let (started, raised) = revert(d, name, flags, next_id, events::driver_key(self))?;
        if started {
            state.next_id += 1;
        }
        drop(state);
        emit_all(raised);
        Ok(())
    }

    fn snapshot_delete(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        // Metadata is all there is: METADATA_ONLY is refused, as by libvirt's test driver.
        let allowed = SnapshotDelete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN as u32
            | SnapshotDelete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY as u32;
        Error::check_flags(FROM, "testDomainSnapshotDelete", flags, allowed)?;
        let mut state = self.state.lock();
        state.domain_mut(dom)?.snapshots.delete(name, flags).map(|_| ())
    }

    fn backup_begin(&self, dom: &DomainId, backup_xml: &str, checkpoint_xml: Option<&str>, flags: u32) -> Result<()> {
        let mut state = self.state.lock();
        let d = state.domain_mut(dom)?;
        if !d.is_active() {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                "cannot perform disk backup for inactive domain",
            ));
        }
        let context = jobs::BeginContext {
            from: FROM,
            api: "testDomainBackupBegin",
            domain: &d.def,
            checkpoints: &d.checkpoints,
            busy: d.job.is_some(),
            now: now_seconds(),
            tls_configured: false,
        };
        let begin = jobs::prepare_begin(&context, flags, backup_xml, checkpoint_xml)?;
        if let Some(prepared) = begin.checkpoint {
            d.checkpoints.commit(prepared)?;
        }
        d.job = Some(TestJob { def: begin.def, started: Instant::now() });
        // Fictional disks copy in no time: a push backup is over as it starts.
        let raised = if d.job.as_ref().is_some_and(|j| j.def.mode == BackupMode::Push) {
            d.end_job(events::driver_key(self), Outcome::Completed, None)
        } else {
            Vec::new()
        };
        drop(state);
        emit_all(raised);
        Ok(())
    }

    fn backup_get_xml_desc(&self, dom: &DomainId, flags: u32) -> Result<String> {
        Error::check_flags(FROM, "testDomainBackupGetXMLDesc", flags, 0)?;
        let state = self.state.lock();
        let job = state.domain(dom)?.job.as_ref().ok_or_else(|| jobs::no_backup(FROM))?;
        Ok(job.def.format(false))
    }

    fn domain_abort_job(&self, dom: &DomainId, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "testDomainAbortJobFlags", flags, jobs::ABORT_FLAGS)?;
        let mut state = self.state.lock();
        let d = state.domain_mut(dom)?;
        if d.job.is_none() {
            return Err(jobs::no_active_job(FROM));
        }
        jobs::check_abort_flags(FROM, flags)?;
        // Aborting is how a pull backup finishes.
        let raised = d.end_job(events::driver_key(self), Outcome::Completed, Some(jobs::CANCELED.to_string()));
        drop(state);
        emit_all(raised);
        Ok(())
    }

    fn domain_get_job_info(&self, dom: &DomainId) -> Result<JobInfo> {
        let state = self.state.lock();
        let d = state.domain(dom)?;
        Ok(match &d.job {
            Some(job) => jobs::job_info(
                crate::abi::virDomainJobType::VIR_DOMAIN_JOB_UNBOUNDED as i32,
                job.def.mode,
                job.elapsed_ms(),
                &job.progress(),
            ),
            None => JobInfo::default(),
        })
    }

    fn domain_get_job_stats(&self, dom: &DomainId, flags: u32) -> Result<JobStats> {
        Error::check_flags(FROM, "testDomainGetJobStats", flags, jobs::STATS_FLAGS)?;
        let mut state = self.state.lock();
        let d = state.domain_mut(dom)?;
        let active = d.job.as_ref().map(|j| jobs::active_stats(j.def.mode, j.elapsed_ms(), &j.progress()));
        Ok(d.jobs.stats(active, flags))
    }

    fn domain_get_block_job_info(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<Option<BlockJobInfo>> {
        Error::check_flags(FROM, "testDomainGetBlockJobInfo", flags, jobs::BLOCK_JOB_INFO_FLAGS)?;
        let state = self.state.lock();
        let d = state.domain(dom)?;
        let target = jobs::block_job_disk(FROM, &d.def, disk)?;
        Ok(d.job.as_ref().filter(|j| j.def.disks.iter().any(|b| b.backup && b.name == target)).map(|_| BlockJobInfo {
            job_type: jobs::BACKUP_BLOCK_JOB,
            bandwidth: 0,
            cur: 0,
            end: FICTIONAL_DISK_SIZE,
        }))
    }

    fn domain_block_job_abort(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "testDomainBlockJobAbort", flags, jobs::BLOCK_JOB_ABORT_FLAGS)?;
        let mut state = self.state.lock();
        let d = state.domain_mut(dom)?;
        if !d.is_active() {
            return Err(not_running());
        }
        let target = jobs::block_job_disk(FROM, &d.def, disk)?;
        let in_backup = d.job.as_ref().is_some_and(|j| j.def.disks.iter().any(|b| b.backup && b.name == target));
        jobs::check_block_job_abort(FROM, flags, &target, in_backup)?;
        // The fictional copies end at once, so waiting or not makes no difference.
        let raised = d.end_job(events::driver_key(self), Outcome::Completed, Some(jobs::CANCELED.to_string()));
        drop(state);
        emit_all(raised);
        Ok(())
    }

    fn domain_get_block_info(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<BlockInfo> {
        Error::check_flags(FROM, "testDomainGetBlockInfo", flags, 0)?;
        let state = self.state.lock();
        let d = state.domain(dom)?;
        let found = d.def.disk_by_target_or_path(disk).ok_or_else(|| {
            Error::new(FROM, Code::VIR_ERR_INVALID_ARG, format!("invalid path {disk} not assigned to domain"))
        })?;
        if found.is_empty() {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_INVALID_ARG,
                format!("disk '{disk}' does not currently have a source assigned"),
            ));
        }
        // The figures libvirt's test driver reports for every disk.
        Ok(BlockInfo { capacity: 1_099_506_450_432, allocation: 1_099_511_627_776, physical: 1_099_511_627_776 })
    }

    fn domain_get_autostart(&self, dom: &DomainId) -> Result<bool> {
        Ok(self.state.lock().domain(dom)?.autostart)
    }

    fn domain_set_autostart(&self, dom: &DomainId, autostart: bool) -> Result<()> {
        self.state.lock().domain_mut(dom)?.autostart = autostart;
        Ok(())
    }

    fn domain_fs_freeze(&self, dom: &DomainId, mountpoints: &[String], flags: u32) -> Result<i32> {
        self.freeze_or_thaw(dom, mountpoints, flags, true)
    }

    fn domain_fs_thaw(&self, dom: &DomainId, mountpoints: &[String], flags: u32) -> Result<i32> {
        self.freeze_or_thaw(dom, mountpoints, flags, false)
    }

    // This test driver has no pools or networks; its errors carry its own domain, as all
    // of libvirt's test driver's do.

    fn storage_pool_lookup(&self, key: PoolKey<'_>) -> Result<String> {
        Err(super::no_pool(FROM, key))
    }

    fn storage_vol_lookup(&self, key: VolumeKey<'_>) -> Result<String> {
        Err(super::no_volume(FROM, key))
    }

    fn network_lookup(&self, key: NetworkKey<'_>) -> Result<String> {
        Err(super::no_network(FROM, key))
    }
}

impl TestDriver {
    /// Freezes (or thaws) the fictional file systems, as libvirt's test driver does: all
    /// of them without mount points, else `/` and `/boot` by name. Returns how many
    /// changed.
    fn freeze_or_thaw(&self, dom: &DomainId, mountpoints: &[String], flags: u32, freeze: bool) -> Result<i32> {
        let api = if freeze { "testDomainFSFreeze" } else { "testDomainFSThaw" };
        Error::check_flags(FROM, api, flags, 0)?;
        let mut state = self.state.lock();
        let d = state.domain_mut(dom)?;
        if !d.is_active() {
            return Err(not_running());
        }
        let mut frozen = d.frozen;
        let wanted: Vec<usize> = if mountpoints.is_empty() {
            vec![0, 1]
        } else {
            mountpoints
                .iter()
                .map(|m| match m.as_str() {
                    "/" => Ok(0),
                    "/boot" => Ok(1),
                    other => Err(Error::new(
                        FROM,
                        Code::VIR_ERR_OPERATION_INVALID,
                        format!("mount point not found: {other}"),
                    )),
                })
                .collect::<Result<_>>()?
        };
        let mut changed = 0;
        for at in wanted {
            if frozen[at] != freeze {
                frozen[at] = freeze;
                changed += 1;
            }
        }
        d.frozen = frozen;
        Ok(changed)
    }
}

/// Prepares a new snapshot of a test domain (`testDomainSnapshotAlignDisks`): a copy of
/// the domain's definition, the domain's state, memory saved internally unless the domain
/// is off or the XML asks for a file, disks aligned to the memory's location, and the
/// current snapshot as parent.
fn prepare_snapshot(d: &TestDomain, mut def: SnapshotDef) -> Result<snapshots::Prepared> {
    if def.disks.iter().any(|disk| disk.kind == SnapshotLocation::Manual) {
        return Err(Error::new(
            FROM,
            Code::VIR_ERR_OPERATION_UNSUPPORTED,
            "'manual' snapshot mode is not supported by the test driver",
        ));
    }
    def.domain = Some(d.def.clone());
    def.state = SnapshotState::from_domain_state(d.state).unwrap_or_default();
    let location = if def.memory == SnapshotLocation::External {
        SnapshotLocation::External
    } else {
        def.memory =
            if def.state == SnapshotState::Shutoff { SnapshotLocation::No } else { SnapshotLocation::Internal };
        SnapshotLocation::Internal
    };
    def.align_disks(None, location, true, snapshots::is_regular_file)?;
    if d.snapshots.contains(&def.name) {
        return Err(d.snapshots.exists_error(&def.name));
    }
    def.parent = d.snapshots.current().map(str::to_string);
    Ok(snapshots::Prepared { def, replaces: false, make_current: true })
}

/// Reverts a test domain to a snapshot as libvirt's test driver does: the domain takes
/// the snapshot's definition and state. A running or paused snapshot restarts the domain
/// (stopping it first if it runs) with id `next_id`, paused if the snapshot was paused or
/// PAUSED asks, unless RUNNING does; a shut-off snapshot stops it. Asking to run or pause
/// after a shut-off snapshot leaves the domain off, as there. Returns whether `next_id`
/// was used, and the events to raise.
fn revert(
    d: &mut TestDomain,
    name: &str,
    flags: u32,
    next_id: i32,
    driver: usize,
) -> Result<(bool, Vec<events::DomainEvent>)> {
    let snap = d.snapshots.get(name)?;
    let asked = |f: Revert| flags & f as u32 != 0;
    let run_or_pause =
        asked(Revert::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING) || asked(Revert::VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED);
    let online = snap.state.is_online();
    if !d.persistent && !online && !run_or_pause {
        return Err(Error::new(
            FROM,
            Code::VIR_ERR_OPERATION_INVALID,
            "transient domain needs to request run or pause to revert to inactive snapshot",
        ));
    }
    let Some(config) = snap.domain.clone() else {
        return Err(Error::new(
            FROM,
            Code::VIR_ERR_SNAPSHOT_REVERT_RISKY,
            format!("snapshot '{name}' lacks domain '{}' rollback info", d.def.name),
        ));
    };
    let paused = snap.state == SnapshotState::Paused;
    let mut raised = Vec::new();
    // A transient domain stopped by a revert stays listed, as in libvirt's test driver.
    if d.is_active() {
        raised = d.shut_off(virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT, driver);
    }
    d.def = config;
    if online {
        d.id = next_id;
        d.state = virDomainState::VIR_DOMAIN_RUNNING as i32;
        d.reason = virDomainRunningReason::VIR_DOMAIN_RUNNING_FROM_SNAPSHOT as i32;
        if !asked(Revert::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)
            && (paused || asked(Revert::VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED))
        {
            d.state = virDomainState::VIR_DOMAIN_PAUSED as i32;
            d.reason = virDomainPausedReason::VIR_DOMAIN_PAUSED_FROM_SNAPSHOT as i32;
        }
    }
    d.snapshots.set_current(Some(name));
    Ok((online, raised))
}

/// libvirt's `virDomainObjCheckActive` error.
fn not_running() -> Error {
    Error::new(Domain::VIR_FROM_DOMAIN, Code::VIR_ERR_OPERATION_INVALID, "domain is not running")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_domain_prints_as_libvirt_does() {
        let driver = TestDriver::new();
        let dom = driver.domain_lookup_by_name("test").unwrap();
        assert_eq!(dom.id, 1);
        let live = driver.domain_get_xml_desc(&dom, 0).unwrap();
        assert_eq!(live, DEFAULT_DOMAIN_XML.replacen("<domain type='test'>", "<domain type='test' id='1'>", 1));
        let inactive = driver.domain_get_xml_desc(&dom, XmlFlags::VIR_DOMAIN_XML_INACTIVE as u32).unwrap();
        assert_eq!(inactive, DEFAULT_DOMAIN_XML);
    }

    #[test]
    fn lookups_and_errors() {
        let driver = TestDriver::new();
        let e = driver.domain_lookup_by_name("nope").unwrap_err();
        assert_eq!((e.code, e.domain, e.message.as_str()), (Code::VIR_ERR_NO_DOMAIN, FROM, "Domain not found"));
        assert!(driver.domain_lookup_by_id(2).is_err());
        assert_eq!(driver.domain_lookup_by_id(1).unwrap().name, "test");
        let ghost =
            DomainId { name: "tr".into(), uuid: Uuid::parse("11111111-2222-3333-4444-555555555555").unwrap(), id: -1 };
        assert_eq!(
            driver.domain_is_active(&ghost).unwrap_err().message,
            "Domain not found: no domain with matching uuid '11111111-2222-3333-4444-555555555555' (tr)"
        );
        let dom = driver.domain_lookup_by_name("test").unwrap();
        assert_eq!(
            driver.domain_get_xml_desc(&dom, 4).unwrap_err().message,
            "unsupported flags (0x4) in function testDomainGetXMLDesc"
        );
        assert_eq!(driver.connect_list_all_domains(2).unwrap().len(), 0);
        assert_eq!(driver.connect_list_all_domains(1).unwrap().len(), 1);
        assert!(TestDriver::check_open_flags(3).is_err());
    }

    const PULL: &str = "<domainbackup mode='pull'><server transport='unix' socket='/run/b.sock'/></domainbackup>";

    #[test]
    fn push_backups_end_as_they_begin() {
        let driver = TestDriver::new();
        let dom = driver.domain_lookup_by_name("test").unwrap();
        let cp = "<domaincheckpoint><name>c1</name></domaincheckpoint>";
        driver.backup_begin(&dom, "<domainbackup/>", Some(cp), 0).unwrap();
        driver.checkpoint_lookup_by_name(&dom, "c1", 0).unwrap();
        assert_eq!(driver.backup_get_xml_desc(&dom, 0).unwrap_err().code, Code::VIR_ERR_NO_DOMAIN_BACKUP);
        assert_eq!(driver.domain_abort_job(&dom, 0).unwrap_err().code, Code::VIR_ERR_OPERATION_INVALID);
        assert_eq!(driver.domain_get_job_info(&dom).unwrap().job_type, 0);
        let done = driver.domain_get_job_stats(&dom, 1).unwrap();
        assert_eq!(done.job_type, 3);
        assert!(done.params.contains(&("disk_processed".to_string(), super::super::TypedValue::ULLong(1 << 30))));
        assert!(done.params.contains(&("success".to_string(), super::super::TypedValue::Boolean(true))));
        // Read once.
        assert_eq!(driver.domain_get_job_stats(&dom, 1).unwrap().job_type, 0);
        // An incremental from the new checkpoint.
        driver.backup_begin(&dom, "<domainbackup><incremental>c1</incremental></domainbackup>", None, 0).unwrap();
        let e = driver.backup_begin(&dom, "<domainbackup><incremental>c9</incremental></domainbackup>", None, 0);
        assert_eq!(e.unwrap_err().code, Code::VIR_ERR_NO_DOMAIN_CHECKPOINT);
    }

    #[test]
    fn pull_backups_run_until_aborted() {
        let driver = TestDriver::new();
        let dom = driver.domain_lookup_by_name("test").unwrap();
        driver.backup_begin(&dom, PULL, None, 0).unwrap();
        let xml = driver.backup_get_xml_desc(&dom, 0).unwrap();
        assert!(
            xml.contains("<disk name='vda' backup='yes' type='file' backupmode='full' exportname='vda' index='2'>"),
            "{xml}"
        );
        let again = driver.backup_begin(&dom, PULL, None, 0).unwrap_err();
        assert_eq!(again.message, "Requested operation is not valid: another backup job is already running");
        assert_eq!(driver.domain_get_job_info(&dom).unwrap().job_type, 2);
        let stats = driver.domain_get_job_stats(&dom, 0).unwrap();
        assert_eq!(stats.job_type, 2);
        assert_eq!(stats.params.last().unwrap().0, "disk_temp_total");
        let block = driver.domain_get_block_job_info(&dom, "/guest/diskimage1", 0).unwrap().unwrap();
        assert_eq!(block.job_type, 5);
        assert_eq!(driver.domain_get_block_job_info(&dom, "vdz", 0).unwrap_err().code, Code::VIR_ERR_INVALID_ARG);
        assert_eq!(driver.domain_abort_job(&dom, 1).unwrap_err().code, Code::VIR_ERR_OPERATION_INVALID);
        driver.domain_abort_job(&dom, 0).unwrap();
        assert_eq!(driver.domain_get_block_job_info(&dom, "vda", 0).unwrap(), None);
        let done = driver.domain_get_job_stats(&dom, 3).unwrap();
        assert_eq!(done.job_type, 3);
        assert_eq!(done.params.last().unwrap().1, super::super::TypedValue::String("Operation canceled".into()));
    }

    #[test]
    fn stopping_the_domain_fails_its_job_and_inactive_domains_are_refused() {
        let driver = TestDriver::new();
        let dom = driver.domain_lookup_by_name("test").unwrap();
        driver.backup_begin(&dom, PULL, None, 0).unwrap();
        driver.domain_destroy(&dom, 0).unwrap();
        assert_eq!(driver.domain_get_job_stats(&dom, 1).unwrap().job_type, 4);
        let e = driver.backup_begin(&dom, PULL, None, 0).unwrap_err();
        assert_eq!(e.message, "Operation not supported: cannot perform disk backup for inactive domain");
    }
}
