//! A domain's moments of one kind (its checkpoints, or its snapshots) with libvirt's
//! moment semantics, written once: lookups with the kind's "no such moment" error, the
//! hidden current moment, listings and counts, reparenting on delete (one moment, its
//! descendants, or only its descendants), redefinition in place, and the repair of a
//! tree loaded from files.
//!
//! The list keeps each definition's idea of its parent in step with the tree: after any
//! change, [`Moment::parent_name`] of every definition is its parent in the tree, so a
//! definition can be printed or saved as it is.
//!
//! A kind of moment supplies its words and codes through the [`Moment`] trait; the driver
//! supplies its error domain. What is particular to a kind (how a new moment is prepared,
//! which flags a driver accepts) lives with the kind, on top of this list.

use super::{MomentTree, TreeError, list_flags};
use crate::error::{Code, Domain, Error, Result};

/// What a definition must offer to live in a [`MomentList`].
pub trait Moment: Clone {
    /// The kind's noun in messages: `checkpoint`, `snapshot`.
    const NOUN: &'static str;
    /// The error of a moment that does not exist (`VIR_ERR_NO_DOMAIN_CHECKPOINT`, ...).
    const NOT_FOUND: Code;

    fn name(&self) -> &str;
    /// The parent the definition names (what it was read with, then what the list keeps).
    fn parent_name(&self) -> Option<&str>;
    fn set_parent_name(&mut self, parent: Option<String>);
}

/// The delete flags of every kind of moment (`VIR_DOMAIN_{CHECKPOINT,SNAPSHOT}_DELETE_*`
/// have these values; each kind asserts it beside its definitions).
pub mod delete_flags {
    /// Also delete every descendant.
    pub const CHILDREN: u32 = 1 << 0;
    /// Delete only the metadata (the driver's business; the list ignores it).
    pub const METADATA_ONLY: u32 = 1 << 1;
    /// Delete the descendants, keep the moment.
    pub const CHILDREN_ONLY: u32 = 1 << 2;
}

/// What a delete removed, for the driver to act on (bitmaps, images, files).
#[derive(Debug)]
pub struct Deleted<D> {
    /// The removed moments, descendants first.
    pub removed: Vec<D>,
    /// Moments whose parent changed (their saved metadata must be rewritten).
    pub reparented: Vec<String>,
}

impl<D> Default for Deleted<D> {
    fn default() -> Self {
        Deleted { removed: Vec::new(), reparented: Vec::new() }
    }
}

/// A moment ready to be committed, with what committing it does to `current`.
#[derive(Debug)]
pub struct Prepared<D> {
    pub def: D,
    /// Replaces an existing moment of the same name (redefine only).
    pub replaces: bool,
    pub make_current: bool,
}

/// One domain's moments of one kind.
#[derive(Debug, Clone)]
pub struct MomentList<D> {
    tree: MomentTree<D>,
    /// The error domain of the driver that owns the list.
    driver: Domain,
}

/// `no domain <kind> with matching name '<name>'`, in the driver's error domain.
pub fn not_found<D: Moment>(driver: Domain, name: &str) -> Error {
    Error::new(driver, D::NOT_FOUND, format!("no domain {} with matching name '{name}'", D::NOUN))
}

/// A tree error in libvirt's words. Errors about the tree itself come from libvirt's
/// shared moment code (`VIR_FROM_DOMAIN`); a missing moment is the driver's error.
pub fn tree_error<D: Moment>(err: TreeError, driver: Domain) -> Error {
    let from = Domain::VIR_FROM_DOMAIN;
    match err {
        TreeError::Exists(name) => {
            Error::new(from, Code::VIR_ERR_OPERATION_FAILED, format!("domain moment {name} already exists"))
        }
        TreeError::NotFound(name) => not_found::<D>(driver, &name),
        TreeError::OwnParent(name) => {
            Error::new(from, Code::VIR_ERR_INVALID_ARG, format!("cannot set moment {name} as its own parent"))
        }
        TreeError::MissingParent { parent, moment } => {
            Error::new(from, Code::VIR_ERR_INVALID_ARG, format!("parent {parent} for moment {moment} not found"))
        }
        TreeError::Cycle { ancestor, moment } => {
            Error::new(from, Code::VIR_ERR_INVALID_ARG, format!("parent {ancestor} would create cycle to {moment}"))
        }
        TreeError::UnsupportedFlags(bits) => Error::unsupported_flags(from, "virDomainMomentObjListGetNames", bits),
    }
}

impl<D: Moment> MomentList<D> {
    pub fn new(driver: Domain) -> Self {
        MomentList { tree: MomentTree::new(), driver }
    }

    fn err(&self) -> impl Fn(TreeError) -> Error + use<D> {
        let driver = self.driver;
        move |e| tree_error::<D>(e, driver)
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tree.contains(name)
    }

    /// The moment named `name`, or the kind's "no domain ... with matching name" error.
    pub fn get(&self, name: &str) -> Result<&D> {
        self.tree.get(name).ok_or_else(|| not_found::<D>(self.driver, name))
    }

    /// Mutable access to a definition (sizes, bookkeeping). Its parent is the list's.
    pub fn get_mut(&mut self, name: &str) -> Result<&mut D> {
        let driver = self.driver;
        self.tree.get_mut(name).ok_or_else(|| not_found::<D>(driver, name))
    }

    /// The error for creating a moment whose name is taken.
    pub fn exists_error(&self, name: &str) -> Error {
        tree_error::<D>(TreeError::Exists(name.to_string()), self.driver)
    }

    /// The hidden current moment.
    pub fn current(&self) -> Option<&str> {
        self.tree.current()
    }

    /// Makes `name` the current moment; `None`, or a name that does not exist (saved
    /// state naming a moment since removed), clears it.
    pub fn set_current(&mut self, name: Option<&str>) {
        if self.tree.set_current(name).is_err() {
            let _ = self.tree.set_current(None);
        }
    }

    /// Checks that `name` may be linked under `parent` (libvirt's own-parent, missing
    /// parent and cycle errors).
    pub fn check_cycles(&self, name: &str, parent: Option<&str>) -> Result<()> {
        self.tree.check_cycles(name, parent).map_err(self.err())
    }

    /// The moments a delete with these flags would remove, without removing them.
    pub fn to_be_deleted(&self, name: &str, flags: u32) -> Result<Vec<D>> {
        let this = self.get(name)?;
        let mut doomed = Vec::new();
        if flags & (delete_flags::CHILDREN | delete_flags::CHILDREN_ONLY) != 0 {
            let descendants = self.tree.list(Some(name), list_flags::DESCENDANTS, |_| true).map_err(self.err())?;
            doomed.extend(descendants.into_iter().filter_map(|n| self.tree.get(n)).cloned());
        }
        if flags & delete_flags::CHILDREN_ONLY == 0 {
            doomed.push(this.clone());
        }
        Ok(doomed)
    }

    /// Adds (or, for a redefinition, replaces in place, keeping its children) the
    /// moment under the parent it names, and makes it current if asked.
    pub fn commit(&mut self, prepared: Prepared<D>) -> Result<()> {
        let Prepared { def, replaces, make_current } = prepared;
        let name = def.name().to_string();
        let parent = def.parent_name().map(str::to_string);
        let result = if replaces {
            self.tree.redefine(&name, def, parent.as_deref()).map(|_| ())
        } else {
            self.tree.insert(&name, def, parent.as_deref())
        };
        result.map_err(self.err())?;
        self.sync_parent(&name);
        if make_current {
            self.tree.set_current(Some(&name)).map_err(self.err())?;
        }
        Ok(())
    }

    /// Makes a definition's parent the tree's (a parent that was missing at insertion
    /// made it a root).
    fn sync_parent(&mut self, name: &str) {
        let parent = self.tree.parent(name).ok().flatten().map(str::to_string);
        if let Some(def) = self.tree.get_mut(name) {
            def.set_parent_name(parent);
        }
    }

    /// Lists a domain's moments (`from` = None) or a moment's children, with the generic
    /// list flags (`list_flags`); `accept` is the kind's own filter.
    pub fn list(&self, from: Option<&str>, flags: u32, accept: impl Fn(&D) -> bool) -> Result<Vec<String>> {
        if let Some(name) = from {
            self.get(name)?;
        }
        let names = self.tree.list(from, flags, accept).map_err(self.err())?;
        Ok(names.into_iter().map(str::to_string).collect())
    }

    /// Counts what [`MomentList::list`] would return without a kind filter.
    pub fn count(&self, from: Option<&str>, flags: u32) -> Result<usize> {
        if let Some(name) = from {
            self.get(name)?;
        }
        self.tree.count(from, flags).map_err(self.err())
    }

    /// The number of direct children of a moment.
    pub fn child_count(&self, name: &str) -> Result<usize> {
        self.tree.child_count(name).map_err(self.err())
    }

    /// The parent's name, or `<kind> '<name>' does not have a parent` (the not-found
    /// code, which callers such as virsh read as "this is a root").
    pub fn parent(&self, name: &str) -> Result<String> {
        match self.tree.parent(name).map_err(self.err())? {
            Some(p) => Ok(p.to_string()),
            None => Err(Error::new(self.driver, D::NOT_FOUND, format!("{} '{name}' does not have a parent", D::NOUN))),
        }
    }

    /// Deletes per the delete flags: the moment (its children move to its parent), with
    /// CHILDREN also its descendants, with CHILDREN_ONLY only its descendants. The
    /// current moment, if removed, passes to the nearest survivor above it.
    pub fn delete(&mut self, name: &str, flags: u32) -> Result<Deleted<D>> {
        self.get(name)?;
        let err = self.err();
        let removed = if flags & delete_flags::CHILDREN != 0 {
            self.tree.remove_subtree(name).map_err(err)?
        } else if flags & delete_flags::CHILDREN_ONLY != 0 {
            self.tree.remove_children(name).map_err(err)?
        } else {
            let (def, moved) = self.tree.remove(name).map_err(err)?;
            for child in &moved {
                self.sync_parent(child);
            }
            return Ok(Deleted { removed: vec![def], reparented: moved });
        };
        Ok(Deleted { removed: removed.into_iter().map(|(_, d)| d).collect(), reparented: Vec::new() })
    }

    /// Every moment, parents first.
    pub fn all_topological(&self) -> Vec<&D> {
        self.tree
            .list(None, list_flags::TOPOLOGICAL, |_| true)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| self.tree.get(n))
            .collect()
    }

    /// Rebuilds a list from saved definitions; returns what could not be linked (those
    /// moments become roots, and no longer name a parent).
    pub fn load(driver: Domain, defs: Vec<D>) -> (MomentList<D>, Vec<Error>) {
        let entries =
            defs.into_iter().map(|d| (d.name().to_string(), d.parent_name().map(str::to_string), d)).collect();
        let (tree, problems) = MomentTree::from_parent_names(entries);
        let errors = problems.into_iter().map(|p| tree_error::<D>(p, driver)).collect();
        let mut list = MomentList { tree, driver };
        let names: Vec<String> = list.tree.names().map(str::to_string).collect();
        for name in names {
            list.sync_parent(&name);
        }
        (list, errors)
    }

    /// Removes everything (metadata only).
    pub fn clear(&mut self) {
        self.tree.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Def {
        name: String,
        parent: Option<String>,
    }

    impl Moment for Def {
        const NOUN: &'static str = "snapshot";
        const NOT_FOUND: Code = Code::VIR_ERR_NO_DOMAIN_SNAPSHOT;
        fn name(&self) -> &str {
            &self.name
        }
        fn parent_name(&self) -> Option<&str> {
            self.parent.as_deref()
        }
        fn set_parent_name(&mut self, parent: Option<String>) {
            self.parent = parent;
        }
    }

    fn def(name: &str, parent: Option<&str>) -> Def {
        Def { name: name.into(), parent: parent.map(str::to_string) }
    }

    /// A plain create: under the current moment, then current.
    fn create(list: &mut MomentList<Def>, name: &str) {
        let parent = list.current().map(str::to_string);
        list.commit(Prepared { def: def(name, parent.as_deref()), replaces: false, make_current: true }).unwrap();
    }

    fn parents(list: &MomentList<Def>) -> Vec<(String, Option<String>)> {
        let mut v: Vec<_> = list.all_topological().into_iter().map(|d| (d.name.clone(), d.parent.clone())).collect();
        v.sort();
        v
    }

    #[test]
    fn a_missing_moment_is_the_kinds_error() {
        let list = MomentList::<Def>::new(Domain::VIR_FROM_TEST);
        let e = list.get("x").unwrap_err();
        assert_eq!(e.code, Code::VIR_ERR_NO_DOMAIN_SNAPSHOT);
        assert_eq!(e.domain, Domain::VIR_FROM_TEST);
        assert_eq!(e.message, "Domain snapshot not found: no domain snapshot with matching name 'x'");
    }

    #[test]
    fn a_root_has_no_parent_in_the_kinds_words() {
        let mut list = MomentList::<Def>::new(Domain::VIR_FROM_TEST);
        create(&mut list, "a");
        let e = list.parent("a").unwrap_err();
        assert_eq!(e.message, "Domain snapshot not found: snapshot 'a' does not have a parent");
        assert_eq!(e.code, Code::VIR_ERR_NO_DOMAIN_SNAPSHOT);
    }

    #[test]
    fn deleting_one_moment_moves_its_children_up_and_rewrites_their_parent() {
        let mut list = MomentList::<Def>::new(Domain::VIR_FROM_TEST);
        for n in ["a", "b", "c"] {
            create(&mut list, n);
        }
        let deleted = list.delete("b", 0).unwrap();
        assert_eq!(deleted.reparented, ["c"]);
        assert_eq!(list.get("c").unwrap().parent.as_deref(), Some("a"));
        assert_eq!(list.current(), Some("c"));
        list.delete("c", 0).unwrap();
        assert_eq!(list.current(), Some("a"), "the parent of a deleted current moment becomes current");
    }

    #[test]
    fn children_only_keeps_the_moment_and_takes_current_over() {
        let mut list = MomentList::<Def>::new(Domain::VIR_FROM_TEST);
        for n in ["a", "b", "c"] {
            create(&mut list, n);
        }
        let deleted = list.delete("a", delete_flags::CHILDREN_ONLY).unwrap();
        assert_eq!(deleted.removed.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(list.current(), Some("a"));
        assert_eq!(list.to_be_deleted("a", delete_flags::CHILDREN).unwrap().len(), 1);
    }

    #[test]
    fn redefining_in_place_keeps_children_and_follows_the_new_parent() {
        let mut list = MomentList::<Def>::new(Domain::VIR_FROM_TEST);
        for n in ["a", "b", "c"] {
            create(&mut list, n);
        }
        list.commit(Prepared { def: def("x", None), replaces: false, make_current: false }).unwrap();
        list.check_cycles("b", Some("x")).unwrap();
        list.commit(Prepared { def: def("b", Some("x")), replaces: true, make_current: false }).unwrap();
        assert_eq!(list.parent("b").unwrap(), "x");
        assert_eq!(list.parent("c").unwrap(), "b");
        assert_eq!(list.list(Some("a"), 0, |_| true).unwrap(), Vec::<String>::new());
        let e = list.check_cycles("x", Some("c")).unwrap_err();
        assert_eq!(e.message, "invalid argument: parent b would create cycle to x");
    }

    #[test]
    fn a_parent_that_is_gone_makes_a_root_that_names_no_parent() {
        let mut list = MomentList::<Def>::new(Domain::VIR_FROM_TEST);
        list.commit(Prepared { def: def("a", Some("gone")), replaces: false, make_current: false }).unwrap();
        assert_eq!(list.get("a").unwrap().parent, None);
        let (loaded, errors) = MomentList::<Def>::load(
            Domain::VIR_FROM_TEST,
            vec![def("r", None), def("o", Some("lost")), def("k", Some("r"))],
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "invalid argument: parent lost for moment o not found");
        assert_eq!(
            parents(&loaded),
            [("k".to_string(), Some("r".to_string())), ("o".to_string(), None), ("r".to_string(), None)]
        );
    }

    #[test]
    fn the_kind_filter_applies_to_listings() {
        let mut list = MomentList::<Def>::new(Domain::VIR_FROM_TEST);
        for n in ["a", "b", "c"] {
            create(&mut list, n);
        }
        let names = list.list(None, list_flags::TOPOLOGICAL, |d| d.name != "b").unwrap();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(list.count(None, 0).unwrap(), 3);
        assert_eq!(list.count(None, list_flags::ROOTS).unwrap(), 1);
        assert_eq!(list.child_count("a").unwrap(), 1);
    }
}
