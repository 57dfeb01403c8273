"""Checks of a run's config: its overlays as files, its schema in a few lines (the nearest key for a typo),
and what a JSON schema cannot say (no NaN or infinity). No torch: the Snakefile reads it."""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import jsonschema
import yaml

from rarts.pipeline.errors import InputError, MissingFile


def check_finite(node, key: str = "config") -> None:
    """Reject NaN and infinities anywhere, naming the key (`.nan` and `.inf` are valid YAML numbers and
    pass every range check of a JSON schema)."""
    if isinstance(node, dict):
        for k, v in node.items():
            check_finite(v, f"{key}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_finite(v, f"{key}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ValueError(f"{key} is {node}: every number in the config must be finite")


def known_keys(node: dict, root: dict) -> list[str]:
    """The keys a schema node declares: its own, those of a local `$ref`, and those of its
    allOf/anyOf/oneOf/then/else parts."""
    keys = list(node.get("properties", {}))
    parts = [*node.get("allOf", []), *node.get("anyOf", []), *node.get("oneOf", [])]
    parts += [node[k] for k in ("then", "else") if isinstance(node.get(k), dict)]
    if str(node.get("$ref", "")).startswith("#/"):
        target = root
        for name in node["$ref"][2:].split("/"):
            target = target[name]
        parts.append(target)
    for part in parts:
        keys += [k for k in known_keys(part, root) if k not in keys]
    return keys


def schema_problem(config: dict, schema: dict) -> str | None:
    """The config's first violation of its JSON schema in a line or a few: the key's place, what is
    wrong, and for an unknown key the nearest valid ones; None when the config is valid. (Snakemake's
    own message prints the whole config after the cause.)"""
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    where = "config" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        known = known_keys(error.schema, schema)
        lines = []
        for key in [k for k in error.instance if k not in known]:
            near = difflib.get_close_matches(str(key), known, n=3, cutoff=0.6)
            lines.append(f"{where}: unknown key {key!r}; " + (f"did you mean {' or '.join(map(repr, near))}?" if near
                                                              else f"the keys here are {', '.join(known)}"))
        return "\n".join(lines)
    message = error.message if len(error.message) < 300 else error.message[:300] + " …"
    return f"{where}: {message}"


def check_overlay(path) -> dict:
    """A config overlay as Snakemake's `--configfile` would read it, or InputError naming the file and,
    for broken YAML, the line and column (Snakemake says only "not valid JSON or YAML")."""
    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise InputError(f"{path}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML ({exc.problem})") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot be read as YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config file holds keys and values (a YAML mapping), not {type(data).__name__}")
    return data


def check_overlays_main(paths) -> None:
    for path in paths:
        check_overlay(path)
