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
