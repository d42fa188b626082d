"""Logging that never shows personal data or secrets in clear.

Two layers, because Ponte's log records reach handlers it does not own (Dagster captures them):
:class:`RedactingFilter` rewrites each record at the logger that creates it, and
:class:`RedactingFormatter` masks the final line, tracebacks included, for handlers Ponte installs.
"""

from __future__ import annotations

import logging
import os
import sys

from ponte.redaction import redact

ROOT_LOGGER = "ponte"


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class RedactingArgsFilter(logging.Filter):
    """Masks a record's arguments in place, for loggers whose formatter reads ``record.args`` itself.

    Uvicorn's access log formats ``(client, method, full path, version, status)`` from the args tuple,
    so collapsing the message (as :class:`RedactingFilter` does) would break it; the full path carries
    secrets (CV CRM's URL secret, WhatsApp's ``hub.verify_token``) and must be masked all the same.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


#: third-party loggers that print request paths (with their query strings) and do not propagate
SERVER_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error")


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_FILTER = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """A logger under ``ponte.`` whose records are masked before any handler sees them."""
    full = name if name.startswith(ROOT_LOGGER) else f"{ROOT_LOGGER}.{name}"
    logger = logging.getLogger(full)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def mask_server_logs() -> None:
    """Mask what the ASGI server logs (access lines with full URLs), whoever configures its handlers."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if _ARGS_FILTER not in logger.filters:
            logger.addFilter(_ARGS_FILTER)


_ARGS_FILTER = RedactingArgsFilter()
# at import: every Ponte process that serves HTTP imports this module (the gateway app logs through
# it), also when uvicorn is started directly on the app factory and configure_logging never runs
mask_server_logs()


def configure_logging(level: str | int | None = None) -> None:
    """Install one masking stderr handler on the root logger (idempotent)."""
    level = level or os.environ.get("PONTE_LOG_LEVEL", "INFO")
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, RedactingFormatter):
            root.setLevel(level)
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_FILTER)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "httpx", "httpcore", "mail.log"):  # their INFO lines say nothing an operator needs
        logging.getLogger(noisy).setLevel(logging.WARNING)
