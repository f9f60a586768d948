use super::*;

fn domain(disks: &str) -> DomainDef {
    DomainDef::parse(&format!(
        "<domain type='test'><name>d</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><memory>1024</memory>\
         <os><type>hvm</type></os><devices>{disks}</devices></domain>"
    ))
    .unwrap()
}

/// vda (rw), vdb (read-only), vdc (rw), hdc (empty cdrom), in that order.
fn four_disks() -> DomainDef {
    domain(
        "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda'/></disk>\
         <disk type='file' device='disk'><source file='/b.img'/><target dev='vdb'/><readonly/></disk>\
         <disk type='file' device='disk'><source file='/c.img'/><target dev='vdc'/></disk>\
         <disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>",
    )
}

fn kinds(def: &CheckpointDef) -> Vec<(String, DiskCheckpointKind, Option<String>)> {
    def.disks.iter().map(|d| (d.name.clone(), d.kind, d.bitmap.clone())).collect()
}

fn err(xml: &str, redefine: bool) -> (Code, Domain, String) {
    let e = CheckpointDef::parse(xml, redefine).unwrap_err();
    (e.code, e.domain, e.message)
}

#[test]
fn names() {
    for ok in ["a", "A9", "_x", "-y", "a.b", "a-b_c.9"] {
        assert!(valid_checkpoint_name(ok), "{ok}");
    }
    for bad in ["", ".a", "a/b", "a b", "é", "a\n"] {
        assert!(!valid_checkpoint_name(bad), "{bad:?}");
    }
}

#[test]
fn parses_a_plain_create() {
    let def = CheckpointDef::parse(
        "<?xml version='1.0'?><!-- c --><domaincheckpoint><description>d &amp; e</description>\
         <name>c1</name><creationTime>5</creationTime><parent><name>p</name></parent>\
         <disks><disk name='vda'/><disk name='/b.img' checkpoint='no'/></disks></domaincheckpoint>",
        false,
    )
    .unwrap();
    assert_eq!(def.name, "c1");
    assert_eq!(def.description.as_deref(), Some("d & e"));
    // Creation time and parent count only when redefining.
    assert_eq!((def.creation_time, def.parent.as_deref()), (0, None));
    assert!(def.disks_listed);
    assert_eq!(def.disks[1].kind, DiskCheckpointKind::No);
}

#[test]
fn empty_description_is_absent() {
    let def = CheckpointDef::parse("<domaincheckpoint><description></description></domaincheckpoint>", false).unwrap();
    assert_eq!(def.description, None);
}

#[test]
fn syntax_root_and_schema_errors() {
    let c = |x| err(x, false);
    assert_eq!(c("").0, Code::VIR_ERR_XML_DETAIL);
    assert_eq!(c("").1, FROM);
    assert!(c("garbage").2.starts_with("(domain_checkpoint):1: "));
    assert_eq!(
        c("<foo/>"),
        (
            Code::VIR_ERR_XML_ERROR,
            Domain::VIR_FROM_XML,
            "XML error: expecting root element of 'domaincheckpoint', not 'foo'".into()
        )
    );
    for bad in [
        "<domaincheckpoint><name>a/b</name></domaincheckpoint>",
        "<domaincheckpoint><name>.a</name></domaincheckpoint>",
        "<domaincheckpoint><bogus/></domaincheckpoint>",
        "<domaincheckpoint><name>a</name><name>b</name></domaincheckpoint>",
        "<domaincheckpoint><disks/></domaincheckpoint>",
        "<domaincheckpoint><disks><disk name='vda' checkpoint='default'/></disks></domaincheckpoint>",
        "<domaincheckpoint><disks><disk name='vda' checkpoint='no' bitmap='x'/></disks></domaincheckpoint>",
        "<domaincheckpoint><disks><disk name='vda' size='-1'/></disks></domaincheckpoint>",
        "<domaincheckpoint><disks><disk name='rel/path'/></disks></domaincheckpoint>",
        "<domaincheckpoint><disks><disk/></disks></domaincheckpoint>",
        "<domaincheckpoint><disks><disk name='vda' extra='1'/></disks></domaincheckpoint>",
        "<domaincheckpoint xmlns='http://example.org/'/>",
        "<domaincheckpoint attr='1'/>",
        "<domaincheckpoint>text</domaincheckpoint>",
        "<domaincheckpoint><creationTime>-1</creationTime></domaincheckpoint>",
        "<domaincheckpoint><creationTime>18446744073709551616</creationTime></domaincheckpoint>",
        "<domaincheckpoint><parent><name>a</name><name>b</name></parent></domaincheckpoint>",
        "<domaincheckpoint><description><b/></description></domaincheckpoint>",
        "<domaincheckpoint><creationTime> 8 </creationTime></domaincheckpoint>",
        "<domaincheckpoint><creationTime>+5</creationTime></domaincheckpoint>",
        "<domaincheckpoint><disks><disk name='vda' size='18446744073709551616'/></disks></domaincheckpoint>",
        "<domaincheckpoint><domain type='nope'><name>x</name></domain></domaincheckpoint>",
        "<domaincheckpoint><domain type='test'><name>x</name><bogus/></domain></domaincheckpoint>",
        "<domaincheckpoint><domain type='test' color='red'><name>x</name></domain></domaincheckpoint>",
    ] {
        let (code, domain, message) = c(bad);
        assert_eq!((code, domain), (Code::VIR_ERR_XML_INVALID_SCHEMA, Domain::VIR_FROM_XML), "{bad}");
        assert!(
            message.starts_with(
                "XML document failed to validate against schema: Unable to validate doc against /usr/share/libvirt/schemas/domaincheckpoint.rng\n"
            ),
            "{message}"
        );
    }
}

#[test]
fn redefine_requirements() {
    assert_eq!(
        err("<domaincheckpoint><creationTime>1</creationTime></domaincheckpoint>", true),
        (Code::VIR_ERR_XML_ERROR, FROM, "XML error: a redefined checkpoint must have a name".into())
    );
    let missing =
        (Code::VIR_ERR_INTERNAL_ERROR, FROM, "internal error: missing creationTime from existing checkpoint".into());
    assert_eq!(err("<domaincheckpoint><name>x</name></domaincheckpoint>", true), missing);
    assert_eq!(
        err(
            "<domaincheckpoint><name>x</name><creationTime>18446744073709551615</creationTime></domaincheckpoint>",
            true
        ),
        missing
    );
    let def = CheckpointDef::parse(
        "<domaincheckpoint><name>x</name><creationTime>042</creationTime><parent><name>p</name></parent></domaincheckpoint>",
        true,
    )
    .unwrap();
    assert_eq!((def.creation_time, def.parent.as_deref()), (42, Some("p")));
    let (code, domain, message) = err(
        "<domaincheckpoint><name>x</name><creationTime>1</creationTime><domain type='test'><name>d</name></domain></domaincheckpoint>",
        true,
    );
    assert_eq!(
        (code, domain, message.as_str()),
        (Code::VIR_ERR_XML_ERROR, Domain::VIR_FROM_DOMAIN, "XML error: an os <type> must be specified")
    );
}

#[test]
fn alignment_defaults() {
    let dom = four_disks();
    let mut def = CheckpointDef::parse("<domaincheckpoint><name>c</name></domaincheckpoint>", false).unwrap();
    def.align_disks(&dom).unwrap();
    use DiskCheckpointKind::*;
    let bitmap = || Some("c".to_string());
    assert_eq!(
        kinds(&def),
        [
            ("vda".into(), Bitmap, bitmap()),
            ("vdb".into(), No, None),
            ("vdc".into(), Bitmap, bitmap()),
            ("hdc".into(), No, None)
        ]
    );

    let mut def = CheckpointDef::parse(
        "<domaincheckpoint><name>c</name><disks><disk name='vdc'/></disks></domaincheckpoint>",
        false,
    )
    .unwrap();
    def.align_disks(&dom).unwrap();
    assert_eq!(
        kinds(&def),
        [
            ("vda".into(), No, None),
            ("vdb".into(), No, None),
            ("vdc".into(), Bitmap, bitmap()),
            ("hdc".into(), No, None)
        ]
    );

    let mut def = CheckpointDef::parse(
        "<domaincheckpoint><name>c</name><disks><disk name='vdc' bitmap='own'/><disk name='/a.img'/></disks></domaincheckpoint>",
        false,
    )
    .unwrap();
    def.align_disks(&dom).unwrap();
    assert_eq!(
        kinds(&def),
        [
            ("vda".into(), Bitmap, bitmap()),
            ("vdb".into(), No, None),
            ("vdc".into(), Bitmap, Some("own".into())),
            ("hdc".into(), No, None)
        ]
    );
}

#[test]
fn alignment_errors() {
    let dom = four_disks();
    let fail = |disks: &str, d: &DomainDef| {
        let mut def =
            CheckpointDef::parse(&format!("<domaincheckpoint><disks>{disks}</disks></domaincheckpoint>"), false)
                .unwrap();
        let e = def.align_disks(d).unwrap_err();
        assert_eq!((e.code, e.domain), (Code::VIR_ERR_CONFIG_UNSUPPORTED, FROM));
        e.message
    };
    assert_eq!(fail("<disk name='vdz'/>", &dom), "unsupported configuration: no disk named 'vdz'");
    assert_eq!(
        fail("<disk name='/c.img'/><disk name='vdc'/>", &dom),
        "unsupported configuration: disk 'vdc' specified twice"
    );
    assert_eq!(fail("<disk name='vdb'/>", &dom), "unsupported configuration: disk 'vdb' is empty or readonly");
    assert_eq!(
        fail("<disk name='hdc' checkpoint='bitmap'/>", &dom),
        "unsupported configuration: disk 'hdc' is empty or readonly"
    );
    let one = domain("<disk type='file'><source file='/c.img'/><target dev='vda'/></disk>");
    assert_eq!(
        fail("<disk name='/c.img'/><disk name='/c.img'/>", &one),
        "unsupported configuration: too many disk checkpoint requests for domain"
    );
    assert_eq!(
        fail("<disk name='vda'/>", &domain("")),
        "unsupported configuration: too many disk checkpoint requests for domain"
    );
    let mut def = CheckpointDef::default();
    assert_eq!(
        def.align_disks(&domain("")).unwrap_err().message,
        "unsupported configuration: domain must have at least one disk to perform checkpoints"
    );
    // The read-only disk may be listed as 'no'.
    let mut def = CheckpointDef::parse(
        "<domaincheckpoint><disks><disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>",
        false,
    )
    .unwrap();
    assert!(def.align_disks(&dom).is_ok());
}

#[test]
fn format_layout_and_escaping() {
    let mut def = CheckpointDef {
        name: "mm".into(),
        description: Some("a&b <c> 'd' \"e\"\n\tf".into()),
        parent: Some("aa".into()),
        creation_time: 1795305418,
        disks: vec![CheckpointDisk {
            name: "vda".into(),
            kind: DiskCheckpointKind::Bitmap,
            bitmap: Some("mm".into()),
            size: Some(4096),
        }],
        disks_listed: false,
        domain: None,
    };
    assert_eq!(
        def.format(CheckpointFormat::default()),
        "<domaincheckpoint>\n  <name>mm</name>\n  <description>a&amp;b &lt;c&gt; &apos;d&apos; &quot;e&quot;\n\tf</description>\n  \
         <parent>\n    <name>aa</name>\n  </parent>\n  <creationTime>1795305418</creationTime>\n  <disks>\n    \
         <disk name='vda' checkpoint='bitmap' bitmap='mm'/>\n  </disks>\n</domaincheckpoint>\n"
    );
    assert!(def.format(CheckpointFormat { size: true, ..Default::default() }).contains("bitmap='mm' size='4096'/>"));
    def.disks[0].bitmap = Some(String::new());
    assert!(def.format(CheckpointFormat::default()).contains("<disk name='vda' checkpoint='bitmap' bitmap=''/>"));
    def.creation_time = 0;
    assert!(!def.format(CheckpointFormat::default()).contains("creationTime"));
}

#[test]
fn embedded_domain_is_indented_and_secret_unless_secure() {
    let dom = DomainDef::parse(
        "<domain type='test'><name>d</name><memory>1</memory><os><type>hvm</type></os>\
         <devices><graphics type='vnc' passwd='pw'/></devices></domain>",
    )
    .unwrap();
    let def = CheckpointDef { name: "c".into(), domain: Some(Arc::new(dom)), ..Default::default() };
    let plain = def.format(CheckpointFormat::default());
    assert!(plain.contains("\n  <domain type='test'>\n    <name>d</name>\n"), "{plain}");
    assert!(!plain.contains("pw"));
    assert!(def.format(CheckpointFormat { secure: true, ..Default::default() }).contains("passwd='pw'"));
    assert!(!def.format(CheckpointFormat { no_domain: true, ..Default::default() }).contains("<domain "));
}

#[test]
fn round_trip_of_printed_output() {
    let dom = four_disks();
    let mut def =
        CheckpointDef::parse("<domaincheckpoint><name>c</name><description>x</description></domaincheckpoint>", false)
            .unwrap();
    def.creation_time = 7;
    def.domain = Some(Arc::new(dom.clone()));
    def.align_disks(&dom).unwrap();
    let printed = def.format(CheckpointFormat::default());
    let mut again = CheckpointDef::parse(&printed, true).unwrap();
    again.disks_listed = def.disks_listed;
    assert_eq!(again.format(CheckpointFormat::default()), printed);
}
