//! An NBD proxy that renames exports (being written).
