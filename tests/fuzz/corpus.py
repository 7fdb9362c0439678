"""The fuzz corpus on disk: ``tests/fuzz/corpus/<target>/<name>.bin``, one input a file.

Seeds are written by ``tests/fuzz/make_corpus.py`` (valid and mutated inputs, named by their
SHA-256); inputs that once crashed a decoder are added by hand as ``crash-<what>.bin`` and
kept for ever. Every run of the fuzz tests replays the whole corpus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

CORPUS_DIR: Final = Path(__file__).parent / "corpus"
MAX_CORPUS_INPUT_BYTES: Final = 64 * 1024
"""Inputs kept in the corpus are small (the repository carries them)."""


def corpus_inputs(root: Path = CORPUS_DIR) -> Iterator[tuple[str, Path]]:
    """``(target name, file)`` of every corpus input, in a fixed order."""
    if not root.is_dir():
        return
    for directory in sorted(path for path in root.iterdir() if path.is_dir()):
        for file in sorted(directory.glob("*.bin")):
            yield directory.name, file


def write_input(target: str, data: bytes, root: Path = CORPUS_DIR, name: str = "") -> Path:
    """Store ``data`` for ``target`` (named by its hash unless ``name``); its path."""
    if len(data) > MAX_CORPUS_INPUT_BYTES:
        raise ValueError(f"a corpus input is at most {MAX_CORPUS_INPUT_BYTES} bytes")
    directory = root / target
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name or hashlib.sha256(data).hexdigest()[:16]}.bin"
    path.write_bytes(data)
    return path
