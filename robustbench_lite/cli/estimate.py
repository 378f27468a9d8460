"""`robustbench-lite estimate`: label-free top-1 estimates on a folder of unlabelled photos."""
from __future__ import annotations

import click

from ..data.demo_photos import find_shared_sample

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.command("estimate", context_settings=CONTEXT)
@click.option("--data", "folder", required=True, type=click.Path(file_okay=False),
              help="Folder of unlabelled photos, flat or in sub-folders of any depth (folder names are never read as "
                   "labels).  e.g. --data ~/photos/from-the-field")
@click.option("--models", default="efficientnet_lite*", show_default=True,
              help="As for run: packaged names and wildcards, timm:NAME, ARCH@PATH, NAME@192px. AC, DoC and ATC need "
                   "one model; ALine-S and ALine-D need three or more.")
@click.option("--resolutions", help="As for run: every model at these input sides (crop and interpolation kept), each a model row "
                                         "named like efficientnet_lite0@192px.  e.g. --resolutions 128,160,192")
@click.option("--reference-data", help="Labelled clean photos the estimates start from (as run's --data).  "
                                       "[default: the photos `make demo` uses: ../shared/data/imagenet-sample "
                                       "beside a checkout, else the downloaded imagenet-sample]")
@click.option("--reference-limit", type=click.IntRange(min=1), help="Use N reference photos, spread over classes as run's --limit.  "
                                                   "[default: all]")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for estimates.csv, the records of both photo "
              "sets and the manifest; the same --out resumes.  [default: results/estimate-<timestamp>]")
@click.option("--device", help="auto, cpu, cuda or cuda:N.  [default: auto]")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), help="As for run.  [default: fp32]")
@click.option("--decode", type=click.Choice(["cpu", "device", "auto"]), help="As for run.  [default: auto]")
@click.option("--batch-size", help="As for run.  [default: auto]")
@click.option("--workers", type=int, help="Decoding processes, as for run.")
@click.option("--strict/--no-strict", default=None, help="Make any undecodable photo an error.")
@click.option("--force", is_flag=True, default=None, help="Start the --out folder afresh.")
@click.pass_context
def estimate_command(ctx: click.Context, folder: str, reference_data: str | None, **options) -> None:
    """Estimate each model's top-1 on photos nobody has labelled, from its outputs alone.

    Runs the models on the unlabelled folder and on labelled clean reference photos (same models,
    decoding and preprocessing as run), then estimates top-1 with AC (mean confidence), DoC
    (Guillory et al. 2021), ATC (Garg et al. 2022) and, with >= 3 models, ALine-S and ALine-D
    (Baek et al. 2022). Writes estimates.csv (model, method, estimated_top1, n_photos,
    source_top1, source_n_photos) to --out and prints a table.

    \b
    Examples:
      robustbench-lite estimate --data ~/photos/night-shift
      robustbench-lite estimate --data ~/photos --models efficientnet_lite0 --reference-data ~/imagenet/val
    """
    from ..run.config import COMMAND_LINE, RunConfig, normalise_options
    from ..run.unlabelled import ESTIMATES_FILE, estimate_folder, estimates_text

    values = {"data": reference_data or find_shared_sample(), "limit": options.pop("reference_limit")}
    values.update({k: v for k, v in options.items() if v is not None})
    config = RunConfig.from_dict(normalise_options(values, COMMAND_LINE))
    result = estimate_folder(folder, config)
    if result.estimates is not None:
        click.echo(estimates_text(result.estimates, folder))
        click.echo(f"\nestimates: {result.run_dir / ESTIMATES_FILE}")
    ctx.exit(result.exit_code)
