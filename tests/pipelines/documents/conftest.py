"""The templates fixture: an empty templates directory the renderer uses instead of mappings/templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.documents import render


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty templates directory the renderer uses instead of mappings/templates."""
    directory = tmp_path / "templates"
    directory.mkdir()
    monkeypatch.setattr(render, "templates_dir", lambda: directory)
    return directory
