"""How Ponte talks to each outside system: declarative specs, their runtime, and the sandbox.

Public surface::

    from connectors import bind_spec, load_spec
    conn = bind_spec("sienge", values={...}, secrets={...}, tenant="acme", budget=shared_budget)

``bind_spec`` returns a :class:`~connectors.runtime.Connector` for HTTP specs and a
:class:`~connectors.smtp.SmtpConnector` for SMTP specs. Submodules are implementation details.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.runtime import ActionResult, Connector, RateBudget, WebhookDelivery
from connectors.smtp import Attachment, Email, SmtpConnector
from connectors.spec import HttpConnectorSpec, SmtpConnectorSpec, load_spec


def bind_spec(
    spec: HttpConnectorSpec | SmtpConnectorSpec | str | Path,
    values: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    **kwargs: Any,
) -> Connector | SmtpConnector:
    """Bind a spec (object, name or path) to a tenant's values and secrets."""
    loaded = load_spec(spec) if isinstance(spec, str | Path) else spec
    if isinstance(loaded, SmtpConnectorSpec):
        kwargs.pop("transport", None)
        return SmtpConnector(loaded, values=values or {}, secrets=secrets or {}, **kwargs)
    return Connector(loaded, values=values or {}, secrets=secrets or {}, **kwargs)


__all__ = [
    "ActionResult",
    "Attachment",
    "Connector",
    "Email",
    "RateBudget",
    "SmtpConnector",
    "WebhookDelivery",
    "bind_spec",
    "load_spec",
]
