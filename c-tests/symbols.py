#!/usr/bin/env python3
"""Checks what a library exports against its version script and the system's libvirt.

Usage: symbols.py OUR_LIBRARY SYMS [SYSTEM_LIBRARY]   (prints TAP)

For libvirt.so.0 (with libvirt.syms) and libvirt-qemu.so.0 (with libvirt-qemu.syms):
* the soname is the library's (libvirt.so.0, libvirt-qemu.so.0);
* the exported symbols are exactly those the version script lists, each in its node;
* every exported name is a libvirt name (vir*), under a LIBVIRT_* node;
* the public exports (outside LIBVIRT_PRIVATE_*) are exactly the system library's
  public exports, each under the same node; private ones sit in a private node the
  system library has too.
"""
import os
import re
import subprocess
import sys

from taplib import Tap


def exports(path):
    out = subprocess.run(["objdump", "-T", path], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        # address flags... section size version name; skip imports and version markers
        if len(parts) >= 6 and parts[-4] not in ("*UND*", "*ABS*") and ("DF" in parts or "DO" in parts):
            found[parts[-1]] = parts[-2].strip("()")
    return found


def listed(path):
    text = re.sub(r"/\*.*?\*/", "", open(path).read(), flags=re.S)
    nodes = {}
    for node, body in re.findall(r"(LIBVIRT_[\w.]+)\s*\{(.*?)\}", text, flags=re.S):
        body = body.split("local:")[0].replace("global:", "")
        for name in re.findall(r"(\w+)\s*;", body):
            nodes[name] = node
    return nodes


def main():
    ours_path, syms_path = sys.argv[1:3]
    system_path = sys.argv[3] if len(sys.argv) > 3 else None
    t = Tap()
    tap = t.check
    dyn = subprocess.run(["readelf", "-d", ours_path], capture_output=True, text=True).stdout
    soname = re.sub(r"(\.so\.0).*", r"\1", os.path.basename(ours_path))
    tap(f"Library soname: [{soname}]" in dyn, f"soname is {soname}")

    ours = exports(ours_path)
    want = listed(syms_path)
    tap(set(ours) == set(want), f"exports equal libvirt.syms ({len(ours)} symbols)")
    for name in sorted(set(ours) ^ set(want)):
        t.note(f"  {'exported but not listed' if name in ours else 'listed but not exported'}: {name}")
    wrong = [f"{k}@{v} (listed {want.get(k)})" for k, v in ours.items() if want.get(k) != v]
    tap(not wrong, "each symbol carries its libvirt.syms node")
    for w in wrong:
        t.note("  " + w)
    foreign = [k for k, v in ours.items() if not k.startswith("vir") or not v.startswith("LIBVIRT_")]
    tap(not foreign, "only vir* names under LIBVIRT_* nodes")
    for f in foreign:
        t.note("  " + f)
    if system_path:
        system = exports(system_path)
        system_nodes = set(system.values())
        public = {k: v for k, v in system.items() if "PRIVATE" not in v}
        ours_public = {k: v for k, v in ours.items() if "PRIVATE" not in v}
        tap(set(ours_public) == set(public),
            f"the public exports are the system library's ({len(ours_public)} of {len(public)})")
        for name in sorted(set(ours_public) ^ set(public)):
            t.note(f"  {'only ours' if name in ours_public else 'missing'}: {name}@{public.get(name) or ours_public.get(name)}")
        mismatch = []
        for name, node in sorted(ours.items()):
            expected = system.get(name)
            if expected is None:
                # Not public in libvirt 9.0: must sit in a private node libvirt also has.
                if node not in system_nodes or "PRIVATE" not in node:
                    mismatch.append(f"{name}@{node}: not in the system library, so expected a private node")
            elif expected != node:
                mismatch.append(f"{name}@{node}: libvirt has {expected}")
        tap(not mismatch, f"nodes match the system libvirt ({system_path})")
        for m in mismatch:
            t.note("  " + m)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
