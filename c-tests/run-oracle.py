#!/usr/bin/env python3
"""Runs a program built against the system's libvirt twice, with the system library and
with virbackup's libvirt.so.0 first on LD_LIBRARY_PATH, and compares the outputs (stdout
and stderr). Prints TAP.

Usage: run-oracle.py [--mask REGEX]... [--sort-lines-after MARK]... PROGRAM OURLIBDIR
  --mask REGEX   replace each match with "<masked>" in both outputs before comparing
"""
import argparse
import difflib
import os
import re
import subprocess
import sys

from taplib import Tap


def run(program, libdir):
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    env.pop("LIBVIRT_DEFAULT_URI", None)
    if libdir:
        env["LD_LIBRARY_PATH"] = libdir
    proc = subprocess.run([program], env=env, capture_output=True, text=True, errors="replace", timeout=600)
    return proc.returncode, proc.stdout + "\n--- stderr ---\n" + proc.stderr


def loaded_library(program, libdir):
    env = dict(os.environ, LD_LIBRARY_PATH=libdir)
    out = subprocess.run(["ldd", program], env=env, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "libvirt.so.0" in line:
            return line.split("=>")[-1].strip().split(" ")[0]
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mask", action="append", default=[])
    parser.add_argument("program")
    parser.add_argument("libdir")
    args = parser.parse_args()
    libdir = os.path.abspath(args.libdir)

    t = Tap()
    tap = t.check
    lib = loaded_library(args.program, libdir)
    tap(lib is not None and os.path.dirname(os.path.realpath(lib)) == libdir,
        f"LD_LIBRARY_PATH makes the program load virbackup's library ({lib})")
    rc_real, real = run(args.program, None)
    rc_ours, ours = run(args.program, libdir)
    for pattern in args.mask:
        real = re.sub(pattern, "<masked>", real)
        ours = re.sub(pattern, "<masked>", ours)
    tap(rc_real == 0, f"program exits 0 with the system's libvirt (got {rc_real})")
    tap(rc_ours == rc_real, f"same exit status with virbackup (got {rc_ours})")
    same = real == ours
    tap(same, f"identical output ({len(real.splitlines())} lines)")
    if not same:
        t.note("\n".join(difflib.unified_diff(real.splitlines(), ours.splitlines(), "libvirt", "virbackup", lineterm="", n=2)))
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
