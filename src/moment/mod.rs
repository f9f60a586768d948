//! The generic "moment" tree: the per-domain forest of checkpoints (and, later,
//! snapshots), with libvirt's orderings, filters and hidden "current" moment.
//!
//! Moments live in an arena and are found by name through a hash map. Every node keeps a
//! doubly-linked list of its children, newest first, as libvirt's singly-linked lists do;
//! the extra back links make unlinking O(1). An implicit metaroot is the parent of every
//! root. Costs: lookup by name O(1), listing O(n), listing children O(children), adding
//! or removing one moment O(1) (plus O(children) to reparent them).
//!
//! The tree owns the parent links; a definition's own idea of its parent is only read
//! when it is inserted, and [`MomentTree::parent`] is the truth afterwards.

#![forbid(unsafe_code)]

use std::collections::HashMap;

pub mod list;

/// Listing flags of the generic lister (libvirt's `VIR_DOMAIN_MOMENT_LIST_*`). Checkpoint
/// and snapshot list flags are translated to these.
pub mod list_flags {
    /// With a domain: only roots. With a starting moment: all descendants. Same bit.
    pub const ROOTS: u32 = 1 << 0;
    /// The same bit as [`ROOTS`], named for listings that start at a moment.
    pub const DESCENDANTS: u32 = 1 << 0;
    /// Parents before children.
    pub const TOPOLOGICAL: u32 = 1 << 1;
    /// Only moments without children.
    pub const LEAVES: u32 = 1 << 2;
    /// Only moments with children.
    pub const NO_LEAVES: u32 = 1 << 3;
    /// Only moments with metadata (every moment has it).
    pub const METADATA: u32 = 1 << 4;
    /// Only moments without metadata (none).
    pub const NO_METADATA: u32 = 1 << 5;
    /// Both leaf filters.
    pub const FILTERS_LEAVES: u32 = LEAVES | NO_LEAVES;
    /// Both metadata filters.
    pub const FILTERS_METADATA: u32 = METADATA | NO_METADATA;
    /// Every flag the generic lister knows.
    pub const FILTERS_ALL: u32 = ROOTS | TOPOLOGICAL | FILTERS_LEAVES | FILTERS_METADATA;
}

/// Why a tree operation was refused. The caller turns these into libvirt errors, since
/// the wording depends on the kind of moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeError {
    /// A moment with this name exists.
    Exists(String),
    /// No moment with this name.
    NotFound(String),
    /// A moment would become its own parent.
    OwnParent(String),
    /// The requested parent does not exist: (parent, moment).
    MissingParent { parent: String, moment: String },
    /// Linking would close a cycle: `ancestor` is the moment whose parent is `moment`.
    Cycle { ancestor: String, moment: String },
    /// Flags outside [`list_flags::FILTERS_ALL`].
    UnsupportedFlags(u32),
}

type Index = usize;

/// A list of children, newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Children {
    first: Option<Index>,
    last: Option<Index>,
    count: usize,
}

#[derive(Debug, Clone)]
struct Node<D> {
    name: String,
    def: D,
    /// `None` means the metaroot.
    parent: Option<Index>,
    prev: Option<Index>,
    next: Option<Index>,
    children: Children,
}

/// A forest of named moments with libvirt's semantics.
#[derive(Debug, Clone)]
pub struct MomentTree<D> {
    nodes: Vec<Option<Node<D>>>,
    free: Vec<Index>,
    by_name: HashMap<String, Index>,
    roots: Children,
    current: Option<Index>,
}

impl<D> Default for MomentTree<D> {
    fn default() -> Self {
        MomentTree {
            nodes: Vec::new(),
            free: Vec::new(),
            by_name: HashMap::new(),
            roots: Children::default(),
            current: None,
        }
    }
}

impl<D> MomentTree<D> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of moments.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    fn node(&self, i: Index) -> &Node<D> {
        self.nodes[i].as_ref().expect("live index")
    }

    fn node_mut(&mut self, i: Index) -> &mut Node<D> {
        self.nodes[i].as_mut().expect("live index")
    }

    fn index(&self, name: &str) -> Result<Index, TreeError> {
        self.by_name.get(name).copied().ok_or_else(|| TreeError::NotFound(name.to_string()))
    }

    fn children(&self, parent: Option<Index>) -> &Children {
        match parent {
            Some(p) => &self.node(p).children,
            None => &self.roots,
        }
    }

    fn children_mut(&mut self, parent: Option<Index>) -> &mut Children {
        match parent {
            Some(p) => &mut self.node_mut(p).children,
            None => &mut self.roots,
        }
    }

    /// Links an unlinked node at the front of `parent`'s children.
    fn link_front(&mut self, i: Index, parent: Option<Index>) {
        let old_first = self.children(parent).first;
        {
            let n = self.node_mut(i);
            n.parent = parent;
            n.prev = None;
            n.next = old_first;
        }
        match old_first {
            Some(f) => self.node_mut(f).prev = Some(i),
            None => self.children_mut(parent).last = Some(i),
        }
        let list = self.children_mut(parent);
        list.first = Some(i);
        list.count += 1;
    }

    /// Removes a node from its parent's child list (its own children stay with it).
    fn unlink(&mut self, i: Index) {
        let (parent, prev, next) = {
            let n = self.node(i);
            (n.parent, n.prev, n.next)
        };
        match prev {
            Some(p) => self.node_mut(p).next = next,
            None => self.children_mut(parent).first = next,
        }
        match next {
            Some(nx) => self.node_mut(nx).prev = prev,
            None => self.children_mut(parent).last = prev,
        }
        self.children_mut(parent).count -= 1;
        let n = self.node_mut(i);
        n.prev = None;
        n.next = None;
    }

    /// Moves every child of `from` to the front of `to`'s children, keeping their order
    /// (libvirt's MoveChildren).
    fn move_children(&mut self, from: Index, to: Option<Index>) {
        let moved = std::mem::take(&mut self.node_mut(from).children);
        let Some(first) = moved.first else { return };
        let last = moved.last.expect("non-empty list has a last");
        let mut c = Some(first);
        while let Some(i) = c {
            self.node_mut(i).parent = to;
            c = self.node(i).next;
        }
        let old_first = self.children(to).first;
        self.node_mut(last).next = old_first;
        match old_first {
            Some(f) => self.node_mut(f).prev = Some(last),
            None => self.children_mut(to).last = Some(last),
        }
        let list = self.children_mut(to);
        list.first = Some(first);
        list.count += moved.count;
    }

    fn alloc(&mut self, node: Node<D>) -> Index {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        }
    }

    fn release(&mut self, i: Index) -> (String, D) {
        let node = self.nodes[i].take().expect("live index");
        self.free.push(i);
        self.by_name.remove(&node.name);
        if self.current == Some(i) {
            self.current = None;
        }
        (node.name, node.def)
    }

    /// True when a moment with this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The definition of a moment.
    pub fn get(&self, name: &str) -> Option<&D> {
        self.by_name.get(name).map(|&i| &self.node(i).def)
    }

    /// The definition of a moment, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut D> {
        let i = *self.by_name.get(name)?;
        Some(&mut self.node_mut(i).def)
    }

    /// The parent of a moment (`None` for a root).
    pub fn parent(&self, name: &str) -> Result<Option<&str>, TreeError> {
        let i = self.index(name)?;
        Ok(self.node(i).parent.map(|p| self.node(p).name.as_str()))
    }

    /// The number of direct children of a moment.
    pub fn child_count(&self, name: &str) -> Result<usize, TreeError> {
        Ok(self.node(self.index(name)?).children.count)
    }

    /// The hidden current moment.
    pub fn current(&self) -> Option<&str> {
        self.current.map(|i| self.node(i).name.as_str())
    }

    /// Sets (or clears) the current moment.
    pub fn set_current(&mut self, name: Option<&str>) -> Result<(), TreeError> {
        self.current = match name {
            Some(n) => Some(self.index(n)?),
            None => None,
        };
        Ok(())
    }

    /// Adds a new moment under `parent` (a root when `None`), first among its siblings.
    /// A parent that does not exist makes the moment a root, as libvirt does when it
    /// links a moment whose parent is gone.
    pub fn insert(&mut self, name: &str, def: D, parent: Option<&str>) -> Result<(), TreeError> {
        if self.by_name.contains_key(name) {
            return Err(TreeError::Exists(name.to_string()));
        }
        let parent = parent.and_then(|p| self.by_name.get(p).copied());
        let i = self.alloc(Node {
            name: name.to_string(),
            def,
            parent,
            prev: None,
            next: None,
            children: Children::default(),
        });
        self.by_name.insert(name.to_string(), i);
        self.link_front(i, parent);
        Ok(())
    }

    /// Checks that `name` may be (re)linked under `parent`, with libvirt's three errors:
    /// its own parent, a missing parent, or a cycle.
    pub fn check_cycles(&self, name: &str, parent: Option<&str>) -> Result<(), TreeError> {
        let Some(parent) = parent else { return Ok(()) };
        if parent == name {
            return Err(TreeError::OwnParent(name.to_string()));
        }
        let mut at = self
            .by_name
            .get(parent)
            .copied()
            .ok_or_else(|| TreeError::MissingParent { parent: parent.to_string(), moment: name.to_string() })?;
        // Walk up from the parent: if some ancestor's parent is `name`, linking closes a loop.
        loop {
            match self.node(at).parent {
                Some(p) if self.node(p).name == name => {
                    return Err(TreeError::Cycle { ancestor: self.node(at).name.clone(), moment: name.to_string() });
                }
                Some(p) => at = p,
                None => return Ok(()),
            }
        }
    }

    /// Replaces the definition of an existing moment in place and moves it (with its
    /// children) to the front of `parent`'s children. The caller checks cycles first.
    pub fn redefine(&mut self, name: &str, def: D, parent: Option<&str>) -> Result<D, TreeError> {
        let i = self.index(name)?;
        let parent = match parent {
            Some(p) => Some(self.index(p)?),
            None => None,
        };
        self.unlink(i);
        let old = std::mem::replace(&mut self.node_mut(i).def, def);
        self.link_front(i, parent);
        Ok(old)
    }

    /// Removes one moment; its children move to its parent, in front of the parent's own
    /// children. If it was current, its parent becomes current. Returns its definition
    /// and the names of the moved children (whose recorded parent changed).
    pub fn remove(&mut self, name: &str) -> Result<(D, Vec<String>), TreeError> {
        let i = self.index(name)?;
        let parent = self.node(i).parent;
        let moved = self.child_names(Some(i));
        self.move_children(i, parent);
        self.unlink(i);
        let was_current = self.current == Some(i);
        let (_, def) = self.release(i);
        if was_current {
            self.current = parent;
        }
        Ok((def, moved))
    }

    /// Removes a moment and all its descendants (pre-order). If the current moment was
    /// among them, the moment's parent becomes current. Returns the removed moments,
    /// descendants first, the moment itself last.
    pub fn remove_subtree(&mut self, name: &str) -> Result<Vec<(String, D)>, TreeError> {
        let i = self.index(name)?;
        let parent = self.node(i).parent;
        let mut doomed = self.descendants(i);
        doomed.push(i);
        let current_inside = self.current.is_some_and(|c| doomed.contains(&c));
        self.unlink(i);
        let removed = doomed.into_iter().map(|d| self.release(d)).collect();
        if current_inside {
            self.current = parent;
        }
        Ok(removed)
    }

    /// Removes all descendants of a moment (pre-order) and keeps the moment. If the
    /// current moment was a descendant, the moment becomes current.
    pub fn remove_children(&mut self, name: &str) -> Result<Vec<(String, D)>, TreeError> {
        let i = self.index(name)?;
        let doomed = self.descendants(i);
        let current_inside = self.current.is_some_and(|c| doomed.contains(&c));
        self.node_mut(i).children = Children::default();
        let removed = doomed.into_iter().map(|d| self.release(d)).collect();
        if current_inside {
            self.current = Some(i);
        }
        Ok(removed)
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    fn child_indices(&self, parent: Option<Index>) -> Vec<Index> {
        let list = self.children(parent);
        let mut out = Vec::with_capacity(list.count);
        let mut c = list.first;
        while let Some(i) = c {
            out.push(i);
            c = self.node(i).next;
        }
        out
    }

    fn child_names(&self, parent: Option<Index>) -> Vec<String> {
        self.child_indices(parent).into_iter().map(|i| self.node(i).name.clone()).collect()
    }

    /// Pre-order depth-first walk below `parent` (excluding it): each child, then its
    /// subtree, then the next sibling.
    fn walk_below(&self, parent: Option<Index>, visit: &mut dyn FnMut(Index)) {
        // An explicit stack keeps deep chains (thousands of moments) off the call stack.
        let mut stack: Vec<Index> = Vec::new();
        let push_children = |stack: &mut Vec<Index>, list: &Children| {
            // Push in reverse so the first child is visited first.
            let mut c = list.last;
            while let Some(i) = c {
                stack.push(i);
                c = self.node(i).prev;
            }
        };
        push_children(&mut stack, self.children(parent));
        while let Some(i) = stack.pop() {
            visit(i);
            push_children(&mut stack, &self.node(i).children);
        }
    }

    fn descendants(&self, i: Index) -> Vec<Index> {
        let mut out = Vec::new();
        self.walk_below(Some(i), &mut |d| out.push(d));
        out
    }

    /// Lists moment names as libvirt's generic lister does.
    ///
    /// `from` is `None` to list the whole domain, where [`list_flags::ROOTS`] keeps only
    /// roots; or a moment, where the same bit ([`list_flags::DESCENDANTS`]) widens the
    /// listing from children to all descendants. LEAVES / NO_LEAVES filter (both together
    /// match nothing), `accept` filters by definition, and METADATA / NO_METADATA are
    /// honoured with every moment counting as having metadata. The order is pre-order
    /// depth-first, so parents always come before their children; direct children and
    /// roots come newest first.
    pub fn list(&self, from: Option<&str>, flags: u32, accept: impl Fn(&D) -> bool) -> Result<Vec<&str>, TreeError> {
        use list_flags::*;
        if flags & !FILTERS_ALL != 0 {
            return Err(TreeError::UnsupportedFlags(flags & !FILTERS_ALL));
        }
        let start = match from {
            Some(name) => Some(self.index(name)?),
            None => None,
        };
        // From the metaroot the bit means "roots only"; flip it so that, as for a real
        // moment, a set bit means "recurse".
        let recurse = (flags & DESCENDANTS != 0) != start.is_none();
        if flags & FILTERS_METADATA == NO_METADATA {
            return Ok(Vec::new());
        }
        let passes = |i: Index| {
            let n = self.node(i);
            let leaf = n.children.count == 0;
            let leaf_ok = if leaf { flags & NO_LEAVES == 0 } else { flags & LEAVES == 0 };
            leaf_ok && accept(&n.def)
        };
        let mut out = Vec::new();
        if recurse {
            self.walk_below(start, &mut |i| {
                if passes(i) {
                    out.push(self.node(i).name.as_str());
                }
            });
        } else {
            out.extend(
                self.child_indices(start).into_iter().filter(|&i| passes(i)).map(|i| self.node(i).name.as_str()),
            );
        }
        Ok(out)
    }

    /// Counts what [`MomentTree::list`] would return with no definition filter; without
    /// a leaf or metadata filter the count is known without visiting the moments.
    pub fn count(&self, from: Option<&str>, flags: u32) -> Result<usize, TreeError> {
        use list_flags::*;
        if flags & !FILTERS_ALL == 0 && flags & (FILTERS_LEAVES | FILTERS_METADATA) == 0 {
            let start = match from {
                Some(name) => Some(self.index(name)?),
                None => None,
            };
            let recurse = (flags & DESCENDANTS != 0) != start.is_none();
            return Ok(match (recurse, start) {
                (false, parent) => self.children(parent).count,
                (true, None) => self.len(),
                (true, Some(i)) => self.descendants(i).len(),
            });
        }
        self.list(from, flags, |_| true).map(|v| v.len())
    }

    /// All names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Rebuilds a tree from moments that each name their parent (loading saved metadata).
    /// A moment whose parent is missing, or whose parent chain loops, becomes a root and
    /// is reported. The current moment becomes the single leaf when the moments form one
    /// linear chain, and none otherwise. Moments are linked in the order given.
    pub fn from_parent_names(moments: Vec<(String, Option<String>, D)>) -> (MomentTree<D>, Vec<TreeError>) {
        let mut tree = MomentTree::new();
        let mut problems = Vec::new();
        let mut wanted = Vec::new();
        for (name, parent, def) in moments {
            if tree.insert(&name, def, None).is_err() {
                problems.push(TreeError::Exists(name));
                continue;
            }
            wanted.push((name, parent));
        }
        for (name, parent) in wanted {
            let Some(parent) = parent else { continue };
            match tree.check_cycles(&name, Some(&parent)) {
                Ok(()) => {
                    let i = tree.by_name[&name];
                    let p = tree.by_name[&parent];
                    tree.unlink(i);
                    tree.link_front(i, Some(p));
                }
                Err(e) => problems.push(e),
            }
        }
        tree.current = tree.single_leaf();
        (tree, problems)
    }

    /// The last moment of the tree when it is a single linear chain (libvirt's FindLeaf).
    fn single_leaf(&self) -> Option<Index> {
        if self.roots.count != 1 {
            return None;
        }
        let mut at = self.roots.first?;
        loop {
            let n = self.node(at);
            match n.children.count {
                0 => return Some(at),
                1 => at = n.children.first?,
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests;
