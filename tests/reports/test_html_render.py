"""report.html opened in headless Chromium renders every figure.

Two Chromium runs on the built report: ``--dump-dom`` on a copy with a probe script appended
(an invisible element at the end of the body, so the layout above is unchanged) gives the page
position of each figure and whether its embedded image decoded; ``--screenshot`` of the report
itself at the same window size gives the pixels. Each figure area must be non-blank and must
look like the figure's PNG (mean absolute difference after resizing).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
)

WIDTH = 1200
MAX_HEIGHT = 16000
COARSE = 4
#: Mean absolute grey-level difference (0-255) between a rendered figure and its PNG, both
#: reduced COARSE times; about 1 for the same figure, above 10 for another figure.
MAX_DIFFERENCE = 5
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)

PROBE = """<pre id="layout-probe" style="display:none"></pre><script>
window.addEventListener("load", function () {
  var out = [];
  document.querySelectorAll("img").forEach(function (img) {
    var r = img.getBoundingClientRect();
    out.push({id: img.parentElement.id, x: r.left + window.scrollX, y: r.top + window.scrollY,
              w: r.width, h: r.height, decoded: img.complete && img.naturalWidth > 0});
  });
  document.getElementById("layout-probe").textContent = JSON.stringify(
    {figures: out, height: document.documentElement.scrollHeight});
});
</script></body>"""


def chromium(profile: Path, height: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def layout(report: Path, tmp_path: Path, height: int) -> dict:
    probe = tmp_path / "probe.html"
    html = (report / "report.html").read_text(encoding="utf-8")
    probe.write_text(html.replace("</body>", PROBE, 1), encoding="utf-8")
    proc = chromium(
        tmp_path / "profile-dom",
        height,
        "--virtual-time-budget=10000",
        "--dump-dom",
        probe.as_uri(),
    )
    match = re.search(r'<pre id="layout-probe"[^>]*>([^<]*)</pre>', proc.stdout)
    assert match and match.group(1), f"no layout from Chromium: {proc.stderr[-2000:]}"
    return json.loads(match.group(1))


def test_every_figure_renders(report, tmp_path):
    pngs = sorted((report / "figures").glob("*.png"))
    first = layout(report, tmp_path, 2000)
    height = min(int(first["height"]) + 50, MAX_HEIGHT)
    info = layout(report, tmp_path, height)
    figures = {f["id"].removeprefix("figure-"): f for f in info["figures"]}
    assert sorted(figures) == sorted(p.stem for p in pngs)
    assert all(f["decoded"] for f in figures.values()), figures

    shot = tmp_path / "shot.png"
    proc = chromium(
        tmp_path / "profile-shot",
        height,
        f"--screenshot={shot}",
        report.joinpath("report.html").as_uri(),
    )
    assert shot.exists(), proc.stderr[-2000:]
    page = Image.open(shot).convert("RGB")
    assert page.size == (WIDTH, height)
    for name, f in figures.items():
        assert f["y"] + f["h"] <= height, f"{name} lies below the screenshot"
        # inside the 1 px border of the <img>
        box = (
            round(f["x"]) + 1,
            round(f["y"]) + 1,
            round(f["x"] + f["w"]) - 1,
            round(f["y"] + f["h"]) - 1,
        )
        shown = page.crop(box).convert("L")
        area = np.asarray(shown, dtype=float)
        assert area.std() > 15, f"{name}: figure area is blank"
        assert np.mean(area < 200) > 0.01, f"{name}: figure area has almost no ink"
        # compare with the figure's PNG at a coarse scale (insensitive to resampling details)
        small = (shown.width // COARSE, shown.height // COARSE)
        seen = np.asarray(shown.resize(small, Image.BOX), dtype=float)
        source = Image.open(report / "figures" / f"{name}.png").convert("L")
        expected = np.asarray(source.resize(small, Image.BOX), dtype=float)
        difference = np.mean(np.abs(seen - expected))
        assert difference < MAX_DIFFERENCE, f"{name}: rendered area differs from the PNG"
