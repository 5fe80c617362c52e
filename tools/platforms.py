#!/usr/bin/env python3
"""Run this checkout on other platform shapes: 32-bit Linux, musl, other C allocators.

    python tools/platforms.py setup {i386,musl} [--force]  # build or refresh the cache
    python tools/platforms.py run {i386,musl} [--] ARGS... # that platform's python3 ARGS
    python tools/platforms.py preload ALLOCATOR [--] CMD... # CMD with the allocator preloaded
    python tools/platforms.py check                        # what is cached, what is missing
    python tools/platforms.py install                      # every apt package the above need

i386: a Debian bookworm i386 chroot (debootstrap, minbase + python3), entered
with chroot and a 32-bit personality (setarch i686) in a private mount
namespace; /proc, /dev and the checkout are bind-mounted in, the checkout at
its own path, so paths given on the command line stay valid inside.
musl: CPython built from Debian's python3.11 sources with musl-gcc (libffi and
zlib from Debian's sources too, linked statically), run on the host.
Both find pytest, Hypothesis and platformdirs on PYTHONPATH, unpacked from
wheels for their platform, and the checkout first on it.
Allocators (jemalloc, tcmalloc, mimalloc): Debian's libraries, in LD_PRELOAD;
the tool checks that a child really maps the library before running CMD.

Apt packages the tool needs are installed when missing (root only).  The
Debian mirror is the one this machine's apt configuration names; source
packages are fetched through a private apt state under the cache, so the
system's apt configuration is left as it is.  The cache lives in
$COMPATHEAP_PLATFORMS_CACHE, default ~/.cache/compatheap-platforms.  Each
setup and run prints how long it took.  The exit code is the child's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SUITE = "bookworm"
PYTHON_VERSION = "3.11"
# Exact pins: a cache is rebuilt when they change.
WHEELS = ("pytest==9.2.0", "hypothesis==6.170.15", "platformdirs==4.14.7")
# Variables a run hands on to the platform's Python (the rest is not its business).
PASSED_PREFIXES = ("COMPATHEAP_", "PYTEST_", "HYPOTHESIS_")
PASSED_NAMES = ("CI", "TERM", "COLUMNS", "NO_COLOR", "FORCE_COLOR", "PY_COLORS")

I386_PACKAGES = ("debootstrap", "util-linux")
MUSL_PACKAGES = ("musl", "musl-dev", "musl-tools", "dpkg-dev", "gcc", "make", "linux-libc-dev", "pkg-config")
MUSL_SOURCES = ("zlib", "libffi", "python3.11")
BUILD_VARIABLES = ("CC", "CXX", "CPP", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LIBS", "CCSHARED", "PKG_CONFIG")


@dataclass(frozen=True)
class Allocator:
    package: str
    #: The shared object to preload, as Debian's package lists it.
    library: str


ALLOCATORS = {
    "jemalloc": Allocator("libjemalloc2", "libjemalloc.so.2"),
    "tcmalloc": Allocator("libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
    "mimalloc": Allocator("libmimalloc2.0", "libmimalloc.so.2"),
}
# The allocators' own chatter about huge requests (the suite makes them on
# purpose) would bury pytest's output; their behaviour is unchanged.
ALLOCATOR_QUIET = {
    "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 62),
    "MIMALLOC_SHOW_ERRORS": "0",
    "MIMALLOC_VERBOSE": "0",
}


def log(message: str) -> None:
    print(f"platforms: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    env = os.environ.get("COMPATHEAP_PLATFORMS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "compatheap-platforms"


@contextmanager
def timed(what: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        log(f"{what} took {time.monotonic() - start:.0f} s")


@contextmanager
def locked(cache: Path) -> Iterator[None]:
    # Parallel tox envs must not build one cache at the same time.
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as handle:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def run(cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, quiet: bool = False) -> None:
    """Run cmd; its output goes to a log line on failure only when quiet."""
    if not quiet:
        subprocess.run(cmd, cwd=cwd, env=env, check=True)
        return
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:])
        raise subprocess.CalledProcessError(proc.returncode, cmd)


# -- apt ------------------------------------------------------------------------------------------


def is_root() -> bool:
    return os.geteuid() == 0


def missing_packages(names: Sequence[str]) -> list[str]:
    missing = []
    for name in names:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        if proc.returncode != 0 or not proc.stdout.endswith(" installed"):
            missing.append(name)
    return missing


def ensure_packages(names: Sequence[str]) -> None:
    missing = missing_packages(names)
    if not missing:
        return
    if not is_root():
        raise SystemExit(f"platforms: missing apt packages: {' '.join(missing)} (as root: apt-get install them)")
    with timed(f"installing {' '.join(missing)}"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], env=env, quiet=True)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env, quiet=True)


@dataclass(frozen=True)
class AptSource:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None


def codename() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return SUITE
    found = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.MULTILINE)
    return found.group(1) if found else SUITE


def _deb822_sources(text: str) -> Iterator[AptSource]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        yield AptSource(
            tuple(fields.get("uris", "").split()),
            tuple(fields.get("suites", "").split()),
            tuple(fields.get("components", "").split()),
            fields.get("signed-by"),
        )


def _one_line_sources(text: str) -> Iterator[AptSource]:
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        signed_by = None
        if words and words[0].startswith("["):
            options = []
            while words:
                word = words.pop(0)
                options.append(word.strip("[]"))
                if word.endswith("]"):
                    break
            for option in options:
                if option.startswith("signed-by="):
                    signed_by = option.partition("=")[2]
        if len(words) >= 2:
            yield AptSource((words[0],), (words[1],), tuple(words[2:]), signed_by)


def debian_sources() -> list[AptSource]:
    """The host's apt sources that serve this Debian release (its suite and -updates, -security)."""
    found: list[AptSource] = []
    etc = Path("/etc/apt")
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]
    release = codename()
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            entries = list(_deb822_sources(text))
        elif path.suffix == ".list":
            entries = list(_one_line_sources(text))
        else:
            continue
        found.extend(e for e in entries if any(s == release or s.startswith(release + "-") for s in e.suites))
    if not found:
        raise SystemExit(f"platforms: no apt source for Debian {release} in /etc/apt: cannot find a Debian mirror")
    return found


def debian_mirror() -> str:
    """The URI of the host's main Debian archive (the one serving the release's own suite)."""
    release = codename()
    for entry in debian_sources():
        if release in entry.suites and entry.uris:
            return entry.uris[0]
    raise SystemExit(f"platforms: no apt source serves suite {release!r}")


def private_apt(cache: Path) -> list[str]:
    """apt-get with deb-src entries for the host's Debian sources, in state of its own under cache."""
    root = cache / "apt"
    parts = root / "sources.list.d"
    for sub in (parts, root / "lists" / "partial", root / "archives" / "partial"):
        sub.mkdir(parents=True, exist_ok=True)
    # The release's own suite only: point releases fold its updates in, and
    # mirrors of the security archive may not carry source packages.
    release = codename()
    entry = next(e for e in debian_sources() if release in e.suites and e.uris)
    lines = [
        "Types: deb-src",
        f"URIs: {entry.uris[0]}",
        f"Suites: {release}",
        f"Components: {' '.join(entry.components or ('main',))}",
    ]
    if entry.signed_by:
        lines.append(f"Signed-By: {entry.signed_by}")
    (parts / "source.sources").write_text("\n".join(lines) + "\n")
    (root / "empty.list").write_text("")
    return [
        "apt-get",
        "-o",
        f"Dir::Etc::SourceList={root / 'empty.list'}",
        "-o",
        f"Dir::Etc::SourceParts={parts}",
        "-o",
        f"Dir::State::Lists={root / 'lists'}",
        "-o",
        f"Dir::Cache={root}",
        "-o",
        f"Dir::Cache::Archives={root / 'archives'}",
        "-o",
        "APT::Sandbox::User=root",
    ]


# -- wheels ---------------------------------------------------------------------------------------


def unpack_wheels(platform_tag: str, site: Path, downloads: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "-qq",
        "--only-binary=:all:",
        "--platform",
        platform_tag,
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "-d",
        str(downloads),
        *WHEELS,
    ]
    run(cmd)
    site.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(downloads.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)


def passed_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(PASSED_PREFIXES) or k in PASSED_NAMES}


# -- the platforms --------------------------------------------------------------------------------


class Platform:
    name = ""
    packages: tuple[str, ...] = ()

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.home = cache / self.name

    def stamp(self) -> dict[str, object]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        try:
            stamp = json.loads((self.home / "stamp.json").read_text())
        except (OSError, ValueError):
            return False
        return bool(stamp == self.stamp())

    def setup(self, force: bool = False) -> None:
        if self.is_ready() and not force:
            return
        with locked(self.cache):
            if self.is_ready() and not force:  # another process built it meanwhile
                return
            ensure_packages(self.packages)
            with timed(f"{self.name} setup"):
                (self.home / "stamp.json").unlink(missing_ok=True)
                self.build()
                (self.home / "stamp.json").write_text(json.dumps(self.stamp(), indent=1) + "\n")

    def build(self) -> None:
        raise NotImplementedError

    def command(self, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def run_inside(self, args: Sequence[str]) -> int:
        """The platform's python3 with ``args``, in the checkout; its exit code."""
        cmd, env = self.command(args)
        return subprocess.run(cmd, env=env, cwd=REPO_ROOT).returncode

    def run(self, args: Sequence[str]) -> int:
        self.setup()
        start = time.monotonic()
        rc = self.run_inside(args)
        log(f"{self.name} run took {time.monotonic() - start:.0f} s (exit {rc})")
        return 128 - rc if rc < 0 else rc


class I386(Platform):
    """Debian i386 in a chroot, entered with a 32-bit personality."""

    name = "i386"
    packages = I386_PACKAGES
    site = "/opt/compatheap-site"

    @property
    def root(self) -> Path:
        return self.home / "root"

    def stamp(self) -> dict[str, object]:
        return {"suite": SUITE, "include": "python3", "wheels": list(WHEELS), "site": self.site}

    def build(self) -> None:
        if not is_root():
            raise SystemExit("platforms: the i386 chroot needs root (debootstrap, chroot, mount)")
        mirror = debian_mirror()
        self.home.mkdir(parents=True, exist_ok=True)
        if self.root.exists():
            shutil.rmtree(self.root)
        with timed("debootstrap i386"):
            cmd = ["debootstrap", "--arch=i386", "--variant=minbase", "--include=python3", SUITE, str(self.root)]
            run(["nice", "-n", "10", *cmd, mirror], quiet=True)
        with tempfile.TemporaryDirectory(dir=self.home) as tmp:
            unpack_wheels("manylinux2014_i686", self.root / self.site.lstrip("/"), Path(tmp))
        # The smoke test: a 32-bit interpreter that finds its test tools.
        rc = self.run_inside(["-c", "import ctypes, pytest, hypothesis; assert ctypes.sizeof(ctypes.c_void_p) == 4"])
        if rc != 0:
            raise SystemExit(f"platforms: the i386 chroot's python3 fails its smoke test (exit {rc})")

    def command(self, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        if not is_root():
            raise SystemExit("platforms: entering the i386 chroot needs root (chroot, mount)")
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{self.site}",
            "PYTHONDONTWRITEBYTECODE": "1",
            **passed_env(),
        }
        root = shlex.quote(str(self.root))
        repo = shlex.quote(str(REPO_ROOT))
        # Mounts made in a private namespace vanish with it: nothing to clean up, even after a kill.
        script = (
            f"mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev"
            f" && mkdir -p {root}{repo} && mount --bind {repo} {root}{repo}"
            f' && exec setarch i686 chroot {root} env -i "$@"'
        )
        env_words = [f"{k}={v}" for k, v in env.items()]
        inner = ["sh", "-c", f'cd {repo} && exec python3 "$@"', "python3", *args]
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "enter", *env_words, *inner]
        return cmd, dict(os.environ)


class Musl(Platform):
    """CPython built from Debian's python3.11 sources against musl."""

    name = "musl"
    packages = MUSL_PACKAGES

    @property
    def prefix(self) -> Path:
        return self.home / "prefix"

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / f"python{PYTHON_VERSION}"

    @property
    def site(self) -> Path:
        return self.home / "site"

    def stamp(self) -> dict[str, object]:
        return {"sources": list(MUSL_SOURCES), "wheels": list(WHEELS), "recipe": 1}

    def triplet(self) -> str:
        return f"{platform.machine()}-linux-musl"

    def compiler(self, build: Path) -> Path:
        """musl-gcc behind a wrapper: configure asks it for the multiarch triplet, and it sees kernel headers."""
        gnu = subprocess.run(["gcc", "-print-multiarch"], stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
        kernel = build / "kernel-headers"
        kernel.mkdir(parents=True, exist_ok=True)
        for name, target in (
            ("linux", "/usr/include/linux"),
            ("asm-generic", "/usr/include/asm-generic"),
            ("asm", f"/usr/include/{gnu}/asm"),
        ):
            link = kernel / name
            if not link.exists():
                link.symlink_to(target)
        wrapper = build / "musl-cc"
        wrapper.write_text(
            "#!/bin/sh\n"
            f'case "$*" in -print-multiarch|--print-multiarch) echo {self.triplet()}; exit 0;; esac\n'
            f'exec musl-gcc "$@" -isystem {shlex.quote(str(kernel))}\n'
        )
        wrapper.chmod(0o755)
        return wrapper

    def build(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        for old in (self.prefix, self.site):
            if old.exists():
                shutil.rmtree(old)
        with tempfile.TemporaryDirectory(dir=self.home, prefix="build-") as tmp:
            build = Path(tmp)
            self.fetch_sources(build)
            cc = self.compiler(build)
            deps = build / "deps"
            # The host's compiler settings (tox passes CFLAGS, LDFLAGS...) are for glibc builds.
            host = {k: v for k, v in os.environ.items() if k not in BUILD_VARIABLES}
            env = dict(host, CC=str(cc), CFLAGS="-O2 -fPIC")
            self.autotools(build, "zlib", [f"--prefix={deps}", "--static"], env)
            libffi = ["--disable-shared", "--enable-static", "--with-pic", "--disable-docs"]
            libffi += [f"--prefix={deps}", f"--libdir={deps / 'lib'}", "--disable-multi-os-directory"]
            self.autotools(build, "libffi", libffi, env)
            python = [f"--prefix={self.prefix}", "--without-ensurepip", "--disable-test-modules", "--with-system-ffi"]
            python_env = dict(
                env,
                CFLAGS="-O2",
                CPPFLAGS=f"-I{deps / 'include'}",
                LDFLAGS=f"-L{deps / 'lib'}",
                PKG_CONFIG_LIBDIR=str(deps / "lib" / "pkgconfig"),
                PKG_CONFIG_PATH="",
                LIBFFI_CFLAGS=f"-I{deps / 'include'}",
                LIBFFI_LIBS=f"-L{deps / 'lib'} -lffi",
            )
            self.autotools(build, "python3.11", python, python_env)
            unpack_wheels(f"musllinux_1_2_{platform.machine()}", self.site, build / "wheels")
        smoke = "import ctypes, zlib, pytest, hypothesis; ctypes.CDLL(None).malloc_usable_size"
        rc = self.run_inside(["-c", smoke])
        if rc != 0:
            raise SystemExit(f"platforms: the musl python fails its smoke test (exit {rc})")

    def autotools(self, build: Path, package: str, configure: list[str], env: dict[str, str]) -> None:
        """configure, make (niced, one job per core) and make install one unpacked source package."""
        src = self.source_dir(build, package)
        with timed(f"musl build of {package}"):
            run(["./configure", *configure], cwd=src, env=env, quiet=True)
            run(["nice", "-n", "10", "make", f"-j{os.cpu_count() or 1}"], cwd=src, env=env, quiet=True)
            run(["make", "install"], cwd=src, env=env, quiet=True)

    def fetch_sources(self, build: Path) -> None:
        apt = private_apt(self.cache)
        with timed("fetching Debian sources"):
            run([*apt, "update", "-qq"], quiet=True)
            run([*apt, "source", "-qq", *MUSL_SOURCES], cwd=build, quiet=True)

    def source_dir(self, build: Path, package: str) -> Path:
        # apt-get source unpacks PACKAGE-VERSION/ beside the .dsc.
        (dsc,) = build.glob(f"{package}_*.dsc")
        version = dsc.stem.split("_", 1)[1].split("-")[0]
        (tree,) = [p for p in build.glob(f"{package}-{version}*") if p.is_dir()]
        return tree

    def command(self, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        env = {
            "PATH": f"{self.prefix / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{self.site}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            **passed_env(),
        }
        return [str(self.python), *args], env


PLATFORMS: dict[str, type[Platform]] = {"i386": I386, "musl": Musl}


# -- allocators -----------------------------------------------------------------------------------


def allocator_library(name: str) -> str:
    allocator = ALLOCATORS[name]
    ensure_packages([allocator.package])
    listing = subprocess.run(["dpkg", "-L", allocator.package], stdout=subprocess.PIPE, text=True, check=True).stdout
    for line in listing.splitlines():
        if line.endswith("/" + allocator.library):
            return line
    raise SystemExit(f"platforms: {allocator.package} has no {allocator.library}")


# Run in the preloaded environment: the library must be mapped, and be the malloc the process calls.
PRELOAD_PROBE = """\
import ctypes, sys
maps = open("/proc/self/maps").read()
assert sys.argv[1] in maps, "not mapped"
libc, lib = ctypes.CDLL(None), ctypes.CDLL(sys.argv[1])
libc_malloc = ctypes.cast(libc.malloc, ctypes.c_void_p).value
assert libc_malloc == ctypes.cast(lib.malloc, ctypes.c_void_p).value, "malloc is not the preloaded one"
"""


def preload(name: str, cmd: Sequence[str]) -> int:
    library = allocator_library(name)
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(filter(None, [library, env.get("LD_PRELOAD", "")]))
    for key, value in ALLOCATOR_QUIET.items():
        env.setdefault(key, value)
    probe = subprocess.run([sys.executable, "-c", PRELOAD_PROBE, library], env=env)
    if probe.returncode != 0:
        log(f"{name}: {library} is not in effect in a preloaded child")
        return 1
    log(f"{name}: LD_PRELOAD={library}")
    start = time.monotonic()
    rc = subprocess.run(list(cmd), env=env).returncode
    log(f"{name} run took {time.monotonic() - start:.0f} s (exit {rc})")
    return 128 - rc if rc < 0 else rc


def all_packages() -> list[str]:
    names = [name for cls in PLATFORMS.values() for name in cls.packages]
    names += [allocator.package for allocator in ALLOCATORS.values()]
    return list(dict.fromkeys(names))


# -- command line ---------------------------------------------------------------------------------


def check(cache: Path) -> int:
    print(f"cache: {cache}")
    for name, cls in PLATFORMS.items():
        state = "ready" if cls(cache).is_ready() else "not set up"
        print(f"{name}: {state} (apt packages missing: {' '.join(missing_packages(cls.packages)) or 'none'})")
    for name, allocator in ALLOCATORS.items():
        missing = missing_packages([allocator.package])
        print(f"{name}: {allocator.package} {'missing' if missing else 'installed'}")
    return 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="platforms.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="print what is cached and what is missing")
    sub.add_parser("install", help="install every apt package the platforms and allocators need")
    setup_parser = sub.add_parser("setup", help="build or refresh a platform's cache")
    setup_parser.add_argument("platform", choices=sorted(PLATFORMS))
    setup_parser.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    run_parser = sub.add_parser("run", help="run the platform's python3 with ARGS, in the checkout")
    run_parser.add_argument("platform", choices=sorted(PLATFORMS))
    run_parser.add_argument("args", nargs=argparse.REMAINDER)
    preload_parser = sub.add_parser("preload", help="run CMD with a C allocator in LD_PRELOAD")
    preload_parser.add_argument("allocator", choices=sorted(ALLOCATORS))
    preload_parser.add_argument("cmd", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)

    try:
        return dispatch(parser, ns)
    except subprocess.CalledProcessError as exc:
        log(f"failed (exit {exc.returncode}): {shlex.join(str(c) for c in exc.cmd)}")
        return 1


def dispatch(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> int:
    cache = cache_dir()
    if ns.command == "check":
        return check(cache)
    if ns.command == "install":
        ensure_packages(all_packages())
        return 0
    if ns.command == "setup":
        PLATFORMS[ns.platform](cache).setup(ns.force)
        return 0
    rest: list[str] = list(ns.args if ns.command == "run" else ns.cmd)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if ns.command == "run":
        return PLATFORMS[ns.platform](cache).run(rest)
    if not rest:
        parser.error("preload needs a command")
    return preload(ns.allocator, rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
