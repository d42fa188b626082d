"""Registered Python escape hatches for what YAML should not express.

A hook is small, named, and referenced from a spec (``auth: {type: hook, name: docusign_jwt}``).
Built-in hooks are imported on first use; a project may register its own with :func:`register_auth`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ponte import ConfigurationError

AuthFactory = Callable[[dict[str, Any], Any], Any]

_AUTH: dict[str, AuthFactory] = {}
_BUILTIN_AUTH = {"docusign_jwt": "connectors.hooks.docusign_jwt"}


def register_auth(name: str) -> Callable[[AuthFactory], AuthFactory]:
    """Decorator: register ``factory(options, ctx) -> AuthStrategy`` under ``name``."""

    def decorate(factory: AuthFactory) -> AuthFactory:
        _AUTH[name] = factory
        return factory

    return decorate


def auth_hook(name: str) -> AuthFactory:
    if name not in _AUTH and name in _BUILTIN_AUTH:
        importlib.import_module(_BUILTIN_AUTH[name])
    try:
        return _AUTH[name]
    except KeyError:
        raise ConfigurationError(
            f"auth hook {name!r} is not registered",
            hint=f"use one of: {', '.join(sorted({*_AUTH, *_BUILTIN_AUTH}))}",
        ) from None


def auth_hook_names() -> list[str]:
    return sorted({*_AUTH, *_BUILTIN_AUTH})
