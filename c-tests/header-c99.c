/* The generated header compiles as strict C99 (and is safe to include twice). */
#include <libvirt/libvirt.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#ifndef VIRBACKUP_LIBVIRT_H
#error "compiled against the wrong libvirt.h"
#endif

#if !LIBVIR_CHECK_VERSION(9, 0, 0) || LIBVIR_CHECK_VERSION(9, 0, 1)
#error "LIBVIR_CHECK_VERSION does not describe libvirt 9.0.0"
#endif

#include <stdio.h>

int main(void)
{
    virErrorFunc handler = NULL;
    virDomainInfo info;
    info.state = VIR_DOMAIN_RUNNING;
    (void)handler;
    printf("ok 1 - header compiles as C99 (state %d)\n1..1\n", info.state);
    return 0;
}
