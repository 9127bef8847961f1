"""GPU workers without GPUs: a fake inventory (--exp-gpus ids, a fake nvidia-smi for auto), and
what each process sees at conftest.py import and inside its tests."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_exp import gpu, report
from pytest_exp.settings import gpus_value
from pytest_exp.store import Store
from pytest_exp.trial import TrialRecord

VISIBLE, ORDER, OWNED = gpu.VISIBLE, gpu.ORDER, gpu.OWNED

# Every process writes what it sees: at conftest.py import, and in each test.
CONFTEST = """
import json, os
from pathlib import Path

import pytest

def write(name, exp_gpus=None):
    folder = Path(__file__).parent / "seen"
    folder.mkdir(exist_ok=True)
    env = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "PYTEST_EXP_GPUS")}
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (folder / f"{worker}-{name}.json").write_text(json.dumps(dict(env, exp_gpus=exp_gpus)))

write("import")

@pytest.fixture
def seen():
    return write
"""

TESTS = """
import os, pytest

@pytest.mark.space({"a": list(range(8))})
def test_it(a, exp_gpus, seen):
    seen(f"test-{a}", exp_gpus)

@pytest.mark.needs_gpu
def test_needs_gpu(exp_gpus):
    assert exp_gpus
"""


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Set, then removed: monkeypatch remembers the original either way and puts it back.
    for name in (VISIBLE, ORDER, OWNED, "PYTEST_XDIST_WORKER"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    # Eight fake GPUs, whatever this machine has: explicit ids are checked against nvidia-smi.
    fake_smi(tmp_path, monkeypatch, smi_lines(8))


def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, status: int = 0) -> None:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\nexit {status}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def smi_lines(count: int) -> str:
    return "".join(f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i:08d}-0000)\n" for i in range(count))


def sweep(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(TESTS)


def seen(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    """What each process saw: ``{"gw0-import": {...}, "gw0-test-3": {...}}``."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((pytester.path / "seen").glob("*.json"))}


def visible_by_worker(views: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """Each process's CUDA_VISIBLE_DEVICES at conftest.py import, after checking that its tests
    saw the same, and that exp_gpus said the same."""
    imports = {k.removesuffix("-import"): v for k, v in views.items() if k.endswith("-import")}
    for key, view in views.items():
        worker, _, name = key.partition("-")
        if name.startswith("test-"):
            expected = imports[worker]
            assert view[VISIBLE] == expected[VISIBLE]
            assert view[OWNED] == expected[OWNED]
            assert view["exp_gpus"] == list(gpu.parse_ids(expected[OWNED] or ""))
    return {w: v[VISIBLE] for w, v in imports.items()}


def stored(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        return [r.to_dict() for r in store.trials(store.run(None).id)]


# --------------------------------------------------------------------------- unit


@pytest.mark.parametrize(
    ("text", "expected"), [("auto", "auto"), (" None ", "none"), ("0,2,3", (0, 2, 3)), ("7", (7,))]
)
def test_gpus_setting(text: str, expected: object) -> None:
    assert gpus_value(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("all", "expected auto, none or distinct device ids such as 0,2,3"),
        ("0,,1", "expected auto, none or distinct device ids such as 0,2,3"),
        ("-1", "expected auto, none or distinct device ids such as 0,2,3"),
        ("1,2,1", "expected auto, none or distinct device ids such as 0,2,3 (1 is listed twice)"),
        (
            "99999999999999999999",
            "expected auto, none or distinct device ids such as 0,2,3 "
            "(99999999999999999999 is not a device id: CUDA numbers devices up to 2147483647)",
        ),
    ],
)
def test_gpus_setting_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^" + re.escape(message) + "$"):
        gpus_value(text)


@pytest.mark.parametrize(
    ("text", "ids"), [("3,5", (3, 5)), (" 1 , 0 ", (1, 0)), ("", ()), ("-1", ()), ("0,-1,2", (0,))]
)
def test_outer_visible_devices_read_as_cuda_reads_them(text: str, ids: tuple[int, ...]) -> None:
    assert gpu.parse_visible(text) == ids


def test_outer_visible_devices_errors() -> None:
    with pytest.raises(gpu.GpuError) as e:
        gpu.parse_visible("GPU-5b8c,1")
    assert str(e.value) == (
        "CUDA_VISIBLE_DEVICES=GPU-5b8c,1: pytest-exp needs device indexes such as 0,2 "
        "(got 'GPU-5b8c'; GPU UUIDs and MIG devices are not supported)"
    )
    with pytest.raises(gpu.GpuError, match=r"^CUDA_VISIBLE_DEVICES=1,1 lists device 1 twice$"):
        gpu.parse_visible("1,1")


def probe(ids: tuple[int, ...] | None, why: str = "") -> gpu.Probe:
    return lambda: (ids, why)


def test_auto_takes_the_outer_visible_devices_before_probing() -> None:
    probes = {"nvidia-smi": probe((0, 1, 2, 3, 4, 5))}
    inventory = gpu.discover("auto", "--exp-gpus", {VISIBLE: "3,5"}, probes)
    assert inventory == gpu.Inventory((3, 5), "from CUDA_VISIBLE_DEVICES=3,5")
    hidden = gpu.discover("auto", "--exp-gpus", {VISIBLE: "-1"}, probes)
    assert hidden == gpu.Inventory(
        (), "", "--exp-gpus auto found none: CUDA_VISIBLE_DEVICES='-1' hides every GPU"
    )


def test_auto_probes_nvidia_smi_then_nvml() -> None:
    smi_missing, nvml_has_two = probe(None, "no nvidia-smi on PATH"), probe((0, 1))
    found = gpu.discover("auto", "--exp-gpus", {}, {"nvidia-smi": smi_missing, "NVML": nvml_has_two})
    assert found == gpu.Inventory((0, 1), "from NVML")
    # nvidia-smi ran and listed nothing: NVML would say the same, so it is not asked.
    smi_empty = probe((), "nvidia-smi -L listed no GPU")
    none = gpu.discover("auto", "exp_gpus", {}, {"nvidia-smi": smi_empty, "NVML": nvml_has_two})
    assert none.note == "exp_gpus auto found none (no CUDA_VISIBLE_DEVICES, nvidia-smi -L listed no GPU)"
    neither = {"nvidia-smi": smi_missing, "NVML": probe(None, "no pynvml module for NVML")}
    assert gpu.discover("auto", "--exp-gpus", {}, neither).note == (
        "--exp-gpus auto found none "
        "(no CUDA_VISIBLE_DEVICES, no nvidia-smi on PATH, no pynvml module for NVML)"
    )


def test_a_list_names_physical_ids_or_indexes_into_the_outer_visible_devices() -> None:
    assert gpu.discover((0, 2), "--exp-gpus", {}) == gpu.Inventory((0, 2), "from --exp-gpus")
    mapped = gpu.discover((1,), "--exp-gpus", {VISIBLE: "3,5"})
    assert mapped == gpu.Inventory((5,), "--exp-gpus 1 of CUDA_VISIBLE_DEVICES=3,5")
    with pytest.raises(gpu.GpuError) as e:
        gpu.discover((0, 2), "--exp-gpus", {VISIBLE: "3,5"})
    assert str(e.value) == (
        "--exp-gpus 0,2: CUDA_VISIBLE_DEVICES=3,5 makes 2 GPUs visible (0..1), so 2 is not one of them; "
        "under CUDA_VISIBLE_DEVICES the ids count its devices from 0"
    )


def test_ids_must_be_devices_the_probe_lists() -> None:
    # --exp-gpus 9 on a machine with two GPUs was exported as CUDA_VISIBLE_DEVICES (issue 15).
    two = {"nvidia-smi": probe((0, 1))}
    assert gpu.discover((1, 0), "--exp-gpus", {}, two) == gpu.Inventory((1, 0), "from --exp-gpus")
    with pytest.raises(gpu.GpuError) as e:
        gpu.discover((0, 9), "--exp-gpus", {}, two)
    assert str(e.value) == (
        "--exp-gpus 0,9: nvidia-smi lists GPUs 0,1, so 9 is not one of them; give ids it lists, or auto"
    )
    with pytest.raises(gpu.GpuError) as e:
        gpu.discover((0,), "exp_gpus", {}, {"nvidia-smi": probe(()), "NVML": probe((0,))})
    assert str(e.value) == (
        "exp_gpus 0: nvidia-smi lists no GPU, so 0 is not one of them; give ids it lists, or auto"
    )
    # Where nothing can list devices, the ids are the user's word; the next probe that runs decides.
    blind = {"nvidia-smi": probe(None, "no nvidia-smi on PATH"), "NVML": probe(None, "no pynvml")}
    assert gpu.discover((5,), "--exp-gpus", {}, blind).devices == (5,)
    nvml = {"nvidia-smi": probe(None, "no nvidia-smi on PATH"), "NVML": probe((0, 1, 2))}
    with pytest.raises(gpu.GpuError, match=r"^--exp-gpus 5: NVML lists GPUs 0,1,2, so 5 is not one of them"):
        gpu.discover((5,), "--exp-gpus", {}, nvml)


def test_an_id_nvidia_smi_does_not_list_is_a_usage_error(pytester: pytest.Pytester) -> None:
    sweep(pytester)
    result = pytester.runpytest("--exp-gpus", "3,8")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --exp-gpus 3,8: nvidia-smi lists GPUs 0,1,2,3,4,5,6,7, so 8 is not one of them; "
            "give ids it lists, or auto"
        ]
    )


def test_groups_assignment_and_header() -> None:
    labels = {"gpus": "--exp-gpus", "gpus_per_worker": "--exp-gpus-per-worker"}
    plan = gpu.make_plan((0, 1, 2, 3, 4), 2, False, labels, {})
    assert plan is not None
    assert plan.groups == [(0, 1), (2, 3)]  # 4 is left over
    assert plan.assign(2) == [(0, 1), (2, 3)]
    assert plan.describe(plan.assign(2), "workers get") == (
        "exp: GPUs 0,1,2,3,4 (from --exp-gpus), 2 per worker; workers get 0,1 | 2,3; 4 unused"
    )
    with pytest.raises(gpu.GpuError) as e:
        plan.assign(3)
    assert str(e.value) == (
        "3 workers but only 2 fit: GPUs 0,1,2,3,4 (from --exp-gpus) at 2 per worker; use -n 2 (or -n auto), "
        "or --exp-gpus-share to let workers share GPUs"
    )
    shared = gpu.make_plan((0, 1), 1, True, labels, {})
    assert shared is not None
    assert shared.assign(3) == [(0,), (1,), (0,)]
    assert shared.describe(shared.assign(3), "workers get").endswith("workers get 0 | 1 | 0 (shared)")
    assert gpu.make_plan("none", 1, False, labels, {}) is None
    with pytest.raises(gpu.GpuError) as e:
        gpu.make_plan((0, 1), 3, False, labels, {})
    assert str(e.value) == (
        "--exp-gpus-per-worker 3 needs 3 GPUs per worker, but there are only 2 (0,1, from --exp-gpus)"
    )


def test_worker_specs_carry_their_devices() -> None:
    plan = gpu.Plan(gpu.Inventory((3, 5), "from CUDA_VISIBLE_DEVICES=3,5"))
    specs, groups = gpu.pin_specs(["2*popen//python=python3"], plan)
    assert groups == [(3,), (5,)]
    assert specs == [
        "popen//python=python3//env:CUDA_VISIBLE_DEVICES=3//env:CUDA_DEVICE_ORDER=PCI_BUS_ID//env:PYTEST_EXP_GPUS=3",
        "popen//python=python3//env:CUDA_VISIBLE_DEVICES=5//env:CUDA_DEVICE_ORDER=PCI_BUS_ID//env:PYTEST_EXP_GPUS=5",
    ]
    with pytest.raises(gpu.GpuError, match=r"^--exp-gpus pins local workers only, and --tx ssh=h is not one"):
        gpu.pin_specs(["popen", "ssh=h"], plan)
    with pytest.raises(
        gpu.GpuError, match=r"^--tx popen//env:CUDA_VISIBLE_DEVICES=1 sets CUDA_VISIBLE_DEVICES"
    ):
        gpu.pin_specs(["popen//env:CUDA_VISIBLE_DEVICES=1"], plan)


def test_nvidia_smi_is_read_for_whole_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mig = "  MIG 1g.10gb     Device  0: (UUID: MIG-0000)\n"
    fake_smi(tmp_path, monkeypatch, smi_lines(2) + mig)
    assert gpu.nvidia_smi() == ((0, 1), "")
    fake_smi(
        tmp_path, monkeypatch, "NVIDIA-SMI has failed because it couldn't communicate with the driver\n", 9
    )
    assert gpu.nvidia_smi() == (None, "nvidia-smi -L failed (exit status 9)")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert gpu.nvidia_smi() == (None, "no nvidia-smi on PATH")


# --------------------------------------------------------------------------- sessions


def test_single_process_gets_the_first_group_from_conftest_import_on(pytester: pytest.Pytester) -> None:
    sweep(pytester)
    result = pytester.runpytest("--exp-gpus", "0,1,2,3", "--exp-gpus-per-worker", "2")
    result.assert_outcomes(passed=9)
    assert (
        "exp: GPUs 0,1,2,3 (from --exp-gpus), 2 per worker; this process gets 0,1; 2,3 unused"
        in result.outlines
    )
    views = seen(pytester)
    assert views["main-import"] == {VISIBLE: "0,1", ORDER: "PCI_BUS_ID", OWNED: "0,1", "exp_gpus": None}
    assert visible_by_worker(views) == {"main": "0,1"}
    assert [t["gpus"] for t in stored(pytester)] == [[0, 1]] * 8
    assert VISIBLE not in os.environ  # given back at the end of the run


def test_two_workers_each_see_their_own(pytester: pytest.Pytester) -> None:
    sweep(pytester)
    result = pytester.runpytest("-n", "2", "--exp-gpus", "0,1,2,3")
    result.assert_outcomes(passed=9)
    assert (
        "exp: GPUs 0,1,2,3 (from --exp-gpus), 1 per worker; workers get 0 | 1; 2,3 unused" in result.outlines
    )
    views = seen(pytester)
    # The controller runs no test: its own environment is left alone.
    assert visible_by_worker(views) == {"main": None, "gw0": "0", "gw1": "1"}
    assert {views[w][ORDER] for w in ("gw0-import", "gw1-import")} == {"PCI_BUS_ID"}
    by_worker = {"gw0": [0], "gw1": [1]}
    assert all(t["gpus"] == by_worker[t["worker"]] for t in stored(pytester))
    result.stdout.fnmatch_lines(["#  a   fit_time  runs  gpus  status"])
    assert VISIBLE not in os.environ


@pytest.mark.parametrize(
    ("args", "outer", "expected"),
    [
        (["-n", "4", "--exp-gpus", "0,1,2,3"], None, {"gw0": "0", "gw1": "1", "gw2": "2", "gw3": "3"}),
        (["-n", "auto", "--exp-gpus", "auto"], None, {"gw0": "0", "gw1": "1", "gw2": "2", "gw3": "3"}),
        (
            ["-n", "2", "--exp-gpus", "0,1,2,3", "--exp-gpus-per-worker", "2"],
            None,
            {"gw0": "0,1", "gw1": "2,3"},
        ),
        (["-n", "2", "--exp-gpus", "auto"], "3,5", {"gw0": "3", "gw1": "5"}),
        (["--exp-gpus", "1"], "3,5", {"main": "5"}),
    ],
    ids=["n4-list", "nauto-smi", "k2", "outer-auto", "outer-list"],
)
def test_worker_devices(
    pytester: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    outer: str | None,
    expected: dict[str, str],
) -> None:
    fake_smi(
        tmp_path, monkeypatch, smi_lines(4)
    )  # 4 GPUs for auto, unless CUDA_VISIBLE_DEVICES says otherwise
    if outer is not None:
        monkeypatch.setenv(VISIBLE, outer)
    sweep(pytester)
    pytester.runpytest(*args).assert_outcomes(passed=9)
    controller = {"main": outer} if "-n" in args else {}
    assert visible_by_worker(seen(pytester)) == controller | expected
    assert os.environ.get(VISIBLE) == outer


def test_a_crashed_workers_replacement_keeps_its_devices(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import os, pytest

        @pytest.mark.space({"a": list(range(8))})
        def test_it(a, exp_gpus, seen):
            seen(f"test-{a}", exp_gpus)
            if a == 3:
                os._exit(1)
        """
    )
    result = pytester.runpytest("-n", "2", "--exp-gpus", "0,1,2,3", "--max-worker-restart", "1")
    result.assert_outcomes(passed=7, failed=1)
    views = seen(pytester)
    visible = visible_by_worker(views)
    crashed = next(k.partition("-")[0] for k in views if k.endswith("-test-3"))
    assert sorted(visible) == ["gw0", "gw1", "gw2", "main"]
    assert visible["gw2"] == visible[crashed]
    assert {visible["gw0"], visible["gw1"]} == {"0", "1"}
    records = {t["params"]["a"]: t for t in stored(pytester)}
    assert records[3]["status"] == "crashed"
    assert records[3]["gpus"] == [int(visible[crashed])]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["-n", "5", "--exp-gpus", "0,1,2,3"],
            "5 workers but only 4 fit: GPUs 0,1,2,3 (from --exp-gpus) at 1 per worker; "
            "use -n 4 (or -n auto), or --exp-gpus-share to let workers share GPUs",
        ),
        (
            ["--exp-gpus", "0,1", "--exp-gpus-per-worker", "4"],
            "--exp-gpus-per-worker 4 needs 4 GPUs per worker, but there are only 2 (0,1, from --exp-gpus)",
        ),
        (
            ["--exp-gpus", "1,1"],
            "argument --exp-gpus: invalid value '1,1': "
            "expected auto, none or distinct device ids such as 0,2,3 (1 is listed twice)",
        ),
    ],
    ids=["too-many-workers", "too-few-gpus", "bad-list"],
)
def test_usage_errors(pytester: pytest.Pytester, args: list[str], error: str) -> None:
    sweep(pytester)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any(line.endswith(error) for line in result.errlines), result.errlines
    assert VISIBLE not in os.environ


def test_sharing_deals_groups_round_robin(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nexp_gpus = 0,1\nexp_gpus_share = true\n")
    sweep(pytester)
    result = pytester.runpytest("-n", "3")
    result.assert_outcomes(passed=9)
    assert "exp: GPUs 0,1 (from exp_gpus), 1 per worker; workers get 0 | 1 | 0 (shared)" in result.outlines
    assert visible_by_worker(seen(pytester)) == {"main": None, "gw0": "0", "gw1": "1", "gw2": "0"}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["inprocess", "xdist"])
def test_none_leaves_the_environment_as_it_was(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    monkeypatch.setenv(VISIBLE, "7")
    sweep(pytester)
    result = pytester.runpytest(*workers, "-rs")
    result.assert_outcomes(passed=8, skipped=1)
    assert not [line for line in result.outlines if line.startswith("exp: GPUs")]
    result.stdout.fnmatch_lines(
        ["SKIPPED * needs a GPU, and this process owns none: --exp-gpus is none (try --exp-gpus auto)"]
    )
    views = seen(pytester)
    assert all(v[VISIBLE] == "7" and v[ORDER] is None and v[OWNED] is None for v in views.values())
    assert all(v["exp_gpus"] in (None, []) for v in views.values())
    assert [t["gpus"] for t in stored(pytester)] == [[]] * 8
    result.stdout.fnmatch_lines(["#  a   fit_time  runs  status"])  # no gpus column
    assert os.environ[VISIBLE] == "7"


def test_auto_without_gpus_says_so_and_skips_gpu_tests(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_smi(
        tmp_path, monkeypatch, "NVIDIA-SMI has failed because it couldn't communicate with the driver\n", 9
    )
    monkeypatch.setitem(gpu.PROBES, "NVML", probe(None, "no pynvml module for NVML"))
    sweep(pytester)
    result = pytester.runpytest("--exp-gpus", "auto", "-rs")
    result.assert_outcomes(passed=8, skipped=1)
    reason = (
        "--exp-gpus auto found none (no CUDA_VISIBLE_DEVICES, nvidia-smi -L failed (exit status 9), "
        "no pynvml module for NVML)"
    )
    assert f"exp: GPUs none: {reason}; CUDA_VISIBLE_DEVICES left as it is" in result.outlines
    result.stdout.fnmatch_lines([f"SKIPPED * needs a GPU, and this process owns none: {reason}"])
    assert seen(pytester)["main-import"][VISIBLE] is None


def test_exp_gpus_fails_when_the_devices_were_changed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def meddle(monkeypatch):
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")

        def test_meddled(meddle, exp_gpus):
            pass

        def test_fine(exp_gpus):
            assert exp_gpus == [2]
        """
    )
    result = pytester.runpytest("--exp-gpus", "2")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "CUDA_VISIBLE_DEVICES is now '3', but pytest-exp pinned this process to GPU 2 "
            "(CUDA_VISIBLE_DEVICES=2); a test, fixture or library changed it, and CUDA may already be "
            "using the old value: leave it as set and pick devices among exp_gpus"
        ]
    )


@given(
    devices=st.lists(st.integers(0, 63), unique=True, min_size=1, max_size=16),
    per_worker=st.integers(1, 4),
    workers=st.integers(1, 20),
)
def test_groups_are_disjoint_and_sharing_deals_them_in_turn(
    devices: list[int], per_worker: int, workers: int
) -> None:
    plan = gpu.Plan(gpu.Inventory(tuple(devices), "from --exp-gpus"), per_worker, share=True)
    groups = plan.groups
    assert len(groups) == len(devices) // per_worker
    assert all(len(g) == per_worker for g in groups)
    assert [i for g in groups for i in g] == devices[: len(groups) * per_worker]
    if groups:
        assigned = plan.assign(workers)
        assert assigned[: len(groups)] == groups[:workers]
        assert all(assigned[i] == groups[i % len(groups)] for i in range(workers))


def test_summary_table_shows_each_configurations_gpus() -> None:
    def record(a: int, run: int, gpus: list[int]) -> TrialRecord:
        return TrialRecord(
            "t", "test_it", f"c{a}", run, {"a": a}, 0, {"m": [a]}, "passed", duration=1.5, gpus=gpus
        )

    records = [record(1, 1, [0, 1]), record(1, 2, [2, 3]), record(2, 1, [0, 1]), record(2, 2, [0, 1])]
    assert report.table(records, None).splitlines()[1:] == [
        "#  a      m  fit_time  runs  gpus     status",
        "-  -  -----  --------  ----  -------  ------",
        "1  1  1 ± 0   1.5 ± 0     2  0,1/2,3  passed",
        "2  2  2 ± 0   1.5 ± 0     2  0,1      passed",
    ]
    assert "gpus" not in report.table([record(1, 1, [])], None)


def test_needs_gpu_skips_what_the_marker_marks_not_what_a_keyword_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_module="""
        import pytest

        pytestmark = pytest.mark.needs_gpu

        def test_in_a_marked_module():
            pass
        """,
        test_class="""
        import pytest

        @pytest.mark.needs_gpu
        class TestMarked:
            def test_in_a_marked_class(self):
                pass

        def test_with_an_attribute_of_that_name():
            pass

        test_with_an_attribute_of_that_name.needs_gpu = True  # a keyword of the item, not a marker
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--exp-gpus", "none", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
