"""Every bad input to `udm` is refused: exit 2, ONE line `udm: ...` on stderr naming the option
and its valid range, before any long work, leaving no partial files.

Two parts: a plain parametrized test per case found by trying the command line as a new user
would, and a Hypothesis property test that draws option combinations (good and bad values)
for train, elbo, sample and schedule: each run succeeds with finite outputs or is refused as
above, never a traceback, never exit 0 with NaN or an empty output.

In-process (click's CliRunner) for speed. Physical memory is pinned to 16 GB so the memory
refusals do not depend on the machine running the tests.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from udm.cli import main
from udm.model import train as trainer
from udm.model.config import Config

GB = 10**9
PINNED_MEMORY = 16 * GB


@pytest.fixture(autouse=True)
def _pinned_memory(monkeypatch):
    try:
        from udm.model import limits
    except ImportError:  # a build without udm.model.limits has no memory checks
        return
    monkeypatch.setattr(limits, "physical_memory", lambda: PINNED_MEMORY)


def _udm(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_refused(result, *needles: str) -> str:
    """Exit 2, one `udm: ` line on stderr containing every needle, no traceback."""
    assert not (result.exception and not isinstance(result.exception, SystemExit)), (
        f"traceback instead of a refusal: {result.exception!r}\n{result.output}"
    )
    assert result.exit_code == 2, f"exit {result.exit_code}, wanted 2:\n{result.output}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"want one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("udm: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert "Traceback" not in result.output
    return lines[0]


# --- checkpoints to bound and sample (tiny: 3 steps, T = 20) --------------------------------


def _tiny_run(out: Path, **kw) -> Path:
    cfg = Config(out=str(out), plot=False, steps=3, T=20, batch_size=16, n_train=200, **kw)
    return trainer.train(cfg, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {
            "plain": _tiny_run(root / "plain", data="gaussian"),
            "cond": _tiny_run(root / "cond", data="mixture", conditional=True),
            "learned": _tiny_run(root / "learned", data="gaussian", schedule="learned"),
        }
    finally:
        torch.set_num_threads(n)


# --- each bad input, one by one -----------------------------------------------------------------


def _toml(tmp: Path, text: str) -> Path:
    path = tmp / "run.toml"
    path.write_text(text)
    return path


def _empty_npy(tmp: Path) -> Path:
    np.save(tmp / "empty.npy", np.zeros((0, 2)))
    return tmp / "empty.npy"


def _a_file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("x")
    return tmp / "a_file"


TRAIN = ("train", "--steps", "1", "--T", "10", "--no-plot", "--quiet")

# (id, argv builder (tmp, runs) -> args, substrings the one line must hold)
CASES = [
    (
        "schedule-plot-missing-folder",
        lambda t, r: ("schedule", "linear", "--T", "10", "--plot", t / "no" / "s.png"),
        ("--plot", "does not exist"),
    ),
    (
        "schedule-plot-bad-extension",
        lambda t, r: ("schedule", "linear", "--T", "10", "--plot", t / "s.xyz"),
        ("--plot", ".xyz", ".png"),
    ),
    (
        "schedule-T-too-large",
        lambda t, r: ("schedule", "linear", "--T", "100000000"),
        ("--T", ">= 1, at most 1000000", "bytes"),
    ),
    (
        "train-linear-underflows",
        lambda t, r: (*TRAIN[:1], "--T", "20000", "--out", t / "o"),
        ("--T", "underflows", "t = 14322"),
    ),
    (
        "schedule-T-zero",
        lambda t, r: ("schedule", "linear", "--T", "0"),
        ("--T", ">= 1, at most 1000000"),
    ),
    (
        "schedule-beta-nan",
        lambda t, r: ("schedule", "linear", "--beta-start", "nan"),
        ("--beta-start", "0<x<1"),
    ),
    (
        "schedule-cosine-with-beta",
        lambda t, r: ("schedule", "cosine", "--beta-end", "0.01"),
        ("--beta-end", "cosine"),
    ),
    (
        "train-empty-npy",
        lambda t, r: (*TRAIN, "--data", _empty_npy(t), "--out", t / "o"),
        ("--data", "no samples"),
    ),
    (
        "train-width-negative",
        lambda t, r: (*TRAIN, "--width", "-4", "--out", t / "o"),
        ("--width", "2..4096"),
    ),
    (
        "train-width-zero",
        lambda t, r: (*TRAIN, "--width", "0", "--out", t / "o"),
        ("--width", "2..4096"),
    ),
    (
        "train-width-odd",
        lambda t, r: (*TRAIN, "--width", "5", "--out", t / "o"),
        ("--width", "even"),
    ),
    (
        "train-width-digits-not-multiple-of-8",
        lambda t, r: (*TRAIN, "--data", "digits", "--width", "12", "--out", t / "o"),
        ("--width", "multiple of 8"),
    ),
    (
        "train-device-mps",
        lambda t, r: (*TRAIN, "--device", "mps", "--out", t / "o"),
        ("--device", "valid here: cpu"),
    ),
    (
        "train-device-tpu",
        lambda t, r: (*TRAIN, "--device", "tpu", "--out", t / "o"),
        ("--device", "cpu, cuda, cuda:N or mps"),
    ),
    (
        "train-toml-steps-not-an-integer",
        lambda t, r: (*TRAIN[:1], "--config", _toml(t, "steps = 'ten'\n"), "--out", t / "o"),
        ("steps in", "run.toml", "integer", "1..100000000"),
    ),
    (
        "train-toml-unparsable",
        lambda t, r: (*TRAIN, "--config", _toml(t, "steps = = 3\n"), "--out", t / "o"),
        ("--config", "run.toml", "not valid TOML"),
    ),
    (
        "train-toml-train-not-a-table",
        lambda t, r: (*TRAIN, "--config", _toml(t, "train = 3\n"), "--out", t / "o"),
        ("--config", "run.toml", "table"),
    ),
    (
        "train-toml-lr-nan",
        lambda t, r: ("train", "--config", _toml(t, "lr = nan\n"), "--out", t / "o"),
        ("lr in", "run.toml", "(0, 1]"),
    ),
    (
        "train-out-unwritable",
        lambda t, r: (*TRAIN, "--out", "/proc/udm-test/out"),
        ("--out", "/proc"),
    ),
    (
        "train-out-under-a-file",
        lambda t, r: (*TRAIN, "--out", _a_file(t) / "out"),
        ("--out", "is a file"),
    ),
    (
        "train-gaussian-conditional",
        lambda t, r: (*TRAIN, "--data", "gaussian", "--conditional", "--out", t / "o"),
        ("--conditional", "labels"),
    ),
    (
        "train-seed-negative",
        lambda t, r: (*TRAIN, "--seed", "-1", "--out", t / "o"),
        ("--seed", "0.."),
    ),
    (
        "train-T-8-terabytes",
        lambda t, r: (*TRAIN[:1], "--T", "1000000000000", "--out", t / "o"),
        ("--T", "1..1000000", "bytes"),
    ),
    (
        "train-T-within-bound-but-too-large",
        lambda t, r: (
            ("train", "--steps", "1", "--T", "1000000", "--schedule", "cosine", "--out", t / "o")
        ),
        ("--T", "bytes"),
    ),
    (
        "train-batch-size-zero",
        lambda t, r: (*TRAIN, "--batch-size", "0", "--out", t / "o"),
        ("--batch-size", "1..1000000"),
    ),
    (
        "train-ema-decay-one",
        lambda t, r: (*TRAIN, "--ema-decay", "1", "--out", t / "o"),
        ("--ema-decay", "[0, 1)"),
    ),
    (
        "train-steps-not-an-integer",
        lambda t, r: ("train", "--steps", "ten", "--out", t / "o"),
        ("--steps", "not a valid integer"),
    ),
    (
        "train-resume-without-checkpoint",
        lambda t, r: (*TRAIN, "--resume", "--out", t / "o"),
        ("--resume", "no checkpoint"),
    ),
    ("sample-n-negative", lambda t, r: ("sample", r["plain"], "--n", "-3"), ("--n", "1<=x")),
    ("sample-n-zero", lambda t, r: ("sample", r["plain"], "--n", "0"), ("--n", "1<=x")),
    (
        "sample-n-too-large-for-memory",
        lambda t, r: ("sample", r["plain"], "--n", "10000000"),
        ("--n", "bytes"),
    ),
    (
        "sample-out-existing-file",
        lambda t, r: ("sample", r["plain"], "--out", _a_file(t)),
        ("--out", "is a file"),
    ),
    (
        "sample-steps-zero",
        lambda t, r: ("sample", r["plain"], "--sampler", "ddim", "--steps", "0"),
        ("--steps", "1<=x"),
    ),
    (
        "sample-steps-negative",
        lambda t, r: ("sample", r["plain"], "--sampler", "ddim", "--steps", "-1"),
        ("--steps", "1<=x"),
    ),
    (
        "sample-steps-above-T",
        lambda t, r: ("sample", r["plain"], "--sampler", "ddim", "--steps", "50"),
        ("--steps", "1..20"),
    ),
    (
        "sample-ancestral-steps-above-T",
        lambda t, r: ("sample", r["plain"], "--steps", "21"),
        ("--steps", "1..20"),
    ),
    (
        "sample-label-on-unconditional",
        lambda t, r: ("sample", r["plain"], "--label", "3"),
        ("--label", "unconditional"),
    ),
    (
        "sample-label-out-of-range",
        lambda t, r: ("sample", r["cond"], "--label", "3"),
        ("--label", "0..2"),
    ),
    (
        "sample-guidance-inf",
        lambda t, r: ("sample", r["cond"], "--label", "0", "--guidance-scale", "inf"),
        ("--guidance-scale",),
    ),
    (
        "sample-guidance-without-label",
        lambda t, r: ("sample", r["cond"], "--guidance-scale", "2"),
        ("--guidance-scale", "--label"),
    ),
    ("sample-seed-negative", lambda t, r: ("sample", r["plain"], "--seed", "-1"), ("--seed",)),
    ("sample-eta-above-one", lambda t, r: ("sample", r["plain"], "--eta", "2"), ("--eta",)),
    (
        "sample-eta-with-ancestral",
        lambda t, r: ("sample", r["plain"], "--eta", "0.5"),
        ("--eta", "ddim"),
    ),
    (
        "sample-device-tpu",
        lambda t, r: ("sample", r["plain"], "--device", "tpu"),
        ("--device", "cpu, cuda"),
    ),
    ("elbo-n-negative", lambda t, r: ("elbo", r["plain"], "--n", "-5"), ("--n", "2<=x")),
    ("elbo-n-zero", lambda t, r: ("elbo", r["plain"], "--n", "0"), ("--n", "2<=x")),
    ("elbo-n-one-no-stderr", lambda t, r: ("elbo", r["plain"], "--n", "1"), ("--n", "2<=x")),
    ("elbo-batch-zero", lambda t, r: ("elbo", r["plain"], "--batch", "0"), ("--batch", "1<=x")),
    (
        "elbo-batch-too-large-for-memory",
        lambda t, r: ("elbo", r["plain"], "--n", "1000000", "--batch", "1000000"),
        ("--batch", "bytes"),
    ),
    ("elbo-of-a-directory", lambda t, r: ("elbo", t), ("CHECKPOINT", "is a directory")),
    (
        "elbo-not-a-checkpoint",
        lambda t, r: ("elbo", _a_file(t)),
        ("not a udm checkpoint",),
    ),
    (
        "elbo-device-mps",
        lambda t, r: ("elbo", r["plain"], "--device", "mps"),
        ("--device", "valid here: cpu"),
    ),
    (
        "bench-compare-not-json",
        lambda t, r: ("bench", "--quick", "--compare", _a_file(t)),
        ("--compare", "not a JSON"),
    ),
    (
        "bench-compare-other-json",
        lambda t, r: ("bench", "--quick", "--compare", _toml(t, "[1, 2]")),
        ("--compare", "udm bench --json"),
    ),
    (
        "bench-json-missing-folder",
        lambda t, r: ("bench", "--quick", "--json", t / "no" / "b.json"),
        ("--json", "does not exist"),
    ),
    ("bench-T-zero", lambda t, r: ("bench", "--T", "0"), ("--T", "1..100000")),
]


@pytest.mark.parametrize("build, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line(tmp_path, runs, build, needles, one_thread):
    work = tmp_path / "work"
    work.mkdir()
    args = build(work, runs)
    before = _files(work)
    start = time.perf_counter()
    result = _udm(*args)
    assert_refused(result, *needles)
    assert time.perf_counter() - start < 20, "refused only after long work"
    assert _files(work) == before, "a refused run left files behind"


def test_cuda_without_cuda_is_refused(tmp_path, runs):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_refused(_udm(*TRAIN, "--out", tmp_path / "o", "--device", "cuda"), "--device", "CUDA")
    assert_refused(_udm("elbo", runs["plain"], "--device", "cuda:0"), "--device", "CUDA")
    assert not (tmp_path / "o").exists()


def test_unwritable_out_is_found_before_training(tmp_path, monkeypatch):
    """Before: found only after the whole training, when the checkpoint was written."""
    called = []
    monkeypatch.setattr(trainer, "train", lambda *a, **k: called.append(1))
    assert_refused(_udm(*TRAIN, "--out", "/proc/udm-test/out"), "--out")
    assert not called


def test_checkpoint_line_printed_by_rank_0_only(tmp_path, monkeypatch, one_thread):
    out = tmp_path / "r"
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(trainer, "train", lambda config, **k: Path(config.out) / "model.pt")
    result = _udm(*TRAIN, "--out", out)
    assert result.exit_code == 0 and "checkpoint:" not in result.stdout
    monkeypatch.setenv("RANK", "0")
    result = _udm(*TRAIN, "--out", out)
    assert result.exit_code == 0 and result.stdout.count("checkpoint:") == 1


@pytest.mark.parametrize("command", ["train", "elbo", "sample", "schedule", "bench"])
def test_help_shows_defaults(command):
    text = " ".join(_udm(command, "--help").stdout.split())
    assert "[default: " in text
    if command == "train":  # generated from Config's dataclass defaults, not retyped
        defaults = Config()
        for flag, key in (("--steps", "steps"), ("--T", "T"), ("--lr", "lr")):
            chunk = text[text.index(flag + " ") :]
            assert f"[default: {getattr(defaults, key)}]" in chunk[:300], flag


def test_usage_errors_are_one_line(tmp_path):
    assert_refused(_udm("train", "--bogus"), "--bogus")
    assert_refused(_udm("sample"), "CHECKPOINT")
    assert_refused(_udm("schedule", "quadratic"), "'quadratic' is not one of", "'cosine'")


# --- the property: every combination succeeds with finite output or is refused in one line ------

_CI = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci"


def _property(ci_examples: int):
    """ci: a few derandomized examples (the profile's other settings); dev: many more."""
    return settings(
        max_examples=ci_examples if _CI else 20 * ci_examples,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@st.composite
def _options(draw, spec: dict) -> list[str]:
    """Command-line options from `spec` {flag: (good values, bad values)}: at most two flags get
    a bad value, every other flag is left out or given a good one (flags and values drawn
    from the documented set, so most runs should succeed)."""
    how_many = draw(st.sampled_from([0, 0, 0, 1, 1, 2]))  # mostly valid runs
    bad = set(draw(st.permutations(sorted(spec)))[:how_many])
    args: list[str] = []
    for flag, (good, wrong) in spec.items():
        if flag in bad and wrong:
            args += [flag, str(draw(st.sampled_from(wrong)))]
        elif good:
            value = draw(st.one_of(st.none(), st.sampled_from(good)))
            if value is True:
                args.append(flag)
            elif value is not None and value is not False:
                args += [flag, str(value)]
    return args


TRAIN_SPEC = {
    "--data": (["gaussian", "mixture", "moons"], ["imagenet", ""]),
    "--steps": ([1, 3], [-1, 0, "ten"]),
    "--batch-size": ([1, 8], [-2, 0, 10**7]),
    "--T": ([1, 2, 20], [-1, 0, 10**13]),
    "--schedule": (["linear", "cosine", "scaled-linear", "learned"], ["quadratic"]),
    "--target": (["x0", "eps", "score", "v"], ["noise"]),
    "--weighting": (["simple", "elbo"], ["bogus"]),
    "--variance": (["small", "large", "learned"], ["huge"]),
    "--width": ([8, 16], [-4, 0, 3, 10**5]),
    "--conditional": ([True], []),  # refused on gaussian (no labels)
    "--lr": ([1e-3], ["nan", "inf", -1, 0, 2]),
    "--ema-decay": ([0.9], [-0.1, 1, "nan"]),
    "--seed": ([0, 7], [-1, 2**64]),
    "--device": (["cpu"], ["mps", "tpu", "cuda:9"]),
    "--dtype": (["float32", "float64"], ["float16"]),
}


def _check(result, args: list[str], work: Path, before: set[str]) -> bool:
    """Refused in one line naming an option given (or the argument), leaving no files; or
    succeeded (True: the caller checks the outputs)."""
    assert not (result.exception and not isinstance(result.exception, SystemExit)), (
        f"{args}: traceback {result.exception!r}\n{result.output}"
    )
    event(f"exit {result.exit_code}")
    if result.exit_code == 0:
        return True
    line = assert_refused(result)
    named = [a for a in args if a.startswith("--")] + ["CHECKPOINT", "{linear|"]
    assert any(n in line for n in named), f"{args}: {line!r} names no option"
    assert _files(work) == before, f"{args}: refused but left files: {_files(work) - before}"
    return False


@_property(20)
@given(args=_options(TRAIN_SPEC), plot=st.booleans())
def test_train_property(args, plot):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out = work / "run"
        full = ["train", *args, "--out", str(out), "--quiet", *([] if plot else ["--no-plot"])]
        if "--steps" not in args:
            full += ["--steps", "2"]
        if "--T" not in args:
            full += ["--T", "10"]
        if "--batch-size" not in args:
            full += ["--batch-size", "8"]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            result = _udm(*full)
        finally:
            torch.set_num_threads(threads)
        if _check(result, full, work, set()):
            ckpt = out / "model.pt"
            assert f"checkpoint: {ckpt}" in result.stdout
            saved = torch.load(ckpt, weights_only=True)
            for part in ("model", "ema"):
                for name, v in saved[part].items():
                    assert torch.isfinite(v).all(), f"{full}: {part}.{name} not finite"


@_property(20)
@given(
    which=st.sampled_from(["plain", "cond", "learned"]),
    opts=_options(
        {
            "--n": ([2, 7, 50], [-5, 0, 1, 10**9]),
            "--batch": ([1, 16], [-1, 0, 10**7]),
            "--seed": ([0, 3], [-1]),
            "--device": (["cpu"], ["mps", "cuda:7", "tpu"]),
            "--json": ([True], []),
            "--exact": ([True], []),
            "--ode-steps": ([2, 5], [0, -1, "x"]),
        }
    ),
)
def test_elbo_property(runs, which, opts):
    args = ["elbo", str(runs[which]), *opts]
    if "--n" not in opts:
        args += ["--n", "20"]  # the default 1000 with --batch 1 is slow, not interesting
    work = runs[which].parent
    before = _files(work)
    result = _udm(*args)
    if _check(result, args, work, before):
        if "--json" in opts:
            report = json.loads(result.stdout)
            assert report["n"] >= 2, report
            numbers = [v for v in report.values() if isinstance(v, float)]
        else:
            words = result.stdout.replace(",", " ").split()
            numbers = [float(w) for w in words if _is_num(w)]
        assert numbers and all(math.isfinite(v) for v in numbers), result.stdout


def _is_num(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


@_property(40)
@given(
    which=st.sampled_from(["plain", "cond", "learned"]),
    opts=_options(
        {
            "--n": ([1, 9], [-3, 0, 10**8]),
            "--sampler": (["ancestral", "ddim"], ["euler"]),
            "--steps": ([1, 5, 20], [-1, 0, 50]),
            "--label": ([0, 2], [-1, 3]),
            "--guidance-scale": ([0, 2], ["nan", "inf", -1]),
            "--seed": ([0], [-1]),
        }
    ),
    out=st.sampled_from(["default", "new", "file"]),
)
def test_sample_property(runs, which, opts, out):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        extra = []
        if out == "new":
            extra = ["--out", str(work / "s")]
        elif out == "file":
            (work / "f").write_text("x")
            extra = ["--out", str(work / "f")]
        args = ["sample", str(runs[which]), *opts, *extra]
        default_out = runs[which].parent / "samples"
        before = _files(work)
        existed = default_out.exists()
        result = _udm(*args)
        if _check(result, args, work, before):
            folder = work / "s" if out == "new" else default_out
            x = np.load(folder / "samples.npy")
            want = int(opts[opts.index("--n") + 1]) if "--n" in opts else 64
            assert x.shape[0] == want and x.size > 0 and np.isfinite(x).all(), args
            assert (folder / "samples.png").stat().st_size > 0
        elif out == "default":
            assert default_out.exists() == existed, f"{args}: refused but made {default_out}"


@_property(40)
@given(
    name=st.sampled_from(["linear", "scaled-linear", "cosine", "linear", "cosine", "quadratic"]),
    opts=_options(
        {
            "--T": ([1, 2, 17, 1000], [-1, 0, 10**8]),
            "--beta-start": (["1e-4", "0.001"], ["nan", 0, 1]),
            "--beta-end": (["0.02", "0.5"], ["inf", "-0.1"]),
            "--dtype": (["float32", "float64"], ["float16"]),
            "--json": ([True], []),
        }
    ),
    plot=st.sampled_from([None, None, None, "s.png", "s.svg", "s.xyz", "no/s.png", "s"]),
)
def test_schedule_property(name, opts, plot):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        args = ["schedule", name, *opts]
        args += ["--plot", str(work / plot)] if plot else []
        result = _udm(*args)
        if _check(result, args, work, set()):
            if "--json" in opts:
                table = json.loads(result.stdout)
                columns = [table[k] for k in ("alpha_t", "alpha_bar_t", "snr", "log_snr")]
                assert table["T"] >= 1 and all(len(c) == table["T"] for c in columns)
                assert all(math.isfinite(v) for c in columns for v in c)
            else:
                rows = result.stdout.splitlines()[1:]
                assert rows and all(math.isfinite(float(v)) for row in rows for v in row.split()), (
                    result.stdout[:500]
                )
            if plot:
                assert (work / plot).stat().st_size > 0
