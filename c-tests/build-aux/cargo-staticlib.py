#!/usr/bin/env python3
"""Builds the crate's staticlib with cargo and copies it where meson wants it.

Usage: cargo-staticlib.py CARGO CRATE_DIR PROFILE OUTPUT

Cargo decides what is stale; the copy is only refreshed when the archive changed, so an
up-to-date tree does not relink libvirt.so.0.
"""
import filecmp
import os
import shutil
import subprocess
import sys


def main():
    cargo, crate, profile, output = sys.argv[1:5]
    command = [cargo, "build", "--lib", "--manifest-path", os.path.join(crate, "Cargo.toml")]
    if profile == "release":
        command.append("--release")
    subprocess.run(command, check=True)
    built = os.path.join(crate, "target", profile, "libvirbackup.a")
    if not os.path.exists(output) or not filecmp.cmp(built, output, shallow=False):
        shutil.copyfile(built, output + ".tmp")
        os.replace(output + ".tmp", output)


if __name__ == "__main__":
    main()
