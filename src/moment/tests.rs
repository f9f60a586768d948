use super::list_flags::*;
use super::*;

/// Plain create: the parent is the current moment, and the new one becomes current.
fn create(t: &mut MomentTree<()>, name: &str) {
    let parent = t.current().map(str::to_string);
    t.insert(name, (), parent.as_deref()).unwrap();
    t.set_current(Some(name)).unwrap();
}

/// Redefine of a new moment: becomes current when there is none or its parent is current.
fn redefine(t: &mut MomentTree<()>, name: &str, parent: Option<&str>) {
    t.check_cycles(name, parent).unwrap();
    let make_current = t.current().is_none() || (parent.is_some() && t.current() == parent);
    if t.contains(name) {
        t.redefine(name, (), parent).unwrap();
    } else {
        t.insert(name, (), parent).unwrap();
    }
    if make_current {
        t.set_current(Some(name)).unwrap();
    }
}

fn all(_: &()) -> bool {
    true
}

fn list(t: &MomentTree<()>, from: Option<&str>, flags: u32) -> Vec<String> {
    let names: Vec<String> = t.list(from, flags, all).unwrap().into_iter().map(str::to_string).collect();
    assert_eq!(t.count(from, flags).unwrap(), names.len(), "count of {from:?} {flags:#x}");
    names
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The worked example: create a, b, c; delete c; create d, e; redefine r2 and r2c;
/// redefine b2 under a; create f.
fn worked_example() -> MomentTree<()> {
    let mut t = MomentTree::new();
    for n in ["a", "b", "c"] {
        create(&mut t, n);
    }
    t.remove("c").unwrap();
    for n in ["d", "e"] {
        create(&mut t, n);
    }
    redefine(&mut t, "r2", None);
    redefine(&mut t, "r2c", Some("r2"));
    redefine(&mut t, "b2", Some("a"));
    create(&mut t, "f");
    t
}

#[test]
fn worked_example_orders() {
    let t = worked_example();
    assert_eq!(t.parent("f").unwrap(), Some("e"));
    assert_eq!(t.parent("d").unwrap(), Some("b"));
    assert_eq!(sorted(list(&t, None, 0)), ["a", "b", "b2", "d", "e", "f", "r2", "r2c"]);
    assert_eq!(list(&t, None, ROOTS), ["r2", "a"]);
    assert_eq!(list(&t, None, ROOTS | TOPOLOGICAL), ["r2", "a"]);
    assert_eq!(list(&t, None, TOPOLOGICAL), ["r2", "r2c", "a", "b2", "b", "d", "e", "f"]);
    assert_eq!(sorted(list(&t, None, LEAVES)), ["b2", "f", "r2c"]);
    assert_eq!(list(&t, None, LEAVES | TOPOLOGICAL), ["r2c", "b2", "f"]);
    assert_eq!(list(&t, None, NO_LEAVES | TOPOLOGICAL), ["r2", "a", "b", "d", "e"]);
    for flags in [ROOTS | LEAVES, 0xc, 0xd, 0xe, 0xf] {
        assert!(list(&t, None, flags).is_empty(), "{flags:#x}");
    }
    assert_eq!(list(&t, Some("a"), 0), ["b2", "b"]);
    assert_eq!(list(&t, Some("a"), DESCENDANTS), ["b2", "b", "d", "e", "f"]);
    assert_eq!(list(&t, Some("a"), DESCENDANTS | TOPOLOGICAL), ["b2", "b", "d", "e", "f"]);
    assert_eq!(list(&t, Some("a"), LEAVES), ["b2"]);
    assert_eq!(list(&t, Some("a"), DESCENDANTS | LEAVES), ["b2", "f"]);
    assert_eq!(list(&t, Some("a"), NO_LEAVES), ["b"]);
    assert!(list(&t, Some("f"), DESCENDANTS).is_empty());
    assert_eq!(t.list(None, NO_METADATA, all).unwrap().len(), 0);
    assert_eq!(t.list(None, METADATA, all).unwrap().len(), 8);
    assert_eq!(t.list(None, 0x40, all), Err(TreeError::UnsupportedFlags(0x40)));
    assert_eq!(t.list(Some("zz"), 0, all), Err(TreeError::NotFound("zz".into())));
}

#[test]
fn definition_filter() {
    let mut t: MomentTree<u32> = MomentTree::new();
    t.insert("one", 1, None).unwrap();
    t.insert("two", 2, Some("one")).unwrap();
    assert_eq!(t.list(None, 0, |d| *d > 1).unwrap(), ["two"]);
}

/// a→b→{c,d}, c→e, d→f, a separate root z, current e.
fn delete_example() -> MomentTree<()> {
    let mut t = MomentTree::new();
    for n in ["a", "b", "c", "e"] {
        create(&mut t, n);
    }
    redefine(&mut t, "d", Some("b"));
    redefine(&mut t, "f", Some("d"));
    redefine(&mut t, "z", None);
    assert_eq!(t.current(), Some("e"));
    assert_eq!(list(&t, None, TOPOLOGICAL), ["z", "a", "b", "d", "f", "c", "e"]);
    t
}

#[test]
fn delete_reparents_and_moves_current() {
    let mut t = delete_example();
    let (_, moved) = t.remove("b").unwrap();
    assert_eq!(moved, ["d", "c"]);
    assert_eq!(list(&t, None, TOPOLOGICAL), ["z", "a", "d", "f", "c", "e"]);
    assert_eq!(t.parent("c").unwrap(), Some("a"));
    assert_eq!(t.current(), Some("e"));

    let mut t = delete_example();
    t.remove("a").unwrap();
    assert_eq!(list(&t, None, TOPOLOGICAL), ["b", "d", "f", "c", "e", "z"]);
    assert_eq!(t.parent("b").unwrap(), None);

    let mut t = delete_example();
    let removed: Vec<String> = t.remove_subtree("b").unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(removed, ["d", "f", "c", "e", "b"]);
    assert_eq!(list(&t, None, TOPOLOGICAL), ["z", "a"]);
    assert_eq!(t.current(), Some("a"));

    let mut t = delete_example();
    t.remove_children("b").unwrap();
    assert_eq!(list(&t, None, TOPOLOGICAL), ["z", "a", "b"]);
    assert_eq!(t.child_count("b").unwrap(), 0);
    assert_eq!(t.current(), Some("b"));

    let mut t = delete_example();
    t.remove("f").unwrap();
    assert_eq!(t.current(), Some("e"));
    t.remove("e").unwrap();
    assert_eq!(t.current(), Some("c"));
    assert_eq!(t.len(), 5);
}

#[test]
fn subtree_delete_keeps_current_outside() {
    let mut t = delete_example();
    t.set_current(Some("z")).unwrap();
    t.remove_subtree("b").unwrap();
    assert_eq!(t.current(), Some("z"));
    t.remove_children("a").unwrap();
    assert_eq!(t.current(), Some("z"));
    t.remove("z").unwrap();
    assert_eq!(t.current(), None);
}

#[test]
fn cycle_checks() {
    let mut t = MomentTree::new();
    redefine(&mut t, "r1", None);
    redefine(&mut t, "r2", Some("r1"));
    redefine(&mut t, "r3", Some("r2"));
    assert_eq!(t.check_cycles("x", Some("x")), Err(TreeError::OwnParent("x".into())));
    assert_eq!(
        t.check_cycles("x", Some("nope")),
        Err(TreeError::MissingParent { parent: "nope".into(), moment: "x".into() })
    );
    // Making r1 a child of r3 would loop; the ancestor named is r2, whose parent is r1.
    assert_eq!(t.check_cycles("r1", Some("r3")), Err(TreeError::Cycle { ancestor: "r2".into(), moment: "r1".into() }));
    assert_eq!(t.check_cycles("r1", Some("r2")), Err(TreeError::Cycle { ancestor: "r2".into(), moment: "r1".into() }));
    assert!(t.check_cycles("r3", Some("r1")).is_ok());
    assert!(t.check_cycles("new", None).is_ok());
}

#[test]
fn redefine_replaces_in_place_and_keeps_children() {
    let mut t: MomentTree<u32> = MomentTree::new();
    t.insert("a", 1, None).unwrap();
    t.insert("b", 2, Some("a")).unwrap();
    t.insert("c", 3, Some("b")).unwrap();
    t.insert("z", 4, None).unwrap();
    let old = t.redefine("b", 20, Some("z")).unwrap();
    assert_eq!(old, 2);
    assert_eq!(t.get("b"), Some(&20));
    assert_eq!(t.parent("b").unwrap(), Some("z"));
    assert_eq!(t.parent("c").unwrap(), Some("b"));
    assert_eq!(t.child_count("a").unwrap(), 0);
    assert_eq!(t.insert("a", 9, None), Err(TreeError::Exists("a".into())));
}

#[test]
fn rebuilt_from_parent_names() {
    let chain = vec![
        ("c".to_string(), Some("b".to_string()), ()),
        ("a".to_string(), None, ()),
        ("b".to_string(), Some("a".to_string()), ()),
    ];
    let (t, problems) = MomentTree::from_parent_names(chain);
    assert!(problems.is_empty());
    assert_eq!(t.current(), Some("c"));
    assert_eq!(list(&t, None, TOPOLOGICAL), ["a", "b", "c"]);

    let branched = vec![
        ("a".to_string(), None, ()),
        ("b".to_string(), Some("a".to_string()), ()),
        ("c".to_string(), Some("a".to_string()), ()),
        ("orphan".to_string(), Some("gone".to_string()), ()),
        ("x".to_string(), Some("y".to_string()), ()),
        ("y".to_string(), Some("x".to_string()), ()),
    ];
    let (t, problems) = MomentTree::from_parent_names(branched);
    assert_eq!(t.current(), None);
    assert_eq!(t.len(), 6);
    assert!(problems.contains(&TreeError::MissingParent { parent: "gone".into(), moment: "orphan".into() }));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(t.parent("orphan").unwrap(), None);
}

#[test]
fn deep_chain_lists_without_recursion() {
    let mut t = MomentTree::new();
    for i in 0..100_000 {
        create(&mut t, &format!("m{i}"));
    }
    assert_eq!(t.list(None, TOPOLOGICAL, all).unwrap().len(), 100_000);
    assert_eq!(t.list(None, LEAVES, all).unwrap(), ["m99999"]);
    t.remove_subtree("m0").unwrap();
    assert!(t.is_empty());
}

#[test]
fn slots_are_reused() {
    let mut t = MomentTree::new();
    for round in 0..3 {
        for i in 0..10 {
            create(&mut t, &format!("r{round}-{i}"));
        }
        for i in 0..10 {
            t.remove(&format!("r{round}-{i}")).unwrap();
        }
    }
    assert!(t.is_empty());
    assert!(t.nodes.len() <= 10);
}
