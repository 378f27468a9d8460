"""The report: an Analysis rendered as one self-contained HTML file and Markdown, beside its CSVs and plots.

`write_report([run_dir, ...], out_dir)` can be rerun at any time without running a model again;
several run folders on the same photos and conditions (models evaluated on different days) merge.
The sections are built by `sections.SECTION_BUILDERS` (a new section is one more builder) and rendered
by `pages`.
"""
from __future__ import annotations

import time
from concurrent.futures import Future
from pathlib import Path
from typing import Sequence

from ..analysis.fit import DEFAULT_BOOTSTRAP, fit_table
from ..analysis.tables import Analysis, analyse, load_runs, write_tables
from ..errors import UserError
from .figures import find_examples, make_plots
from .pages import render_html, render_markdown
from .section import Section
from .sections import build_sections

__all__ = ["Section", "check_report_out", "render_report", "report_sections", "write_report"]


def write_report(run_dirs: Sequence[Path | str], out_dir: Path | str, reference_csv: Path | str | None = None,
                 *, baseline: str | None = None, scale: str = "logit", n_boot: int = DEFAULT_BOOTSTRAP,
                 seed: int | None = None, reference_x: str = "clean_top1", reference_y: str = "shifted_top1",
                 reference_where: str | None = None, manifests: Sequence[dict] | None = None,
                 reference_condition: str | None = None, vector: str | None = None,
                 population: str | None = None) -> dict[str, Path]:
    """Recompute every table from the runs' records and write CSVs, plots (and their `vector` copies:
    pdf or svg), report.html and report.md. `population` (testbed, timm, timm-in1k) overrides the run's.
    Returns {name: path} of everything written.
    """
    check_report_out(run_dirs, out_dir)
    reference = None
    if reference_csv is not None:
        reference = fit_table(reference_csv, reference_x, reference_y, scale, reference_where)
    result = analyse(load_runs(run_dirs, manifests), baseline, scale, n_boot, seed, reference,
                     reference_condition=reference_condition, population=population)
    return render_report(result, out_dir, vector=vector)


def check_report_out(run_dirs: Sequence[Path | str], out_dir: Path | str) -> None:
    """`--out` must be a folder that is one of the runs reported, or holds no run's records; else nothing is written."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: is a file; name a folder for the report")
    ours = {Path(d).resolve() for d in run_dirs}
    if out_dir.resolve() not in ours and any((out_dir / name).exists() for name in ("manifest.json", "records.parquet")):
        raise UserError(f"--out {out_dir}: holds another run's records; name one of the runs reported or a new folder")


def render_report(result: Analysis, out_dir: Path | str, vector: str | None = None,
                  examples: Future | None = None) -> dict[str, Path]:
    """Write an analysis' CSVs, figures (PNG; `vector`: a PDF or SVG copy beside each), report.html and
    report.md to `out_dir`; returns {name: path}. `examples`: the example grid being drawn meanwhile
    (`preview.start_run_examples`), waited for before the pages embed it."""
    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    written = write_tables(result, out_dir)
    clock = time.perf_counter()
    plots = make_plots(result, out_dir / "plots", vector)
    result.seconds["plots"] = time.perf_counter() - clock
    if examples is not None:
        examples.result()  # its error, if any, is the report's
    grid = find_examples(result.data.run_dirs, out_dir / "plots")
    if grid is not None:
        plots["examples"] = grid
    written.update({f"plot:{name}": path for name, path in plots.items()})
    sections = report_sections(result, plots, out_dir, written)
    subtitle = _subtitle(result)
    written["html"] = out_dir / "report.html"
    written["html"].write_text(render_html(sections, plots, subtitle), encoding="utf-8")
    written["markdown"] = out_dir / "report.md"
    written["markdown"].write_text(render_markdown(sections, plots, out_dir, subtitle), encoding="utf-8")
    return written


def _subtitle(result: Analysis) -> str:
    data = result.data
    n_photos = data.records["image_id"].nunique()
    return (f"{len(data.models)} model(s) on {n_photos} photos of {data.manifest.get('dataset', {}).get('root', '?')}, "
            f"{len(data.conditions) - 1} condition(s) besides clean.")


def report_sections(result: Analysis, plots: dict[str, Path], out_dir: Path,
                    written: dict[str, Path] | None = None) -> list[Section]:
    """The report's content, shared by the HTML and Markdown renderers: every builder's sections, then the
    files written beside the report, each linked."""
    sections = build_sections(result, plots)
    files = [path for name, path in (written or {}).items() if Path(path).suffix == ".csv"]
    files += [path for name, path in plots.items()]
    files += [p for name, path in plots.items() for p in (Path(path).with_suffix(".pdf"), Path(path).with_suffix(".svg"))
              if p.is_file()]  # vector copies, when asked for
    links = [Path(p).resolve().relative_to(Path(out_dir).resolve()).as_posix() for p in files]
    sections.append(Section("Files", ["Every table as CSV and every figure as a 200 dpi PNG, beside this report "
                                      "(report.md holds the same text as Markdown)."],
                            links=list(dict.fromkeys(["report.md", *links]))))
    return sections
