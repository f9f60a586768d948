#!/usr/bin/python3
"""Full push backups and pull-backup reads, against QEMU's own tools on the same image.

One image of random data. Every round runs each method once, in an order that rotates
from round to round, so that the machine's drift hits all methods alike; the medians,
the spread (min-max) and the ratios to the reference are printed.

Full push backup (the time from virDomainBackupBegin until the job has ended, new qcow2
target, synced):
  convert        qemu-img convert -t none -O qcow2 (O_DIRECT target), then sync  (reference)
  vb-running     virbackup, the domain running (its daemon copies)
  vb-shut-off    virbackup, the domain shut off (a daemon started for the job)
  vb-running +cp the running domain's backup creating a checkpoint too (bitmap writes)
Pull backup, the whole disk read to nowhere (nbdcopy URI null:):
  qemu-nbd       qemu-nbd --read-only on the image                               (reference)
  vb-running     virbackup's pull export of the running domain
  vb-shut-off    virbackup's pull export of the shut-off domain
With --cold, every full backup also runs with the page cache dropped first
(`<method> cold`). Needs root for --cold.
Where the time of a full backup goes (--where): the same copy driven straight through a
qemu-storage-daemon over QMP, as virbackup drives it, with virbackup's settings added one
at a time to QEMU's defaults:
  qsd defaults             target qcow2 without preallocation, QEMU's default 64 workers
  + preallocation          the target created with preallocation=metadata
  + 8 workers              x-perf max-workers 8
  + malloc tunables        GLIBC_TUNABLES mmap threshold 8 MiB, trim threshold 256 MiB:
                           virbackup's settings

  /usr/bin/python3 bench/speed.py [BUILD_DIR] [--size 4G] [--rounds 5] [--cold] [--where]
                                  [--only full|pull|where] [--dir DIR]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SETUP = "/usr/bin/python3"


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def alive(pid):
    """True while `pid` runs; a zombie nobody has reaped yet (daemonized processes are
    reaped by pid 1, which may be slow to do it) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return not f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


class World:
    """An image, a root with a domain on it, and the libvirt connection (virbackup's)."""

    def __init__(self, work, size):
        import libvirt
        self.libvirt = libvirt
        libvirt.registerErrorHandler(lambda *a: None, None)
        self.work = work
        self.image = os.path.join(work, "disk.qcow2")
        raw = os.path.join(work, "disk.raw")
        # Random data everywhere: nothing for a copy to skip.
        with open(raw, "wb") as f, open("/dev/urandom", "rb") as rnd:
            left = size
            while left:
                chunk = rnd.read(min(left, 64 << 20))
                f.write(chunk)
                left -= len(chunk)
        sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, self.image)
        os.remove(raw)
        self.size = size
        self.conn = libvirt.open("qemu:///embed?root=" + os.path.join(work, "root"))
        self.dom = self.conn.defineXML(
            "<domain type='kvm'><name>bench</name><memory unit='MiB'>256</memory><os><type>hvm</type></os>"
            "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{self.image}'/><target dev='vda'/></disk></devices></domain>")
        self.target = os.path.join(work, "target.qcow2")

    def running(self, on):
        if bool(self.dom.isActive()) != on:
            self.dom.create() if on else self.dom.destroy()

    def wait_job(self):
        while self.dom.jobInfo()[0] != self.libvirt.VIR_DOMAIN_JOB_NONE:
            time.sleep(0.002)
        stats = self.dom.jobStats(self.libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        if stats.get("type") != self.libvirt.VIR_DOMAIN_JOB_COMPLETED:
            sys.exit(f"the backup did not complete: {stats}")

    def clear(self):
        for path in (self.target,):
            if os.path.exists(path):
                os.remove(path)


def full_convert(world, cold):
    world.clear()
    if cold:
        drop_caches()
    start = time.monotonic()
    sh("qemu-img", "convert", "-U", "-t", "none", "-f", "qcow2", "-O", "qcow2", world.image, world.target)
    sh("sync", world.target)
    return time.monotonic() - start


def full_virbackup(running, checkpoint=False):
    def run(world, cold):
        world.running(running)
        world.clear()
        if cold:
            drop_caches()
        xml = ("<domainbackup><disks><disk name='vda' type='file'>"
               f"<target file='{world.target}'/><driver type='qcow2'/></disk></disks></domainbackup>")
        cp = "<domaincheckpoint><name>speed</name></domaincheckpoint>" if checkpoint else None
        start = time.monotonic()
        world.dom.backupBegin(xml, cp)
        world.wait_job()
        elapsed = time.monotonic() - start
        if checkpoint:
            world.dom.checkpointLookupByName("speed").delete()
        return elapsed
    return run


def nbdcopy_null(uri):
    start = time.monotonic()
    sh("nbdcopy", uri, "null:")
    return time.monotonic() - start


def pull_qemu_nbd(world, cold):
    world.running(False)
    socket = os.path.join(world.work, "qemu-nbd.sock")
    pidfile = os.path.join(world.work, "qemu-nbd.pid")
    sh("qemu-nbd", "--read-only", "--format=qcow2", "--shared=16", "--persistent", "--fork",
       f"--socket={socket}", f"--pid-file={pidfile}", world.image)
    try:
        return nbdcopy_null(f"nbd+unix:///?socket={socket}")
    finally:
        pid = int(open(pidfile).read())
        os.kill(pid, 15)
        while alive(pid):
            time.sleep(0.005)


class Qmp:
    """Just enough QMP: commands, and waiting for an event."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.reader = self.sock.makefile("r")
        self.pending = []
        json.loads(self.reader.readline())
        self.execute("qmp_capabilities")

    def execute(self, command, arguments=None):
        request = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = json.loads(self.reader.readline())
            if "event" in message:
                self.pending.append(message)
            elif "error" in message:
                raise RuntimeError(f"{command}: {message['error']['desc']}")
            else:
                return message.get("return")

    def wait_event(self, name):
        while not any(e["event"] == name for e in self.pending):
            self.pending.append(json.loads(self.reader.readline()))


def full_qsd(malloc, preallocation, workers):
    """A full backup straight through qemu-storage-daemon, as virbackup drives it (file
    nodes through the page cache for the disk, O_DIRECT with io_uring for the target)."""
    def run(world, cold):
        world.running(False)
        world.clear()
        qmp_path = os.path.join(world.work, "qsd.sock")
        pidfile = os.path.join(world.work, "qsd.pid")
        env = dict(os.environ)
        env.pop("GLIBC_TUNABLES", None)
        if malloc:
            env["GLIBC_TUNABLES"] = "glibc.malloc.mmap_threshold=8388608:glibc.malloc.trim_threshold=268435456"
        if cold:
            drop_caches()
        start = time.monotonic()
        subprocess.run(["qemu-storage-daemon", "--chardev", f"socket,id=m,path={qmp_path},server=on,wait=off",
                        "--monitor", "chardev=m", "--blockdev",
                        json.dumps({"driver": "file", "node-name": "f0", "filename": world.image}),
                        "--blockdev", json.dumps({"driver": "qcow2", "node-name": "d0", "file": "f0"}),
                        "--daemonize", "--pidfile", pidfile], check=True, env=env)
        # The daemon removes its pid file when it exits: read it now.
        pid = int(open(pidfile).read())
        qmp = Qmp(qmp_path)
        open(world.target, "wb").close()
        qmp.execute("blockdev-add", {"driver": "file", "node-name": "t0", "filename": world.target,
                                     "aio": "io_uring", "cache": {"direct": True, "no-flush": True}})
        options = {"driver": "qcow2", "file": "t0", "size": world.size}
        if preallocation:
            options["preallocation"] = "metadata"
        qmp.execute("blockdev-create", {"job-id": "create", "options": options})
        qmp.wait_event("JOB_STATUS_CHANGE")
        while any(j["status"] != "concluded" for j in qmp.execute("query-jobs")):
            time.sleep(0.001)
        qmp.execute("job-dismiss", {"id": "create"})
        qmp.execute("blockdev-add", {"driver": "qcow2", "node-name": "t1", "file": "t0"})
        backup = {"job-id": "copy", "device": "d0", "target": "t1", "sync": "full"}
        if workers:
            backup["x-perf"] = {"max-workers": workers}
        qmp.pending.clear()
        qmp.execute("blockdev-backup", backup)
        qmp.wait_event("BLOCK_JOB_COMPLETED")
        qmp.execute("quit")
        while alive(pid):
            time.sleep(0.001)
        sh("sync", world.target)
        return time.monotonic() - start
    return run


def pull_virbackup(running):
    def run(world, cold):
        world.running(running)
        socket = os.path.join(world.work, "pull.sock")
        scratch = os.path.join(world.work, "scratch.qcow2")
        world.dom.backupBegin(
            "<domainbackup mode='pull'>"
            f"<server transport='unix' socket='{socket}'/><disks><disk name='vda' type='file'>"
            f"<scratch file='{scratch}'/></disk></disks></domainbackup>", None)
        try:
            return nbdcopy_null(f"nbd+unix:///vda?socket={socket}")
        finally:
            world.dom.abortJob()
            world.wait_job()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--size", default="4G")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--where", action="store_true", help="also time the full backup's settings one by one")
    parser.add_argument("--only", choices=["full", "pull", "where"])
    parser.add_argument("--dir", default="/var/tmp", help="where the image and targets go")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    if os.environ.get("LD_LIBRARY_PATH") != build:
        # python3-libvirt loads libvirt.so.0 when imported: rerun with ours first.
        os.environ["LD_LIBRARY_PATH"] = build
        os.execv(SETUP, [SETUP] + sys.argv)
    if args.cold and os.geteuid() != 0:
        sys.exit("--cold drops the page cache: run as root")
    work = tempfile.mkdtemp(prefix="vbspeed", dir=args.dir)
    try:
        world = World(work, parse_size(args.size))
        groups = []
        if args.only in (None, "full"):
            methods = [("convert", full_convert, False), ("vb-running", full_virbackup(True), False),
                       ("vb-shut-off", full_virbackup(False), False)]
            if args.cold:
                methods += [(name + " cold", run, True) for name, run, _ in methods]
            # The same backup creating a checkpoint (its bitmap is added in the same
            # transaction): what bitmap writes cost.
            methods.append(("vb-running +cp", full_virbackup(True, checkpoint=True), False))
            groups.append(("full push backup", methods, ["convert", "convert cold"]))
        if (args.where and args.only in (None, "full")) or args.only == "where":
            groups.append(("where the time of a full backup goes",
                           [("convert", full_convert, False),
                            ("qsd defaults", full_qsd(False, False, None), False),
                            ("+ preallocation", full_qsd(False, True, None), False),
                            ("+ 8 workers", full_qsd(False, True, 8), False),
                            ("+ malloc tunables", full_qsd(True, True, 8), False)], ["convert"]))
        if args.only in (None, "pull"):
            groups.append(("pull backup read (nbdcopy to null)",
                           [("qemu-nbd", pull_qemu_nbd, False), ("vb-running", pull_virbackup(True), False),
                            ("vb-shut-off", pull_virbackup(False), False)], ["qemu-nbd"]))
        print(f"# {parse_size(args.size) >> 20} MiB of random data in {world.image}; {args.rounds} rounds; "
              f"{os.cpu_count()} CPUs; {sh('qemu-storage-daemon', '--version').splitlines()[0]}")
        for title, methods, references in groups:
            times = {name: [] for name, _, _ in methods}
            for r in range(args.rounds):
                order = methods[r % len(methods):] + methods[:r % len(methods)]
                for name, run, cold in order:
                    times[name].append(run(world, cold))
            print(f"\n{title}")
            for name, _, _ in methods:
                t = times[name]
                reference = next((x for x in references if x == ("convert cold" if name.endswith("cold")
                                                                 else references[0])), references[0])
                ratio = statistics.median(t) / statistics.median(times[reference])
                rate = world.size / statistics.median(t) / (1 << 20)
                print(f"  {name:<18} median {statistics.median(t):6.2f} s  [{min(t):.2f}-{max(t):.2f}]  "
                      f"{rate:7.0f} MiB/s  x{ratio:.2f} of {reference}")
        world.running(False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
