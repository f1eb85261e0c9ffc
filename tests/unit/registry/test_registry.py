"""The registry: names, patterns, introspected hyperparameters, duplicates."""

import importlib
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
    reg = Registry("optimizer")  # nothing built in

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
    reg = Registry("optimizer")

    class NeedsLr(torch.optim.SGD):
        def __init__(self, params, lr):
            super().__init__(params, lr=lr)

    reg.add("needs", NeedsLr)
    assert reg.get("needs").hyperparameters() == {"lr": REQUIRED}


def test_builtins_are_registered_by_import_string_and_imported_when_first_needed():
    """The table in optbench.registry.builtins is the only registration: its names are the registry's
    built-ins, each entry's class is what its import string names, and until then nothing is imported."""
    from optbench.registry import OPTIMIZERS, PROBLEMS, builtins

    for registry, table in ((PROBLEMS, builtins.PROBLEMS), (OPTIMIZERS, builtins.OPTIMIZERS)):
        with registry.snapshot():
            registry.reset()
            assert set(table) <= set(registry.names())
            for name, found in table.items():
                entry = registry.get(name)
                module, _, attribute = found.target.partition(":")
                assert entry.target is getattr(importlib.import_module(module), attribute), name
                assert (entry.source, entry.description, entry.batch_size) == (
                    "built-in",
                    found.description,
                    found.batch_size,
                )
                assert entry.elementwise is found.elementwise
    assert optbench.get_optimizer("sgd").batch_size == 10 and optbench.get_optimizer("torch-lbfgs").elementwise is False


def test_builtin_settings_read_from_source_are_what_the_classes_take():
    """`--opt` keys of built-ins are checked before torch loads from the classes' source files: the
    answer must be what inspect.signature says once they are imported, for every built-in."""
    from optbench.registry import OPTIMIZERS, builtin_settings, builtins

    with OPTIMIZERS.snapshot():
        OPTIMIZERS.reset()
        read = {name: builtin_settings(name) for name in builtins.OPTIMIZERS}
        assert None not in read.values(), read
        for name, settings in read.items():
            assert settings == tuple(OPTIMIZERS.get(name).hyperparameters()), name
            assert builtin_settings(name) is None  # imported now: a --plugin file may have replaced it
    assert read["torch-sgd"][:3] == ("lr", "momentum", "dampening") and read["gd"] == ("lr",)
    assert builtin_settings("lion") is None  # a plugin's settings are read from its class once imported


def test_builtin_problems_read_from_source_resolve_and_cost_as_the_classes_do():
    """A built-in problem's size is checked before torch loads from its source (its signature) and its
    registry entry's cost function: the same settings, type hints and cost function as the class gives
    once imported, so the same options resolve the same way and cost the same."""
    from optbench.registry import PROBLEMS, builtins
    from optbench.registry.signatures import SourceClass
    from optbench.settings.options import resolve_settings

    with PROBLEMS.snapshot():
        PROBLEMS.reset()
        read = {name: PROBLEMS.declared(name) for name in builtins.PROBLEMS}
        assert None not in read.values(), read
        for name, entry in read.items():
            assert isinstance(entry.target, SourceClass), name  # not imported: read from its source
            imported = PROBLEMS.get(name)
            assert entry.hyperparameters() == imported.hyperparameters(), name
            assert entry.annotations() == imported.annotations(), name
            assert entry.target.cost is imported.target.cost, name  # one function, two ways to reach it
            assert PROBLEMS.declared(name) is imported  # once imported, the class itself
    given = {"n_train": "1000", "block_size": "8", "dtype": "float64"}
    assert resolve_settings(read["lm"], given, "--problem-opt") == resolve_settings(
        PROBLEMS.get("lm"), given, "--problem-opt"
    )
    with pytest.raises(TypeError, match="read from its source"):
        read["linreg"].target(seed=0)  # nothing builds the stand-in


def test_constructor_signature_reads_literal_defaults_and_declines_the_rest(tmp_path, monkeypatch):
    import inspect

    from optbench.registry.signatures import constructor_signature

    (tmp_path / "sig_pkg.py").write_text(
        "from __future__ import annotations\nimport math\n"
        "class P:\n    def __init__(self, seed: int = 0, *, n: int = 3, a: tuple[float, float] = (1.0, -2.0), "
        "noise: float | None = None):\n        pass\n"
        "class Computed:\n    def __init__(self, *, scale: float = math.pi):\n        pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    signature = constructor_signature("sig_pkg:P")
    assert [(p.name, p.default, p.annotation, p.kind.name) for p in signature.parameters.values()] == [
        ("seed", 0, "int", "POSITIONAL_OR_KEYWORD"),
        ("n", 3, "int", "KEYWORD_ONLY"),
        ("a", (1.0, -2.0), "tuple[float, float]", "KEYWORD_ONLY"),
        ("noise", None, "float | None", "KEYWORD_ONLY"),
    ]
    assert constructor_signature("sig_pkg:Computed") is None  # a default the source cannot evaluate
    assert "sig_pkg" not in sys.modules
    importlib.import_module("sig_pkg")
    assert str(signature) == str(inspect.signature(sys.modules["sig_pkg"].P))


def test_declared_batch_sizes_need_no_import():
    from optbench.registry import OPTIMIZERS

    assert OPTIMIZERS.declared_batch_size("sgd") == 10 and OPTIMIZERS.declared_batch_size("torch-adam") is None
    for composite in ("torch-muon+torch-adamw", "sgd+torch-adam", "torch-adam+sgd"):
        assert OPTIMIZERS.declared_batch_size(composite) == OPTIMIZERS.get(composite).batch_size, composite
    assert OPTIMIZERS.declared_batch_size("sgd+torch-adam") == 10  # its lead's: the first that takes an lr
    with pytest.raises(LookupError):
        OPTIMIZERS.declared_batch_size("pkg.module:Optimizer")  # an import path: only importing tells


def test_constructor_arguments_follow_reexports_and_decline_what_source_cannot_tell(tmp_path, monkeypatch):
    from optbench.registry.signatures import constructor_arguments

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from .impl import Opt as Public\nfrom pkg.impl import Loose\n")
    (tmp_path / "pkg" / "impl.py").write_text(
        "class Opt:\n    def __init__(self, params, lr=1, *, beta=2):\n        pass\n"
        "class Loose:\n    def __init__(self, params, **kwargs):\n        pass\n"
        "class Inherits(Opt):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert constructor_arguments("pkg:Public") == ("params", "lr", "beta")
    assert constructor_arguments("pkg.impl:Opt") == ("params", "lr", "beta")
    assert constructor_arguments("pkg:Loose") is None  # **kwargs: any name may be valid
    assert constructor_arguments("pkg.impl:Inherits") is None  # its __init__ is elsewhere
    assert constructor_arguments("pkg:Missing") is None and constructor_arguments("no_such_pkg.x:Y") is None
    assert "pkg" not in sys.modules  # nothing was imported


def test_a_snapshot_puts_back_what_was_registered_replaced_or_loaded(tmp_path):
    from optbench.registry import OPTIMIZERS, snapshot
    from optbench.registry.plugins import load_file, loaded_files

    gd = OPTIMIZERS.get("gd")
    plugin = tmp_path / "p.py"
    plugin.write_text("import optbench, torch\noptbench.register_optimizer('test-snap')(torch.optim.SGD)\n")
    with snapshot():
        OPTIMIZERS.add("gd", torch.optim.Adam, override=True)
        OPTIMIZERS.add("test-temporary", torch.optim.SGD)
        load_file(plugin)
        assert OPTIMIZERS.get("gd").target is torch.optim.Adam and "test-snap" in OPTIMIZERS
    assert OPTIMIZERS.get("gd") is gd
    assert "test-temporary" not in OPTIMIZERS and "test-snap" not in OPTIMIZERS
    assert plugin.resolve() not in loaded_files()  # so the next test that loads it imports it again


def test_a_builtin_name_registered_again_clashes_unless_it_is_the_same_class():
    from optbench.optimizers.gd import GradientDescent
    from optbench.registry import OPTIMIZERS

    with OPTIMIZERS.snapshot():
        OPTIMIZERS.reset()  # gd not imported into the registry yet
        assert OPTIMIZERS.add("gd", GradientDescent).source == "built-in"  # the same class: nothing changes
        OPTIMIZERS.reset()
        with pytest.raises(DuplicateNameError, match="'torch-sgd' is registered twice: by built-in and by me"):
            OPTIMIZERS.add("torch-sgd", torch.optim.Adam, source="me")


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


def test_a_restored_snapshot_looks_for_plugins_without_scanning_the_distributions_again(monkeypatch):
    """A sweep's worker restores the registries after every group of jobs and registers its plugin
    file again: the entry points come from the process's scan (a full scan of every installed
    distribution each time cost a quick bench 3 s), while the off switch is still read at every look
    and ``refresh_plugins`` and ``reset`` scan again."""
    import importlib.metadata

    from optbench.registry import OPTIMIZERS
    from optbench.registry.plugins import ENV_DISABLE

    scans = []
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: scans.append(kw) or real(**kw))
    with OPTIMIZERS.snapshot():
        OPTIMIZERS.reset()
        assert "lion" in OPTIMIZERS.names() and len(scans) == 1  # the example plugin, installed by conftest
        for _ in range(3):
            with OPTIMIZERS.snapshot():
                OPTIMIZERS._discovered = False  # as a snapshot taken before the first look restores it
                OPTIMIZERS.add("mine", torch.optim.SGD)
                assert "lion" in OPTIMIZERS.names()
        assert len(scans) == 1
        with OPTIMIZERS.snapshot():
            monkeypatch.setenv(ENV_DISABLE, "1")
            OPTIMIZERS._discovered = False
            assert "lion" not in OPTIMIZERS.names() and len(scans) == 1  # the switch, without a scan
            monkeypatch.delenv(ENV_DISABLE)
        OPTIMIZERS.refresh_plugins()
        assert len(scans) == 2
        OPTIMIZERS.reset()
        assert "lion" in OPTIMIZERS.names() and len(scans) == 3
