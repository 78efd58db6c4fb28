"""The dependency rules in pyproject.toml's import-linter contracts hold: no change can add an arrow back up."""

from pathlib import Path

from importlinter import cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_are_kept(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    kept = cli.lint_imports(no_cache=True, no_logo=True)
    assert kept == cli.EXIT_STATUS_SUCCESS, capsys.readouterr().out
