/* Layout of the public structs as libvirt's own header declares them. */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#ifdef VIRBACKUP_LIBVIRT_H
#error "layout-real.c must be compiled against the system's libvirt header"
#endif
#define LAYOUT_PREFIX real
#include "layout-table.h"
