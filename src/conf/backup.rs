//! `<domainbackup>` XML (being written).
