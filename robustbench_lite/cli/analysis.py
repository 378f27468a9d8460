"""The analysis commands: `fit` (any published table) and `report` (redo a report from records).

Registered on the main group by `robustbench_lite.cli`; they raise UserError, which it shows as one line.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..analysis.fit import TableFit

# kept light: pandas/scipy load only when a command runs (tests check these match fit.py)
SCALE_NAMES = ("probit", "logit", "linear", "identity")
DEFAULT_BOOTSTRAP = 1000
DEFAULT_SCALE = "logit"  # fit.DEFAULT_SCALE: the testbed's published lines, `fit` and the report alike
SCALE_CHOICE = click.Choice(SCALE_NAMES)


def _json_number(value):
    """A number for JSON: NaN and infinities become null; numpy scalars become Python ones."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _label_column(result: TableFit) -> str | None:
    for name in ("model", "name", "model_name"):
        if name in result.rows.columns:
            return name
    return None


def fit_as_dict(result: TableFit) -> dict:
    """The fit as a JSON-ready dict: the line, then each row's effective robustness."""
    line, label = result.line, _label_column(result)
    rows = []
    for index, row in result.rows.iterrows():
        entry = {"row": int(index) if isinstance(index, int) else str(index)}
        if label:
            entry[label] = str(row[label])
        entry.update({"x": _json_number(row[result.x]), "y": _json_number(row[result.y]),
                      "in_fit": bool(row["in_fit"]), "predicted": _json_number(row["predicted"]),
                      "effective_robustness": _json_number(row["effective_robustness"])})
        rows.append(entry)
    return {
        "scale": line.scale, "n": line.n, "n_excluded": line.n_excluded, "slope": _json_number(line.slope),
        "intercept": _json_number(line.intercept), "r2": _json_number(line.r2), "x": result.x, "y": result.y,
        "where": result.where, "unit": result.unit, "effective_robustness": rows,
    }


def _print_table(result: TableFit, limit: int = 0) -> None:
    line, label = result.line, _label_column(result)
    unit = " (points)" if result.unit == "percent" else ""
    sign = "-" if line.intercept < 0 else "+"
    click.echo(f"{line.scale}({result.y}) = {line.slope:.6f} * {line.scale}({result.x}) "
               f"{sign} {abs(line.intercept):.6f}")
    click.echo(f"scale={line.scale}  n={line.n}  n_excluded={line.n_excluded}  slope={line.slope!r}  "
               f"intercept={line.intercept!r}  r2={line.r2:.6f}")
    click.echo("")
    name_width = max([len(str(v)) for v in result.rows[label]] + [5]) if label else 5
    click.echo(f"{(label or 'row'):<{name_width}}  {result.x:>12}  {result.y:>12}  {'predicted':>10}  "
               f"{'eff. robustness' + unit:>24}  in_fit")
    shown = result.rows if limit <= 0 else result.rows.head(limit)
    for index, row in shown.iterrows():
        name = str(row[label]) if label else str(index)
        click.echo(f"{name:<{name_width}}  {row[result.x]:>12.3f}  {row[result.y]:>12.3f}  {row['predicted']:>10.3f}  "
                   f"{row['effective_robustness']:>24.3f}  {'yes' if row['in_fit'] else 'no'}")
    if len(shown) < len(result.rows):
        click.echo(f"... {len(result.rows) - len(shown)} more rows (--rows 0 prints all; --format json has every row)")


def summary_as_table(path: Path, condition: str | None):
    """A run's summary.csv as a fit table: per model, clean_top1 and shifted_top1 at `condition` (NAME@S)."""
    import pandas as pd

    from ..errors import UserError

    frame = pd.read_csv(path)
    from ..conditions.keys import condition_key

    keys = [condition_key(t, s) for t, s in zip(frame["transform"], frame["severity"])]
    frame = frame.assign(condition=keys)
    available = [k for k in dict.fromkeys(keys) if k != "clean"]
    if condition not in available:
        shown = ", ".join(available[:8]) + (" ..." if len(available) > 8 else "")
        raise UserError(f"fit {path}: a run's summary needs --condition NAME@S, one of: {shown}")
    clean = frame.loc[frame["condition"] == "clean"].set_index("model")["top1"].rename("clean_top1")
    shifted = frame.loc[frame["condition"] == condition].set_index("model")["top1"].rename("shifted_top1")
    return pd.concat([clean, shifted], axis=1, join="inner").reset_index()


@click.command("fit")
@click.argument("csv", type=click.Path(path_type=Path), required=False)
@click.option("--x", "x", default="clean_top1", show_default=True, help="Column of clean accuracies.")
@click.option("--y", "y", default="shifted_top1", show_default=True, help="Column of shifted accuracies.")
@click.option("--scale", type=SCALE_CHOICE, default=None,
              help="Axis transform before the least-squares fit.  [default: logit, the scale of the testbed's "
                   "published lines and of the report's fits]")
@click.option("--where", default=None, help="pandas query selecting the rows to fit (default: all), "
                                            "e.g. \"use_for_line_fit == 1\".")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--population", type=click.Choice(["testbed", "timm", "timm-in1k"]), default=None,
              help="Instead of CSV: a bundled published population (testbed: imagenet-testbed, 338 models; timm: "
                   "timm's results, 1,556 rows; timm-in1k: its in1k-only rows).")
@click.option("--shift", default=None, help="With --population: the setting to plot against clean val, a natural "
                                            "shift (imagenetv2-matched-frequency, imagenet-sketch, imagenet-r, objectnet) "
                                            "or a mapped condition (greyscale@5, fog@3; `robustbench-lite reference --list`).")
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --population: write the figure (PNG or PDF) to this file.")
@click.option("--condition", default=None, help="With a run's summary.csv: the condition fitted against clean.  "
                                                "e.g. --condition rotate@3")
@click.option("--rows", "n_rows", type=click.IntRange(min=0), default=20, show_default=True,
              help="Table rows to print (0: all).")
def fit_command(csv: Path | None, x: str, y: str, scale: str, where: str | None, fmt: str, population: str | None,
                shift: str | None, out: Path | None, condition: str | None, n_rows: int) -> None:
    """Fit the linear reproducibility line on any table of accuracies (percent or fractions).

    Rows at 0 or 100 % are left out of probit/logit fits and counted. Effective robustness is
    given for every row, in the table's unit. With --population testbed|timm|timm-in1k --shift NAME
    it draws Recht et al.'s plot of that published population instead (y = x dashed, the models or
    rows, the population's line with its bootstrap band, axes in percent).

    \b
    Examples:
      robustbench-lite fit testbed.csv --scale logit --where "use_for_line_fit == 1" --format json
      robustbench-lite fit results/RUN/summary.csv --condition rotate@3
      robustbench-lite fit --population testbed --shift imagenetv2-matched-frequency -o fickle.png
      robustbench-lite fit --population timm --shift imagenet-sketch -o sketch_timm.png
    """
    from ..errors import UserError

    if population is not None:
        if csv is not None or shift is None or out is None:
            raise UserError("fit --population takes --shift NAME and -o FILE, and no CSV")
        from ..report.population_figure import draw_population_figure

        if scale not in (None, "logit", "probit"):
            raise UserError(f"fit --population: the published lines are fitted on logit or probit axes, not {scale}")
        drawn = draw_population_figure(shift, out, scale=scale or DEFAULT_SCALE, population=population)
        sign = "-" if drawn["intercept"] < 0 else "+"
        noun = "models" if population == "testbed" else "rows"
        click.echo(f"wrote {out}: {drawn['n_points']} {population} {noun} ({drawn['n']} on the line), "
                   f"{drawn['scale']}(shifted) = {drawn['slope']:.4f} * {drawn['scale']}(clean) {sign} {abs(drawn['intercept']):.4f}")
        return
    if csv is None:
        raise UserError("fit needs a CSV of accuracies, or --population testbed --shift NAME -o FILE")
    from ..analysis.fit import fit_table

    table = csv
    if csv.is_file() and {"model", "transform", "severity", "top1"} <= set(csv.open().readline().strip().split(",")):
        table = summary_as_table(csv, condition)  # a run's summary.csv
    elif condition is not None:
        raise UserError("fit --condition goes with a run's summary.csv")
    result = fit_table(table, x, y, scale or DEFAULT_SCALE, where)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if fmt == "json":
        click.echo(json.dumps(fit_as_dict(result)))
    else:
        _print_table(result, n_rows)


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for the report (default: the first RUN_DIR).")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="CSV of a published model population to draw in grey, with its own line.")
@click.option("--reference-x", default="clean_top1", show_default=True, help="Clean accuracy column of --reference.")
@click.option("--reference-y", default="shifted_top1", show_default=True,
              help="Shifted accuracy column of --reference.")
@click.option("--reference-where", default=None, help="pandas query selecting --reference rows for its line.")
@click.option("--reference-condition", default=None,
              help="Tie --reference to one condition of the run (e.g. rotate@3): its line becomes that condition's "
                   "published line (effective robustness against it, reference `table:FILE`).  [default: every panel, "
                   "drawn only]")
@click.option("--baseline", default=None,
              help="Model whose errors normalise CE/mCE (default: the run's, else its first model).")
@click.option("--scale", type=SCALE_CHOICE, default=DEFAULT_SCALE, show_default=True,
              help="Scale of the reproducibility fit (the testbed fits on logit).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=DEFAULT_BOOTSTRAP, show_default=True,
              help="Bootstrap replicates over photos for the fit's intervals.")
@click.option("--seed", type=int, default=None, help="Bootstrap seed (default: the run's seed).")
@click.option("--vector", type=click.Choice(["pdf", "svg"]), default=None,
              help="Also write each figure as a vector file beside its PNG (plots/NAME.pdf or .svg).")
@click.option("--population", type=click.Choice(["testbed", "timm", "timm-in1k"]), default=None,
              help="Whose published lines the natural shifts are read on (default: the run's --population, else testbed).")
def report_command(run_dirs: tuple[Path, ...], out: Path | None, reference: Path | None, reference_x: str,
                   reference_y: str, reference_where: str | None, reference_condition: str | None,
                   baseline: str | None, scale: str, n_boot: int, seed: int | None, vector: str | None,
                   population: str | None) -> None:
    """Redo the tables, plots and report of one or more run folders from their records.

    Several folders merge when they share the dataset fingerprint, conditions and seed.

    \b
    Examples:
      robustbench-lite report results/RUN
      robustbench-lite report results/monday results/tuesday --out results/week
      robustbench-lite report results/RUN --reference rotation_paper.csv --reference-condition rotate@3
      robustbench-lite report results/RUN --vector pdf
    """
    from ..report.document import write_report

    written = write_report(list(run_dirs), out or run_dirs[0], reference, baseline=baseline, scale=scale,
                           n_boot=n_boot, seed=seed, reference_x=reference_x, reference_y=reference_y,
                           reference_where=reference_where, reference_condition=reference_condition, vector=vector,
                           population=population)
    click.echo(f"wrote {written['html']}")
    click.echo(f"wrote {written['markdown']}")


@click.command("reference")
@click.argument("condition", required=False)
@click.option("--scale", type=click.Choice(["logit", "probit"]), default="logit", show_default=True,
              help="Axis scale of the published line (the testbed fits on logit).")
@click.option("--corruption-protocol", type=click.Choice(["native", "imagenet-c"]), default="native",
              show_default=True, help="ImageNet-C line: corrupted in memory (native) or the released JPEGs (on disk).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json prints only the line's JSON object on stdout.")
@click.option("--list", "list_all", is_flag=True, help="List every condition that has a published counterpart.")
@click.option("--population", type=click.Choice(["testbed", "timm", "timm-in1k"]), default="testbed", show_default=True,
              help="Whose models the line is fitted on: the imagenet-testbed's line-fit models, every row of timm's "
                   "published results, or its in1k-only rows (natural shifts only: V2, Sketch, R, A).")
def reference_command(condition: str | None, scale: str, corruption_protocol: str, fmt: str, list_all: bool,
                      population: str) -> None:
    """The published line a condition's models are placed against (imagenet-testbed population, or timm's).

    \b
    Examples:
      robustbench-lite reference greyscale@5 --format json
      robustbench-lite reference fog@3 --corruption-protocol imagenet-c
      robustbench-lite reference imagenet-sketch --population timm --format json
      robustbench-lite reference --list
    """
    from ..analysis.references import mapping_table, reference_line
    from ..errors import UserError

    if list_all:
        table = mapping_table(corruption_protocol, population)
        if fmt == "json":
            click.echo(table.to_json(orient="records"))
        else:
            for row in table.itertuples():
                flag = "  (indicative)" if row.indicative else ""
                click.echo(f"{row.condition:<34} {population}:{row.column:<40} x: {row.clean_column}{flag}")
        return
    if condition is None:
        raise UserError("reference needs a CONDITION (e.g. greyscale@5) or --list")
    line = reference_line(condition, scale, corruption_protocol, population)
    if fmt == "json":
        click.echo(json.dumps(line.as_json()))
        return
    sign = "-" if line.intercept < 0 else "+"
    click.echo(f"{condition}: {population}:{line.column} (x: {line.clean_column}), n = {line.n} line-fit "
               f"{'models' if population == 'testbed' else 'rows'}")
    click.echo(f"{scale}(shifted) = {line.slope:.10f} * {scale}(clean) {sign} {abs(line.intercept):.10f}")
    if line.indicative:
        click.echo(f"indicative: {line.note}")
