#!/usr/bin/python3
"""What one large domain costs calls on the others.

Two roots: one with a small domain only, one with the same small domain next to a large
one (a definition just under the 4 MiB accepted, and checkpoints, each of whose metadata
holds that definition again). Every sample is a fresh process, as a backup tool run from
cron is: it opens the root, looks the small domain up and lists its checkpoints. The
medians and the peak memory of both roots are printed, and their ratio.

    /usr/bin/python3 bench/definitions.py [BUILD_DIR] [--samples N] [--checkpoints N]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

PY = "/usr/bin/python3"

PROBE = r"""
import resource, sys, time, libvirt
libvirt.registerErrorHandler(lambda *a: None, None)
start = time.monotonic()
conn = libvirt.open(sys.argv[1])
dom = conn.lookupByName("small")
dom.listAllCheckpoints()
dom.info()
elapsed = time.monotonic() - start
print(elapsed * 1000, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""

SETUP = r"""
import sys, libvirt
uri, image, big_image, checkpoints, with_big = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
def domain(name, path, extra=""):
    return ("<domain type='kvm'><name>%s</name><memory>65536</memory>%s<os><type>hvm</type></os><devices>"
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
            "<target dev='vda'/></disk></devices></domain>") % (name, extra, path)
conn = libvirt.open(uri)
small = conn.defineXML(domain("small", image))
small.checkpointCreateXML("<domaincheckpoint><name>s1</name></domaincheckpoint>")
if with_big:
    text = "<description>%s</description>" % ("x" * ((4 << 20) - 2048))
    big = conn.defineXML(domain("big", big_image, text))
    for i in range(checkpoints):
        big.checkpointCreateXML("<domaincheckpoint><name>b%d</name></domaincheckpoint>" % i)
"""


def run(env, *args):
    out = subprocess.run([PY, *args], env=env, capture_output=True, text=True, cwd="/")
    if out.returncode != 0:
        sys.exit(f"failed: {out.stderr}")
    return out.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--checkpoints", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.abspath(args.build))
    work = tempfile.mkdtemp(prefix="vbdef", dir="/tmp")
    results = {}
    for label, with_big in (("alone", "0"), ("beside a large domain", "1")):
        root = os.path.join(work, "root-" + with_big)
        uri = "qemu:///embed?root=" + root
        images = []
        for name in ("small", "big"):
            path = os.path.join(work, f"{name}-{with_big}.qcow2")
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "16M"], check=True)
            images.append(path)
        run(env, "-c", SETUP, uri, images[0], images[1], str(args.checkpoints), with_big)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
        times, memory = [], []
        for _ in range(args.samples):
            ms, rss = run(env, "-c", PROBE, uri).split()
            times.append(float(ms))
            memory.append(int(rss))
        results[label] = (statistics.median(times), max(memory))
        print(f"small domain {label:<22} state {size / 2**20:6.1f} MiB   "
              f"call median {statistics.median(times):7.2f} ms   peak memory {max(memory)} MiB")
    (t0, m0), (t1, m1) = results.values()
    print(f"ratio (beside / alone): time {t1 / t0:.2f}, memory {m1 / m0:.2f}")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
