use super::*;

fn domain(disks: &str) -> DomainDef {
    DomainDef::parse(&format!(
        "<domain type='test'><name>d</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><memory>1024</memory>\
         <os><type>hvm</type></os><devices>{disks}</devices></domain>"
    ))
    .unwrap()
}

fn file_disk(target: &str) -> String {
    format!("<disk type='file' device='disk'><source file='/fake/{target}.qcow2'/><target dev='{target}'/></disk>")
}

/// The disks of the upstream tests' fake domain: the listed ones plus `vdextradisk`.
fn fake(targets: &[&str]) -> DomainDef {
    let mut disks: String = targets.iter().map(|t| file_disk(t)).collect();
    disks.push_str(&file_disk("vdextradisk"));
    domain(&disks)
}

fn err(xml: &str) -> (Code, Domain, String) {
    let e = BackupDef::parse(xml).unwrap_err();
    (e.code, e.domain, e.message)
}

fn status_err(xml: &str) -> (Code, Domain, String) {
    let e = BackupDef::parse_status(xml).unwrap_err();
    (e.code, e.domain, e.message)
}

fn aligned(xml: &str, dom: &DomainDef) -> BackupDef {
    let mut def = BackupDef::parse(xml).unwrap();
    def.align_disks(dom, "SUFFIX").unwrap();
    def
}

fn align_err(xml: &str, dom: &DomainDef) -> (Code, Domain, String) {
    let mut def = BackupDef::parse(xml).unwrap();
    let before = def.clone();
    let e = def.align_disks(dom, "SUFFIX").unwrap_err();
    assert_eq!(def, before, "a failed alignment changes nothing");
    (e.code, e.domain, e.message)
}

fn unsupported_msg(detail: &str) -> (Code, Domain, String) {
    (Code::VIR_ERR_CONFIG_UNSUPPORTED, FROM, format!("unsupported configuration: {detail}"))
}

fn xml_msg(detail: &str) -> (Code, Domain, String) {
    (Code::VIR_ERR_XML_ERROR, FROM, format!("XML error: {detail}"))
}

const SCHEMA_PREFIX: &str = "XML document failed to validate against schema: Unable to validate doc against /usr/share/libvirt/schemas/domainbackup.rng\n";

fn assert_schema_error(xml: &str) {
    let (code, domain, message) = err(xml);
    assert_eq!((code, domain), (Code::VIR_ERR_XML_INVALID_SCHEMA, Domain::VIR_FROM_XML), "{xml}: {message}");
    assert!(message.starts_with(SCHEMA_PREFIX), "{message}");
    assert!(message.len() > SCHEMA_PREFIX.len(), "a detail line follows: {message}");
}

// ---------------------------------------------------------------------------------------
// Lexical rules

#[test]
fn lexical_rules() {
    assert_eq!(unsigned_int("0"), Some(0));
    assert_eq!(unsigned_int("010809"), Some(10809));
    assert_eq!(unsigned_int("4294967295"), Some(u32::MAX));
    assert_eq!(unsigned_int("000000000004294967295"), Some(u32::MAX));
    for bad in ["", "4294967296", "-1", "+1", " 1", "1 ", "0x10", "99999999999999999999999"] {
        assert_eq!(unsigned_int(bad), None, "{bad:?}");
    }
    for ok in ["localhost", "a-b.example.org", "10.0.0.1", "1.2.3.999", "-"] {
        assert!(valid_dns_name(ok), "{ok}");
    }
    for bad in ["", "a_b", "a b", "héllo", "[::1]"] {
        assert!(!valid_dns_name(bad), "{bad}");
    }
    for ok in ["0.0.0.0", "255.255.255.255", "192.168.1.10"] {
        assert!(valid_ipv4(ok), "{ok}");
    }
    for bad in ["256.1.1.1", "01.1.1.1", "1.1.1", "1.1.1.1.1", "1..1.1", "1.1.1.a"] {
        assert!(!valid_ipv4(bad), "{bad}");
    }
    for ok in [
        "::",
        "::1",
        "1::",
        "1:2:3:4:5:6:7::",
        "fe80::1",
        "2001:db8::ff00:42:8329",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "1:2:3:4:5:6::8",
        "1:2::3:4:5:6:7",
        "::ffff:192.0.2.1",
        "1:2:3:4:5:6:1.2.3.4",
        "1:2::1.2.3.4",
        "::1:2:3:4:5:6:7",
    ] {
        assert!(valid_ipv6(ok), "{ok}");
    }
    for bad in ["", ":", ":::", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "1::2::3", "fe80::1%eth0", "::256.1.1.1"] {
        assert!(!valid_ipv6(bad), "{bad}");
    }
    assert!(valid_uuid("0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f"));
    assert!(valid_uuid("0A81F5B284037B23C8D621CCC2F80D6F"));
    assert!(!valid_uuid("0a81f5b2-8403-7b23-c8d6-21ccc2f80d6"));
    assert!(!valid_uuid("0a81f5b28403-7b23-c8d6-21ccc2f80d6f0"));
    assert_eq!(token("  a \t b\n"), "a b");
    assert_eq!(token("\u{a0}x"), "\u{a0}x");
}

// ---------------------------------------------------------------------------------------
// Parsing valid input

#[test]
fn parses_an_empty_backup() {
    let def = BackupDef::parse("<domainbackup/>").unwrap();
    assert_eq!(def, BackupDef::default());
    assert_eq!(def.mode, BackupMode::Push);
    let def =
        BackupDef::parse("<?xml version='1.0'?>\n<!-- c -->\n<domainbackup mode='push'>\n</domainbackup>").unwrap();
    assert_eq!(def, BackupDef::default());
}

#[test]
fn parses_a_push_backup() {
    let def = BackupDef::parse(
        "<domainbackup mode=\"push\">\n  <incremental>1525889631</incremental>\n  <disks>\n\
         <disk name='vda' type='file'>\n  <driver type='raw'/>\n  <target file='/path/to/file'/>\n</disk>\n\
         <disk name='vdb' type='file' backupmode='full'/>\n\
         <disk name='vdc' backup='yes' type='block' backupmode='incremental' incremental='cp'><target dev='/dev/sdz'/></disk>\n\
         <disk name='hda' backup='no' backupmode='incremental'/>\n</disks>\n</domainbackup>\n",
    )
    .unwrap();
    assert_eq!(def.mode, BackupMode::Push);
    assert_eq!(def.incremental.as_deref(), Some("1525889631"));
    assert_eq!(def.server, None);
    assert_eq!(
        def.disks,
        [
            BackupDisk {
                name: "vda".into(),
                backup: true,
                store_kind: Some(StoreKind::File),
                store: Some("/path/to/file".into()),
                format: Some("raw".into()),
                ..Default::default()
            },
            BackupDisk {
                name: "vdb".into(),
                backup: true,
                mode: Some(DiskBackupMode::Full),
                store_kind: Some(StoreKind::File),
                ..Default::default()
            },
            BackupDisk {
                name: "vdc".into(),
                backup: true,
                mode: Some(DiskBackupMode::Incremental),
                incremental: Some("cp".into()),
                store_kind: Some(StoreKind::Block),
                store: Some("/dev/sdz".into()),
                ..Default::default()
            },
            // With backup='no' nothing else is read.
            BackupDisk::skipped("hda"),
        ]
    );
}

#[test]
fn parses_pull_backups() {
    let def = BackupDef::parse(
        "<domainbackup mode='pull'><server transport='tcp' tls='yes' name='localhost' port='10809'/>\
         <disks><disk name='vda' type='file' exportname='test-vda' exportbitmap='blah'><driver type='qcow2'/>\
         <scratch file='/path/to/file'/></disk><disk name='vdb' type='block'><scratch dev='/dev/block'/></disk>\
         <disk name='vdc'/><disk name='vdd' backupmode='incremental'><scratch file='/s'/><driver type='qcow2'/></disk>\
         <disk name='vde' backup='no' exportname='x'/></disks></domainbackup>",
    )
    .unwrap();
    assert_eq!(def.mode, BackupMode::Pull);
    assert_eq!(
        def.server,
        Some(BackupServer {
            transport: Transport::Tcp { name: "localhost".into(), port: Some(10809) },
            tls: Some(true)
        })
    );
    let vda = &def.disks[0];
    assert_eq!(
        (vda.export_name.as_deref(), vda.export_bitmap.as_deref(), vda.format.as_deref()),
        (Some("test-vda"), Some("blah"), Some("qcow2"))
    );
    assert_eq!(vda.store.as_deref(), Some(std::path::Path::new("/path/to/file")));
    assert_eq!(
        (def.disks[1].store_kind, def.disks[1].store.as_deref()),
        (Some(StoreKind::Block), Some("/dev/block".as_ref()))
    );
    // A pull disk may leave out the type (a file) and the scratch.
    assert_eq!(
        def.disks[2],
        BackupDisk { name: "vdc".into(), backup: true, store_kind: Some(StoreKind::File), ..Default::default() }
    );
    assert_eq!(def.disks[3].mode, Some(DiskBackupMode::Incremental));
    assert_eq!(def.disks[4], BackupDisk::skipped("vde"));

    let def = BackupDef::parse(
        "<domainbackup mode='pull'><server transport='unix' socket='/run/nbd.sock' tls='no'/></domainbackup>",
    )
    .unwrap();
    assert_eq!(
        def.server,
        Some(BackupServer { transport: Transport::Unix { socket: "/run/nbd.sock".into() }, tls: Some(false) })
    );
    assert!(def.disks.is_empty());

    // Transport defaults to tcp; IPv4 and IPv6 addresses are names too; port 0 is "none".
    for (name, port, expect) in
        [("192.168.0.1", "0", None), ("::1", "65535", Some(65535)), ("fe80::1", "010809", Some(10809))]
    {
        let def = BackupDef::parse(&format!(
            "<domainbackup mode='pull'><server name='{name}' port='{port}'/></domainbackup>"
        ))
        .unwrap();
        assert_eq!(
            def.server,
            Some(BackupServer { transport: Transport::Tcp { name: name.into(), port: expect }, tls: None })
        );
    }
    let def = BackupDef::parse("<domainbackup mode='pull'><server name='h'/></domainbackup>").unwrap();
    assert_eq!(def.server.unwrap().transport, Transport::Tcp { name: "h".into(), port: None });
}

#[test]
fn parses_seclabels_and_encryption() {
    let def = BackupDef::parse(
        "<domainbackup mode='pull'><server name='localhost' port='1'/><disks>\
         <disk name='vda' type='file'><scratch file='/s'>\n  <seclabel model='dac' relabel='no'/>\n\
         <encryption format='luks' engine='qemu'>\n <secret type='passphrase' uuid='0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f'/>\n\
         <cipher name='aes' size='256' mode='xts' hash='sha256'/><ivgen name='plain64' hash='sha256'/></encryption>\n\
         <seclabel model='selinux'><label>system_u:object_r:svirt_image_t:s0</label></seclabel>\n\
         <seclabel labelskip='yes'/></scratch></disk></disks></domainbackup>",
    )
    .unwrap();
    let disk = &def.disks[0];
    assert_eq!(disk.seclabels.len(), 3);
    assert_eq!(disk.seclabels[0], Element::new("seclabel").with_attr("model", "dac").with_attr("relabel", "no"));
    let enc = disk.encryption.as_ref().unwrap();
    assert_eq!(enc.elements().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["secret", "cipher", "ivgen"]);
    // Printed back as given, seclabels first.
    let mut def = def.clone();
    def.disks.truncate(1);
    assert_eq!(
        def.format(false),
        "<domainbackup mode='pull'>\n  <server transport='tcp' name='localhost' port='1'/>\n  <disks>\n\
         \x20   <disk name='vda' backup='yes' type='file'>\n\
         \x20     <scratch file='/s'>\n\
         \x20       <seclabel model='dac' relabel='no'/>\n\
         \x20       <seclabel model='selinux'>\n\
         \x20         <label>system_u:object_r:svirt_image_t:s0</label>\n\
         \x20       </seclabel>\n\
         \x20       <seclabel labelskip='yes'/>\n\
         \x20       <encryption format='luks' engine='qemu'>\n\
         \x20         <secret type='passphrase' uuid='0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f'/>\n\
         \x20         <cipher name='aes' size='256' mode='xts' hash='sha256'/>\n\
         \x20         <ivgen name='plain64' hash='sha256'/>\n\
         \x20       </encryption>\n\
         \x20     </scratch>\n    </disk>\n  </disks>\n</domainbackup>\n"
    );
    // The secret may come after the cipher pair, and `usage` may replace `uuid`.
    BackupDef::parse(
        "<domainbackup><disks><disk name='vda' type='block'><target dev='/dev/x'><encryption format='luks'>\
         <cipher name='a' size='1'/><ivgen name='b'/><secret type='passphrase' usage='/u'/></encryption>\
         </target></disk></disks></domainbackup>",
    )
    .unwrap();
}

#[test]
fn incremental_element_text() {
    let def = BackupDef::parse("<domainbackup><incremental></incremental></domainbackup>").unwrap();
    assert_eq!(def.incremental, None);
    let def = BackupDef::parse("<domainbackup><incremental> a &amp; b </incremental></domainbackup>").unwrap();
    assert_eq!(def.incremental.as_deref(), Some(" a & b "));
    // Element order within the root is free.
    let def = BackupDef::parse(
        "<domainbackup mode='pull'><disks><disk name='vda' backup='no'/></disks><incremental>c</incremental>\
         <server transport='unix' socket='/s'/></domainbackup>",
    )
    .unwrap();
    assert_eq!(def.incremental.as_deref(), Some("c"));
}

#[test]
fn namespace_declarations_are_not_attributes() {
    BackupDef::parse("<domainbackup xmlns:x='urn:x' xmlns=''/>").unwrap();
    assert_schema_error("<domainbackup xmlns='urn:x'/>");
    assert_schema_error("<domainbackup><disks xmlns='urn:x'><disk name='vda' backup='no'/></disks></domainbackup>");
}

// ---------------------------------------------------------------------------------------
// Errors while parsing

#[test]
fn syntax_and_root_errors() {
    let (code, domain, message) = err("");
    assert_eq!((code, domain), (Code::VIR_ERR_XML_DETAIL, FROM));
    assert!(message.starts_with("(domain_backup):1: "), "{message}");
    let (code, domain, message) = err("<domainbackup>\n<disks>\n</domainbackup>");
    assert_eq!((code, domain), (Code::VIR_ERR_XML_DETAIL, FROM));
    assert!(message.starts_with("(domain_backup):3: "), "{message}");
    assert_eq!(
        err("<domaincheckpoint/>"),
        (
            Code::VIR_ERR_XML_ERROR,
            Domain::VIR_FROM_XML,
            "XML error: expecting root element of 'domainbackup', not 'domaincheckpoint'".into()
        )
    );
    assert_eq!(status_err("<foo/>").1, Domain::VIR_FROM_XML);
}

#[test]
fn schema_errors() {
    let pull = |rest: &str| format!("<domainbackup mode='pull'><server name='h' port='1'/>{rest}</domainbackup>");
    let pull_disk = |disk: &str| pull(&format!("<disks>{disk}</disks>"));
    let push_disk = |disk: &str| format!("<domainbackup><disks>{disk}</disks></domainbackup>");
    let mut cases: Vec<String> = [
        // root
        "<domainbackup mode='default'/>",
        "<domainbackup mode='PULL'/>",
        "<domainbackup color='red'/>",
        "<domainbackup>text</domainbackup>",
        "<domainbackup><bogus/></domainbackup>",
        "<domainbackup><incremental>a</incremental><incremental>b</incremental></domainbackup>",
        "<domainbackup><incremental x='1'>a</incremental></domainbackup>",
        "<domainbackup><incremental><b/></incremental></domainbackup>",
        "<domainbackup><disks/></domainbackup>",
        "<domainbackup><disks x='1'><disk name='vda' backup='no'/></disks></domainbackup>",
        "<domainbackup><disks><disk name='vda' backup='no'/></disks><disks><disk name='vdb' backup='no'/></disks></domainbackup>",
        "<domainbackup><disks><disk name='vda' backup='no'/><other/></disks></domainbackup>",
        "<domainbackup><disks>text<disk name='vda' backup='no'/></disks></domainbackup>",
        // server: pull only and required there
        "<domainbackup><server name='localhost' port='10809'/></domainbackup>",
        "<domainbackup mode='push'><server name='localhost' port='10809'/></domainbackup>",
        "<domainbackup mode='pull'/>",
        "<domainbackup mode='pull'><disks><disk name='vda' backup='no'/></disks></domainbackup>",
        "<domainbackup mode='pull'><server name='h'/><server name='h'/></domainbackup>",
        "<domainbackup mode='pull'><server/></domainbackup>",
        "<domainbackup mode='pull'><server transport='tcp'/></domainbackup>",
        "<domainbackup mode='pull'><server name='a_b'/></domainbackup>",
        "<domainbackup mode='pull'><server name='h' port='-1'/></domainbackup>",
        "<domainbackup mode='pull'><server name='h' port='4294967296'/></domainbackup>",
        "<domainbackup mode='pull'><server name='h' port=' 1'/></domainbackup>",
        "<domainbackup mode='pull'><server name='h' socket='/s'/></domainbackup>",
        "<domainbackup mode='pull'><server name='h' tls='maybe'/></domainbackup>",
        "<domainbackup mode='pull'><server name='h' extra='1'/></domainbackup>",
        "<domainbackup mode='pull'><server name='h'><x/></server></domainbackup>",
        "<domainbackup mode='pull'><server name='h'>text</server></domainbackup>",
        "<domainbackup mode='pull'><server transport='unix'/></domainbackup>",
        "<domainbackup mode='pull'><server transport='unix' socket='rel.sock'/></domainbackup>",
        "<domainbackup mode='pull'><server transport='unix' socket='/s' name='h'/></domainbackup>",
        "<domainbackup mode='pull'><server transport='unix' socket='/s' port='1'/></domainbackup>",
        "<domainbackup mode='pull'><server transport='rdma' name='h'/></domainbackup>",
        "<domainbackup mode='pull'><server transport='udp' name='h'/></domainbackup>",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cases.extend(
        [
            // push disks
            "<disk/>",
            "<disk name='/a.img' backup='no'/>",
            "<disk name='nvme0' backup='no'/>",
            "<disk name='vda'/>",
            "<disk name='vda' backup='yes'/>",
            "<disk name='vda' backup='maybe' type='file'/>",
            "<disk name='vda' backup='no' type='file'/>",
            "<disk name='vda' backup='no'><target file='/x'/></disk>",
            "<disk name='vda' type='network'/>",
            "<disk name='vda' type='dir'/>",
            "<disk name='vda' type='file' backupmode='full' incremental='c'/>",
            "<disk name='vda' backup='no' backupmode='full' incremental='c'/>",
            "<disk name='vda' type='file' backupmode='differential'/>",
            "<disk name='vda' type='file' exportname='x'/>",
            "<disk name='vda' type='file' exportbitmap='x'/>",
            "<disk name='vda' type='file' state='running'/>",
            "<disk name='vda' type='file' index='3'/>",
            "<disk name='vda' type='file'><scratch file='/x'/></disk>",
            "<disk name='vda' type='file'><target dev='/x'/></disk>",
            "<disk name='vda' type='block'><target file='/x'/></disk>",
            "<disk name='vda' type='file'><target/></disk>",
            "<disk name='vda' type='file'><target file='rel'/></disk>",
            "<disk name='vda' type='file'><target file='/x' type='file'/></disk>",
            "<disk name='vda' type='file'><target file='/x'/><target file='/y'/></disk>",
            "<disk name='vda' type='file'><target file='/x'>text</target></disk>",
            "<disk name='vda' type='file'><target file='/x'><source/></target></disk>",
            "<disk name='vda' type='file'><driver/></disk>",
            "<disk name='vda' type='file'><driver type='qcow3'/></disk>",
            "<disk name='vda' type='file'><driver type='qcow2' name='qemu'/></disk>",
            "<disk name='vda' type='file'><driver type='qcow2'/><driver type='raw'/></disk>",
            "<disk name='vda' type='file'>text</disk>",
            // seclabels
            "<disk name='vda' type='file'><target file='/x'><seclabel/></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><seclabel model='dac'/></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><seclabel relabel='yes'/></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><seclabel relabel='no'><label>l</label></seclabel></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><seclabel relabel='no' labelskip='yes'/></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><seclabel labelskip='no'/></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><seclabel relabel='no' type='dynamic'/></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><seclabel><label x='1'>l</label></seclabel></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><seclabel><imagelabel>l</imagelabel></seclabel></target></disk>",
            // encryption
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'/></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='qcow'><secret type='passphrase' usage='u'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks' engine='librbd'><secret type='passphrase' usage='u'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption><secret type='passphrase' usage='u'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='volume' usage='u'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' usage='u' uuid='0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' uuid='nope'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' usage='u'/><secret type='passphrase' usage='v'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' usage='u'/><cipher name='a' size='1'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' usage='u'/><ivgen name='a'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' usage='u'/><ivgen name='a'/><cipher name='a' size='1'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' usage='u'/><cipher name='a' size='x'/><ivgen name='a'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' usage='u'/><cipher name='a' size='1' mode='m'/><ivgen name='a'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' usage='u'/><cipher size='1'/><ivgen name='a'/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' usage='u'/><cipher name='a' size='1'/><ivgen/></encryption></target></disk>",
            "<disk name='vda' type='file'><target file='/x'><encryption format='luks'><secret type='passphrase' usage='u'/></encryption><encryption format='luks'><secret type='passphrase' usage='u'/></encryption></target></disk>",
        ]
        .iter()
        .map(|d| push_disk(d)),
    );
    cases.extend(
        [
            // pull disks
            "<disk name='vda' backup='yes'/>",
            "<disk name='vda' backup='yes'><scratch file='/x'/></disk>",
            "<disk name='vda' type='block'/>",
            "<disk name='vda' backup='yes' type='block'/>",
            "<disk name='vda' type='block'><driver type='qcow2'/></disk>",
            "<disk name='vda'><driver type='qcow2'/></disk>",
            "<disk name='vda' type='file'><driver type='qcow2'/></disk>",
            "<disk name='vda'><scratch file='/x'/><driver type='raw'/></disk>",
            "<disk name='vda'><target file='/x'/></disk>",
            "<disk name='vda'><scratch dev='/x'/></disk>",
            "<disk name='vda' type='block'><scratch file='/x'/></disk>",
            "<disk name='vda' backup='no'><scratch file='/x'/></disk>",
            "<disk name='vda' backup='no' type='file'/>",
            "<disk name='vda' state='running'/>",
            "<disk name='vda' backupmode='full' incremental='x'/>",
        ]
        .iter()
        .map(|d| pull_disk(d)),
    );
    for case in &cases {
        assert_schema_error(case);
    }
}

#[test]
fn errors_after_the_schema() {
    // The schema compares values as tokens; libvirt's parser then compares exactly.
    assert_eq!(err("<domainbackup mode=' push '/>"), unsupported_msg("unknown backup mode ' push '"));
    assert_eq!(
        err("<domainbackup><disks><disk name='vda' backup=' yes ' type='file'/></disks></domainbackup>"),
        (
            Code::VIR_ERR_XML_ERROR,
            Domain::VIR_FROM_XML,
            "XML error: Invalid value for attribute 'backup' in element 'disk': ' yes '.".into()
        )
    );
    assert_eq!(
        err("<domainbackup><disks><disk name='vda' type='file ' backupmode='full'/></disks></domainbackup>"),
        xml_msg("unknown storage source type 'file '")
    );
    assert_eq!(
        err("<domainbackup><disks><disk name='vda' type='file'><driver type=' raw'/></disks></domainbackup>").0,
        Code::VIR_ERR_XML_DETAIL,
        "unclosed element is a syntax error"
    );
    assert_eq!(
        err("<domainbackup><disks><disk name='vda' type='file'><driver type=' raw'/></disk></disks></domainbackup>"),
        xml_msg("unknown storage source format ' raw'")
    );
    assert_eq!(
        err("<domainbackup><disks><disk name='vda' type='file' backupmode='full '/></disks></domainbackup>"),
        (
            Code::VIR_ERR_XML_ERROR,
            Domain::VIR_FROM_XML,
            "XML error: Invalid value for attribute 'backupmode' in element 'disk': 'full '.".into()
        )
    );
    assert_eq!(
        err("<domainbackup mode='pull'><server name='h' tls='yes '/></domainbackup>"),
        (
            Code::VIR_ERR_XML_ERROR,
            Domain::VIR_FROM_XML,
            "XML error: Invalid value for attribute 'tls' in element 'server': 'yes '.".into()
        )
    );
    assert_eq!(
        err("<domainbackup mode='pull'><server transport=' tcp' name='h'/></domainbackup>"),
        xml_msg("unknown protocol transport type ' tcp'")
    );
    // A drive-letter path passes the schema but is not absolute here.
    assert_eq!(
        err("<domainbackup mode='pull'><server transport='unix' socket='C:\\nbd.sock'/></domainbackup>"),
        xml_msg("backup socket path 'C:\\nbd.sock' must be absolute")
    );
    // The schema allows any unsignedInt; the port reader allows 16 bits.
    assert_eq!(
        err("<domainbackup mode='pull'><server name='h' port='65536'/></domainbackup>"),
        (Code::VIR_ERR_INVALID_ARG, Domain::VIR_FROM_NONE, "invalid argument: port '65536' out of range".into())
    );
    // One seclabel per security model.
    assert_eq!(
        err("<domainbackup><disks><disk name='vda' type='file'><target file='/x'>\
             <seclabel model='dac' relabel='no'/><seclabel model='dac' relabel='no'/></target></disk></disks></domainbackup>"),
        (Code::VIR_ERR_XML_DETAIL, FROM, "seclabel for model dac is already provided".into())
    );
    BackupDef::parse(
        "<domainbackup><disks><disk name='vda' type='file'><target file='/x'>\
         <seclabel model='dac' relabel='no'/><seclabel model='selinux' relabel='no'/><seclabel relabel='no'/>\
         <seclabel relabel='no'/></target></disk></disks></domainbackup>",
    )
    .unwrap();
}

#[test]
fn status_only_errors() {
    let cases: &[(&str, (Code, Domain, String))] = &[
        ("<domainbackup mode='default'/>", unsupported_msg("unknown backup mode 'default'")),
        ("<domainbackup mode='x'/>", unsupported_msg("unknown backup mode 'x'")),
        (
            "<domainbackup><server name='h' port='1'/></domainbackup>",
            unsupported_msg("use of <server> requires pull mode backup"),
        ),
        (
            "<domainbackup mode='pull'><server transport='udp' name='h'/></domainbackup>",
            xml_msg("unknown protocol transport type 'udp'"),
        ),
        (
            "<domainbackup mode='pull'><server transport='unix'/></domainbackup>",
            xml_msg("missing socket for unix transport"),
        ),
        (
            "<domainbackup mode='pull'><server name='h' socket='/s'/></domainbackup>",
            xml_msg("transport 'tcp' does not support socket attribute"),
        ),
        (
            "<domainbackup mode='pull'><server transport='rdma' socket='/s'/></domainbackup>",
            xml_msg("transport 'rdma' does not support socket attribute"),
        ),
        ("<domainbackup mode='pull'><server port='1'/></domainbackup>", xml_msg("missing name for host")),
        (
            "<domainbackup mode='pull'><server name='h' port='x'/></domainbackup>",
            (
                Code::VIR_ERR_INVALID_ARG,
                Domain::VIR_FROM_NONE,
                "invalid argument: failed to parse port number 'x'".into(),
            ),
        ),
        (
            "<domainbackup mode='pull'><server transport='rdma' name='h'/></domainbackup>",
            unsupported_msg("transport rdma is not supported for <server>"),
        ),
        (
            "<domainbackup mode='pull'><server transport='unix' socket='rel'/></domainbackup>",
            xml_msg("backup socket path 'rel' must be absolute"),
        ),
        (
            "<domainbackup mode='pull'><server name='h' tls='on'/></domainbackup>",
            (
                Code::VIR_ERR_XML_ERROR,
                Domain::VIR_FROM_XML,
                "XML error: Invalid value for attribute 'tls' in element 'server': 'on'.".into(),
            ),
        ),
        ("<domainbackup><disks><disk/></disks></domainbackup>", xml_msg("missing name from disk backup element")),
        (
            "<domainbackup><disks><disk name='vda' type='network'/></disks></domainbackup>",
            xml_msg("unsupported disk backup type 'network'"),
        ),
        (
            "<domainbackup><disks><disk name='vda' type='none'/></disks></domainbackup>",
            xml_msg("unknown storage source type 'none'"),
        ),
        (
            "<domainbackup><disks><disk name='vda'><driver type='none'/></disk></disks></domainbackup>",
            xml_msg("unknown storage source format 'none'"),
        ),
        (
            // The format is checked before the type is refused.
            "<domainbackup><disks><disk name='vda' type='dir'><driver type='x'/></disk></disks></domainbackup>",
            xml_msg("unknown storage source format 'x'"),
        ),
        (
            "<domainbackup><disks><disk name='vda' index='-1'/></disks></domainbackup>",
            xml_msg("invalid storage source index '-1'"),
        ),
        (
            "<domainbackup><disks><disk name='vda' state='done'/></disks></domainbackup>",
            (
                Code::VIR_ERR_XML_ERROR,
                Domain::VIR_FROM_XML,
                "XML error: Invalid value for attribute 'state' in element 'disk': 'done'.".into(),
            ),
        ),
        (
            "<domainbackup><disks><disk name='vda'><target file='/x'><seclabel relabel='no'><label>l</label></seclabel></target></disk></disks></domainbackup>",
            xml_msg("Cannot specify a label if relabelling is turned off. model=(null)"),
        ),
    ];
    for (xml, expected) in cases {
        assert_eq!(&status_err(xml), expected, "{xml}");
    }
}

// ---------------------------------------------------------------------------------------
// Alignment

#[test]
fn empty_backup_backs_up_every_disk() {
    // §9.5, first example.
    let def = aligned("<domainbackup/>", &fake(&[]));
    assert_eq!(
        def.format(false),
        "<domainbackup mode='push'>\n  <disks>\n\
         \x20   <disk name='vdextradisk' backup='yes' type='file' backupmode='full'>\n\
         \x20     <target file='/fake/vdextradisk.qcow2.SUFFIX'/>\n\
         \x20   </disk>\n  </disks>\n</domainbackup>\n"
    );
    // The same in pull mode generates scratch files.
    let def = aligned("<domainbackup mode='pull'><server transport='unix' socket='/s'/></domainbackup>", &fake(&[]));
    assert!(def.format(false).contains("<scratch file='/fake/vdextradisk.qcow2.SUFFIX'/>"));
}

#[test]
fn empty_backup_skips_empty_and_readonly_disks() {
    let dom = domain(
        "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda'/></disk>\
         <disk type='file' device='disk'><source file='/b.img'/><target dev='vdb'/><readonly/></disk>\
         <disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>\
         <disk type='file' device='cdrom'><target dev='hdd'/></disk>",
    );
    let def = aligned("<domainbackup><incremental>cp1</incremental></domainbackup>", &dom);
    assert_eq!(
        def.disks,
        [
            BackupDisk {
                name: "vda".into(),
                backup: true,
                mode: Some(DiskBackupMode::Incremental),
                incremental: Some("cp1".into()),
                store_kind: Some(StoreKind::File),
                store: Some("/a.img.SUFFIX".into()),
                ..Default::default()
            },
            BackupDisk::skipped("vdb"),
            BackupDisk::skipped("hdc"),
            BackupDisk::skipped("hdd"),
        ]
    );
}

#[test]
fn pull_incremental_example() {
    // §9.5, second example (upstream's backup-pull test).
    let dom = fake(&["vda", "hda", "vdc", "vdd", "vde", "vdf"]);
    let def = aligned(
        "<domainbackup mode=\"pull\">\n  <incremental>1525889631</incremental>\n\
         <server transport='tcp' name='localhost' port='10809'/>\n  <disks>\n\
         <disk name='vda' type='file'><scratch file='/path/to/file'/></disk>\n\
         <disk name='hda' backup='no'/>\n\
         <disk name='vdc' type='file' backupmode='full'><scratch file='/path/to/file'/></disk>\n\
         <disk name='vdd' type='file' backupmode='incremental'><scratch file='/path/to/file'/></disk>\n\
         <disk name='vde' type='file' incremental='blah'><scratch file='/path/to/file'/></disk>\n\
         <disk name='vdf' type='file' backupmode='incremental' incremental='bleh'><scratch file='/path/to/file'/></disk>\n\
         </disks>\n</domainbackup>\n",
        &dom,
    );
    assert_eq!(
        def.format(false),
        "<domainbackup mode='pull'>
  <incremental>1525889631</incremental>
  <server transport='tcp' name='localhost' port='10809'/>
  <disks>
    <disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='1525889631'>
      <scratch file='/path/to/file'/>
    </disk>
    <disk name='hda' backup='no'/>
    <disk name='vdc' backup='yes' type='file' backupmode='full'>
      <scratch file='/path/to/file'/>
    </disk>
    <disk name='vdd' backup='yes' type='file' backupmode='incremental' incremental='1525889631'>
      <scratch file='/path/to/file'/>
    </disk>
    <disk name='vde' backup='yes' type='file' backupmode='incremental' incremental='blah'>
      <scratch file='/path/to/file'/>
    </disk>
    <disk name='vdf' backup='yes' type='file' backupmode='incremental' incremental='bleh'>
      <scratch file='/path/to/file'/>
    </disk>
    <disk name='vdextradisk' backup='no'/>
  </disks>
</domainbackup>
"
    );
}

#[test]
fn push_example() {
    // Upstream's backup-push test: a listed disk without <target> gets a generated file.
    let dom = fake(&["vda", "vdb", "hda"]);
    let def = aligned(
        "<domainbackup mode=\"push\">\n  <incremental>1525889631</incremental>\n  <disks>\n\
         <disk name='vda' type='file'>\n  <driver type='raw'/>\n  <target file='/path/to/file'/>\n</disk>\n\
         <disk name='vdb' type='file' backupmode='full'/>\n<disk name='hda' backup='no'/>\n</disks>\n</domainbackup>\n",
        &dom,
    );
    assert_eq!(
        def.format(false),
        "<domainbackup mode='push'>
  <incremental>1525889631</incremental>
  <disks>
    <disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='1525889631'>
      <driver type='raw'/>
      <target file='/path/to/file'/>
    </disk>
    <disk name='vdb' backup='yes' type='file' backupmode='full'>
      <target file='/fake/vdb.qcow2.SUFFIX'/>
    </disk>
    <disk name='hda' backup='no'/>
    <disk name='vdextradisk' backup='no'/>
  </disks>
</domainbackup>
"
    );
}

#[test]
fn generated_store_keeps_the_format_and_becomes_a_file() {
    let dom = fake(&["vda"]);
    let def = aligned(
        "<domainbackup><disks><disk name='vda' type='block'><driver type='qcow2'/></disk></disks></domainbackup>",
        &dom,
    );
    assert_eq!(def.disks[0].store_kind, Some(StoreKind::File));
    assert_eq!(def.disks[0].store.as_deref(), Some("/fake/vda.qcow2.SUFFIX".as_ref()));
    assert_eq!(def.disks[0].format.as_deref(), Some("qcow2"));
    // A given block store is kept, whatever the domain disk is.
    let def = aligned(
        "<domainbackup><disks><disk name='vda' type='block'><target dev='/dev/sdz'/></disk></disks></domainbackup>",
        &dom,
    );
    assert_eq!(
        (def.disks[0].store_kind, def.disks[0].store.as_deref()),
        (Some(StoreKind::Block), Some("/dev/sdz".as_ref()))
    );
}

#[test]
fn alignment_errors() {
    let dom = domain(
        "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda'/></disk>\
         <disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='vdb'/></disk>\
         <disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>\
         <disk type='network' device='disk'><source protocol='nbd' name='e'/><target dev='vdn'/></disk>",
    );
    let no_disks = domain("");
    assert_eq!(
        align_err("<domainbackup/>", &no_disks),
        unsupported_msg("domain must have at least one disk to perform backup")
    );
    assert_eq!(
        align_err("<domainbackup><disks><disk name='vdz' backup='no'/></disks></domainbackup>", &dom),
        unsupported_msg("no disk named 'vdz'")
    );
    assert_eq!(
        align_err(
            "<domainbackup><disks><disk name='vda' backup='no'/><disk name='vda' backup='no'/></disks></domainbackup>",
            &dom
        ),
        unsupported_msg("disk 'vda' specified twice")
    );
    assert_eq!(
        align_err(
            "<domainbackup><disks><disk name='vda' type='file' backupmode='incremental'/></disks></domainbackup>",
            &dom
        ),
        unsupported_msg(
            "'incremental' backup mode of disk 'vda' requires setting 'incremental' field for disk or backup"
        )
    );
    assert_eq!(
        align_err(
            "<domainbackup><disks><disk name='hdc' type='file'><target file='/x'/></disk></disks></domainbackup>",
            &dom
        ),
        unsupported_msg("disk 'hdc' has no media")
    );
    assert_eq!(
        align_err("<domainbackup><disks><disk name='hdc' type='file'/></disks></domainbackup>", &dom),
        unsupported_msg("disk 'hdc' has no media")
    );
    assert_eq!(
        align_err("<domainbackup><disks><disk name='vdb' type='file'/></disks></domainbackup>", &dom),
        unsupported_msg("refusing to generate file name for disk 'vdb'")
    );
    assert_eq!(
        align_err("<domainbackup><disks><disk name='vdn' type='block'/></disks></domainbackup>", &dom),
        unsupported_msg("refusing to generate file name for disk 'vdn'")
    );
    // Without <disks>, every disk with media is backed up: vdb cannot get a name.
    assert_eq!(align_err("<domainbackup/>", &dom), unsupported_msg("refusing to generate file name for disk 'vdb'"));
    // Checks go disk by disk in the listed order.
    assert_eq!(
        align_err(
            "<domainbackup><disks><disk name='vdb' type='file'/><disk name='vdz' backup='no'/></disks></domainbackup>",
            &dom
        ),
        unsupported_msg("refusing to generate file name for disk 'vdb'")
    );
}

#[test]
fn alignment_of_listed_disks() {
    let dom = domain(
        "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda'/></disk>\
         <disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='vdb'/></disk>\
         <disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>\
         <disk type='file' device='disk'><source file='/d.img'/><target dev='vdd'/><readonly/></disk>",
    );
    // Listed disks keep their order; the others follow in domain order with backup='no'.
    // Listed read-only disks and disks with stores on non-file disks are fine.
    let def = aligned(
        "<domainbackup><disks><disk name='vdd' type='file'/><disk name='vdb' type='block'><target dev='/dev/bk'/></disk>\
         <disk name='hdc' backup='no'/></disks></domainbackup>",
        &dom,
    );
    let names: Vec<(&str, bool)> = def.disks.iter().map(|d| (d.name.as_str(), d.backup)).collect();
    assert_eq!(names, [("vdd", true), ("vdb", true), ("hdc", false), ("vda", false)]);
    assert_eq!(def.disks[0].store.as_deref(), Some("/d.img.SUFFIX".as_ref()));
    assert_eq!(def.disks[1].mode, Some(DiskBackupMode::Full));
    // backup='no' disks get no defaults.
    assert_eq!(def.disks[2], BackupDisk::skipped("hdc"));

    // A per-disk checkpoint makes the disk incremental even without a backup-wide one;
    // a full disk does not inherit the backup-wide checkpoint.
    let def = aligned(
        "<domainbackup><incremental>top</incremental><disks><disk name='vda' type='file' incremental='own'/>\
         <disk name='vdd' type='file' backupmode='full'/></disks></domainbackup>",
        &dom,
    );
    assert_eq!(
        (def.disks[0].mode, def.disks[0].incremental.as_deref()),
        (Some(DiskBackupMode::Incremental), Some("own"))
    );
    assert_eq!((def.disks[1].mode, def.disks[1].incremental.as_deref()), (Some(DiskBackupMode::Full), None));
    let def =
        aligned("<domainbackup><disks><disk name='vda' type='file' incremental='own'/></disks></domainbackup>", &dom);
    assert_eq!(def.disks[0].mode, Some(DiskBackupMode::Incremental));
    // An empty per-disk checkpoint name still counts as given.
    let def =
        aligned("<domainbackup><disks><disk name='vda' type='file' incremental=''/></disks></domainbackup>", &dom);
    assert_eq!((def.disks[0].mode, def.disks[0].incremental.as_deref()), (Some(DiskBackupMode::Incremental), Some("")));
}

#[test]
fn alignment_is_idempotent() {
    let dom = fake(&["vda", "hda"]);
    let mut def = aligned("<domainbackup><incremental>c</incremental></domainbackup>", &dom);
    let once = def.clone();
    def.align_disks(&dom, "OTHER").unwrap();
    assert_eq!(def, once);
}

// ---------------------------------------------------------------------------------------
// Output

#[test]
fn format_of_unaligned_definitions() {
    assert_eq!(BackupDef::default().format(false), "<domainbackup mode='push'/>\n");
    assert_eq!(BackupDef::parse("<domainbackup mode='push'/>").unwrap().format(true), "<domainbackup mode='push'/>\n");
    let def =
        BackupDef::parse("<domainbackup mode='pull'><server transport='unix' socket='/s'/></domainbackup>").unwrap();
    assert_eq!(
        def.format(false),
        "<domainbackup mode='pull'>\n  <server transport='unix' socket='/s'/>\n</domainbackup>\n"
    );
    // An unaligned disk without a store prints as an empty element.
    let def = BackupDef::parse("<domainbackup><disks><disk name='vda' type='block'/></disks></domainbackup>").unwrap();
    assert_eq!(
        def.format(false),
        "<domainbackup mode='push'>\n  <disks>\n    <disk name='vda' backup='yes' type='block'/>\n  </disks>\n</domainbackup>\n"
    );
}

#[test]
fn format_escapes_and_orders_attributes() {
    let def = BackupDef {
        mode: BackupMode::Pull,
        incremental: Some("a<b&'c'".into()),
        server: Some(BackupServer {
            transport: Transport::Tcp { name: "h\"x".into(), port: Some(0) },
            tls: Some(false),
        }),
        disks: vec![BackupDisk {
            name: "vda".into(),
            backup: true,
            mode: Some(DiskBackupMode::Incremental),
            incremental: Some("i&".into()),
            export_name: Some("e<".into()),
            export_bitmap: Some("b>".into()),
            store_kind: Some(StoreKind::Block),
            store: Some("/dev/x'y".into()),
            format: Some("qcow2".into()),
            state: Some(DiskState::Cancelling),
            index: 12,
            ..Default::default()
        }],
        tls_alias: Some("obj".into()),
        tls_secret_alias: None,
    };
    let plain = "<domainbackup mode='pull'>
  <incremental>a&lt;b&amp;&apos;c&apos;</incremental>
  <server transport='tcp' tls='no' name='h&quot;x'/>
  <disks>
    <disk name='vda' backup='yes' type='block' backupmode='incremental' incremental='i&amp;' exportname='e&lt;' exportbitmap='b&gt;' index='12'>
      <driver type='qcow2'/>
      <scratch dev='/dev/x&apos;y'/>
    </disk>
  </disks>
</domainbackup>
";
    assert_eq!(def.format(false), plain);
    let status = def.format(true);
    assert!(status.contains("<disk name='vda' backup='yes' state='cancelling' type='block' backupmode='incremental'"));
    assert!(status.ends_with(
        "  </disks>\n  <privateData>\n    <objects>\n      <TLSx509 alias='obj'/>\n    </objects>\n  </privateData>\n</domainbackup>\n"
    ));
}

#[test]
fn state_of_skipped_disks_is_printed_in_status_only() {
    let mut disk = BackupDisk::skipped("vdb");
    disk.state = Some(DiskState::Complete);
    let def = BackupDef { disks: vec![disk], ..Default::default() };
    assert!(def.format(false).contains("<disk name='vdb' backup='no'/>"));
    assert!(def.format(true).contains("<disk name='vdb' backup='no' state='complete'/>"));
}

#[test]
fn matches_what_libvirt_printed() {
    // A running push backup and a running pull backup, as libvirt 9.0 printed them.
    let dom = domain(
        "<disk type='file' device='disk'><source file='/tmp/lvanchor/img/vda.qcow2'/><target dev='vda'/></disk>\
         <disk type='file' device='disk'><source file='/tmp/lvanchor/img/vdb.qcow2'/><target dev='vdb'/></disk>",
    );
    let mut def = aligned(
        "<domainbackup>\n  <disks>\n    <disk name='vda' backup='yes' type='file'>\n\
         <target file='/tmp/lvanchor/bk/full-vda.qcow2'/>\n      <driver type='qcow2'/>\n    </disk>\n\
         <disk name='vdb' backup='no'/>\n  </disks>\n</domainbackup>",
        &dom,
    );
    def.disks[0].index = 3;
    assert_eq!(
        def.format(false),
        "<domainbackup mode='push'>
  <disks>
    <disk name='vda' backup='yes' type='file' backupmode='full' index='3'>
      <driver type='qcow2'/>
      <target file='/tmp/lvanchor/bk/full-vda.qcow2'/>
    </disk>
    <disk name='vdb' backup='no'/>
  </disks>
</domainbackup>
"
    );

    let mut def = aligned(
        "<domainbackup mode='pull'>\n  <incremental>cp2</incremental>\n\
         <server transport='unix' socket='/tmp/lvanchor/nbd.sock'/>\n  <disks>\n\
         <disk name='vda' backup='yes' type='file'>\n      <scratch file='/tmp/lvanchor/bk/scratch-vda.qcow2'/>\n\
         </disk>\n    <disk name='vdb' backup='no'/>\n  </disks>\n</domainbackup>",
        &dom,
    );
    // What the driver fills in when it starts the job.
    let vda = &mut def.disks[0];
    vda.format = Some("qcow2".into());
    vda.export_name = Some("vda".into());
    vda.export_bitmap = Some("backup-vda".into());
    vda.index = 7;
    vda.state = Some(DiskState::Running);
    assert_eq!(
        def.format(false),
        "<domainbackup mode='pull'>
  <incremental>cp2</incremental>
  <server transport='unix' socket='/tmp/lvanchor/nbd.sock'/>
  <disks>
    <disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='cp2' exportname='vda' exportbitmap='backup-vda' index='7'>
      <driver type='qcow2'/>
      <scratch file='/tmp/lvanchor/bk/scratch-vda.qcow2'/>
    </disk>
    <disk name='vdb' backup='no'/>
  </disks>
</domainbackup>
"
    );
    assert!(def.format(true).contains(
        "<disk name='vda' backup='yes' state='running' type='file' backupmode='incremental' incremental='cp2' exportname='vda' exportbitmap='backup-vda' index='7'>"
    ));
}

// ---------------------------------------------------------------------------------------
// Status round trips

#[test]
fn status_round_trip() {
    let dom = fake(&["vda", "vdb", "vdc"]);
    let mut def = aligned(
        "<domainbackup mode='pull'><incremental>cp</incremental><server transport='tcp' tls='yes' name='localhost' port='10809'/>\
         <disks><disk name='vda' type='file' exportname='x' exportbitmap='y'><driver type='qcow2'/>\
         <scratch file='/s/a'><seclabel model='dac' relabel='no'/><encryption format='luks'>\
         <secret type='passphrase' usage='/u'/></encryption></scratch></disk>\
         <disk name='vdb' type='block'><scratch dev='/dev/b'/></disk><disk name='vdc' backup='no'/></disks></domainbackup>",
        &dom,
    );
    def.disks[0].state = Some(DiskState::Running);
    def.disks[0].index = 5;
    def.disks[1].state = Some(DiskState::Failed);
    def.tls_alias = Some("libvirt_backup".into());
    def.tls_secret_alias = Some("libvirt_backup-secret".into());
    let status = def.format(true);
    let back = BackupDef::parse_status(&status).unwrap();
    assert_eq!(back, def);
    assert_eq!(back.format(true), status);
    // The plain form drops state and private data, but keeps the index.
    let plain = def.format(false);
    assert!(!plain.contains("state=") && !plain.contains("privateData"));
    assert!(plain.contains("index='5'"));
    // As with libvirt, a printed index is not valid API input (the schema has none);
    // without it the plain form parses back to the same definition minus the status.
    assert_schema_error(&plain);
    let mut unindexed = def.clone();
    unindexed.disks[0].index = 0;
    let again = BackupDef::parse(&unindexed.format(false)).unwrap();
    for disk in &mut unindexed.disks {
        disk.state = None;
    }
    unindexed.tls_alias = None;
    unindexed.tls_secret_alias = None;
    assert_eq!(again, unindexed);
    let element = Element::parse(&status).unwrap();
    assert_eq!(BackupDef::from_status_element(&element).unwrap(), def);
}

#[test]
fn status_reading_is_lenient_where_libvirt_writes_nothing() {
    let def = BackupDef::parse_status(
        "<domainbackup mode='push'><disks><disk name='vda' backup='yes' type='file' index='+08'/>\
         <disk name='vdb' backup='yes' type='file' state=''/></disks>\
         <privateData><objects><secret type='other' alias='no'/><secret type='tlskey' alias=''/></objects></privateData>\
         </domainbackup>",
    )
    .unwrap();
    assert_eq!((def.disks[0].state, def.disks[0].index), (None, 8));
    assert_eq!(def.disks[1].state, None);
    assert_eq!((def.tls_alias, def.tls_secret_alias), (None, None));
    // In push mode, pull-only attributes are not read.
    let def = BackupDef::parse_status(
        "<domainbackup><disks><disk name='vda' exportname='e'><scratch file='/s'/></disk></disks></domainbackup>",
    )
    .unwrap();
    assert_eq!((def.disks[0].export_name.as_deref(), def.disks[0].store.as_deref()), (None, None));
}
