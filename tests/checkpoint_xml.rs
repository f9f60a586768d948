//! Round trips of `<domaincheckpoint>` documents: every file in
//! tests/data/checkpointxml2xml/in is read, completed as a create (or, for `redefine-*`
//! files, as a redefine) against the fixture domain, printed, and compared with the file
//! of the same name in out/. Printed output must also read back to itself.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use virbackup::conf::checkpoint::{CheckpointDef, CheckpointFormat};
use virbackup::conf::domain::DomainDef;

const NOW: i64 = 1_700_000_000;

#[test]
fn checkpoint_xml_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/checkpointxml2xml");
    let domain = Arc::new(DomainDef::parse(&fs::read_to_string(dir.join("domain.xml")).unwrap()).unwrap());
    let mut checked = 0;
    for entry in fs::read_dir(dir.join("in")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let input = fs::read_to_string(&path).unwrap();
        let redefine = name.starts_with("redefine-");
        let mut def = CheckpointDef::parse(&input, redefine).unwrap_or_else(|e| panic!("{name}: {e}"));
        if redefine {
            match def.domain.clone() {
                Some(embedded) => def.align_disks(&embedded).unwrap(),
                None => def.default_bitmap_names(),
            }
        } else {
            def.creation_time = NOW;
            if def.name.is_empty() {
                def.name = NOW.to_string();
            }
            def.align_disks(&domain).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let printed = def.format(CheckpointFormat::default());
        let expected = fs::read_to_string(dir.join("out").join(&name)).unwrap();
        assert_eq!(printed, expected, "{name}");
        let again = CheckpointDef::parse(&printed, true).unwrap().format(CheckpointFormat::default());
        assert_eq!(again, printed, "{name} does not read back to itself");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} fixtures found");
}
