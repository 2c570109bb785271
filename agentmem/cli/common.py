"""Helpers shared by the CLI modules: options, error handling, output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agentmem.errors import AgentMemError
from generators.base import GeneratorError, get_world_generator, world_backends

if TYPE_CHECKING:
    from generators.world import WorldGenerator

DB_HELP = "Memory directory."  # its default is shown by show_default, once


def default_db() -> str:
    return os.environ.get("AGENTMEM_DB", "memory")


def db_option(f: Callable) -> Callable:
    return click.option(
        "--db",
        "db",
        default=default_db,
        show_default="$AGENTMEM_DB or ./memory",
        type=click.Path(file_okay=False),
        help=DB_HELP,
    )(f)


def world_backend_options(f: Callable) -> Callable:
    """``--backend`` (choices: the world back-end registry) and ``--model`` (weights of a diffusers back end)."""
    f = click.option("--model", default=None, help="Weights (local folder or hub id) of a diffusers back end.")(f)
    return click.option(
        "--backend",
        default="preview",
        show_default=True,
        type=click.Choice(world_backends()),
        help="World back end: preview is a CPU preview, not a learned model; the others are diffusers pipelines "
        "and need --model.",
    )(f)


def world_generator(backend: str, model: str | None) -> WorldGenerator:
    """The world back end ``backend``: the preview takes no weights, a diffusers one needs ``model``."""
    from agentmem.errors import BadInputError

    if backend == "preview":
        if model:
            raise BadInputError("--model: the preview back end takes no weights; pick a diffusers --backend")
        return get_world_generator(backend)
    if not model:
        raise BadInputError(
            f"--backend {backend} is a diffusers pipeline: give its weights with --model (a local folder or a hub id)"
        )
    return get_world_generator(backend, model=model)


def clean_errors(f: Callable) -> Callable:
    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except (AgentMemError, GeneratorError) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None

    return wrapper


def chroma_token_option(f: Callable) -> Callable:
    return click.option(
        "--chroma-token",
        default=None,
        envvar="AGENTMEM_CHROMA_TOKEN",
        show_envvar=True,
        help="Token of a chroma server started with token authentication (never stored).",
    )(f)


def progress_bar(desc: str, unit: str, total: int | None = None):
    """A tqdm bar on standard error, shown only when that is a terminal (never in logs or pipes)."""
    from tqdm import tqdm

    return tqdm(desc=desc, unit=unit, total=total, file=sys.stderr, leave=False, disable=not sys.stderr.isatty())


def progress_note(message: str) -> None:
    """One line of progress on standard error, only when that is a terminal."""
    if sys.stderr.isatty():
        click.echo(message, err=True)


def open_memory(db: str, **kwargs: Any):
    from agentmem.memory import Memory

    return Memory(db, **kwargs)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


def parse_time_opt(value: str | None, name: str) -> float | None:
    from agentmem.timeparse import parse_time

    return None if value is None else parse_time(value, field=name)


def require_db(db: str, *, create: str = "agentmem ingest FILE") -> None:
    """Refuse a ``--db`` that holds no memory, naming the command (``create``) that makes one."""
    from agentmem.errors import StoreError
    from agentmem.storage.store import DB_NAME

    if not (Path(db) / DB_NAME).exists():
        raise StoreError(f"no memory at {db!r}: create one with `{create} --db {db}`")


def require_world_db(db: str) -> None:
    """:func:`require_db` for the ``agentmem world`` commands, whose memories ``agentmem world ingest`` makes."""
    require_db(db, create="agentmem world ingest TRANSFORMS")
