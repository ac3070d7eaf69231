"""The project's dbt profile, read as dbt would for the values the tool needs (the target's
adapter type, the DuckDB file), without running dbt: `env_var('X', 'default')` is the only
Jinja read, from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENV_VAR = re.compile(r"""env_var\(\s*['"](\w+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)""")


def read_yaml(path: Path, default: Any = None) -> Any:
    """A YAML file's data; `default` when it is missing or not YAML."""
    if not path.is_file():
        return default
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (yaml.YAMLError, UnicodeDecodeError):
        return default


def rendered(value: object, env: Mapping[str, str] | None = None) -> str:
    """A profile value with `env_var('X', 'default')` read from `env` (the environment)."""
    text = str(value)
    match = _ENV_VAR.search(text)
    if not match:
        return text.strip()
    source = os.environ if env is None else {**os.environ, **env}
    return source.get(match.group(1), match.group(2) or "").strip()


def profile_folders(root: Path) -> list[Path]:
    """Where dbt looks for profiles.yml when the tool runs it: the project first."""
    folders = [root]
    if "DBT_PROFILES_DIR" in os.environ:
        folders.append(Path(os.environ["DBT_PROFILES_DIR"]))
    return [*folders, Path.home() / ".dbt"]


def _profile(root: Path) -> tuple[str | None, dict[str, Any] | None]:
    name, profile, _ = _found(root)
    return name, profile


def _found(root: Path) -> tuple[str | None, dict[str, Any] | None, Path]:
    project = read_yaml(root / "dbt_project.yml", {}) or {}
    name = project.get("profile") if isinstance(project, dict) else None
    for folder in profile_folders(root):
        profiles = read_yaml(folder / "profiles.yml")
        if isinstance(profiles, dict) and isinstance(profiles.get(name), dict):
            return name, profiles[name], folder
    return name, None, root


def run_profiles(root: Path, env: Mapping[str, str], warehouse: Path, folder: Path) -> Path:
    """A profiles.yml in `folder` for one dbt run of the tool: the project's profile with its
    current target's output writing where the tool says, whatever the profile reads from the
    environment: the DuckDB file `warehouse` and the schema KPI_SCHEMA (when set). Returns
    the folder to pass as --profiles-dir (the project's own when its profile is not found,
    for dbt to say so)."""
    name, profile, found = _found(root)
    if name is None or profile is None:
        return found
    target = rendered(profile.get("target", "dev"), env)
    output = (profile.get("outputs") or {}).get(target)
    if not isinstance(output, dict):
        return found
    output = dict(output)
    if rendered(output.get("type", ""), env) == "duckdb":
        output["path"] = str(warehouse)
    schema = {**os.environ, **env}.get("KPI_SCHEMA")
    if schema:
        output["schema"] = schema
    document = {name: {**profile, "outputs": {**profile["outputs"], target: output}}}
    (folder / "profiles.yml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return folder


def target_output(root: Path, env: Mapping[str, str] | None = None) -> tuple[str | None, dict[str, Any] | None]:
    """The profile's name and the output of its current target (None when not found)."""
    name, profile = _profile(root)
    if profile is None:
        return name, None
    output = (profile.get("outputs") or {}).get(rendered(profile.get("target", "dev"), env))
    return name, output if isinstance(output, dict) else None


def duckdb_output(root: Path, env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The profile's DuckDB output: the current target's, else the first of type duckdb."""
    _, current = target_output(root, env)
    if current is not None and rendered(current.get("type", ""), env) == "duckdb":
        return current
    _, profile = _profile(root)
    outputs = (profile or {}).get("outputs") or {}
    return next(
        (o for o in outputs.values() if isinstance(o, dict) and rendered(o.get("type", ""), env) == "duckdb"),
        None,
    )
