#!/usr/bin/env python3
"""Checks the built extension without a Godot engine (none can be installed here):
the .gdextension parses and its Linux library paths point at what the build produced
(copied into the addon), compatibility_minimum matches the api-4-x feature of
Cargo.toml, the entry symbol is exported, the library dlopens, and its entry called
with a NULL get_proc_address returns cleanly instead of crashing.

usage: check_artifact.py <path to libzen_crdt_godot.so>"""
import configparser, ctypes, os, re, shutil, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
built = sys.argv[1]
ext = os.path.join(here, "addons", "zen_crdt", "zen_crdt.gdextension")

cfg = configparser.ConfigParser()
with open(ext) as f:
    cfg.read_file(f)
entry = cfg["configuration"]["entry_symbol"].strip('"')
minimum = cfg["configuration"]["compatibility_minimum"].strip('"')
api = re.search(r'features\s*=\s*\["api-(\d+)-(\d+)"\]', open(os.path.join(here, "Cargo.toml")).read())
assert api, "Cargo.toml names no api-4-x feature"
assert minimum == f"{api.group(1)}.{api.group(2)}", f"compatibility_minimum {minimum} != api-{api.group(1)}-{api.group(2)}"

# The addon's bin/ gets the build; every Linux path in [libraries] must name it.
paths = {k: v.strip('"') for k, v in cfg["libraries"].items() if k.startswith("linux.")}
assert paths, "no linux libraries in the .gdextension"
for key, res in paths.items():
    assert res.startswith("res://addons/zen_crdt/"), f"{key}: {res} is not inside the addon"
    dest = os.path.join(here, res[len("res://"):])
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copyfile(built, dest)
    assert os.path.getsize(dest) == os.path.getsize(built)

syms = subprocess.run(["nm", "-D", "--defined-only", built], capture_output=True, text=True, check=True).stdout
assert re.search(rf"\bT {re.escape(entry)}$", syms, re.M), f"{entry} is not exported"

lib = ctypes.CDLL(os.path.abspath(built), mode=os.RTLD_NOW)
init = getattr(lib, entry)
init.restype = ctypes.c_uint8  # GDExtensionBool
init.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
# gdext reports the NULL pointer on stderr (a caught panic) and returns 0: capture that.
err_path = os.path.join(here, "target", "entry_null.stderr")
saved = os.dup(2)
with open(err_path, "w") as err:
    os.dup2(err.fileno(), 2)
    try:
        ok = init(None, None, None)
    finally:
        os.dup2(saved, 2)
said = open(err_path).read()
assert ok == 0, f"{entry}(NULL, ...) returned {ok}, expected a clean failure (0)"
assert "get_proc_address" in said, f"{entry}(NULL, ...) failed without saying why: {said[:200]!r}"
print(f"{os.path.basename(built)}: {entry} exported, dlopen ok, NULL get_proc_address refused cleanly; "
      f".gdextension parses, compatibility_minimum {minimum} = api feature, {len(paths)} linux paths filled")
