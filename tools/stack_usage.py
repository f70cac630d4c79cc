#!/usr/bin/env python3
"""Worst-case stack depth of the firmware, from the compiler's own numbers.

    .venv/bin/python tools/stack_usage.py                  # build netduinoplus2 into build/stack, report
    .venv/bin/python tools/stack_usage.py --board nucleo_f446re
    .venv/bin/python tools/stack_usage.py --no-build --json

How the bound is made:
  * each function's frame comes from GCC's -fstack-usage (.su files, already on
    in platformio.ini); the call graph from -fcallgraph-info=su (.ci files),
    added to a private build under build/stack/<board> (PLATFORMIO_BUILD_DIR and
    PLATFORMIO_BUILD_FLAGS, so .pio/build is not touched);
  * library code (newlib, libgcc) has no .su: its frame is read from the
    disassembly (push/stmdb/strd/sub sp/vpush) and its calls from bl/b.w;
  * an indirect call through a struct field (d->port->exec(...), s->io.tx(...))
    may reach every function the sources assign to a field of that name
    (`.exec = port_exec`, `c->port.exec = port_exec`); a field no source assigns
    has no target in this image (listed in the report); a call whose field the
    tool cannot name may reach every function stored in any field;
  * roots: Reset_Handler (the main thread) and every other handler of the
    vector table; the total is the main thread's worst path plus, for every
    distinct interrupt handler, its worst path and a full FPU exception frame
    (as if all of them nested at the deepest point: an upper bound);
  * recursion is an error (no bound).
The limit is the stack the linker script guarantees (_min_stack in
boards/<board>/board.ld); the room really left after .bss is shown as well.
Exit status 0 when the bound is below the limit, 1 otherwise."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXC_FRAME = 26 * 4 + 4    # Cortex-M4F with FPU context: 26 words, plus 4 for 8-byte alignment
INDIRECT = "__indirect_call"


@dataclass
class Func:
    name: str                 # graph title: "file.c:static_fn" or "global_fn"
    frame: int
    qualifier: str            # static / dynamic / dynamic,bounded / disasm
    where: str = ""
    calls: set[str] = field(default_factory=set)
    indirect_sites: list[str] = field(default_factory=list)   # "file:line:col"


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def build(board: str, out: Path) -> None:
    env = dict(os.environ, PLATFORMIO_SETTING_ENABLE_TELEMETRY="No", PLATFORMIO_BUILD_DIR=str(out),
               PLATFORMIO_BUILD_FLAGS="-fcallgraph-info=su")
    pio = ROOT / ".venv" / "bin" / "pio"
    r = subprocess.run([str(pio) if pio.exists() else "pio", "run", "-s", "-e", board], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        raise SystemExit(f"stack_usage: firmware build failed for {board}")


# ---- compiler output ------------------------------------------------------------------------------

SU_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+):(?P<name>\S+)\t(?P<n>\d+)\t(?P<q>\S+)$")
CI_NODE = re.compile(r'node: \{ title: "(?P<title>[^"]+)" label: "(?P<label>[^"]*)"')
CI_EDGE = re.compile(r'edge: \{ sourcename: "(?P<src>[^"]+)" targetname: "(?P<dst>[^"]+)"(?: label: "(?P<at>[^"]+)")?')
CI_SIZE = re.compile(r"\\n(?P<n>\d+) bytes \((?P<q>[^)]+)\)")


def read_su(build_dir: Path) -> dict[tuple[str, str], tuple[int, str]]:
    """(file:line, name) -> (bytes, qualifier) from every .su file."""
    out = {}
    for su in sorted(build_dir.rglob("*.su")):
        for line in su.read_text().splitlines():
            m = SU_LINE.match(line.strip())
            if m:
                out[(f"{m['file']}:{m['line']}", m["name"])] = (int(m["n"]), m["q"])
    return out


def read_ci(build_dir: Path) -> dict[str, Func]:
    funcs: dict[str, Func] = {}
    for ci in sorted(build_dir.rglob("*.ci")):
        for line in ci.read_text().splitlines():
            m = CI_NODE.match(line)
            if m:
                sz = CI_SIZE.search(m["label"])
                if sz:   # a function defined in this unit
                    parts = m["label"].split("\\n")
                    funcs[m["title"]] = Func(m["title"], int(sz["n"]), sz["q"], parts[1] if len(parts) > 1 else "")
                continue
            m = CI_EDGE.match(line)
            if m:
                f = funcs.setdefault(m["src"], Func(m["src"], 0, "?"))
                if m["dst"] == INDIRECT:
                    f.indirect_sites.append(m["at"] or "?")
                else:
                    f.calls.add(m["dst"])
    return funcs


def check_su(funcs: dict[str, Func], su: dict) -> list[str]:
    """Every frame of the call graph must be the one the .su file gives."""
    problems = []
    for f in funcs.values():
        if f.qualifier == "disasm":
            continue
        fl = ":".join(f.where.split(":")[:2])
        base = f.name.split(":")[-1].split(".")[0]
        hits = [v for (loc, name), v in su.items() if loc == fl and name.split(".")[0] == base]
        if not hits:
            problems.append(f"{f.name}: not in any .su file")
        elif f.frame not in [h[0] for h in hits]:
            problems.append(f"{f.name}: .ci says {f.frame} bytes, .su says {hits}")
    return problems


# ---- the linked image ------------------------------------------------------------------------------

def elf_symbols(elf: Path) -> tuple[dict[str, tuple[int, int]], dict[int, list[str]]]:
    by_name, by_addr = {}, {}
    for line in sh("arm-none-eabi-nm", "-S", "--defined-only", str(elf)).splitlines():
        p = line.split()
        if len(p) == 4:
            addr, size, _t, name = int(p[0], 16), int(p[1], 16), p[2], p[3]
        elif len(p) == 3:
            addr, size, _t, name = int(p[0], 16), 0, p[1], p[2]
        else:
            continue
        by_name[name] = (addr, size)
        if _t in "TtWw":
            by_addr.setdefault(addr & ~1, []).append(name)
    return by_name, by_addr


def vector_table(elf: Path, syms: dict[str, tuple[int, int]], by_addr: dict[int, list[str]]) -> list[list[str]]:
    """Names of the handlers in fw_vectors (each entry: every symbol at that address)."""
    start, size = syms["fw_vectors"]
    words: dict[int, int] = {}
    dump = sh("arm-none-eabi-objdump", "-s", "--start-address", hex(start), "--stop-address", hex(start + size),
              str(elf))
    for line in dump.splitlines():
        m = re.match(r"^\s*([0-9a-f]{4,8}) ((?:[0-9a-f]{1,8} ?){1,4})", line)
        if not m:
            continue
        addr = int(m[1], 16)
        for k, w in enumerate(m[2].split()):
            if len(w) == 8:
                words[addr + 4 * k] = int.from_bytes(bytes.fromhex(w), "little")
    out = []
    for a in range(start + 4, start + size, 4):   # entry 0 is the initial stack pointer
        w = words.get(a, 0)
        if w:
            out.append(by_addr.get(w & ~1, [f"0x{w:08x}"]))
    return out


PUSH = re.compile(r"\b(?:push|stmdb\s+sp!,)\s*\{([^}]*)\}")
VPUSH = re.compile(r"\bvpush\s*\{([^}]*)\}")
PRE_DEC = re.compile(r"\[sp, #-(\d+)\]!")
SUB_SP = re.compile(r"\bsub(?:\.w|w)?\s+sp,\s*(?:sp,\s*)?#(\d+)")
CALL = re.compile(r"\b(?:bl|blx|b\.w|b)\s+[0-9a-f]+ <([^>+]+)>")


def _reg_count(regs: str, width: int) -> int:
    n = 0
    for r in regs.split(","):
        r = r.strip()
        if "-" in r:
            a, b = (int(x[1:]) for x in r.split("-"))
            n += b - a + 1
        elif r:
            n += 1
    return n * width


def disasm_frames(elf: Path, names: set[str]) -> dict[str, Func]:
    """Frame and calls of library functions, read from their code."""
    text = sh("arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf))
    out: dict[str, Func] = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if m:
            cur = Func(m[1], 0, "disasm", "disassembly") if m[1] in names else None
            if cur:
                out[m[1]] = cur
            continue
        if cur is None:
            continue
        if (m := PUSH.search(line)):
            cur.frame += _reg_count(m[1], 4)
        elif (m := VPUSH.search(line)):
            cur.frame += _reg_count(m[1], 8 if "d" in m[1] else 4)
        elif (m := PRE_DEC.search(line)):
            cur.frame += int(m[1])
        elif (m := SUB_SP.search(line)):
            cur.frame += int(m[1])
        if "blx\tr" in line or re.search(r"\bblx\s+r\d", line):
            cur.indirect_sites.append("disassembly")
        if (m := CALL.search(line)) and m[1] != cur.name:
            cur.calls.add(m[1])
    return out


# ---- indirect calls -----------------------------------------------------------------------------------

ASSIGN = re.compile(r"(?:\.|->)\s*(\w+)\s*=\s*&?\s*(\w+)\s*[,;}]")
FIELD_CALL = re.compile(r"(?:\.|->)\s*(\w+)\s*\($")


def pointer_targets(sources: list[Path], known: set[str]) -> dict[str, set[str]]:
    """field name -> functions the sources store in a field of that name."""
    out: dict[str, set[str]] = {}
    for src in sources:
        for m in ASSIGN.finditer(src.read_text(errors="replace")):
            if m[2] in known:
                out.setdefault(m[1], set()).add(m[2])
    return out


def call_field(site: str) -> str | None:
    """The struct field called at file:line:col, read from the source line."""
    m = re.match(r"^(.+):(\d+):(\d+)$", site)
    if not m or not (ROOT / m[1]).exists():
        return None
    line = (ROOT / m[1]).read_text(errors="replace").splitlines()[int(m[2]) - 1]
    # the column points at the callee expression; take the first "field(" from there
    rest = line[int(m[3]) - 1:]
    for k in range(len(rest)):
        hit = FIELD_CALL.search(line[:int(m[3]) - 1 + k + 1])
        if hit and rest[k] == "(":
            return hit[1]
    return None


# ---- worst path -------------------------------------------------------------------------------------

class Graph:
    def __init__(self, funcs: dict[str, Func], by_short: dict[str, list[str]], fields: dict[str, set[str]]):
        self.funcs, self.by_short, self.fields = funcs, by_short, fields
        self.all_targets = set().union(*fields.values()) if fields else set()
        self.memo: dict[str, tuple[int, list[str]]] = {}
        self.unresolved: list[str] = []
        self.unassigned: list[str] = []

    def node(self, short: str) -> str | None:
        c = self.by_short.get(short, [])
        return c[0] if c else None

    def callees(self, f: Func) -> list[str]:
        out = list(f.calls)
        for site in f.indirect_sites:
            fld = call_field(site) if site != "disassembly" else None
            targets = self.fields.get(fld) if fld else None
            if fld and targets is None:
                # a field no source stores a function in (e.g. a hook only a real-silicon
                # port sets): nothing in this image can be called through it
                self.unassigned.append(f"{f.name} at {site} (.{fld})")
                targets = set()
            if targets is None:
                targets = self.all_targets
                self.unresolved.append(f"{f.name} at {site}")
            out += [n for t in sorted(targets) if (n := self.node(t))]
        return out

    def worst(self, name: str, stack: tuple[str, ...] = ()) -> tuple[int, list[str]]:
        if name in stack:
            raise SystemExit("stack_usage: recursion, no bound: " + " -> ".join(stack + (name,)))
        if name in self.memo:
            return self.memo[name]
        f = self.funcs.get(name)
        if f is None:
            raise SystemExit(f"stack_usage: no frame size for {name} (not compiled with -fstack-usage "
                             "and not found in the image)")
        best, path = 0, []
        for c in self.callees(f):
            d, p = self.worst(c, stack + (name,))
            if d > best:
                best, path = d, p
        self.memo[name] = (f.frame + best, [name] + path)
        return self.memo[name]


def stack_limits(board: str, syms: dict[str, tuple[int, int]]) -> dict:
    ld = (ROOT / "boards" / board / "board.ld").read_text()
    m = re.search(r"_min_stack\s*=\s*(0x[0-9a-fA-F]+|\d+)", ld)
    out = {"min_stack": int(m[1], 0) if m else None}
    if "_estack" in syms and "_ebss" in syms:
        out["room_after_bss"] = syms["_estack"][0] - syms["_ebss"][0]
    return out


def analyse(board: str, build_dir: Path) -> dict:
    elf = build_dir / "firmware.elf"
    if not elf.exists():
        raise SystemExit(f"stack_usage: {elf} missing (run without --no-build)")
    su = read_su(build_dir)
    funcs = read_ci(build_dir)
    if not funcs:
        raise SystemExit(f"stack_usage: no .ci files under {build_dir} (build with -fcallgraph-info=su)")
    problems = check_su(funcs, su)
    syms, by_addr = elf_symbols(elf)
    # library functions the graph calls but did not compile, and what they call in turn
    missing = {c for f in funcs.values() for c in f.calls if c not in funcs and ":" not in c}
    while missing:
        lib = disasm_frames(elf, missing)
        funcs.update(lib)
        missing = {c for f in lib.values() for c in f.calls if c not in funcs}
        missing -= {c for c in missing if c not in syms}   # never mind names the image does not have
    by_short: dict[str, list[str]] = {}
    for title in funcs:
        short = title.split(":")[-1]
        by_short.setdefault(short, []).append(title)
        base = short.split(".")[0]
        if base != short:
            by_short.setdefault(base, []).append(title)
    sources = sorted((ROOT / "hal" / "src").glob("*.c")) + sorted((ROOT / "firmware").rglob("*.c"))
    fields = pointer_targets(sources, set(by_short))
    g = Graph(funcs, by_short, fields)

    vectors = vector_table(elf, syms, by_addr)
    roots: list[str] = []
    for names in vectors:
        node = next((g.node(n) for n in names if g.node(n)), None)
        if node is None:
            raise SystemExit(f"stack_usage: vector {names} has no frame size")
        if node not in roots:
            roots.append(node)
    reset = g.node("Reset_Handler")
    main_depth, main_path = g.worst(reset)
    isrs = []
    for r in roots:
        if r == reset:
            continue
        d, p = g.worst(r)
        isrs.append({"handler": r, "depth": d, "path": p})
    total = main_depth + sum(i["depth"] + EXC_FRAME for i in isrs)
    limits = stack_limits(board, syms)
    reach = set()
    todo = [reset] + [i["handler"] for i in isrs]
    while todo:
        n = todo.pop()
        if n in reach:
            continue
        reach.add(n)
        todo += g.callees(funcs[n])
    return {
        "board": board,
        "functions": sorted(({"function": f.name, "frame": f.frame, "qualifier": f.qualifier,
                              "where": f.where, "reached": f.name in reach, "worst_below": g.memo.get(f.name, (None,))[0]}
                             for f in funcs.values()), key=lambda x: (-x["frame"], x["function"])),
        "main_path": [{"function": n, "frame": funcs[n].frame} for n in main_path],
        "main_depth": main_depth,
        "isrs": isrs,
        "exception_frame": EXC_FRAME,
        "total": total,
        "limits": limits,
        "pointer_fields": {k: sorted(v) for k, v in sorted(fields.items())},
        "unresolved_indirect": sorted(set(g.unresolved)),
        "unassigned_indirect": sorted(set(g.unassigned)),
        "problems": problems + [f"dynamic stack: {f.name} ({f.qualifier})" for f in funcs.values()
                                if f.qualifier.startswith("dynamic") and f.qualifier != "dynamic,bounded"
                                and f.name in reach],
    }


def report(r: dict) -> str:
    out = [f"stack usage, board {r['board']} (bytes; frames from -fstack-usage, library frames from the disassembly)",
           "", f"{'frame':>6} {'worst':>6}  function"]
    for f in r["functions"]:
        if f["reached"]:
            worst = "" if f["worst_below"] is None else f["worst_below"]
            out.append(f"{f['frame']:>6} {worst:>6}  {f['function']}  [{f['qualifier']}]")
    unused = [f["function"] for f in r["functions"] if not f["reached"]]
    if unused:
        out.append(f"  (not reachable from the vector table: {', '.join(unused)})")
    out += ["", "worst path of the main thread (Reset_Handler):"]
    acc = 0
    for step in r["main_path"]:
        acc += step["frame"]
        out.append(f"  {step['frame']:>6} {acc:>6}  {step['function']}")
    out.append("")
    out.append(f"interrupt handlers (each + {r['exception_frame']} bytes of exception frame, all nested):")
    for i in sorted(r["isrs"], key=lambda i: -i["depth"]):
        out.append(f"  {i['depth']:>6}  {' -> '.join(i['path'])}")
    out.append("")
    lim = r["limits"]
    out.append(f"main thread {r['main_depth']} + interrupts "
               f"{r['total'] - r['main_depth']} = worst case {r['total']} bytes")
    out.append(f"stack guaranteed by boards/{r['board']}/board.ld (_min_stack): {lim.get('min_stack')} bytes; "
               f"room left after .bss: {lim.get('room_after_bss')} bytes")
    if r["unresolved_indirect"]:
        out.append("indirect calls bounded by every function stored in any pointer field: "
                   + "; ".join(r["unresolved_indirect"]))
    if r["unassigned_indirect"]:
        out.append("indirect calls through fields no source of this image assigns (no target): "
                   + "; ".join(r["unassigned_indirect"]))
    for p in r["problems"]:
        out.append(f"PROBLEM: {p}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="netduinoplus2")
    ap.add_argument("--build-dir", type=Path, help="default build/stack (PlatformIO adds /<board>)")
    ap.add_argument("--no-build", action="store_true", help="analyse what is already in the build dir")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    for tool in ("arm-none-eabi-nm", "arm-none-eabi-objdump"):
        if not shutil.which(tool):
            raise SystemExit(f"stack_usage: {tool} missing (apt-get install gcc-arm-none-eabi)")
    base = a.build_dir or ROOT / "build" / "stack"
    if not a.no_build:
        build(a.board, base)
    r = analyse(a.board, base / a.board)
    print(json.dumps(r, indent=1) if a.json else report(r))
    limit = r["limits"].get("min_stack") or r["limits"].get("room_after_bss") or 0
    ok = not r["problems"] and r["total"] < limit
    if not a.json:
        print(f"{'OK' if ok else 'FAIL'}: worst case {r['total']} bytes "
              f"{'<' if r['total'] < limit else '>='} {limit} bytes of stack")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
