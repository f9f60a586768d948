#!/usr/bin/env python3
"""Writes the C oracle program for the entry points virbackup does not implement.

Usage: gen-unsupported-oracle.py LIBVIRT_API_XML PUBLIC_CHECKS GENERATED_RS OUTPUT.c
       gen-unsupported-oracle.py --libvirt-src DIR PUBLIC_CHECKS GENERATED_RS
           (maintenance: re-derives TEST_DRIVER_LACKS from libvirt's sources and
            reports any difference from the list below)

The entry points of src/capi/generated.rs (api/generate.py writes them) make libvirt's
public checks and then fail with VIR_ERR_NO_SUPPORT. The program written here is built
against the system's libvirt headers and run by run-oracle.py with the real libvirt and
then with virbackup's library; the outputs must be identical. One line per call, in
three parts:

  a  every entry point with a NULL first argument (the handle libvirt checks first; the
     other pointers point at zeroed scratch buffers, numbers are 0): the handle error.
  b  every entry point public-checks.txt marks `ro` whose handles can be had on a
     read-only connection to test:///default (the connection, domain "test"), called
     with arguments that pass the checks made before the read-only one: the refusal.
  c  the entry points whose driver slot libvirt 9.0's test driver leaves empty
     (TEST_DRIVER_LACKS), on a read-write connection with valid handles and arguments
     that pass all of libvirt's checks: VIR_ERR_NO_SUPPORT in the file's error domain.

Calls with NULL or dummy arguments into the real library must not crash it: a function
is only called when its first argument is checked before anything reads it, and (b)/(c)
only pass values libvirt checks before use or never reads before failing. What could not
be ruled out is left out (EXCLUDED_*, each with its reason).
"""
import argparse
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

# ---------------------------------------------------------------------------------------
# Exclusions. Each names why the call is not made (or why it would differ). Read off
# libvirt 9.0.0's src/libvirt-*.c: for every generated entry point, what the function does
# before it checks its first argument (a), before its read-only check (b), and between its
# checks and the driver call (c). Numbers 0, NULL handles besides the first and scratch
# buffers pass everything not listed here.

# (a): libvirt reads the first argument before checking it, so a NULL crashes the real
# library; or the function's NULL-handle behaviour differs in virbackup (reported).
EXCLUDED_A = {
    "virConnectSetIdentity": "libvirt reads conn->driver without checking conn (a NULL crashes)",
    "virDomainFDAssociate": "libvirt reads domain->conn without checking domain (a NULL crashes)",
    "virDomainGetLaunchSecurityInfo": "libvirt reads domain->conn in a declaration before the check",
    "virDomainSetLaunchSecurityState": "libvirt reads domain->conn in a declaration before the check",
}

# (b): the call would not reach the read-only check the same way in both libraries.
EXCLUDED_B = {}

# (c): the call would not fail with VIR_ERR_NO_SUPPORT the same way in both libraries.
EXCLUDED_C = {}

# Handle kinds (b)/(c) can obtain on test:///default in both libraries.
OBTAINABLE = {"conn", "domain"}

# The public functions of libvirt 9.0 whose driver slot the test driver (test:///default)
# leaves empty: its hypervisor, network, interface, storage and node-device tables lack
# the slot, or the table itself is missing (the test driver has no secret and no nwfilter
# driver). Derived from src/test/test_driver.c's tables and the slot each public function
# of src/libvirt-*.c calls; `--libvirt-src DIR` re-derives it. Functions that only call a
# stream's driver are left out (no stream can be had).
TEST_DRIVER_LACKS = """
virConnectBaselineHypervisorCPU virConnectCompareCPU virConnectCompareHypervisorCPU
virConnectDomainXMLFromNative virConnectDomainXMLToNative virConnectGetDomainCapabilities
virConnectGetStoragePoolCapabilities virConnectListAllNWFilterBindings virConnectListAllNWFilters
virConnectListAllSecrets virConnectListNWFilters virConnectListSecrets virConnectNumOfNWFilters
virConnectNumOfSecrets virConnectRegisterCloseCallback virConnectSecretEventDeregisterAny
virConnectSecretEventRegisterAny virConnectSetIdentity virConnectSetKeepAlive
virConnectUnregisterCloseCallback virDomainAgentSetResponseTimeout virDomainAttachDevice
virDomainAttachDeviceFlags virDomainAuthorizedSSHKeysGet virDomainAuthorizedSSHKeysSet
virDomainBlockCommit virDomainBlockCopy virDomainBlockJobAbort virDomainBlockJobSetSpeed
virDomainBlockPeek virDomainBlockPull virDomainBlockRebase virDomainBlockResize
virDomainBlockStatsFlags virDomainDetachDevice virDomainDetachDeviceAlias virDomainDetachDeviceFlags
virDomainFDAssociate virDomainGetGuestInfo virDomainGetGuestVcpus virDomainGetSecurityLabelList
virDomainManagedSaveDefineXML virDomainManagedSaveGetXMLDesc virDomainMigrateGetCompressionCache
virDomainMigrateGetMaxDowntime virDomainMigrateGetMaxSpeed virDomainMigrateSetCompressionCache
virDomainMigrateSetMaxDowntime virDomainMigrateSetMaxSpeed virDomainMigrateStartPostCopy
virDomainOpenChannel virDomainOpenConsole virDomainOpenGraphics virDomainOpenGraphicsFD
virDomainPMSuspendForDuration virDomainPMWakeup virDomainRestoreParams virDomainSaveParams
virDomainSetBlockThreshold virDomainSetGuestVcpus virDomainSetLaunchSecurityState virDomainSetVcpu
virDomainStartDirtyRateCalc virDomainUpdateDeviceFlags virNWFilterBindingCreateXML
virNWFilterBindingDelete virNWFilterBindingGetXMLDesc virNWFilterBindingLookupByPortDev
virNWFilterDefineXML virNWFilterDefineXMLFlags virNWFilterGetXMLDesc virNWFilterLookupByName
virNWFilterLookupByUUID virNWFilterUndefine virNetworkGetDHCPLeases virNetworkListAllPorts
virNetworkPortCreateXML virNetworkPortDelete virNetworkPortGetParameters virNetworkPortGetXMLDesc
virNetworkPortLookupByUUID virNetworkPortSetParameters virNodeAllocPages virNodeDeviceCreate
virNodeDeviceDefineXML virNodeDeviceDetachFlags virNodeDeviceDettach virNodeDeviceGetAutostart
virNodeDeviceIsActive virNodeDeviceIsPersistent virNodeDeviceLookupSCSIHostByWWN
virNodeDeviceReAttach virNodeDeviceReset virNodeDeviceSetAutostart virNodeDeviceUndefine
virNodeGetMemoryParameters virNodeGetMemoryStats virNodeGetSEVInfo virNodeSetMemoryParameters
virNodeSuspendForDuration virSecretDefineXML virSecretGetValue virSecretGetXMLDesc
virSecretLookupByUUID virSecretLookupByUsage virSecretSetValue virSecretUndefine
virStoragePoolLookupByTargetPath virStorageVolDownload virStorageVolGetInfoFlags virStorageVolResize
virStorageVolUpload virStorageVolWipe virStorageVolWipePattern
""".split()

HANDLE_TYPES = {
    "virConnectPtr": "conn", "virDomainPtr": "domain", "virNetworkPtr": "network",
    "virNetworkPortPtr": "port", "virInterfacePtr": "interface", "virStoragePoolPtr": "pool",
    "virStorageVolPtr": "vol", "virNodeDevicePtr": "nodedev", "virSecretPtr": "secret",
    "virStreamPtr": "stream", "virNWFilterPtr": "nwfilter", "virNWFilterBindingPtr": "binding",
    "virDomainSnapshotPtr": "snapshot", "virDomainCheckpointPtr": "checkpoint",
}
NUMBERS = {"int", "unsigned int", "long", "unsigned long", "long long", "unsigned long long", "size_t"}
SCRATCH_SLOTS = 8


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_checks(path):
    checks, section = {}, None
    for line in read(path).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"\[(.+)\]$", line)
        if m:
            section = m.group(1)
            continue
        name, *words = line.split()
        checks[name] = (section, words)
    return checks


def generated_names(path):
    return re.findall(r'pub unsafe extern "C" fn (vir\w+)', read(path))


# ---------------------------------------------------------------------------------------
# The C program.

class Call:
    """One call: the argument expressions and the setup of the scratch buffers."""

    def __init__(self, func, functypes):
        self.name = func.get("name")
        self.ret = func.find("return").get("type")
        self.args = [(a.get("name"), a.get("type").strip()) for a in func.findall("arg")]
        self.functypes = functypes

    def render(self, part, first, words):
        """C statements making the call with `first` as first argument. For parts b and
        c, `words` are the checks the arguments must pass."""
        if len(self.args) > SCRATCH_SLOTS:
            raise SystemExit(f"{self.name}: more arguments than scratch buffers")
        setup, exprs = [], []
        want = {}
        for word in words if part != "a" else []:
            kind, _, rest = word.partition(":")
            if kind in ("nonnull", "null", "nonempty", "positive", "nonzero", "zero", "nonnegative"):
                want.setdefault(rest.lstrip("*") if kind != "null" else rest, []).append(
                    (kind, rest.startswith("*")))
        for i, (name, ctype) in enumerate(self.args):
            if i == 0:
                exprs.append(first)
                continue
            rules = want.get(name, [])
            kinds = {kind for kind, _ in rules}
            # A value (or, for *ARG, the value pointed to) that must be above 0.
            one = any(kind in ("positive", "nonzero") and not deref for kind, deref in rules)
            one_at = any(kind in ("positive", "nonzero") and deref for kind, deref in rules)
            if ctype in HANDLE_TYPES:
                exprs.append("NULL")
            elif ctype in self.functypes:
                exprs.append(f"({ctype})(void (*)(void))dummy_function" if "nonnull" in kinds else "NULL")
            elif ctype in NUMBERS:
                exprs.append("1" if one else "0")
            elif ctype.endswith(("*", "* const", "Ptr")):  # virTypedParameterPtr too
                if "null" in kinds:
                    exprs.append("NULL")
                    continue
                exprs.append(f"({ctype.replace('* const', '*')})(void *)scratch[{i}].bytes")
                if one_at:
                    pointee = ctype[:-1].strip()
                    setup.append(f"*({pointee} *)(void *)scratch[{i}].bytes = 1;")
                if "nonempty" in kinds:
                    setup.append(f"scratch[{i}].bytes[0] = 'x';")
                if part != "a" and ctype == "virTypedParameterPtr":
                    setup.append(f"typed_param(scratch[{i}].bytes);")
            else:
                raise SystemExit(f"{self.name}: no value for argument {name} of type {ctype}")
        call = f"{self.name}({', '.join(exprs)})"
        ret = self.ret
        if ret in NUMBERS:
            fmt = {"int": ("int", "%d"), "unsigned int": ("unsigned int", "%u"), "long": ("long", "%ld"),
                   "unsigned long": ("unsigned long", "%lu"), "long long": ("long long", "%lld"),
                   "unsigned long long": ("unsigned long long", "%llu"), "size_t": ("size_t", "%zu")}[ret]
            body = [f"{fmt[0]} r = {call};", f'snprintf(ret, sizeof(ret), "{fmt[1]}", r);']
        elif ret.endswith("*"):
            body = [f"{ret}r = {call};",
                    'snprintf(ret, sizeof(ret), "%s", r ? "non-NULL" : "NULL");']
            if ret in ("char *", "unsigned char *"):
                body.append("free(r);")
        elif ret in HANDLE_TYPES:
            body = [f"{ret} r = {call};", 'snprintf(ret, sizeof(ret), "%s", r ? "non-NULL" : "NULL");']
        else:
            raise SystemExit(f"{self.name}: unknown return type {ret}")
        lines = ["clear_scratch();"] + setup + body + [f'report("{part}", "{self.name}", ret);']
        return lines


def first_handle(words, args):
    """The kind of the handle libvirt checks first, when that is the first argument."""
    if not words or not args:
        return None
    kind, _, arg = words[0].partition(":")
    if arg == args[0][0] and (kind in HANDLE_TYPES.values() or kind == "nonnull"):
        return kind
    return None


def program(api_xml, checks_path, generated_rs):
    root = ET.parse(api_xml).getroot()
    functypes = {f.get("name") for f in root.iter("functype")}
    funcs = {f.get("name"): f for f in root.iter("function")}
    checks = load_checks(checks_path)
    names = sorted(generated_names(generated_rs))
    missing = [n for n in names if n not in funcs or n not in checks]
    if missing:
        raise SystemExit("unknown entry points: " + ", ".join(missing))
    lacks = set(TEST_DRIVER_LACKS)

    parts = {"a": [], "b": [], "c": []}
    for name in names:
        call = Call(funcs[name], functypes)
        words = checks[name][1]
        # The first argument's type says which handle it is; (a) needs libvirt to check it
        # first (or, for the functions that list no check, to call one that does).
        kind = HANDLE_TYPES.get(call.args[0][1]) if call.args else None
        checked_first = first_handle(words, call.args) or (kind if not words else None)
        if checked_first is not None and name not in EXCLUDED_A:
            parts["a"].append((name, call.render("a", "NULL", words)))
        if kind not in OBTAINABLE:
            continue
        handles = {w.partition(":")[0] for w in words if w.partition(":")[0] in HANDLE_TYPES.values()}
        if "snapshot" in handles or any(t == "virDomainSnapshotPtr" for _, t in call.args):
            continue
        before_ro = words[:words.index("ro")] if "ro" in words else words
        needed = {w.partition(":")[0] for w in before_ro[1:]} & set(HANDLE_TYPES.values())
        if "ro" in words and not needed - OBTAINABLE and name not in EXCLUDED_B:
            first = "ro_conn" if kind == "conn" else "ro_dom"
            parts["b"].append((name, call.render("b", first, words)))
        if name in lacks and name not in EXCLUDED_C and not (handles - {kind}):
            first = "rw_conn" if kind == "conn" else "rw_dom"
            parts["c"].append((name, call.render("c", first, words)))

    out = [
        "/* Generated by gen-unsupported-oracle.py: do not edit.",
        " *",
        " * The entry points virbackup does not implement (src/capi/generated.rs), called the",
        " * same way on libvirt and on virbackup: (a) with a NULL first handle, (b) on a",
        " * read-only connection, (c) where libvirt's test driver lacks the operation. */",
        "#define _POSIX_C_SOURCE 200809L",
        "#include <stdio.h>",
        "#include <stdlib.h>",
        "#include <string.h>",
        "#include <libvirt/libvirt.h>",
        "#include <libvirt/virterror.h>",
        "",
        f"static union {{ char bytes[4096]; long double align_ld; void *align_p; long long align_ll; }} scratch[{SCRATCH_SLOTS}];",
        "static virConnectPtr ro_conn, rw_conn;",
        "static virDomainPtr ro_dom, rw_dom;",
        "",
        "static void clear_scratch(void) { memset(scratch, 0, sizeof(scratch)); }",
        "",
        "static void dummy_function(void) {}",
        "",
        "static void quiet(void *opaque, virErrorPtr err) { (void)opaque; (void)err; }",
        "",
        "/* One valid parameter, so that libvirt's debug and validation of it pass. */",
        "static void typed_param(void *where)",
        "{",
        "    virTypedParameterPtr p = where;",
        "    p->field[0] = 'x';",
        "    p->type = VIR_TYPED_PARAM_INT;",
        "}",
        "",
        "static const char *s(const char *p) { return p ? p : \"(null)\"; }",
        "",
        "static void report(const char *part, const char *name, const char *ret)",
        "{",
        "    virErrorPtr e = virGetLastError();",
        "    if (!e) {",
        "        printf(\"%s %s = %s, no error\\n\", part, name, ret);",
        "        return;",
        "    }",
        "    printf(\"%s %s = %s, code=%d domain=%d level=%d message=[%s] str1=[%s] str2=[%s] str3=[%s] int1=%d int2=%d\\n\",",
        "           part, name, ret, e->code, e->domain, e->level, s(e->message), s(e->str1), s(e->str2),",
        "           s(e->str3), e->int1, e->int2);",
        "}",
        "",
    ]
    for part in "abc":
        for name, lines in parts[part]:
            out.append(f"static void {part}_{name}(void)\n{{\n    char ret[64];\n"
                       + "".join(f"    {line}\n" for line in lines) + "}\n")
    out += ["int main(void)", "{",
            "    virSetErrorFunc(NULL, quiet);",
            '    ro_conn = virConnectOpenReadOnly("test:///default");',
            '    rw_conn = virConnectOpen("test:///default");',
            '    ro_dom = ro_conn ? virDomainLookupByName(ro_conn, "test") : NULL;',
            '    rw_dom = rw_conn ? virDomainLookupByName(rw_conn, "test") : NULL;',
            "    if (!ro_conn || !rw_conn || !ro_dom || !rw_dom) {",
            '        printf("setup failed\\n");',
            "        return 1;",
            "    }",
            f'    printf("== a: NULL first handle ({len(parts["a"])} calls)\\n");']
    out += [f"    a_{name}();" for name, _ in parts["a"]]
    out.append(f'    printf("== b: read-only connection ({len(parts["b"])} calls)\\n");')
    out += [f"    b_{name}();" for name, _ in parts["b"]]
    out.append(f'    printf("== c: not in libvirt\'s test driver ({len(parts["c"])} calls)\\n");')
    out += [f"    c_{name}();" for name, _ in parts["c"]]
    out += ["    virDomainFree(ro_dom);", "    virDomainFree(rw_dom);", "    virConnectClose(ro_conn);",
            "    virConnectClose(rw_conn);", "    return 0;", "}", ""]
    return "\n".join(out), {k: len(v) for k, v in parts.items()}


# ---------------------------------------------------------------------------------------
# Maintenance: TEST_DRIVER_LACKS from libvirt's sources.

SLOT_FIELD = {
    "driver": "testHypervisorDriver", "networkDriver": "testNetworkDriver",
    "interfaceDriver": "testInterfaceDriver", "storageDriver": "testStorageDriver",
    "nodeDeviceDriver": "testNodeDeviceDriver", "secretDriver": None, "nwfilterDriver": None,
}


def derive_lacks(src, names):
    """The generated entry points whose test-driver slot is empty, from libvirt's sources."""
    test = read(os.path.join(src, "src/test/test_driver.c"))
    tables = {}
    for field, var in SLOT_FIELD.items():
        if var is None:
            tables[field] = set()
            continue
        m = re.search(r"static \w+ " + var + r" = \{(.*?)\n\};", test, flags=re.S)
        tables[field] = set(re.findall(r"^\s*\.(\w+)\s*=", m.group(1), flags=re.M))
    bodies = {}
    for path in glob.glob(os.path.join(src, "src/libvirt*.c")):
        text = read(path)
        for m in re.finditer(r"^(?:int |char \*)?(vir\w+)\([^)]*\)\n\{(.*?)\n\}", text, flags=re.M | re.S):
            bodies[m.group(1)] = m.group(2)
    lacks = []
    for name in names:
        m = re.search(r"(\w+)->(driver|networkDriver|interfaceDriver|storageDriver|nodeDeviceDriver|"
                      r"secretDriver|nwfilterDriver)->(\w+)", bodies.get(name, ""))
        if m and m.group(1) not in ("stream", "st") and m.group(3) not in tables[m.group(2)]:
            lacks.append(name)
    return lacks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libvirt-src")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    if args.libvirt_src:
        checks_path, generated_rs = args.paths
        names = sorted(generated_names(generated_rs))
        derived = derive_lacks(args.libvirt_src, names)
        stored = [n for n in TEST_DRIVER_LACKS if n in names]
        for n in sorted(set(derived) - set(stored)):
            print(f"missing from TEST_DRIVER_LACKS: {n}")
        for n in sorted(set(stored) - set(derived)):
            print(f"not lacking in the test driver: {n}")
        return 1 if set(derived) != set(stored) else 0
    api_xml, checks_path, generated_rs, output = args.paths
    text, counts = program(api_xml, checks_path, generated_rs)
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
