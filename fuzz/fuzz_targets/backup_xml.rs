//! Feeds arbitrary text to the `<domainbackup>` reader. Anything it accepts must align
//! against a domain, print in both forms, and read back from its status form; printing is
//! a fixed point after one round trip. (Not always after zero: like libvirt's, the writer
//! puts a line break from element text into an attribute as is, and reading turns it
//! into a space.) The status reader must never panic either.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use virbackup::conf::backup::BackupDef;
use virbackup::conf::domain::DomainDef;

static DOMAIN: LazyLock<DomainDef> = LazyLock::new(|| {
    DomainDef::parse(
        "<domain type='test'><name>f</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\
         <memory>1024</memory><os><type>hvm</type></os><devices>\
         <disk type='file'><source file='/a'/><target dev='vda'/></disk>\
         <disk type='block'><source dev='/dev/b'/><target dev='vdb'/></disk>\
         <disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>\
         </devices></domain>",
    )
    .expect("fixture domain")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = BackupDef::parse_status(text);
    let Ok(mut def) = BackupDef::parse(text) else { return };
    let _ = def.format(false);
    if def.align_disks(&DOMAIN, "SUFFIX").is_ok() {
        let status = def.format(true);
        let once = BackupDef::parse_status(&status).expect("the status form reads back").format(true);
        let twice = BackupDef::parse_status(&once).expect("the reprinted form reads back").format(true);
        assert_eq!(once, twice);
    }
});
