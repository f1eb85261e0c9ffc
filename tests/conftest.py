import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = ROOT / "examples" / "optbench-lion"


def _example_plugin_folder() -> Path:
    """Where the example is installed, named by its sources (not what pip writes beside them: build/, *.egg-info)."""
    if os.environ.get("OPTBENCH_TEST_PLUGIN_SITE"):  # an xdist worker: the folder its controller installed into
        return Path(os.environ["OPTBENCH_TEST_PLUGIN_SITE"])
    made_by_pip = ("__pycache__", "build")
    files = sorted(
        p
        for p in EXAMPLE_PLUGIN.rglob("*")
        if p.is_file() and not set(made_by_pip) & set(p.parts) and not any(x.endswith(".egg-info") for x in p.parts)
    )
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]
    return ROOT / ".pytest_cache" / "example-plugins" / digest


def _install_example_plugin() -> Path:
    """Install examples/optbench-lion into a folder on sys.path (and PYTHONPATH, for subprocesses).

    A real `pip install` of the example distribution, so its entry point is found the way a user's
    would be; cached by the example's content so repeated test runs skip the install.
    """
    target = _example_plugin_folder()
    if not (target / "optbench_lion").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                str(target),
                str(EXAMPLE_PLUGIN),
            ],
            check=True,
        )
    return target


def pytest_configure(config):
    # The tests' problems are tiny: intra-op threads only add overhead, and on a busy 2-core machine
    # their spinning makes each small kernel up to 20x slower. One thread in every process that runs
    # tests (set before torch loads there) and in their subprocesses. torch is not imported here: an
    # xdist controller runs no test, and its 2 s of import would delay every worker's start.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # On a CPU with AVX-512, MKL's products of one run and its batched products of the same run
    # stacked with others round differently (1 ulp of float32), and lstsq changes its last bit from
    # call to call; MKL's AVX branch (Conditional Numerical Reproducibility) gives the same bits both
    # ways, so the tests can hold "stacked equals alone" exactly. Read at MKL's first call: set here,
    # before any test imports torch; subprocesses inherit it. (It costs about 4x on large products,
    # so optbench itself leaves the choice to the user: README, "Stacked and alone".)
    if _has_avx512():
        os.environ.setdefault("MKL_CBWR", "AVX")
    # pytest-xdist: the controller installs the example plugin before its workers start; a worker
    # only puts the same folder on its path (a pip install per worker would race on one folder).
    site = str(_example_plugin_folder() if hasattr(config, "workerinput") else _install_example_plugin())
    os.environ["OPTBENCH_TEST_PLUGIN_SITE"] = site
    sys.path.insert(0, site)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH")]))


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            return any(line.startswith("flags") and " avx512f" in line for line in info)
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _restore_global_rng():
    """Tests must not leak global RNG state into each other."""
    import torch

    state = torch.get_rng_state()
    yield
    torch.set_rng_state(state)


@pytest.fixture(autouse=True)
def _restore_registries():
    """Names a test registers, from classes written in a test module or from --plugin files it loads,
    do not outlive it; a file it loads loads again in the next."""
    from optbench.registry import snapshot

    with snapshot():
        yield
