//! Feeds arbitrary text to the `<domainsnapshot>` reader, in create and redefine modes,
//! with and without schema validation. Anything it accepts must print and read back to
//! the same printed form (a fixed point after one round trip: like libvirt's, the writer
//! puts a line break from element text into an attribute as is, and reading turns it into
//! a space); validation may only refuse more; a new snapshot must align against a domain
//! and its printed metadata read back; nothing may panic.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use virbackup::conf::domain::DomainDef;
use virbackup::conf::snapshot::{
    SnapshotDef, SnapshotFormat, SnapshotLocation, SnapshotParse, SnapshotState, StorageType,
};

static DOMAIN: LazyLock<Arc<DomainDef>> = LazyLock::new(|| {
    Arc::new(
        DomainDef::parse(
            "<domain type='test'><name>f</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\
             <memory>1024</memory><os><type>hvm</type></os><devices>\
             <disk type='file'><source file='/a.img'/><target dev='vda'/></disk>\
             <disk type='file'><source file='/b'/><target dev='vdb'/><readonly/></disk>\
             <disk type='block'><source dev='/dev/c'/><target dev='vdc'/></disk>\
             <disk type='file' device='cdrom'><target dev='hdc'/></disk>\
             </devices></domain>",
        )
        .expect("fixture domain"),
    )
});

const ALL: SnapshotFormat = SnapshotFormat { secure: true, internal: true, current: true };

/// The definition without its embedded domains, which get a random UUID when they have
/// none (so two reads of one document differ there).
fn without_domains(def: &SnapshotDef) -> SnapshotDef {
    SnapshotDef { domain: None, inactive_domain: None, ..def.clone() }
}

/// Printing, reading back and printing again is stable.
fn round_trip(def: &SnapshotDef, how: SnapshotParse) {
    // Like libvirt, a network disk with a format but no source prints as
    // `<source protocol='none'/>`, which no reader accepts.
    if def.disks.iter().any(|d| d.source_type == StorageType::Network && d.source_xml.is_none() && d.format.is_some()) {
        return;
    }
    let printed = def.format(None, ALL);
    let read = |text: &str| {
        if how.redefine {
            let (def, current) = SnapshotDef::parse_stored(text, how).expect("printed metadata reads back");
            assert!(current);
            def
        } else {
            SnapshotDef::parse(text, how).expect("printed definition reads back")
        }
    };
    let once = read(&printed).format(None, ALL);
    let twice = read(&once).format(None, ALL);
    assert_eq!(once, twice);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for redefine in [false, true] {
        for keep_cookie in [false, true] {
            let how = SnapshotParse { redefine, keep_cookie, now: Some(1700000000), ..Default::default() };
            let plain = SnapshotDef::parse(text, how);
            if let Ok(validated) = SnapshotDef::parse(text, SnapshotParse { validate: true, ..how }) {
                let plain = plain.as_ref().expect("what validates also reads without validation");
                assert_eq!(without_domains(&validated), without_domains(plain));
            }
            let Ok(mut def) = plain else { continue };
            // A redefinition without a creation time does not print one.
            if !redefine || def.creation_time != 0 {
                round_trip(&def, how);
            }
            if redefine {
                let location = def.redefine_location();
                let _ = def.redefine_validate(&DOMAIN.uuid, None, false);
                if def.align_disks(Some(&DOMAIN), location, true, |p| p == "/a.img").is_ok() && def.creation_time != 0 {
                    round_trip(&def, how);
                }
                continue;
            }
            // What the test driver does with a new snapshot.
            def.domain = Some(DOMAIN.clone());
            def.state = SnapshotState::Running;
            if def.memory != SnapshotLocation::External {
                def.memory = SnapshotLocation::Internal;
            }
            let location = if def.is_external() { SnapshotLocation::External } else { SnapshotLocation::Internal };
            if def.align_disks(None, location, true, |p| p == "/a.img").is_ok() {
                assert_eq!(def.disks.len(), DOMAIN.disks.len());
                round_trip(&def, SnapshotParse { redefine: true, ..how });
            }
        }
    }
});
