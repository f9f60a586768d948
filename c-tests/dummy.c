/*
 * libvirt.so.0 is linked from the crate's static library; meson wants at least one
 * source file of its own for a shared library, and this is it.
 */
extern int virbackup_linked_from_rust;
