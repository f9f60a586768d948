#!/usr/bin/python3
"""The crash test: a process using qemu:///embed is killed (SIGKILL) at a random instant
inside an operation, and a fresh process then opens the same root and checks it.

Usage: tests/crash/crash-test.py BUILD_DIR [--trials N] [--seed S] [--ops OP,...]
                                 [--max-delay MS] [--keep] [--verbose]

The world is one root with two domains on 64 MiB qcow2 disks; which one is running
changes as trials start and destroy them. Each trial picks an operation that fits the
domains' states (checkpoint create and delete; push backup full and incremental; pull
backup begin; domain start and destroy; snapshot create, internal and external, revert
and delete), runs it in
a victim process (python3-libvirt
on the library in BUILD_DIR), kills that process at a random instant 0..--max-delay ms
after it said it was about to start, and then, in a fresh process, checks:

  load      opening the root prints no warning (every metadata file parses), and
            whatever the dead process left is recovered before the first call returns
  tree      every checkpoint's parent exists, and the metadata files are the checkpoints;
            the same for snapshots: the internal snapshots of the disk's images (its
            backing chain) all have metadata, and every internal snapshot is in an
            image the domain or a snapshot names
  bitmaps   every checkpoint's bitmaps are there and healthy, or the checkpoint is
            reported inconsistent (REDEFINE_VALIDATE); no image holds a bitmap that no
            checkpoint or snapshot names, and every snapshot has its bitmap; no temporary
            bitmap is left
  engine    a qemu-storage-daemon runs for each running domain and for nothing else, and
            the only FUSE mounts under the root are running domains' disks; a
            running domain's daemon holds no node, job or export but the domain's own
  files     no temporary file, intent record, scratch image, pull socket, set-aside
            bitmaps file of a revert, overlay or placeholder is left (a domain's images
            are its chain and those its snapshots name), and
            a push target is there only if its backup completed
  usable    a new checkpoint and a full push backup of each domain succeed

A backup job still running when the victim dies is taken over by the checking process,
which waits for it to end first. Prints TAP: one line per trial (the failed checks named
in the line), then a summary. Exits 1 if any check failed.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

PY = "/usr/bin/python3"
DISK = 64 << 20

# The victims: each prints "go" just before the operation, then performs it and waits
# for a backup job it started to end. {uri} {dom} {arg} are filled in.
VICTIMS = {
    "checkpoint-create": """
        print("go", flush=True)
        dom.checkpointCreateXML("<domaincheckpoint><name>{arg}</name></domaincheckpoint>")
    """,
    "checkpoint-delete": """
        cp = dom.checkpointLookupByName("{arg}")
        print("go", flush=True)
        cp.delete(0)
    """,
    "push-full": """
        xml = ("<domainbackup><disks><disk name='vda' type='file'><target file='{arg}'/>"
               "<driver type='qcow2'/></disk></disks></domainbackup>")
        print("go", flush=True)
        dom.backupBegin(xml, "<domaincheckpoint><name>{arg2}</name></domaincheckpoint>")
        wait_job()
    """,
    "push-incremental": """
        xml = ("<domainbackup><incremental>{arg3}</incremental><disks><disk name='vda' type='file'>"
               "<target file='{arg}'/><driver type='qcow2'/></disk></disks></domainbackup>")
        print("go", flush=True)
        dom.backupBegin(xml, "<domaincheckpoint><name>{arg2}</name></domaincheckpoint>")
        wait_job()
    """,
    "pull-begin": """
        xml = ("<domainbackup mode='pull'><server transport='unix' socket='{arg}.sock'/><disks>"
               "<disk name='vda' type='file'><scratch file='{arg}'/></disk></disks></domainbackup>")
        print("go", flush=True)
        dom.backupBegin(xml, None)
        time.sleep(0.05)
        dom.abortJob()
        wait_job()
    """,
    "start": """
        print("go", flush=True)
        dom.create()
    """,
    "destroy": """
        print("go", flush=True)
        dom.destroy()
    """,
    "snapshot-create": """
        print("go", flush=True)
        dom.snapshotCreateXML("<domainsnapshot><name>{arg}</name></domainsnapshot>")
    """,
    "snapshot-external": """
        print("go", flush=True)
        dom.snapshotCreateXML("<domainsnapshot><name>{arg}</name></domainsnapshot>",
                              libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY)
    """,
    "snapshot-revert": """
        snap = dom.snapshotLookupByName("{arg}")
        print("go", flush=True)
        dom.revertToSnapshot(snap)
    """,
    "snapshot-delete": """
        snap = dom.snapshotLookupByName("{arg}")
        print("go", flush=True)
        snap.delete(0)
    """,
}

VICTIM_HEAD = """
import atexit, sys, time, libvirt
started = time.monotonic()
atexit.register(lambda: print("done %d" % ((time.monotonic() - started) * 1000), flush=True))
libvirt.registerErrorHandler(lambda *a: None, None)
conn = libvirt.open({uri!r})
dom = conn.lookupByName({dom!r})
def wait_job():
    while dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
        time.sleep(0.01)
"""

# The checker: runs in a fresh process, prints one JSON object with what it found.
CHECKER = r"""
import glob, json, os, subprocess, sys, time, libvirt
errors = []
libvirt.registerErrorHandler(lambda ctx, err: None, None)
root, targets_dir, probe_dir, trial, target, target_dom = sys.argv[1:7]
uri = "qemu:///embed?root=" + root
report = {"problems": [], "inconsistent": [], "domains": {}}
def problem(check, text):
    report["problems"].append([check, text])
try:
    conn = libvirt.open(uri)
    doms = conn.listAllDomains(0)
except libvirt.libvirtError as e:
    problem("load", "cannot open the root: %s" % e)
    print(json.dumps(report)); sys.exit(0)

# Jobs the dead process left running are taken over: wait for them to end. A pull backup
# never ends on its own: it is aborted, as its reader would.
deadline = time.time() + 120
for dom in doms:
    try:
        if dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE and "mode='pull'" in dom.backupGetXMLDesc():
            dom.abortJob()
    except libvirt.libvirtError as e:
        if e.get_error_code() not in (libvirt.VIR_ERR_NO_DOMAIN_BACKUP, libvirt.VIR_ERR_OPERATION_INVALID):
            problem("usable", "aborting the pull backup of %s: %s" % (dom.name(), e))
    while True:
        try:
            if dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE:
                break
        except libvirt.libvirtError as e:
            problem("load", "jobInfo(%s): %s" % (dom.name(), e)); break
        if time.time() > deadline:
            problem("usable", "the job of %s did not end" % dom.name()); break
        time.sleep(0.05)

def monitor(dom, cmd):
    import libvirt_qemu
    return json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps({"execute": cmd}), 0))["return"]

def image_info(path):
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}

def image_bitmaps(path):
    info = image_info(path)
    return {b["name"]: b.get("flags", []) for b in info.get("format-specific", {}).get("data", {}).get("bitmaps", [])}

def chain(top):
    # The disk's image and the images below it (external snapshots' overlays), top first.
    images = [top]
    while True:
        backing = image_info(images[-1]).get("full-backing-filename")
        if not backing or backing in images:
            return images
        images.append(os.path.join(os.path.dirname(images[-1]), backing))

def snapshot_sources(dom):
    # Every image a snapshot names: its overlays, and the disks of its domain.
    sources = set()
    for snap in dom.listAllSnapshots():
        for part in snap.getXMLDesc(0).split("<source file='")[1:]:
            sources.add(part.split("'")[0])
    return sources

for dom in doms:
    name = dom.name()
    active = dom.isActive()
    report["domains"][name] = {"active": bool(active)}
    cps = {c.getName(): c for c in dom.listAllCheckpoints()}
    report["domains"][name]["checkpoints"] = sorted(cps)
    # tree
    for cp_name, cp in cps.items():
        try:
            parent = cp.getParent().getName()
            if parent not in cps:
                problem("tree", "%s: parent %s of %s is not a checkpoint" % (name, parent, cp_name))
        except libvirt.libvirtError as e:
            if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_CHECKPOINT:
                problem("tree", "%s: getParent(%s): %s" % (name, cp_name, e))
    files = {os.path.basename(p)[:-4] for p in glob.glob(os.path.join(root, "lib/qemu/checkpoint", name, "*.xml"))}
    if files != set(cps):
        problem("tree", "%s: metadata files %s, checkpoints %s" % (name, sorted(files), sorted(cps)))
    # bitmaps
    xml = dom.XMLDesc(0)
    disk = xml.split("<source file='")[1].split("'")[0]
    images = chain(disk)
    report["domains"][name]["images"] = images
    # The bitmaps of each image of the chain: a running domain's engine has them all (a
    # bitmap added there reaches the file when the engine stops).
    chain_bitmaps = {}
    if active:
        nodes = monitor(dom, "query-named-block-nodes")
        for image in images:
            node = next((n for n in nodes if n.get("file") == image and n.get("drv") != "file"), None)
            if node is None:
                problem("engine", "%s: no node for %s" % (name, image))
                node = {}
            chain_bitmaps[image] = {b["name"]: b for b in node.get("dirty-bitmaps", [])}
        bitmaps = chain_bitmaps[disk]
        temporary = [b for b in bitmaps if not bitmaps[b].get("persistent")]
        if temporary:
            problem("bitmaps", "%s: temporary bitmaps left: %s" % (name, temporary))
        names = {b for b in bitmaps if bitmaps[b].get("persistent")}
        extra_nodes = sorted(n["node-name"] for n in nodes if n.get("file") not in images)
        if extra_nodes:
            problem("engine", "%s: block nodes left: %s" % (name, extra_nodes))
        jobs = monitor(dom, "query-jobs")
        if jobs:
            problem("engine", "%s: jobs left: %s" % (name, [j.get("id") for j in jobs]))
        exports = monitor(dom, "query-block-exports")
        extra = [e["id"] for e in exports if not e["id"].startswith("export-")]
        if extra:
            problem("engine", "%s: exports left: %s" % (name, extra))
    else:
        chain_bitmaps = {image: image_bitmaps(image) for image in images}
        names = set(chain_bitmaps[disk])
    # snapshots: metadata, the internal snapshots of the chain's images, their bitmaps
    snaps = set()
    internal_snaps = set()
    for snap in dom.listAllSnapshots():
        snaps.add(snap.getName())
        if "snapshot='external'" not in snap.getXMLDesc(0):
            internal_snaps.add(snap.getName())
        try:
            parent = snap.getParent().getName()
        except libvirt.libvirtError as e:
            parent = None
            if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
                problem("tree", "%s: snapshot %s getParent: %s" % (name, snap.getName(), e))
        if parent is not None and parent not in [s.getName() for s in dom.listAllSnapshots()]:
            problem("tree", "%s: parent %s of snapshot %s is not a snapshot" % (name, parent, snap.getName()))
    report["domains"][name]["snapshots"] = sorted(snaps)
    files = {os.path.basename(p)[:-4] for p in glob.glob(os.path.join(root, "lib/qemu/snapshot", name, "*.xml"))}
    if files != snaps:
        problem("tree", "%s: snapshot metadata files %s, snapshots %s" % (name, sorted(files), sorted(snaps)))
    # Internal snapshots: those in the disk's chain all have metadata, and every one is
    # in an image the domain or a snapshot names (a revert to an external snapshot may
    # have moved the disk to another branch), with its bitmap.
    internal = {s["name"] for image in images for s in image_info(image).get("snapshots", [])}
    if internal - internal_snaps:
        problem("tree", "%s: internal snapshots without metadata: %s" % (name, sorted(internal - internal_snaps)))
    known_images = set(images)
    for source in snapshot_sources(dom):
        known_images.update(chain(source))
    found, found_bitmaps = set(), set()
    for image in known_images:
        found.update(s["name"] for s in image_info(image).get("snapshots", []))
        bitmaps_here = chain_bitmaps[image] if image in chain_bitmaps else image_bitmaps(image)
        found_bitmaps.update(b for b in bitmaps_here if b.startswith("virbackup-snapshot/"))
    if internal_snaps - found:
        problem("tree", "%s: snapshots in no image: %s" % (name, sorted(internal_snaps - found)))
    missing = {"virbackup-snapshot/" + s for s in internal_snaps} - found_bitmaps
    if missing:
        problem("bitmaps", "%s: snapshot bitmaps missing: %s" % (name, sorted(missing)))
    in_chain = {b for image in images for b in chain_bitmaps[image] if b.startswith("virbackup-snapshot/")}
    if in_chain - {"virbackup-snapshot/" + s for s in internal_snaps}:
        problem("bitmaps", "%s: snapshot bitmaps without a snapshot: %s"
                % (name, sorted(in_chain - {"virbackup-snapshot/" + s for s in internal_snaps})))
    names = {b for b in names if not b.startswith("virbackup-snapshot/")}
    # files: the domain's images are its chain and what its snapshots name; nothing else
    # made for it (an overlay of a snapshot cut short, a revert's new overlay) is left
    known = set(images) | snapshot_sources(dom)
    for path in glob.glob(os.path.join(os.path.dirname(images[-1]), name + ".*")):
        if path not in known:
            problem("files", "%s: left behind: %s" % (name, os.path.basename(path)))
    for path in glob.glob(os.path.join(os.path.dirname(images[-1]), "." + name + ".*")):
        problem("files", "%s: placeholder left behind: %s" % (name, os.path.basename(path)))
    if names - set(cps):
        problem("bitmaps", "%s: bitmaps without a checkpoint: %s" % (name, sorted(names - set(cps))))
    for cp_name, cp in cps.items():
        try:
            dom.checkpointCreateXML(cp.getXMLDesc(0), libvirt.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE
                                    | libvirt.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE)
            if cp_name not in names:
                problem("bitmaps", "%s: %s validates without a bitmap" % (name, cp_name))
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_CHECKPOINT_INCONSISTENT:
                report["inconsistent"].append("%s/%s" % (name, cp_name))
            else:
                problem("bitmaps", "%s: validating %s: %s" % (name, cp_name, e))

# engine: daemons under the root
daemons = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        cmd = open("/proc/%s/cmdline" % pid, "rb").read().decode(errors="replace")
    except OSError:
        continue
    if "storage-daemon" in cmd and root + "/" in cmd:
        daemons += 1
running = sum(1 for d in report["domains"].values() if d["active"])
if daemons != running:
    problem("engine", "%d daemons for %d running domains" % (daemons, running))
# engine: FUSE mounts under the root are the running domains' disks, and live
mounts = [line.split(" ")[4].replace("\\040", " ") for line in open("/proc/self/mountinfo")]
mounts = sorted(m for m in mounts if m.startswith(root + "/"))
expected = sorted(os.path.join(root, "run/qemu", n, "disks/vda") for n, d in report["domains"].items() if d["active"])
if mounts != expected:
    problem("engine", "mounts under the root: %s, running disks: %s" % (mounts, expected))
for mount in mounts:
    try:
        os.stat(mount)
    except OSError as e:
        problem("engine", "%s: %s" % (mount, e))

# files
for path in glob.glob(os.path.join(root, "**", ".*"), recursive=True):
    base = os.path.basename(path)
    if ".tmp-" in base or base == ".intent":
        problem("files", "left behind: %s" % os.path.relpath(path, root))
for path in glob.glob(os.path.join(root, "run/qemu/*/bitmaps-*")):
    problem("files", "left behind: %s" % os.path.relpath(path, root))
# A push target stays only when its backup completed (and is then a sound image).
for path in glob.glob(os.path.join(targets_dir, "*")):
    if path == target:
        dom = conn.lookupByName(target_dom)
        stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED | libvirt.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED)
        if stats.get("type") != libvirt.VIR_DOMAIN_JOB_COMPLETED:
            problem("files", "target %s of a backup that did not complete" % os.path.basename(path))
        elif subprocess.run(["qemu-img", "check", "-U", "-q", path], capture_output=True).returncode != 0:
            problem("files", "target %s of a completed backup is not a sound image" % os.path.basename(path))
    else:
        problem("files", "left behind: %s" % os.path.basename(path))

# usable: a new checkpoint and a full push backup of each domain
for dom in doms:
    name = dom.name()
    probe = os.path.join(probe_dir, "probe-%s-%s.qcow2" % (trial, name))
    try:
        dom.checkpointCreateXML("<domaincheckpoint><name>probe-%s</name></domaincheckpoint>" % trial)
        dom.backupBegin("<domainbackup><disks><disk name='vda' type='file'><target file='%s'/>"
                        "<driver type='qcow2'/></disk></disks></domainbackup>" % probe, None)
        while dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
            time.sleep(0.02)
        stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        if stats.get("type") != libvirt.VIR_DOMAIN_JOB_COMPLETED:
            problem("usable", "%s: the probe backup ended %s" % (name, stats))
        dom.checkpointLookupByName("probe-%s" % trial).delete(0)
    except libvirt.libvirtError as e:
        problem("usable", "%s: %s" % (name, e))
    if os.path.exists(probe):
        os.remove(probe)
print(json.dumps(report))
"""


class World:
    """The root, its two domains and where backups go."""

    def __init__(self, build, base):
        self.build = build
        self.base = base
        self.root = os.path.join(base, "root")
        self.uri = "qemu:///embed?root=" + self.root
        self.targets = os.path.join(base, "t")
        self.probes = os.path.join(base, "p")
        os.makedirs(self.targets)
        os.makedirs(self.probes)
        self.counter = 0
        self.env = dict(os.environ, LD_LIBRARY_PATH=build, PYTHONDONTWRITEBYTECODE="1")
        for name in ("d1", "d2"):
            image = os.path.join(base, name + ".qcow2")
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", image, str(DISK)], check=True)
            subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 8M", image], check=True,
                           capture_output=True)
        script = textwrap.dedent(f"""
            import libvirt
            conn = libvirt.open({self.uri!r})
            for name in ("d1", "d2"):
                xml = ("<domain type='kvm'><name>%s</name><memory unit='MiB'>256</memory><os><type>hvm</type></os>"
                       "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                       "<source file='{base}/%s.qcow2'/><target dev='vda' bus='virtio'/></disk></devices></domain>"
                       % (name, name))
                conn.defineXML(xml)
            conn.lookupByName("d2").create()
        """)
        self.python(script, check=True)

    def python(self, script, check=False, timeout=180):
        out = subprocess.run([PY, "-c", script], capture_output=True, text=True, env=self.env, cwd="/",
                             timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"setup failed:\n{out.stdout}{out.stderr}")
        return out

    def name(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"


def run_victim(world, op, dom, args, delay_ms):
    """Starts the victim, kills it `delay_ms` after it printed "go". Returns whether it
    was killed (False: it finished first), how long the operation took when it
    finished (ms, else None), and its stderr."""
    code = VICTIM_HEAD.format(uri=world.uri, dom=dom) + textwrap.dedent(VICTIMS[op]).format(**args)
    proc = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=world.env, cwd="/")
    line = proc.stdout.readline()
    if line.strip() != "go":
        proc.wait()
        return False, None, "victim did not start: " + line + proc.stderr.read()
    went = time.monotonic()
    deadline = time.monotonic() + delay_ms / 1000.0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.001)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    took = None if killed else (time.monotonic() - went) * 1000
    return killed, took, proc.stderr.read()


def pick(world, state, rng, ops):
    """An operation that fits the domains' states, with its arguments."""
    choices = []
    for dom, info in state["domains"].items():
        cps = info.get("checkpoints", [])
        for op in ops:
            if op == "start" and info["active"]:
                continue
            if op == "destroy" and not info["active"]:
                continue
            if op in ("checkpoint-delete", "push-incremental") and not cps:
                continue
            if op in ("snapshot-revert", "snapshot-delete") and not info.get("snapshots"):
                continue
            choices.append((op, dom))
    op, dom = rng.choice(choices)
    cps = state["domains"][dom].get("checkpoints", [])
    args = {"arg": "", "arg2": "", "arg3": ""}
    if op == "checkpoint-create":
        args["arg"] = world.name("c")
    elif op == "checkpoint-delete":
        args["arg"] = rng.choice(cps)
    elif op in ("push-full", "push-incremental"):
        args["arg"] = os.path.join(world.targets, world.name("t") + ".qcow2")
        args["arg2"] = world.name("c")
        args["arg3"] = cps[-1] if cps else ""
    elif op == "pull-begin":
        args["arg"] = os.path.join(world.targets, world.name("s") + ".qcow2")
    elif op in ("snapshot-create", "snapshot-external"):
        args["arg"] = world.name("snap")
    elif op in ("snapshot-revert", "snapshot-delete"):
        args["arg"] = rng.choice(state["domains"][dom]["snapshots"])
    return op, dom, args


def check(world, trial, target="", dom=""):
    """Runs the checker in a fresh process; returns its report. `target` is the push
    target of the trial's backup (on domain `dom`), which may stay if the backup
    completed."""
    out = subprocess.run([PY, "-c", CHECKER, world.root, world.targets, world.probes, str(trial), target, dom],
                         capture_output=True, text=True, env=world.env, cwd="/", timeout=300)
    try:
        report = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"problems": [["load", "the checker failed: " + out.stdout + out.stderr]], "inconsistent": [],
                "domains": {}}, out.stderr
    for line in out.stderr.splitlines():
        if "warning" in line:
            report["problems"].append(["load", line.strip()])
    return report


def state_of(world):
    """Which domains run, their checkpoints (oldest first) and their snapshots."""
    script = textwrap.dedent(f"""
        import json, libvirt
        conn = libvirt.open({world.uri!r})
        print(json.dumps({{"domains": {{d.name(): {{"active": bool(d.isActive()), "checkpoints": [
            c.getName() for c in d.listAllCheckpoints(libvirt.VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL)],
            "snapshots": sorted(s.getName() for s in d.listAllSnapshots())}}
            for d in conn.listAllDomains(0)}}}}))
    """)
    return json.loads(world.python(script, check=True).stdout)


def keep_small(world, state, rng):
    """Trims long checkpoint chains so that trials stay quick (plain deletes), removes
    the targets of completed backups (they were checked), and starts or stops each
    domain at random, so that operations on running and shut-off domains come about
    as often (a start is mostly killed before it is done)."""
    for dom, info in state["domains"].items():
        want_active = rng.random() < 0.5
        if want_active != info["active"]:
            world.python(textwrap.dedent(f"""
                import libvirt
                dom = libvirt.open({world.uri!r}).lookupByName({dom!r})
                dom.{"create" if want_active else "destroy"}()
            """), check=True)
        snaps = info.get("snapshots", [])
        if len(snaps) > 3:
            world.python(textwrap.dedent(f"""
                import libvirt
                dom = libvirt.open({world.uri!r}).lookupByName({dom!r})
                for name in {snaps[:-2]!r}:
                    try:
                        dom.snapshotLookupByName(name).delete(0)
                    except libvirt.libvirtError:
                        pass
            """))
        cps = info.get("checkpoints", [])
        if len(cps) > 6:
            script = textwrap.dedent(f"""
                import libvirt
                conn = libvirt.open({world.uri!r})
                dom = conn.lookupByName({dom!r})
                for name in {cps[:-3]!r}:
                    try:
                        dom.checkpointLookupByName(name).delete(0)
                    except libvirt.libvirtError:
                        pass
            """)
            world.python(script)
    # Push targets of completed backups are the user's: they go once checked.
    for path in os.listdir(world.targets):
        os.remove(os.path.join(world.targets, path))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None,
                        help="the random seed (default: $VIRBACKUP_CRASH_SEED, or a new one, printed)")
    parser.add_argument("--ops", default=",".join(VICTIMS))
    parser.add_argument("--max-delay", type=int, default=300,
                        help="kill at most this many ms after the start (until the operation's length is known: "
                             "then within the longest run seen of that operation, so that kills land inside it)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    seed = args.seed
    if seed is None:
        seed = int(os.environ.get("VIRBACKUP_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    ops = args.ops.split(",")
    base = tempfile.mkdtemp(prefix="vbc", dir="/tmp")
    print(f"# seed {seed}, work folder {base}")
    world = World(build, base)
    state = state_of(world)
    failed_trials = 0
    counts = {"killed": 0, "finished": 0, "inconsistent": 0}
    per_check = {}
    longest = {}
    start = time.monotonic()
    try:
        for trial in range(1, args.trials + 1):
            op, dom, op_args = pick(world, state, rng, ops)
            kind = (op, state["domains"][dom]["active"])
            delay = rng.uniform(0, min(args.max_delay, longest.get(kind, args.max_delay)))
            killed, took, stderr = run_victim(world, op, dom, op_args, delay)
            if took is not None:
                longest[kind] = max(longest.get(kind, 0), took * 1.1)
            counts["killed" if killed else "finished"] += 1
            target = op_args["arg"] if op.startswith("push") else ""
            report = check(world, trial, target, dom)
            counts["inconsistent"] += len(report["inconsistent"])
            what = f"{op} on {dom} ({'running' if state['domains'][dom]['active'] else 'shut off'}), " \
                   f"{'killed' if killed else 'finished'} after {delay:.0f} ms"
            if report["problems"]:
                failed_trials += 1
                checks = sorted({c for c, _ in report["problems"]})
                for c in checks:
                    per_check[c] = per_check.get(c, 0) + 1
                print(f"not ok {trial} - {what}: {', '.join(checks)}")
                for c, text in report["problems"]:
                    print(f"#   {c}: {text}")
                if stderr.strip() and (args.verbose or "Traceback" in stderr):
                    print("#   victim: " + stderr.strip().replace("\n", "\n#   "))
            else:
                note = f" (reported inconsistent: {', '.join(report['inconsistent'])})" if report["inconsistent"] else ""
                print(f"ok {trial} - {what}{note}")
            sys.stdout.flush()
            try:
                keep_small(world, state_of(world), rng)
                state = state_of(world)
            except RuntimeError as e:
                # The world cannot be set up for the next trial: that is a failure too.
                print("Bail out! after trial %d: %s" % (trial, str(e).replace("\n", " | ")))
                return 1
    finally:
        if not args.keep:
            script = textwrap.dedent(f"""
                import libvirt
                conn = libvirt.open({world.uri!r})
                for dom in conn.listAllDomains(0):
                    if dom.isActive():
                        dom.destroy()
            """)
            world.python(script)
            # Whatever a failed trial left running goes too.
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
                except OSError:
                    continue
                if "storage-daemon" in cmd and base + "/" in cmd:
                    os.kill(int(pid), signal.SIGKILL)
            shutil.rmtree(base, ignore_errors=True)
    elapsed = time.monotonic() - start
    print(f"1..{args.trials}")
    print(f"# {args.trials} trials in {elapsed:.0f} s: {counts['killed']} killed mid-operation, "
          f"{counts['finished']} finished first; {failed_trials} failed"
          + (" (" + ", ".join(f"{c} {n}" for c, n in sorted(per_check.items())) + ")" if per_check else "")
          + f"; {counts['inconsistent']} checkpoints reported inconsistent")
    return 1 if failed_trials else 0


if __name__ == "__main__":
    sys.exit(main())
