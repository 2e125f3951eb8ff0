"""Importing a recipe's ``imports:`` (modules or ``.py`` files) before it is validated.

A recipe can use a router, loss, backbone or dataset registered in the user's own code
without packaging it as a plugin:

```yaml
imports: [my_lab.routers, ./extra/my_loss.py]
heads: {router: {name: my_router}}
```

A dotted name is imported as a module (the current directory is on the search path);
an entry ending in ``.py`` or containing a ``/`` is a file, relative to the current
directory, imported once per process under a name derived from its path.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from moeheads.errors import ConfigError


def is_file_entry(entry: str) -> bool:
    """Whether an ``imports`` entry names a file rather than a module."""
    return entry.endswith(".py") or "/" in entry or os.sep in entry


def import_user_modules(entries: Iterable[str]) -> None:
    """Import each module or file so that its ``register`` decorators run.

    Raises:
        ConfigError: A missing module or file, or one that fails while importing,
            named with the error.
    """
    for entry in entries:
        try:
            if is_file_entry(entry):
                _import_file(Path(entry).expanduser())
            else:
                if os.getcwd() not in sys.path:
                    sys.path.append(os.getcwd())
                importlib.import_module(entry)
        except ConfigError:
            raise
        except ModuleNotFoundError as error:
            raise ConfigError(f"imports: cannot import {entry!r}: {error}") from None
        except Exception as error:  # the user's module failed: say which and why
            raise ConfigError(
                f"imports: importing {entry!r} failed: {type(error).__name__}: {error}"
            ) from error


def _import_file(path: Path) -> None:
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"imports: file not found: {path}")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"moeheads_user_{path.stem}_{digest}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"imports: {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
