"""Helpers for the contract template tests: PDFs are read back with poppler's pdftotext."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipelines.documents import render


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run `make setup` (it installs the system packages)")
    return path


def pdf_text(content: bytes, tmp_path: Path, *, layout: bool = False, page: int | None = None) -> str:
    """The PDF's text as poppler's pdftotext extracts it (an engine independent of WeasyPrint)."""
    source = tmp_path / "doc.pdf"
    source.write_bytes(content)
    args = [need("pdftotext"), "-enc", "UTF-8"]
    if layout:
        args.append("-layout")
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    return subprocess.run([*args, str(source), "-"], check=True, capture_output=True, text=True).stdout


def words(text: str) -> str:
    """Text with every run of whitespace made one space (lines wrap anywhere)."""
    return " ".join(text.split())


def sample() -> dict[str, Any]:
    return copy.deepcopy(render.SAMPLE_CONTEXT)


def write_template(directory: Path, name: str, body: str, sources: list[str] | None = None) -> None:
    (directory / f"{name}{render.TEMPLATE_SUFFIX}").write_text(body, encoding="utf-8")
    if sources is not None:
        listed = "".join(f"\n  - {s}" for s in sources) or " []"
        (directory / f"{name}{render.DECLARATION_SUFFIX}").write_text(
            f"title: Teste {name}\nsources:{listed}\n", encoding="utf-8"
        )
