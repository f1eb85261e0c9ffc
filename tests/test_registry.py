"""The registry: names, patterns, introspected hyperparameters, duplicates."""

import subprocess
import sys

import pytest
import torch

import optbench
from optbench.errors import DuplicateNameError, UnknownNameError
from optbench.registry import REQUIRED, Registry


def test_list_and_patterns():
    assert {"classification", "linreg"} <= set(optbench.list_problems())
    torch_names = optbench.list_optimizers("torch-*")
    assert "torch-adam" in torch_names and "gd" not in torch_names
    assert optbench.list_optimizers() == sorted(optbench.list_optimizers())


def test_hyperparameters_come_from_the_signature():
    assert optbench.get_optimizer("gd").hyperparameters() == {"lr": 0.1}
    adam = optbench.get_optimizer("torch-adam").hyperparameters()
    assert adam["lr"] == 0.001 and adam["betas"] == (0.9, 0.999)
    assert not {"foreach", "fused", "capturable", "differentiable"} & set(adam)
    assert optbench.get_optimizer("sgd").batch_size == 10 and optbench.get_optimizer("gd").batch_size is None
    assert optbench.get_problem("linreg").hyperparameters()["start"] == (-1.0, 1.0)


def test_a_fresh_registry_with_decorator_defaults_and_duplicates():
    reg = Registry("optimizer", builtins="optbench.errors")  # any importable module: nothing built in

    @reg.register("mine", defaults={"lr": 0.5}, batch_size=4, source="test")
    class Mine(torch.optim.SGD):
        """My optimizer. More text."""

        def __init__(self, params, lr=0.1, beta: float = 0.9):
            super().__init__(params, lr=lr)

    assert Mine.__name__ == "Mine"  # the decorator returns the class unchanged
    entry = reg.get("mine")
    assert entry.description == "My optimizer"
    assert entry.hyperparameters() == {"lr": 0.5, "beta": 0.9}
    assert reg.add("mine", Mine, source="again") is entry  # the same class again changes nothing
    with pytest.raises(DuplicateNameError, match="registered twice: by test and by other"):
        reg.add("mine", torch.optim.Adam, source="other")
    reg.add("mine", torch.optim.Adam, source="other", override=True)
    assert reg.get("mine").target is torch.optim.Adam
    with pytest.raises(UnknownNameError, match=r"did you mean 'mine'\?"):
        reg.get("mien")


def test_required_hyperparameters_are_marked():
    reg = Registry("optimizer", builtins="optbench.errors")

    class NeedsLr(torch.optim.SGD):
        def __init__(self, params, lr):
            super().__init__(params, lr=lr)

    reg.add("needs", NeedsLr)
    assert reg.get("needs").hyperparameters() == {"lr": REQUIRED}


def test_the_builtin_manifest_is_what_importing_the_builtins_registers():
    """`names()` answers from the manifest before the built-ins are imported: it must not drift."""
    from optbench.registry import BUILTIN_OPTIMIZERS, BUILTIN_PROBLEMS, OPTIMIZERS, PROBLEMS

    for registry, manifest in ((PROBLEMS, BUILTIN_PROBLEMS), (OPTIMIZERS, BUILTIN_OPTIMIZERS)):
        registry._ensure_loaded()
        built_in = sorted(name for name, entry in registry._entries.items() if entry.source == "built-in")
        assert built_in == sorted(manifest), registry.kind


def test_the_builtin_settings_manifest_is_what_the_classes_take():
    """`--opt` keys of built-ins are checked before torch loads from this manifest: it must not drift
    from the classes under the torch it was made for (and is not used under another)."""
    import importlib.metadata

    from optbench.registry import BUILTIN_OPTIMIZER_SETTINGS, BUILTIN_SETTINGS_TORCH, OPTIMIZERS, builtin_settings

    if importlib.metadata.version("torch").split("+")[0] != BUILTIN_SETTINGS_TORCH:
        OPTIMIZERS._loaded = False  # as before any import: builtin_settings must still decline
        assert builtin_settings("torch-sgd") is None
        pytest.skip(f"the manifest is for torch {BUILTIN_SETTINGS_TORCH}")
    OPTIMIZERS._ensure_loaded()
    for name, manifest in BUILTIN_OPTIMIZER_SETTINGS.items():
        assert manifest == tuple(OPTIMIZERS.get(name).hyperparameters()), name
    assert builtin_settings("torch-sgd") is None  # the registry is loaded: a --plugin file may have replaced it


def test_names_import_nothing():
    """Listing names (built-ins and entry points) imports neither torch nor any plugin."""
    code = (
        "import sys; from optbench.registry import OPTIMIZERS, PROBLEMS; "
        "print(OPTIMIZERS.names(), PROBLEMS.names('r*'), "
        "sorted(m for m in ('torch', 'optbench_lion') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.endswith("[]\n"), out  # no torch, no plugin module
    assert "'torch-adam'" in out and "'lion'" in out  # the example plugin is installed for the tests
    assert "['rastrigin', 'ridge', 'rosenbrock']" in out
