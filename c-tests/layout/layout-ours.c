/* Layout of the public structs as virbackup's header declares them. */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#ifndef VIRBACKUP_LIBVIRT_H
#error "layout-ours.c must be compiled against virbackup's header"
#endif
#define LAYOUT_PREFIX ours
#include "layout-table.h"
