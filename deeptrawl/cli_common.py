"""What every ``deeptrawl`` command shares: exit codes, error handling, the console.

Its own module so that command groups living beside their code (``corpus``, ``models``,
``evaluate``) import it without importing ``deeptrawl.cli``, which imports them.
"""

from __future__ import annotations

import functools
import sys

import click

from deeptrawl.errors import DeeptrawlError

EXIT_CODES = """\b
Exit codes:
  0    success (bad files become error rows; the scan still succeeds)
  1    unexpected internal error
  2    usage or configuration error
  3    systemic failure (storage unreachable, bad credentials, warehouse)
  4    report not found
  130  interrupted
"""


def make_console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _find_deeptrawl_error(exc: BaseException) -> DeeptrawlError | None:
    """Beam re-raises worker exceptions wrapped; dig the original out of the chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DeeptrawlError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def handle_errors(fn):
    """Expected failures print one line and exit with their code; bugs keep the traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            make_console(stderr=True).print("[red]interrupted[/red]")
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary where errors become exit codes
            known = _find_deeptrawl_error(exc)
            if known is None:
                text = str(exc)
                for cls in _error_classes():
                    if f"{cls.__module__}.{cls.__name__}" in text or f"{cls.__name__}:" in text:
                        known = cls(text.split(f"{cls.__name__}:", 1)[-1].strip().splitlines()[0])
                        break
            if known is None:
                raise
            make_console(stderr=True).print(f"[bold red]error:[/bold red] {known.message}", soft_wrap=True)
            sys.exit(known.exit_code)

    return wrapper


def _error_classes() -> list[type[DeeptrawlError]]:
    out, todo = [], [DeeptrawlError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(out, key=lambda c: -len(c.__mro__))  # most specific first


def detector_names(value: str | None) -> tuple[str, ...]:
    from deeptrawl import detectors

    names = tuple(n.strip() for n in (value or "").split(",") if n.strip())
    for name in names:
        detectors.get(name)
    return names
