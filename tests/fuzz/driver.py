"""Crash-isolating fuzz driver: each seed runs in a child process.

A segfault (or any death) of a child is a finding, not a dead run: the driver
reports the seed, the signal, and a minimal reproducer, cut down from the
child's log of operations by delta debugging (each candidate replayed in a
child of its own), then confirmed in a fresh interpreter.

    python -m tests.fuzz.driver run --seeds 0:100 --steps 500 [--variant debug] [--out DIR]
    python -m tests.fuzz.driver replay --variant plain repro.json

Operations are the symbolic tuples of :mod:`tests.fuzz.world`. Two extra ops
exist to prove the driver itself (``--plant``): ``("crash-if-blocks",)``
dereferences a bad address when some block is live, and ``("diverge",)``
fails a check.
"""

from __future__ import annotations

import argparse
import ctypes
import faulthandler
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

from tests.fuzz.world import Divergence, Op, World, new_backend, random_op, release_backend

ROOT = Path(__file__).resolve().parent.parent.parent
#: Exit codes of a child.
OK, DIVERGED = 0, 3


def _execute(world: World, op: Op) -> None:
    if op[0] == "crash-if-blocks":
        if world.blocks:
            ctypes.string_at(8, 8)  # a planted segfault: address 8 is never mapped
        return
    if op[0] == "diverge":
        raise Divergence("planted divergence")
    if world.applicable(op):
        world.run(op)


def _as_op(item: Any) -> Op:
    return tuple(item)


# -- inside a child -------------------------------------------------------------------
def _child_body(run: Callable[[World], None], variant: str) -> int:
    faulthandler.enable()
    world = World(new_backend(variant))
    try:
        run(world)
        world.teardown()
    except Divergence:
        traceback.print_exc()
        return DIVERGED
    finally:
        release_backend(world.k32)
    return OK


def _in_child(body: Callable[[], int], stderr_path: str) -> int:
    """Run ``body`` in a forked child; its exit code, or minus the signal that killed it."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 2)
            sys.stderr = open(2, "w", closefd=False)  # not a test runner's capture
            code = body()
        except BaseException:  # noqa: BLE001 - any escape is a finding
            traceback.print_exc()
            code = 70
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def describe(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return {DIVERGED: "divergence from the model", 70: "uncaught exception"}.get(code, f"exit {code}")


# -- the driver ------------------------------------------------------------------------
@dataclass
class Finding:
    seed: int
    variant: str
    outcome: str
    steps: int
    reproducer: List[Op]
    confirmed: bool
    stderr: str
    path: Optional[Path] = None

    def report(self) -> str:
        lines = [
            f"FINDING seed {self.seed} ({self.variant}): {self.outcome} after {self.steps} steps",
            f"  minimal reproducer ({len(self.reproducer)} ops, "
            f"{'confirmed' if self.confirmed else 'NOT confirmed'} in a fresh interpreter):",
        ]
        lines += [f"    {op!r}" for op in self.reproducer]
        if self.path is not None:
            lines.append(f"  replay: python -m tests.fuzz.driver replay --variant {self.variant} {self.path}")
        tail = [line for line in self.stderr.splitlines() if line.strip()][:8]
        lines += [f"  | {line}" for line in tail]
        return "\n".join(lines)


@dataclass
class Campaign:
    seeds: int = 0
    steps: int = 0
    bad_inputs: int = 0
    children: int = 0
    findings: List[Finding] = field(default_factory=list)


def run_seed(seed: int, steps: int, variant: str, plant: Optional[str], workdir: str) -> Tuple[int, List[Op], str, int]:
    """One seed in a child: (exit code, ops it ran, its stderr, bad inputs)."""
    log_path = os.path.join(workdir, f"ops-{seed}.jsonl")
    err_path = os.path.join(workdir, f"err-{seed}.txt")
    stats_path = os.path.join(workdir, f"stats-{seed}.json")

    def run(world: World) -> None:
        rng = random.Random(seed)
        with open(log_path, "w") as log:

            def write(op: Op) -> None:
                log.write(json.dumps(op) + "\n")
                log.flush()

            world.log = write
            for step in range(steps):
                if plant is not None and step == steps // 2:
                    op: Optional[Op] = (plant,)
                    log.write(json.dumps(op) + "\n")
                    log.flush()
                else:
                    op = random_op(world, rng)
                if op is not None:
                    _execute(world, op)
            world.log = None
        with open(stats_path, "w") as stats:
            json.dump({"bad_inputs": world.bad_inputs}, stats)

    code = _in_child(lambda: _child_body(run, variant), err_path)
    ops = [_as_op(json.loads(line)) for line in Path(log_path).read_text().splitlines() if line.strip()]
    bad = json.loads(Path(stats_path).read_text())["bad_inputs"] if code == OK else 0
    return code, ops, Path(err_path).read_text(errors="replace"), bad


def replay_in_child(ops: Sequence[Op], variant: str, workdir: str) -> int:
    def run(world: World) -> None:
        for op in ops:
            _execute(world, op)

    return _in_child(lambda: _child_body(run, variant), os.path.join(workdir, "replay-err.txt"))


def minimise(ops: List[Op], still_fails: Callable[[List[Op]], bool]) -> List[Op]:
    """Delta debugging: drop chunks of ops while the failure stays the same."""
    chunks = 2
    while len(ops) >= 2:
        size = -(-len(ops) // chunks)
        for start in range(0, len(ops), size):
            candidate = ops[:start] + ops[start + size :]
            if candidate and still_fails(candidate):
                ops = candidate
                chunks = max(chunks - 1, 2)
                break
        else:
            if chunks >= len(ops):
                break
            chunks = min(len(ops), chunks * 2)
    return ops


def confirm_fresh(ops: Sequence[Op], variant: str, workdir: str) -> Tuple[Path, int]:
    """Write the reproducer and replay it in a fresh interpreter."""
    path = Path(workdir) / "reproducer.json"
    path.write_text(json.dumps(list(ops), indent=1))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.driver", "replay", "--variant", variant, str(path)],
        capture_output=True,
        env=env,
        timeout=120,
    )
    return path, proc.returncode


def campaign(
    seeds: Sequence[int], steps: int, variant: str, plant: Optional[str] = None, out: Optional[Path] = None
) -> Campaign:
    result = Campaign()
    with tempfile.TemporaryDirectory(prefix="compatheap-fuzz-") as workdir:
        for seed in seeds:
            code, ops, stderr, bad = run_seed(seed, steps, variant, plant, workdir)
            result.seeds += 1
            result.children += 1
            result.steps += len(ops)
            result.bad_inputs += bad
            if code == OK:
                continue

            def still_fails(candidate: List[Op], code: int = code) -> bool:
                result.children += 1
                return replay_in_child(candidate, variant, workdir) == code

            reproducer = minimise(ops, still_fails)
            path, fresh = confirm_fresh(reproducer, variant, workdir)
            finding = Finding(seed, variant, describe(code), len(ops), reproducer, fresh == code, stderr)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                finding.path = out / f"repro-{variant}-seed{seed}.json"
                finding.path.write_text(path.read_text())
            result.findings.append(finding)
    return result


def _seed_range(text: str) -> range:
    start, _, stop = text.partition(":")
    return range(int(start), int(stop)) if stop else range(int(start), int(start) + 1)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.driver")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run seeds, each in a child process")
    run_p.add_argument("--seeds", type=_seed_range, default=range(0, 100))
    run_p.add_argument("--steps", type=int, default=500)
    run_p.add_argument("--variant", choices=["plain", "debug", "fallback"], default="plain")
    run_p.add_argument("--out", type=Path, default=None, help="where reproducers go")
    run_p.add_argument("--plant", choices=["crash-if-blocks", "diverge"], default=None, help=argparse.SUPPRESS)
    replay_p = sub.add_parser("replay", help="replay a reproducer in this process")
    replay_p.add_argument("--variant", choices=["plain", "debug", "fallback"], default="plain")
    replay_p.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if args.command == "replay":
        ops = [_as_op(item) for item in json.loads(args.file.read_text())]

        def run(world: World) -> None:
            for op in ops:
                _execute(world, op)

        return _child_body(run, args.variant)
    result = campaign(args.seeds, args.steps, args.variant, args.plant, args.out)
    for finding in result.findings:
        print(finding.report())
    print(
        f"isolation: seeds {result.seeds}, steps {result.steps}, bad inputs {result.bad_inputs}, "
        f"children {result.children}, findings {len(result.findings)}"
    )
    return 1 if result.findings else 0


if __name__ == "__main__":
    sys.exit(main())
