"""report.html in a real browser (headless Chromium, skipped where none is installed): every figure loads and
no table pushes the page wider than the window; wide tables scroll inside their own box.

The page is measured by a script added to a copy of it (the report itself carries none), read back with
Chromium's --dump-dom."""
from __future__ import annotations

import html
import json
import shutil
import subprocess

import pytest

from test_shift_report import make_shift_run

from robustbench_lite.analysis.tables import analyse, load_runs
from robustbench_lite.report.document import render_report

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome", "chrome")
                 if shutil.which(name)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")

MEASURE = """<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const width = document.documentElement.clientWidth;
  const images = Array.from(document.images).map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0,
                                                   right: i.getBoundingClientRect().right}));
  const tables = Array.from(document.querySelectorAll('table')).map(t => {
    const box = t.closest('.scroll') || t;
    return {right: box.getBoundingClientRect().right, width: t.getBoundingClientRect().width,
            scrolls: box.scrollWidth > box.clientWidth};
  });
  const measured = {width: width, page: document.documentElement.scrollWidth, images: images, tables: tables};
  const pre = document.createElement('pre');
  pre.id = 'measured';
  pre.textContent = JSON.stringify(measured);
  document.body.appendChild(pre);
});
</script>"""


def measure(page, tmp_path, width: int) -> dict:
    """Open a copy of `page` with the measuring script in a `width`-pixel window; returns what it measured."""
    probe = tmp_path / f"probe-{width}.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},900",
                             "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                            capture_output=True, text=True, timeout=120)
    found = result.stdout.split('<pre id="measured">', 1)
    assert len(found) == 2, result.stderr[-2000:]
    return json.loads(html.unescape(found[1].split("</pre>", 1)[0]))


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    """A report with every kind of section: published lines, natural shifts, own lines, wide tables."""
    run = make_shift_run(tmp_path_factory.mktemp("browser") / "run")
    written = render_report(analyse(load_runs([run]), n_boot=100), run)
    return written["html"]


@pytest.mark.parametrize("width", [1400, 800])
def test_every_figure_loads_and_no_table_overflows_the_page(report_page, tmp_path, width):
    measured = measure(report_page, tmp_path, width)
    names = [image["alt"] for image in measured["images"]]
    assert {"published", "natural_shifts", "reproducibility", "drop_heatmap", "confidence"} <= set(names)
    assert all(image["loaded"] for image in measured["images"]), measured["images"]
    assert all(image["right"] <= measured["width"] + 0.5 for image in measured["images"])
    assert measured["tables"] and all(t["right"] <= measured["width"] + 0.5 for t in measured["tables"])
    assert measured["page"] <= measured["width"]  # nothing wider than the window: no sideways page scroll
    if width == 800:  # the widest tables are wider than a narrow window: they scroll inside their box
        assert any(t["scrolls"] for t in measured["tables"])
