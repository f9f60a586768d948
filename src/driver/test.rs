//! The test driver, `test:///default`: libvirt's built-in fake hypervisor, in memory.
//!
//! As in libvirt, every connection of the process shares one set of state, which starts
//! with a single running domain `test` (id 1) with one disk `vda`. Nothing is kept between
//! processes.

use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::{list_filter_accepts, DomainFacts, DomainId, DomainInfo, Driver, LIST_DOMAINS_ALL};
use crate::abi::{virDomainState, virDomainXMLFlags as XmlFlags};
use crate::conf::domain::{DomainDef, FormatOptions};
use crate::error::{Code, Domain, Error, Result};
use crate::uuid::Uuid;

const FROM: Domain = Domain::VIR_FROM_TEST;

/// The definition libvirt's test driver starts with (as `virsh -c test:///default
/// dumpxml test` shows it).
const DEFAULT_DOMAIN_XML: &str = "\
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
    def: DomainDef,
    /// Live id, or -1 when shut off.
    id: i32,
    state: i32,
    reason: i32,
    persistent: bool,
    autostart: bool,
}

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
            ..Default::default()
        }
    }
}

#[derive(Debug)]
struct State {
    /// In definition order (libvirt keeps a hash table, so callers see no particular order).
    domains: Vec<TestDomain>,
}

impl State {
    fn initial() -> State {
        let def = DomainDef::parse(DEFAULT_DOMAIN_XML).expect("the built-in test domain parses");
        State {
            domains: vec![TestDomain {
                def,
                id: 1,
                state: virDomainState::VIR_DOMAIN_RUNNING as i32,
                reason: 0,
                persistent: true,
                autostart: false,
            }],
        }
    }

    /// The domain a handle names, or libvirt's "no domain with matching uuid" error.
    fn domain(&self, dom: &DomainId) -> Result<&TestDomain> {
        self.domains.iter().find(|d| d.def.uuid == dom.uuid).ok_or_else(|| vanished(dom))
    }
}

fn vanished(dom: &DomainId) -> Error {
    Error::new(
        FROM,
        Code::VIR_ERR_NO_DOMAIN,
        format!("no domain with matching uuid '{}' ({})", dom.uuid, dom.name),
    )
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
        Ok(state
            .domains
            .iter()
            .filter(|d| list_filter_accepts(flags, &d.facts()))
            .map(TestDomain::handle)
            .collect())
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
        let ghost = DomainId { name: "tr".into(), uuid: Uuid::parse("11111111-2222-3333-4444-555555555555").unwrap(), id: -1 };
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
}
