"""Goldens: the ten ImageNet-C-bar corruptions against the release's own code at 224 px, on the same
seed path: the release's `sample_parameters()` draws (and the draws its seeded RandomState makes inside
`transform()`) are turned into ours and rendered by our `render_NAME`, so the two must agree pixel for
pixel but for the release's uint8 truncation (ours is float, at most one level above).

The release runs from a checkout of facebookresearch/augmentation-corruption (benchmarks/cbar_reference.py
says where it is looked for); without one these tests skip. The table and the registry are checked always.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robustbench_lite.conditions.registry import all_transforms, get_transform
from robustbench_lite.conditions.selection import select_transforms
from transforms import _cbar_kit, cbar_noise, cbar_optics

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "imagenet-sample"
PHOTOS = 2
WITHIN = 0.995  # of values within one level of the release's uint8 output
sys.path.insert(0, str(REPO / "benchmarks"))
from cbar_reference import NAMES, reference_folder  # noqa: E402


def test_the_family_is_the_release_table():
    """Ten transforms, each with the five levels of the release's imagenet_c_bar.csv, in family and named set."""
    family = {s.name: s.levels for s in all_transforms() if s.family == "cbar"}
    assert family == _cbar_kit.RELEASE_TABLE and sorted(family) == sorted(NAMES)
    assert {s.name for s in select_transforms("imagenet-c-bar")} == set(NAMES)
    assert {s.name for s in select_transforms("family:cbar")} == set(NAMES)
    folder = reference_folder()
    if folder is not None:  # the release's own file, where a checkout is at hand
        lines = (folder / "imagenet_c_bar.csv").read_text().split()
        assert {ln.split(",")[0]: tuple(map(float, ln.split(",")[1:])) for ln in lines} == _cbar_kit.RELEASE_TABLE


def _rs(seed):
    return np.random.RandomState(seed=seed)


def _phases(state, side=224):
    return torch.from_numpy(state.uniform(low=0, high=2 * np.pi, size=(side, side // 2)))


def _rays(state, radius, count, floor):
    lengths = [radius + 25 / 100.0 * radius * state.randn() for _ in range(count)]
    padded = np.zeros(cbar_optics.MAX_RAYS)
    padded[:count] = [max(1, v) for v in lengths] if floor else lengths
    return padded


def ours_from_release(name: str, p: dict, level: float) -> dict:
    """The release's draws as our render's arguments (one photo)."""
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    if name == "blue_noise_sample":
        return {"phases": _phases(_rs(p["seed"]))[None]}
    if name == "brownish_noise":
        state = _rs(p["seed"])
        return {"phases": torch.stack([_phases(state) for _ in range(3)])[None]}
    if name == "caustic_refraction":
        return {"time": t(p["time"]), "size": t(p["size"])}
    if name == "checkerboard_cutout":
        scale = p["scales"][0]
        size = int(4 * 224 // scale)
        cells = np.ones((cbar_optics.MAX_CELLS, cbar_optics.MAX_CELLS))
        cells[:size, :size] = _rs(p["seed"]).uniform(size=(size, size))
        return {"angle": t(p["angle"]), "scale": t(scale), "cells": torch.from_numpy(cells)[None]}
    if name == "inverse_sparkles":
        lengths = _rays(_rs(p["seed"]), p["radius"], p["rays"], floor=False)
        return {"centre": torch.tensor([p["center"]]), "rays": torch.tensor([p["rays"]]),
                "lengths": torch.from_numpy(lengths)[None]}
    if name == "sparkles":
        state = _rs(p["seed"])
        lengths = np.stack([_rays(state, r, n, floor=True) for r, n in zip(p["radii"], p["nrays"])])
        return {"centres": torch.tensor([p["centers"]]), "rays": torch.tensor([p["nrays"]]),
                "lengths": torch.from_numpy(lengths)[None]}
    if name == "perlin_noise":
        sys.path.insert(0, str(reference_folder()))
        from utils.perlin_noise import PerlinNoiseGenerator  # the release's own table builder

        generator = PerlinNoiseGenerator(_rs(p["seed"]))
        return {"perm": torch.from_numpy(np.asarray(generator.p))[None], "grad": torch.from_numpy(generator.g)[None]}
    if name == "plasma_noise":
        return {"time": t(p["time"]), "iterations": torch.tensor([int(p["iterations"])]),
                "sharpness": t(p["sharpness"]), "scale": t(p["scale"])}
    if name == "cocentric_sine_waves":
        return {"offset": torch.tensor([p["offset"]], dtype=torch.float64), "freq": t(p["freq"]),
                "amplitude": t(p["amplitude"]), "ring_width": t(p["ring_width"])}
    if name == "single_frequency_greyscale":
        return {"freq": torch.tensor([p["freq"]], dtype=torch.float64), "phase": t(p["phase"])}
    raise KeyError(name)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The release's outputs and draws on 2 shared photos at each corruption's first and last level (~40 s)."""
    if reference_folder() is None:
        pytest.skip("no ImageNet-C-bar release checkout (see benchmarks/cbar_reference.py)")
    if not (SAMPLE / "MANIFEST.csv").exists():
        pytest.skip(f"shared photos not found at {SAMPLE}")
    folder = tmp_path_factory.mktemp("cbar-goldens")
    command = [sys.executable, str(REPO / "benchmarks" / "cbar_reference.py"), "--goldens", str(folder),
               "--photos", str(PHOTOS)]
    subprocess.run(command, check=True, capture_output=True, timeout=900)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("name", NAMES)
def test_matches_the_release_on_its_own_draws(release, name):
    """Rendered from the release's draws, ours is within one level of its uint8 output on 99.5 % of values
    (ours minus the release's lies in [0, 1) where both round alike: the release truncates)."""
    photos = np.load(release / "clean.npy")
    arrays = np.load(release / f"{name}.npz")
    render = getattr(cbar_noise, f"render_{name}", None) or getattr(cbar_optics, f"render_{name}")
    levels = sorted({float(k.split(":")[1]) for k in arrays.files if k.startswith("out:")})
    assert levels == [get_transform(name).levels[0], get_transform(name).levels[-1]]
    for level in levels:
        for i, photo in enumerate(photos):
            params = json.loads(str(arrays[f"params:{level}:{i}"]))
            x = torch.from_numpy(photo[None]).permute(0, 3, 1, 2).double().div(255).float()
            ours = render(x, level, **ours_from_release(name, params, level))[0].permute(1, 2, 0).double().numpy() * 255
            theirs = arrays[f"out:{level}:{i}"].astype(np.float64)
            difference = ours - theirs
            within = float((np.abs(difference - 0.5) <= 0.5 + 1e-3).mean())
            assert within >= WITHIN, (f"{name}@{level} photo {i}: {within:.4%} within one level, "
                                      f"max {np.abs(difference).max():.2f} levels")
            assert math.isclose(float(difference.mean()), 0.5, abs_tol=0.5), f"{name}@{level}: mean {difference.mean()}"
