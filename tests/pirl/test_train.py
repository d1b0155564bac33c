"""Training: resume exactness and smoke runs through the real CLI."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from pirl.cli import main
from pirl.train import TrainSettings, train
from tests.helpers import jpeg_bytes, photo, write_bad_inputs, write_odd_but_valid

TINY = dict(
    arch="resnet10",
    width=4,
    batch_size=8,
    n_negatives=16,
    workers=0,
    epochs=3,
    log_every=1,
    grid_size=30,
    patch_size=8,
    image_size=16,
)


def losses(folder: Path) -> list[float]:
    with (folder / "log.csv").open() as handle:
        return [float(row["losses/loss"]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize(
    "method, fraction, data_path",
    [
        ("pirl", 1.0, "files"),
        ("pirl", 1.0, "tensor"),
        ("pirl", 0.25, "tensor"),
        ("jigsaw", 1.0, "files"),
        ("jigsaw", 1.0, "tensor"),
    ],
)
def test_resume_reproduces_the_next_steps(
    image_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    method: str,
    fraction: float,
    data_path: str,
) -> None:
    # one image whose pixels are cut short: a grey stand-in, the same on resume
    data = jpeg_bytes(photo(1))
    (image_folder / "a" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    base = dict(
        TINY,
        data=str(image_folder),
        method=method,
        n_permutations=10,
        pretext_fraction=fraction,
        data_path=data_path,
    )
    straight = tmp_path / "straight"
    train(TrainSettings(**base, out=str(straight), max_steps=7))  # type: ignore[arg-type]
    split = tmp_path / "split"
    train(TrainSettings(**base, out=str(split), max_steps=3))  # type: ignore[arg-type]
    summary = train(TrainSettings(**base, out=str(split), max_steps=7, resume=True))  # type: ignore[arg-type]
    assert summary["steps"] == 7  # 5 steps an epoch: the resume crosses an epoch
    assert summary["data_path"] == data_path and summary["n_data"] == 41
    assert "truncated.jpg: corrupt or truncated image" in capsys.readouterr().err
    assert losses(split) == pytest.approx(losses(straight), rel=1e-5)
    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(split / "checkpoint.pt", weights_only=False)
    for key, value in a["model"].items():
        assert torch.allclose(value.float(), b["model"][key].float(), atol=1e-6), key
    if method == "pirl":
        bank_a = a["criterion"]["memory_bank.bank"]
        assert torch.allclose(bank_a, b["criterion"]["memory_bank.bank"], atol=1e-6)


def cli_args(**options: object) -> list[str]:
    args = []
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


@pytest.mark.parametrize(
    "method, pretext",
    [
        ("pirl", "jigsaw"),
        ("pirl", "rotation"),
        ("npid", "jigsaw"),
        ("jigsaw", "jigsaw"),
    ],
)
def test_cli_smoke_train_eval_export(
    image_folder: Path,
    tmp_path: Path,
    method: str,
    pretext: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_bad_inputs(image_folder / "bad")  # skipped with a reason or grey, no crash
    write_odd_but_valid(image_folder / "odd")  # 160x120, CMYK, 16-bit, alpha...: used
    out = tmp_path / method
    args = cli_args(
        **TINY, data=image_folder, out=out, method=method, pretext=pretext, max_steps=6
    )
    assert (
        main(["--threads", "1", "--quiet", "train", *args, "--n-permutations", "10"])
        == 0
    )
    captured = capsys.readouterr()
    assert "6 steps" in captured.out and "on 46 images" in captured.out
    assert "skipped bad/notes.png: not an image" in captured.err
    # its header is sound: indexed, and grey with a warning once its pixels fail
    assert "bad/truncated.jpg: corrupt or truncated image" in captured.err
    assert "a grey image stands in for it" in captured.err
    assert "Traceback" not in captured.err
    assert (out / "checkpoint.pt").exists() and (out / "settings.json").exists()
    assert len(losses(out)) == 6
    encoder = tmp_path / "encoder.pt"
    assert main(["export", str(out / "checkpoint.pt"), str(encoder)]) == 0


def test_cli_eval_on_labelled_zip(image_zip: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = cli_args(**TINY, data=image_zip, under="train", out=out, max_steps=2)
    assert main(["--threads", "1", "--quiet", "train", *args]) == 0
    report = tmp_path / "eval.json"
    eval_args = [
        "--checkpoint",
        str(out / "checkpoint.pt"),
        "--data",
        str(image_zip),
        "--test-under",
        "train",
        "--k",
        "5",
        "--linear-epochs",
        "3",
        "--workers",
        "0",
        "--json",
        str(report),
    ]
    assert main(["--quiet", "eval", *eval_args]) == 0
    text = report.read_text()
    assert '"knn_top1"' in text and '"linear_top1"' in text
    random_args = [a for a in eval_args if a != str(out / "checkpoint.pt")]
    random_args.remove("--checkpoint")
    assert main(["--quiet", "eval", *random_args, "--width", "4"]) == 0
    assert '"method": "random"' in report.read_text()


def test_cli_errors_are_one_line(
    image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert (
        main(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path)]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("pirl: error: no usable image") and err.count("\n") == 1
    assert (
        main(
            ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--resume"]
        )
        == 2
    )
    (tmp_path / "x.pt").write_bytes(b"garbage")
    assert main(["export", str(tmp_path / "x.pt"), str(tmp_path / "y.pt")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("pirl: error:") == 2
    args = [
        "train",
        "--data",
        str(image_folder),
        "--out",
        str(tmp_path / "f"),
        "--batch-size",
        "8",
    ]
    assert main([*args, "--pretext-fraction", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pirl: error: pretext_fraction") and err.count("\n") == 1


def test_auto_takes_the_tensor_path_when_it_fits(
    image_folder: Path, tmp_path: Path, decoded_cache: Path
) -> None:
    base = dict(TINY, data=str(image_folder), max_steps=1)
    fits = train(TrainSettings(**base, out=str(tmp_path / "a")))  # type: ignore[arg-type]
    assert fits["data_path"] == "tensor" and list(decoded_cache.glob("*x16px*.u8"))
    too_big = TrainSettings(**base, out=str(tmp_path / "b"), memory_limit_gb=1e-6)  # type: ignore[arg-type]
    assert train(too_big)["data_path"] == "files"


def test_channels_last_changes_the_speed_not_the_maths(
    image_folder: Path, tmp_path: Path
) -> None:
    base = dict(TINY, data=str(image_folder), max_steps=3)
    for layout in ("nhwc", "nchw"):
        settings = TrainSettings(
            **base, out=str(tmp_path / layout), channels_last=layout == "nhwc"
        )  # type: ignore[arg-type]
        train(settings)
    assert losses(tmp_path / "nhwc") == pytest.approx(
        losses(tmp_path / "nchw"), rel=1e-4
    )


def test_cli_data_path_errors_are_one_line(
    image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "not-a-folder").write_text("x")
    args = cli_args(
        **TINY,
        data=image_folder,
        out=tmp_path / "run",
        max_steps=1,
        data_path="tensor",
        cache_dir=tmp_path / "not-a-folder",
    )
    assert main(["--quiet", "train", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pirl: error:") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["train", "--data", str(image_folder), "--data-path", "fast"])


def test_budget_stops_the_run(image_folder: Path, tmp_path: Path) -> None:
    settings = TrainSettings(
        **TINY, data=str(image_folder), out=str(tmp_path), budget_minutes=1e-9
    )  # type: ignore[arg-type]
    summary = train(settings)
    assert summary["steps"] <= 1 and (tmp_path / "checkpoint.pt").exists()


def test_ctrl_c_saves_a_checkpoint_that_resumes(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pirl.train as train_module

    real_step = train_module.pirl_step
    calls = {"n": 0}

    def interrupted(*args: object, **kwargs: object) -> float:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(train_module, "pirl_step", interrupted)
    args = cli_args(**TINY, data=image_folder, out=tmp_path, max_steps=4)
    assert main(["--threads", "1", "--quiet", "train", *args]) == 130
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["state"]["global_step"] == 2
    monkeypatch.setattr(train_module, "pirl_step", real_step)
    assert main(["--threads", "1", "--quiet", "train", *args, "--resume"]) == 0
    assert (
        torch.load(tmp_path / "checkpoint.pt", weights_only=False)["state"][
            "global_step"
        ]
        == 4
    )


class Payload:
    """What a crafted checkpoint asks the unpickler to run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("command", ["export", "eval", "resume"])
def test_a_crafted_checkpoint_is_refused_not_executed(
    command: str,
    tmp_path: Path,
    image_folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    crafted = run / "checkpoint.pt"
    torch.save({"model": Payload(marker), "settings": {}}, crafted)
    args = {
        "export": ["export", str(crafted), str(tmp_path / "enc.pt")],
        "eval": ["eval", "--checkpoint", str(crafted), "--data", str(image_folder)],
        "resume": [
            "train",
            "--data",
            str(image_folder),
            "--out",
            str(run),
            "--resume",
            "--max-steps",
            "1",
            "--batch-size",
            "8",
        ],
    }[command]
    assert main(["--quiet", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "refused" in err and "\n" not in err
    assert not marker.exists()


def failing_at(step: int, real: object, action: object) -> object:
    """A ``pirl_step`` that runs ``action`` instead of the ``step``-th step."""
    calls = {"n": 0}

    def stepped(*args: object, **kwargs: object) -> float:
        calls["n"] += 1
        if calls["n"] == step:
            action()  # type: ignore[operator]
        return real(*args, **kwargs)  # type: ignore[operator,no-any-return]

    return stepped


def test_sigterm_saves_a_checkpoint_and_exits_143(
    image_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os
    import signal

    import pirl.train as train_module

    straight = tmp_path / "straight"
    args = cli_args(**TINY, data=image_folder, max_steps=7)
    assert main(["--quiet", "train", *args, "--out", str(straight)]) == 0
    real = train_module.pirl_step
    term = failing_at(3, real, lambda: os.kill(os.getpid(), signal.SIGTERM))
    monkeypatch.setattr(train_module, "pirl_step", term)
    out = tmp_path / "run"
    assert main(["--quiet", "train", *args, "--out", str(out)]) == 143
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("pirl: stopped by SIGTERM at step 3, checkpoint saved")
    assert "--resume" in err
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["state"]["global_step"] == 3  # the step it was in finished
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler given back
    monkeypatch.setattr(train_module, "pirl_step", real)
    assert main(["--quiet", "train", *args, "--out", str(out), "--resume"]) == 0
    assert losses(out) == pytest.approx(losses(straight), rel=1e-5)


def test_checkpoint_every_and_the_log_cut_back_on_resume(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pirl.train as train_module

    base = dict(TINY, data=str(image_folder), max_steps=7)
    straight = tmp_path / "straight"
    train(TrainSettings(**base, out=str(straight)))  # type: ignore[arg-type]

    def crash() -> None:
        raise RuntimeError("killed")  # as SIGKILL: nothing saved on the way out

    real = train_module.pirl_step
    monkeypatch.setattr(train_module, "pirl_step", failing_at(5, real, crash))
    out = tmp_path / "run"
    every = TrainSettings(**base, out=str(out), checkpoint_every=3)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="killed"):
        train(every)
    assert len(losses(out)) == 4  # steps 1-4 logged, the checkpoint is at step 3
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["state"]["global_step"] == 3
    monkeypatch.setattr(train_module, "pirl_step", real)
    every.resume = True
    train(every)
    assert losses(out) == pytest.approx(losses(straight), rel=1e-5)  # no repeats
    with (out / "log.csv").open() as handle:
        steps = [int(float(r["charts/step"])) for r in csv.DictReader(handle)]
    assert steps == list(range(1, 8))


def test_warmup_and_linear_scaling_set_the_learning_rate(
    image_folder: Path, tmp_path: Path
) -> None:
    settings = TrainSettings(
        **TINY,  # type: ignore[arg-type]
        data=str(image_folder),
        out=str(tmp_path),
        max_steps=4,
        lr=0.1,
        reference_batch=4,  # batch 8 in one process: twice the reference
        warmup_epochs=0.8,  # 5 steps an epoch: 4 warm-up steps
    )
    train(settings)
    with (tmp_path / "log.csv").open() as handle:
        lrs = [float(r["charts/lr"]) for r in csv.DictReader(handle)]
    total = 3 * 5  # the cosine spans 3 epochs of 5 steps
    want = [
        0.2 * (1 + math.cos(math.pi * step / total)) / 2 * min(1, (step + 1) / 4)
        for step in range(4)
    ]
    assert lrs == pytest.approx(want, rel=1e-9)


def test_version_and_threads_after_the_subcommand(
    image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("pirl ")
    args = cli_args(**TINY, data=image_folder, out=tmp_path, max_steps=1)
    assert main(["train", *args, "--threads", "1", "--quiet"]) == 0
    assert torch.get_num_threads() == 1
    assert main(["train", "--device", "cuda", *args]) in (0, 2)  # one line if none
    if not torch.cuda.is_available():
        assert capsys.readouterr().err.endswith("no CUDA device is available\n")
