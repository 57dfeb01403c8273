"""Atomic file output: every result and checkpoint is written to a temp file and renamed, with the
permissions the umask gives new files (collaborators on a shared cluster can read results)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from rarts.pipeline.errors import DiskFull, InputError, MissingFile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 whatever the umask
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as a RuntimeError, no errno
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or shutil.disk_usage(path.parent).free < 2**20:
            raise DiskFull(errno.ENOSPC, f"no space left (or quota exceeded) writing {path}: free space "
                           "on its device and run again") from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path, obj: Any) -> None:
    """Strict JSON: a NaN or infinity anywhere is refused, naming the file."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"refusing to write {path}: it would hold NaN or infinity ({exc})") from exc
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def read_json(path) -> Any:
    """A JSON file's value; InputError naming the file when it is missing, unreadable or not JSON."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise MissingFile(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def require(obj: Any, keys, where: str) -> None:
    """InputError naming the first of `keys` that the JSON object `obj` (read from `where`) lacks."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object with {', '.join(map(repr, keys))}, "
                         f"found {type(obj).__name__}")
    for key in keys:
        if key not in obj:
            raise InputError(f"{where}: missing the key {key!r} (it needs {', '.join(map(repr, keys))})")


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_torch(path, obj: Any) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def write_csv(path, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_figure(fig, path) -> None:
    """Save a matplotlib figure atomically, in the format its suffix names."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), bbox_inches="tight", dpi=150)
