"""`--dry-run`: every model checked for weights it can have (file, package, hub cache or a reachable host,
decided in seconds), one line per model that cannot; one representative timed per architecture and
input side within a time budget, the rest estimated from their FLOPs, and the output says which."""
from __future__ import annotations

import re

import pytest
import torch

from robustbench_lite.run import dry_run

TIMING = re.compile(r"^dry run: timing (\S+) at (\d+) px", re.M)


@pytest.fixture
def empty_hub(monkeypatch, tmp_path):
    """No hub weights cached, and a hub host that cannot resolve (this machine has no internet either way)."""
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(hub, "ENDPOINT", "https://hub.invalid")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    return tmp_path / "hf"


def cache_hub_weights(cache, repo: str) -> None:
    """A hub cache entry as huggingface_hub lays it out (refs/main -> snapshots/<commit>/model.safetensors)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    (folder / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (folder / "snapshots" / ("0" * 40) / "model.safetensors").write_bytes(b"cached")


def test_dry_run_names_each_model_that_cannot_be_had_in_one_line(cli_run, shared_sample, tmp_path, empty_hub):
    cache_hub_weights(empty_hub, "timm/resnet18.tv_in1k")
    present = tmp_path / "present.pth"
    present.write_bytes(b"weights")
    models = (f"efficientnet_lite0,tf_efficientnet_lite0@{tmp_path / 'missing.pth'},tf_efficientnet_lite0@{present},"
              "timm:resnet18.a1_in1k,timm:resnet18.tv_in1k")
    code, _, err = cli_run("run", "--data", shared_sample, "--models", models, "--transforms", "none", "--limit", "2",
                           "--batch-size", "2", "--device", "cpu", "--dry-run", "--out", tmp_path / "dry")
    assert code == 2, err
    cannot = [line.strip() for line in err.splitlines() if line.strip().startswith("cannot load")]
    assert len(cannot) == 2, err
    assert cannot[0] == f"cannot load tf_efficientnet_lite0@missing: checkpoint {tmp_path / 'missing.pth'}: no such file"
    assert cannot[1].startswith("cannot load timm:resnet18.a1_in1k: its weights are not in the hub cache and "
                                "hub.invalid cannot be reached (")
    assert cannot[1].endswith("); connect once to download them, or use ARCH@PATH for a local checkpoint")
    assert err.strip().splitlines()[-1] == ("error: --dry-run: 2 of 5 model(s) cannot be loaded (each named above); "
                                            "a run would stop when it reached them")
    assert "estimated time" in err and not (tmp_path / "dry").exists()


def test_dry_run_with_every_model_available_exits_0(cli_run, shared_sample, tmp_path, empty_hub):
    cache_hub_weights(empty_hub, "timm/resnet18.tv_in1k")
    code, _, err = cli_run("run", "--data", shared_sample, "--models", "efficientnet_lite0,timm:resnet18.tv_in1k",
                           "--transforms", "none", "--limit", "2", "--batch-size", "2", "--device", "cpu", "--dry-run")
    assert code == 0, err
    assert "cannot load" not in err
    assert "  timed one model per architecture and input side" in err  # both, or one within the budget


def test_flop_counts_match_the_published_multiply_adds():
    """timm's results tables: resnet18 1.82 GMACs, resnet50 4.11 GMACs at 224 px (2 FLOPs a multiply-add)."""
    assert dry_run.flops_per_image("resnet18", (224, 224)) == pytest.approx(2 * 1.82e9, rel=0.01)
    assert dry_run.flops_per_image("resnet50", (224, 224)) == pytest.approx(2 * 4.11e9, rel=0.01)


def test_timing_stops_at_its_budget_and_the_rest_are_estimated_from_flops(cli_run, shared_sample, monkeypatch):
    """With a budget too small for a second timing, only the cheapest architecture is timed; every other one
    gets its FLOPs times the timed one's seconds per FLOP, and the output says which is which."""
    from robustbench_lite.models import resolve_models

    monkeypatch.setattr(dry_run, "TIMING_BUDGET_SECONDS", 0.0)
    code, _, err = cli_run("run", "--data", shared_sample, "--models", "timm:resnet5*", "--transforms", "none",
                           "--limit", "2", "--batch-size", "2", "--device", "cpu", "--dry-run")
    entries = resolve_models("timm:resnet5*")
    groups, _ = dry_run.architecture_groups(entries)
    assert code == 2, err  # no hub here: every hub model is named as unavailable, the estimate is still printed
    assert len(groups) >= 5
    timed = [(arch, int(side)) for arch, side in TIMING.findall(err)]
    assert len(timed) == 1
    flops = {(g.arch, g.size[0]): dry_run.flops_per_image(g.entries[0].arch, g.size) for g in groups}
    assert timed[0] == min(flops, key=flops.get)
    assert (f"timed one model per architecture and input side for 1 of {len(groups)} within the 0 s budget" in err
            and f"the other {len(groups) - 1} estimated from their FLOPs" in err)
    lines = [line for line in err.splitlines() if line.startswith("  timm:") and "images/s" in line]
    assert len(lines) == len(entries)
    cheapest = next(g for g in groups if (g.arch, g.size[0]) == timed[0])
    estimated = [line for line in lines if line.endswith(f"(estimated from its FLOPs and {cheapest.label}'s speed)")]
    assert len(estimated) == len(entries) - len(cheapest.entries)


def test_estimates_scale_the_timed_speed_by_flops():
    """Unit rule: an untimed group's seconds per photo are the nearest timed group's times the FLOP ratio."""
    from robustbench_lite.models import resolve_models

    groups, _ = dry_run.architecture_groups(resolve_models("timm:resnet18.a1_in1k,timm:resnet34.a1_in1k,timm:resnet50.a1_in1k"))
    dry_run.time_groups(groups, torch.device("cpu"), 2, "fp32", lambda msg: None, budget=0.0)
    by_arch = {g.arch: g for g in groups}
    assert [g.arch for g in groups if g.timed] == ["resnet18"]
    base = by_arch["resnet18"]
    for name in ("resnet34", "resnet50"):
        g = by_arch[name]
        assert g.per_image == pytest.approx(base.per_image * g.flops / base.flops, rel=1e-12)
        assert g.flops == pytest.approx(dry_run.flops_per_image(name, g.size))


def test_an_estimate_scales_a_timed_model_of_its_own_family_first():
    """Speed per FLOP differs most between families: resnet101 is scaled from the timed resnet, not the closer
    convnext; a family with nothing timed takes the nearest in FLOPs."""
    def group(arch, flops, per_image=None):
        return dry_run.Group(arch, (224, 224), flops=flops, per_image=per_image, timed=per_image is not None)

    resnet, convnext = group("resnet18", 3.6e9, 0.05), group("convnext_small", 17.4e9, 0.4)
    groups = [resnet, convnext, group("resnet101", 15.6e9), group("tf_efficientnet_b3", 3.7e9)]
    assert [g.family for g in groups] == ["resnet", "convnext", "resnet", "efficientnet"]
    assert dry_run._nearest_timed(groups[2], groups) is resnet
    assert dry_run._nearest_timed(groups[3], groups) is resnet  # no efficientnet timed: nearest in FLOPs
