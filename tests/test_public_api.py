"""The library as another program sees it: one import name that no `components/` folder shadows,
a public API in one place, a generated API reference, and a plain `pulumi up` that finds it."""

from __future__ import annotations

import importlib
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import pangeo_binder
from harness import ROOT
from pangeo_binder.api_reference import render

SOURCE_ROOT = ROOT / "components"


def python(code: str, cwd: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """The suite's interpreter in a fresh process, with no PYTHONPATH of ours."""
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


@pytest.mark.parametrize("name", pangeo_binder.__all__)
def test_every_public_name_is_the_object_at_its_private_path(name: str) -> None:
    if name == "__version__":
        assert pangeo_binder.__version__.count(".") == 2
        return
    module, attribute = pangeo_binder._EXPORTS[name]
    assert getattr(pangeo_binder, name) is getattr(importlib.import_module(module), attribute)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="GcpCluster"):
        _ = pangeo_binder.GcpCluster


def test_the_version_is_the_packages_own() -> None:
    from importlib.metadata import version

    assert version("pangeo-binder") == pangeo_binder.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {pangeo_binder.__version__} " in changelog


def test_the_package_ships_its_type_marker() -> None:
    assert (SOURCE_ROOT / "pangeo_binder" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()


def test_importing_the_package_loads_no_cloud_sdk(tmp_path: Path) -> None:
    result = python(
        """
        import sys
        import pangeo_binder
        print(sorted(m for m in ("pulumi_gcp", "pulumi_aws") if m in sys.modules))
        pangeo_binder.GcpCloud
        print(sorted(m for m in ("pulumi_gcp", "pulumi_aws") if m in sys.modules))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    # The config models need neither SDK; only the components that build resources do.
    assert result.stdout.split("\n")[:2] == ["[]", "[]"]


def test_a_program_with_its_own_components_package_still_imports_ours(tmp_path: Path) -> None:
    """An adopter's program that has a `components/` package of its own (the old import name
    of this library) gets both: theirs as `components`, ours as `pangeo_binder`."""
    own = tmp_path / "components"
    own.mkdir()
    (own / "__init__.py").write_text('WHOSE = "the adopter\'s"\n')
    result = python(
        """
        import components
        import pangeo_binder
        from pangeo_binder import GcpStack
        print(components.WHOSE)
        print(pangeo_binder.__file__)
        print(GcpStack.__module__)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    whose, ours, module = result.stdout.splitlines()
    assert whose == "the adopter's"
    assert Path(ours).resolve() == (SOURCE_ROOT / "pangeo_binder" / "__init__.py").resolve()
    assert module == "pangeo_binder.gcp.stack"


def test_plain_pulumi_up_finds_the_package_from_the_checkout(tmp_path: Path) -> None:
    """Pulumi's pip toolchain installs requirements.txt only, which cannot name this folder:
    `__main__.py` must find the package itself. Simulated with the suite's site-packages but
    without its `.pth` files (so without our editable install), then the program run as the
    engine runs it: it gets as far as reading its (empty) config, so every import worked."""
    site = sysconfig.get_paths()["purelib"]
    bare = f"import sys; sys.path.append({site!r})\n"
    without = python(bare + "import pangeo_binder", tmp_path, "-S")
    assert "No module named 'pangeo_binder'" in without.stderr  # the simulation holds
    result = python(
        bare
        + textwrap.dedent(
            f"""
            import runpy
            try:
                runpy.run_path({str(ROOT / "__main__.py")!r}, run_name="__main__")
            except Exception as error:
                print(type(error).__name__, error)
            """
        ),
        tmp_path,
        "-S",
    )
    assert "ModuleNotFoundError" not in result.stdout + result.stderr
    assert "RunError" in result.stdout and "pangeo-binder stack config" in result.stdout


def test_the_api_reference_is_generated_from_the_code() -> None:
    page = (ROOT / "docs" / "reference" / "api.md").read_text()
    assert page == render(), (
        "run: .venv/bin/python -m pangeo_binder.api_reference > docs/reference/api.md"
    )


def test_the_api_reference_covers_every_public_name() -> None:
    page = render()
    missing = [name for name in pangeo_binder._EXPORTS if f"### `{name}`" not in page]
    assert missing == []
    assert "Type token: `pangeo-binder:gcp:Stack`." in page
    assert "service_accounts: WorkloadServiceAccounts," in page


def test_type_checkers_see_exactly_the_public_names() -> None:
    """The `if TYPE_CHECKING:` imports in __init__.py repeat the table for type checkers: the
    same names, from the same places."""
    import ast

    tree = ast.parse((SOURCE_ROOT / "pangeo_binder" / "__init__.py").read_text())
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    ]
    seen = {
        alias.asname or alias.name: (node.module, alias.name)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == pangeo_binder._EXPORTS
