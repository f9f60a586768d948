/*
 * virterror.h: the error API of virbackup.
 *
 * libvirt's programs include <libvirt/virterror.h> for virError, virGetLastError() and
 * the other error functions; in virbackup they are all declared by the generated
 * <libvirt/libvirt.h>, which this header includes.
 */
#ifndef LIBVIRT_VIRTERROR_H
#define LIBVIRT_VIRTERROR_H

#include <libvirt/libvirt.h>

#endif /* LIBVIRT_VIRTERROR_H */
