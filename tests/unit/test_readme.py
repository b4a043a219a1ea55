"""The README's layout table names every part of the tree a reader would look for."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def layout_text() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Layout")
    return readme[start : readme.index("\n## ", start + 1)]


def named_in_layout() -> set[str]:
    """Every `code` name in the table, and each name's last path part (rows list siblings by name)."""
    names = set(re.findall(r"`([^`]+)`", layout_text()))
    return names | {name.rstrip("/").rsplit("/", 1)[-1] for name in names}


def test_every_module_script_and_doc_is_in_the_layout_table() -> None:
    names = named_in_layout()
    tree = [
        *(path.name for path in (REPO / "src/rotator").glob("*.py") if path.name != "__init__.py"),
        *(f"{path.name}/" for path in (REPO / "src/rotator").iterdir() if path.is_dir() and path.name != "certs"),
        *(path.name for path in (REPO / "scripts").iterdir() if path.is_file()),
    ]
    missing = [name for name in tree if name not in names and name.rstrip("/") not in names]
    assert not missing, f"README's layout table does not name: {missing}"
    docs = {path.stem for path in (REPO / "docs").glob("*.md")}
    layout = layout_text()
    assert not [doc for doc in docs if doc not in layout], "a doc is missing from the docs/ row"


def test_the_layout_table_names_nothing_that_is_gone() -> None:
    for name in re.findall(r"`((?:src|tests|bench|scripts|docs)/[^`]*)`", layout_text()):
        assert (REPO / name).exists(), f"README names {name}, which is not in the tree"
