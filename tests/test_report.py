"""Conformance reports across runs: ``compatheap report merge`` and ``diff``, and the HTML page in a real browser."""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import compatheap
from compatheap import _cli, _report
from compatheap.conformance import _runner

#: The backend whose runs are compared (kernel32 on Windows, else the emulation).
BACKEND = compatheap.backend.name

#: The failure planted in the second run, as a regression in an upgrade would show.
REGRESSION = "E   assert 24 == 16\nE    +  where 24 = HeapSize(heap, 0, block)"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Path, Path]]:
    """Two real runs; the second selects more tests and has one test failing."""
    where = tmp_path_factory.mktemp("reports")
    before, after = where / "before.json", where / "after.json"
    for path, keyword in ((before, "smoke or size"), (after, "smoke or size or compact")):
        status = _runner.run(extra_args=["-k", keyword], report=path, out=io.StringIO(), progress=None)
        assert status == 0
    data = json.loads(after.read_text())
    victim = next(t for t in data["tests"] if t["family"] == "HeapSize" and t["backend"] == BACKEND)
    victim.update(outcome="failed", message=REGRESSION)
    after.write_text(json.dumps(data))
    yield before, after


def _main(argv: List[str]) -> Tuple[int, str]:
    args = _cli.build_parser().parse_args(argv)
    out = io.StringIO()
    return _report.main(args, out=out), out.getvalue()


def _regressed_case(after: Path) -> str:
    data = json.loads(after.read_text())
    case: str = next(t["case"] for t in data["tests"] if t["outcome"] == "failed")
    return case


def test_report_schema_carries_what_a_comparison_needs(reports: Tuple[Path, Path]) -> None:
    data = json.loads(reports[0].read_text())
    assert data["schema"] == _report.SCHEMA and data["schema_version"] == _report.SCHEMA_VERSION
    env = data["environment"]
    assert {"name", "release", "machine", "wine"} <= set(env["os"])
    assert env["pointer_bits"] in (32, 64) and env["c_library"] and env["allocator"]
    assert {"implementation", "version", "free_threaded"} <= set(env["python"])
    assert data["compatheap"] and data["created"] and data["pytest_args"] == ["-k", "smoke or size"]
    assert {b["name"] for b in data["backends"]} >= {BACKEND}
    test = data["tests"][0]
    assert {"test", "case", "family", "backend", "outcome", "duration", "message", "skip_reason"} <= set(test)


def test_each_backend_and_variant_names_how_it_ran() -> None:
    """The report's variant tells runs of one backend apart (emulated vs its fallback, say)."""
    from compatheap.conformance import _support

    variants = {name: _report.backend_variant(_support.make_backend(name)) for name in _support.backend_params(False)}
    assert all(variants.values()), variants
    assert len(set(variants.values())) == len(variants), variants


def test_merge_text_shows_the_matrix_and_the_differing_test(reports: Tuple[Path, Path]) -> None:
    status, text = _main(["report", "merge", *map(str, reports)])
    assert status == 0
    heapsize = next(line for line in text.splitlines() if line.startswith("HeapSize"))
    assert "1 FAIL" in heapsize
    assert "tests that differ between runs: 1" in text
    assert _regressed_case(reports[1]) in text and "where 24 = HeapSize" in text
    assert "HeapCompact" in text and "lacks" in text  # selected in one run only: noted, not a difference


def test_merge_markdown_for_ci_summaries(reports: Tuple[Path, Path], tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    status, _ = _main(["report", "merge", *map(str, reports), "--markdown", str(target)])
    assert status == 0
    text = target.read_text()
    assert text.splitlines()[2].startswith("| function family |")
    assert "1 FAIL" in text and "<details>" in text and "where 24 = HeapSize" in text
    assert _report.LEGEND in text


def test_diff_lists_what_changed(reports: Tuple[Path, Path]) -> None:
    status, text = _main(["report", "diff", *map(str, reports), "--backend", BACKEND])
    assert status == 1
    assert "tests whose outcome changed: 1" in text
    assert "before: passed\n    after:  failed: E    +  where 24 = HeapSize(heap, 0, block)" in text
    assert "pytest_args" in text  # the runs were asked for different tests
    same, text = _main(["report", "diff", str(reports[0]), str(reports[0]), "--backend", BACKEND])
    assert same == 0 and "tests whose outcome changed: 0" in text


def test_diff_asks_which_backend(reports: Tuple[Path, Path]) -> None:
    with pytest.raises(_cli.UsageError, match="choose one with --backend"):
        _main(["report", "diff", *map(str, reports)])


@pytest.mark.parametrize("content", ["not json", '{"schema": "other"}', '{"schema": "compatheap-conformance-report"}'])
def test_foreign_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(_cli.UsageError, match=re.escape(str(path))):
        _main(["report", "merge", str(path)])


def test_pruning_keeps_the_newest(tmp_path: Path) -> None:
    for n in range(5):
        path = tmp_path / f"conformance-{n}.json"
        path.write_text("{}")
        os.utime(path, (1000 + n, 1000 + n))
    (tmp_path / "unrelated.json").write_text("{}")
    deleted = _report.prune(tmp_path, 2)
    assert sorted(p.name for p in deleted) == [f"conformance-{n}.json" for n in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conformance-3.json", "conformance-4.json", "unrelated.json"]
    assert _report.keep_count(None, {"COMPATHEAP_REPORTS_KEEP": "7"}) == 7
    with pytest.raises(ValueError):
        _report.keep_count(None, {"COMPATHEAP_REPORTS_KEEP": "many"})


# --- the HTML page in a real browser -------------------------------------------------

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: td.fail's background in the page's CSS: the browser must paint it.
FAIL_RGB = (0xF7, 0xC6, 0xC6)

#: Appended to a copy of the page: measures what the browser laid out.
PROBE = """
<script>
const cells = [...document.querySelectorAll('#matrix td')];
const failing = cells.filter(td => td.textContent.includes('FAIL'));
const message = document.querySelector('details.test td.outcome-failed + td pre');
document.body.insertAdjacentHTML('beforeend', '<pre id="probe">' + JSON.stringify({
  tableWidth: document.getElementById('matrix').getBoundingClientRect().width,
  columns: document.querySelectorAll('#matrix thead th').length,
  failBackground: failing.length ? getComputedStyle(failing[0]).backgroundColor : null,
  failLink: failing.length && failing[0].querySelector('a') ? failing[0].querySelector('a').hash : null,
  messageShown: message !== null && message.offsetHeight > 0,
  message: message ? message.innerText : null,
}) + '</pre>');
</script>
"""


def _browser() -> str:
    override = os.environ.get("COMPATHEAP_TEST_BROWSER")
    found = override or next((path for path in map(shutil.which, BROWSER_NAMES) if path), None)
    if not found:
        pytest.skip("no headless Chromium here (apt-get install chromium; .ci/run installs it)")
    return found


def _artifacts(tmp_path: Path) -> Path:
    """Where the screenshot is kept: $COMPATHEAP_TEST_ARTIFACTS, else this test's temporary directory."""
    where = Path(os.environ.get("COMPATHEAP_TEST_ARTIFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


def _chromium(browser: str, profile: Path, *args: str) -> "subprocess.CompletedProcess[str]":
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def _png_pixels(path: Path) -> Tuple[int, int, List[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        header = chunk if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: List[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


def test_html_is_one_offline_file(reports: Tuple[Path, Path], tmp_path: Path) -> None:
    page = tmp_path / "matrix.html"
    status, _ = _main(["report", "merge", *map(str, reports), "--html", str(page)])
    assert status == 0
    text = page.read_text()
    for outside in ("http://", "https://", "<script", "<link", "src=", "@import", "url("):
        assert outside not in text, outside


def test_html_renders_in_chromium(reports: Tuple[Path, Path], tmp_path: Path) -> None:
    browser = _browser()
    artifacts = _artifacts(tmp_path)
    page = artifacts / "conformance-matrix.html"
    status, _ = _main(["report", "merge", *map(str, reports), "--html", str(page)])
    assert status == 0

    # The layout, as the browser computed it.
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(browser, tmp_path / "profile-dom", "--dump-dom", probed.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    probe: Dict[str, Any] = json.loads(html.unescape(dom.stdout.rsplit('<pre id="probe">', 1)[1].split("</pre>", 1)[0]))
    runs = len(_report.runs_of(list(reports)))
    assert probe["columns"] == runs + 1
    assert 0 < probe["tableWidth"] <= 1280
    assert probe["failBackground"] == "rgb({}, {}, {})".format(*FAIL_RGB)
    assert probe["failLink"] == "#family-heapsize"
    assert probe["messageShown"] and "where 24 = HeapSize" in probe["message"]

    # The picture: the failing cell is painted in the failure colour.
    shot = artifacts / "conformance-matrix.png"
    taken = _chromium(
        browser, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,1000", page.as_uri()
    )
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    width, height, rows = _png_pixels(shot)
    assert (width, height) == (1280, 1000)
    red = bytes(FAIL_RGB)
    painted = sum(row.count(red) for row in rows[:400])
    assert painted > 500, f"only {painted} pixels of the failure colour in {shot}"
    colours = {row[i : i + 3] for row in rows[:400:7] for i in range(0, len(row), 3 * 11)}
    assert len(colours) > 5, f"{shot} looks blank"
