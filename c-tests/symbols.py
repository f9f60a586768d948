#!/usr/bin/env python3
"""Checks what libvirt.so.0 exports against libvirt.syms and the system's libvirt.

Usage: symbols.py OUR_LIBRARY LIBVIRT_SYMS [SYSTEM_LIBVIRT]   (prints TAP)

* the soname is libvirt.so.0;
* the exported symbols are exactly those libvirt.syms lists, each in its node;
* every exported name is a libvirt name (vir*), under a LIBVIRT_* node;
* every node is the one the system's libvirt gives the same symbol.
"""
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
    tap("Library soname: [libvirt.so.0]" in dyn, "soname is libvirt.so.0")

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
