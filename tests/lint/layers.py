#!/usr/bin/env python3
"""Check that core/'s layers depend only downwards, by symbol.

Usage: layers.py LAYER=LIB.a ... (bottom layer first)

Each library may use the atrium symbols defined in itself and in the
layers listed before it; core/cli may not use core/server or core/api
even though they come before it. A symbol from a layer above is printed
with the object that uses it, and the check fails.

core/agent runs inside workspaces, shipped as a small bundle of its own
(docs/agent.md): it may use core/base and nothing else, wherever it sits
in the list, and its symbols (agent_*) are checked like atr_* ones.
"""
import subprocess
import sys

FORBIDDEN_FOR = {"cli": {"server", "api"}}
# Layers that may use only these (besides themselves).
ONLY_FROM = {"agent": {"base"}}
PREFIXES = ("atr_", "atr__", "agent_")


def symbols(lib, flag):
    out = subprocess.run(["nm", "-g", flag, lib], check=True,
                         capture_output=True, text=True).stdout
    syms, member = [], None
    for line in out.splitlines():
        if line.endswith(".o:"):
            member = line[:-1]
        elif line.strip():
            name = line.split()[-1]
            if name.startswith(PREFIXES):
                syms.append((member, name))
    return syms


def main(args):
    layers = [a.split("=", 1) for a in args]
    defined_by = {}
    for layer, lib in layers:
        for _, name in symbols(lib, "--defined-only"):
            defined_by.setdefault(name, layer)
    order = [layer for layer, _ in layers]
    bad = 0
    for i, (layer, lib) in enumerate(layers):
        allowed = set(order[: i + 1]) - FORBIDDEN_FOR.get(layer, set())
        if layer in ONLY_FROM:
            allowed = (ONLY_FROM[layer] | {layer}) & set(order)
        for member, name in symbols(lib, "--undefined-only"):
            owner = defined_by.get(name)
            if owner and owner not in allowed:
                print(f"core/{layer}: {member} uses {name} from core/{owner}")
                bad += 1
    if bad:
        print(f"{bad} upward dependencies (docs/architecture.md, Layers)")
        return 1
    print(f"{len(layers)} layers, dependencies point down")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
