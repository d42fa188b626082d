"""Local stand-ins of every outside system Ponte talks to (Sienge, CV CRM, DocuSign, Clicksign,
WhatsApp Cloud API, SMTP), faithful enough that a connector that works here works in production.

Production code never imports this package; tests, ``ponte sandbox`` and ``ponte demo`` do. Start
everything with :func:`start_sandbox` (see docs/sandbox.md for URLs, credentials and coverage).
"""

from connectors.sandbox.config import RateLimit, SandboxConfig
from connectors.sandbox.faults import FaultConfig, parse_fault_spec
from connectors.sandbox.launcher import Sandbox, start_sandbox
from connectors.sandbox.seed import PROFILES
from connectors.sandbox.signing import Evidence

__all__ = [
    "PROFILES",
    "Evidence",
    "FaultConfig",
    "RateLimit",
    "Sandbox",
    "SandboxConfig",
    "parse_fault_spec",
    "start_sandbox",
]
