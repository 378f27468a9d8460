"""Security: checkpoints cannot run code, plug-in code runs only from paths the user named, the
report escapes what users wrote, nothing touches the network, a bad --out fails before any model loads."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import REPO, make_subset_folder

LITE0 = "efficientnet_lite0"


def tiny_run(data, out, *extra) -> list[str]:
    return ["run", "--data", str(data), "--out", str(out), "--models", LITE0, "--transforms", "none", "--limit", "4",
            "--device", "cpu", *extra]


class CodeOnLoad:
    """Unpickling this runs a shell command: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_that_runs_code_is_refused_without_running_it(shared_sample, tmp_path, cli_run):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": CodeOnLoad(marker)}, checkpoint)

    code, _, err = cli_run(*tiny_run(shared_sample, tmp_path / "run", "--no-report"), "--models", f"tf_efficientnet_lite0@{checkpoint}")
    assert code == 2
    assert "refused" in err and "weights_only=True" in err and str(checkpoint) in err
    assert "Traceback" not in err
    assert not marker.exists(), "the payload ran"
    # the payload is live: an unsafe load would have run it
    torch.load(checkpoint, weights_only=False)
    assert marker.exists()


def test_a_damaged_safetensors_file_is_a_one_line_error(shared_sample, tmp_path, cli_run):
    checkpoint = tmp_path / "damaged.safetensors"
    checkpoint.write_bytes(b"\xff" * 64)
    code, _, err = cli_run(*tiny_run(shared_sample, tmp_path / "run", "--no-report"), "--models", f"tf_efficientnet_lite0@{checkpoint}")
    assert code == 2
    assert "not a readable .safetensors file" in err and "Traceback" not in err


def test_benign_checkpoints_load_and_predict_like_the_packaged_model(shared_sample, shared_manifest, tmp_path):
    """The packaged lite0 state dict re-saved as .pth and as .safetensors: the same logits on real photos."""
    from safetensors.torch import save_file

    from robustbench_lite.data.datasets import open_dataset, select_samples
    from robustbench_lite.data.decode import DecodeDataset, collate_decoded
    from robustbench_lite.models import load_model, packaged_weights_path, resolve_models

    state = torch.load(packaged_weights_path(LITE0), map_location="cpu", weights_only=True)
    torch.save(state, tmp_path / "lite0.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "lite0.safetensors"))
    names = [LITE0, f"tf_efficientnet_lite0@{tmp_path / 'lite0.pth'}", f"tf_efficientnet_lite0@{tmp_path / 'lite0.safetensors'}"]
    models = [load_model(spec, torch.device("cpu")) for spec in resolve_models(names)]
    assert len({m.geometry for m in models}) == 1

    samples = select_samples(open_dataset(shared_sample), limit=8)
    dataset = DecodeDataset(samples, models[0].geometry)
    _, pixels, bad = collate_decoded([dataset[i] for i in range(len(samples))])
    assert not bad
    x = pixels.float() / 255
    logits = []
    with torch.inference_mode():
        for m in models:
            z = (x - torch.tensor(m.preprocessing.mean).view(1, 3, 1, 1)) / torch.tensor(m.preprocessing.std).view(1, 3, 1, 1)
            logits.append(m.module(z.contiguous(memory_format=torch.channels_last)))
    for other in logits[1:]:
        assert torch.equal(other.argmax(1), logits[0].argmax(1))
        torch.testing.assert_close(other, logits[0], atol=1e-5, rtol=0)
    labels = torch.tensor([s.label for s in samples])
    assert (logits[0].argmax(1) == labels).sum() >= 5, "real weights on real photos"


PLANTED = '''
from pathlib import Path
Path({marker!r}).write_text("ran")
from robustbench_lite import register_transform

@register_transform("planted", family="planted", severities=(1,))
def planted(x, level, rng):
    """Planted in the data folder."""
    return x
'''


def plant(folder: Path, name: str, marker: Path) -> None:
    (folder / name).write_text(textwrap.dedent(PLANTED.format(marker=str(marker))))


def test_code_in_the_data_folder_never_runs(shared_sample, shared_manifest, tmp_path, cli_run):
    data = make_subset_folder(tmp_path / "data", shared_manifest[:4])
    marker = tmp_path / "planted-ran"
    synset = shared_manifest[0]["synset"]
    for where, name in [(data, "evil.py"), (data, "__init__.py"), (data, "transforms.py"), (data / synset, "photo.py")]:
        plant(where, name, marker)
    code, _, err = cli_run(*tiny_run(data, tmp_path / "run", "--no-report", "--transforms", "planted"))
    assert code == 2 and "unknown transform or family 'planted'" in err
    code, _, err = cli_run(*tiny_run(data, tmp_path / "run", "--no-report"))
    assert code == 0, err
    assert not marker.exists()


def test_code_in_the_working_directory_never_runs(shared_sample, shared_manifest, tmp_path):
    data = make_subset_folder(tmp_path / "data", shared_manifest[:4])
    marker = tmp_path / "planted-ran"
    plant(data, "transforms.py", marker)
    result = subprocess.run([sys.executable, "-m", "robustbench_lite", *tiny_run(".", tmp_path / "run", "--no-report")],
                            cwd=data, capture_output=True, text=True, timeout=300)
    assert not marker.exists(), "transforms.py in the working directory ran"
    assert result.returncode == 0, result.stderr[-2000:]


XSS = '<script>alert(1)</script>'
XSS_PLUGIN = '''
from robustbench_lite import register_transform

@register_transform("xss_probe", family="xss", severities=(1,), params={"level": '<img src=x onerror="alert(2)">'})
def xss_probe(x, level, rng):
    """%s in a plug-in's docstring."""
    return x
''' % XSS


def test_user_text_in_the_report_is_escaped(shared_sample, tmp_path, cli_run):
    plugin = tmp_path / "xss_plugin.py"
    plugin.write_text(XSS_PLUGIN)
    out = tmp_path / "run"
    code, _, err = cli_run(*tiny_run(shared_sample, out, "--plugin", str(plugin), "--transforms", "xss_probe"))
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert "xss_probe" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert XSS not in html and "<img src=x" not in html


NO_NETWORK = '''
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:3]))
    raise OSError("network disabled by the test")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
import robustbench_lite
from robustbench_lite.cli.commands import main
code = main(sys.argv[1:])
print("NETWORK ATTEMPTS:", attempts)
sys.exit(code)
'''


def test_nothing_contacts_the_network_with_local_data_and_models(shared_sample, tmp_path):
    """Import, a tiny run and its report, with every way to open a connection turned into an error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    result = subprocess.run([sys.executable, "-c", NO_NETWORK, *tiny_run(shared_sample, tmp_path / "run")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "NETWORK ATTEMPTS: []" in result.stdout
    assert (tmp_path / "run" / "report.html").exists()


@pytest.mark.parametrize("where", ["below a file", "is a file"])
def test_an_unwritable_out_fails_before_any_model_loads(where, shared_sample, tmp_path, cli_run, monkeypatch):
    """As root chmod cannot make a folder read-only, but nothing can create a folder below a file."""
    from robustbench_lite.run import engine

    loaded = []
    real_load = engine.load_models
    monkeypatch.setattr(engine, "load_models", lambda *a, **k: loaded.append(a) or real_load(*a, **k))
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    out = blocker / "run" if where == "below a file" else blocker
    code, _, err = cli_run(*tiny_run(shared_sample, out, "--no-report"))
    assert code == 2
    assert str(out) in err and "Traceback" not in err
    assert loaded == []
    assert blocker.read_text() == "not a folder"
