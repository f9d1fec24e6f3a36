"""The top-level API a user types: `rj.load`, `rj.rlm`, `rj.sub_llm`, `rj.Budget`, `rj.Trace`."""

import rlm_jupyter as rj


def test_rlm_is_callable_even_after_its_subpackage_is_imported(samples):
    import rlm_jupyter.engine.loop  # noqa: F401  (binds rlm_jupyter.engine to the subpackage)

    ctx = rj.load(samples / "claude-code" / "codemie-session-9eda1058.jsonl")
    run = rj.rlm("Which write did the user reject?", context=ctx, budget=rj.Budget(iterations=6))
    assert run.status == "done"
    assert "toolu_bdrk_01SKk2dM5q1c8gecaoatnwJn" in run.answer
    assert isinstance(run.trace, rj.Trace)
    assert run.usage["calls"] >= 2


def test_sub_llm_offline_is_extractive_and_reports_usage():
    text = (
        "Question: which store did we keep?\n\nWe decided to keep the in-process dict for sessions. "
        "We rejected Redis sessions because the deployment has a single node. The weather was fine."
    )
    c = rj.sub_llm(text)
    assert "in-process dict" in c.text or "Redis" in c.text
    assert "weather" not in c.text
    assert c.tokens_in > 0 and c.tokens_out > 0 and c.cost_usd == 0.0


# ---- the public API, pinned ------------------------------------------------------------------------------------

PUBLIC = [
    "Budget",
    "Context",
    "Run",
    "Trace",
    "__version__",
    "batch",
    "compare",
    "discover",
    "export",
    "load",
    "rerun",
    "rlm",
    "samples",
    "scan",
    "sub_llm",
    "xray",
    "xray_corpus",
]
CALLABLE = [n for n in PUBLIC if n[0].islower() and not n.startswith("__")]  # the functions: all but classes


def test_public_api_is_pinned_and_tab_completion_offers_it():
    assert sorted(rj.__all__) == PUBLIC  # a change here is a change of the public API: say so in the changelog
    assert dir(rj) == PUBLIC  # what `rj.<TAB>` offers: the API, lazy names included, no helpers
    for name in PUBLIC:
        assert getattr(rj, name) is not None, name


def test_no_public_function_shares_its_name_with_a_module():
    """`rj.rlm`, `rj.xray`, `rj.compare`, `rj.export` and `rj.batch` live in packages of other names (engine,
    window, comparison, interop, study): importing every subpackage leaves each name the function (a module of the
    same name would replace the attribute the moment it was imported)."""
    import importlib
    import pkgutil
    import types

    modules = [m.name for m in pkgutil.iter_modules(rj.__path__)]
    assert not set(modules) & set(rj.__all__), "a module named like a public function would shadow it"
    for name in ("engine", "window", "comparison", "interop", "study"):
        importlib.import_module(f"rlm_jupyter.{name}")
    for name in CALLABLE:
        f = getattr(rj, name)
        assert callable(f) and not isinstance(f, types.ModuleType), name
    for name in ("Budget", "Context", "Run", "Trace"):
        assert isinstance(getattr(rj, name), type), name


def test_python_and_npm_versions_are_one():
    import json
    from pathlib import Path

    package = json.loads((Path(__file__).parents[1] / "labextension" / "package.json").read_text())
    assert package["version"] == rj.__version__, (
        f"labextension/package.json has version {package['version']}, rlm_jupyter/__init__.py {rj.__version__}: "
        "set both to the same version (the Python one is the source)"
    )


def test_a_deprecation_warning_from_our_code_fails_the_test(pytestconfig):
    import warnings

    import pytest

    if not pytestconfig.pluginmanager.has_plugin("warnings"):
        pytest.skip("run with -p no:warnings: pyproject's filterwarnings are not applied")
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old call", DeprecationWarning, "rlm_jupyter/x.py", 1, module="rlm_jupyter.x")
    with pytest.warns(DeprecationWarning):  # another library's deprecation stays a warning
        warnings.warn_explicit("old call", DeprecationWarning, "polars/x.py", 1, module="polars.x")


def test_sample_sessions_are_kept_once():
    """The package's samples are not copied into tests/data/samples: the tests read them through sample_tree()."""
    from pathlib import Path

    from rlm_jupyter.testing.samples import PACKAGE, SHARED, TEST_ONLY, sample_tree

    package = {p.relative_to(PACKAGE): p.read_bytes() for p in PACKAGE.rglob("*") if p.is_file()}
    copies = [
        str(p)
        for p in TEST_ONLY.rglob("*")
        if p.is_file() and p.name != "SOURCES.md" and package.get(p.relative_to(TEST_ONLY)) == p.read_bytes()
    ]
    assert not copies, f"byte-identical copies of package samples in tests/data/samples: {copies}"
    tree = sample_tree()
    for rel in SHARED:
        assert (tree / rel).read_bytes() == package[Path(rel)]
    assert (tree / "rlm-logs").is_dir()  # and the test-only samples
