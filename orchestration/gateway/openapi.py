"""The gateway's OpenAPI 3.1 description (served at /openapi.json; used to fuzz it)."""

from __future__ import annotations

from typing import Any

from schemas import TenantConfig

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}


def _receive_responses() -> dict[str, Any]:
    """The answers of a webhook delivery (both receive routes share them)."""
    return {
        "200": {
            "description": "Stored in the inbox (or a duplicate of a stored event)",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "stored": {"type": "boolean"},
                            "duplicate": {"type": "boolean"},
                            "event_id": {"type": "string"},
                        },
                        "required": ["stored", "duplicate", "event_id"],
                    }
                }
            },
        },
        "400": {"description": "Malformed delivery", "content": {"application/json": {"schema": _ERROR}}},
        "401": {"description": "Not authenticated", "content": {"application/json": {"schema": _ERROR}}},
        "404": {"description": "Unknown route", "content": {"application/json": {"schema": _ERROR}}},
        "413": {"description": "Too large", "content": {"application/json": {"schema": _ERROR}}},
        "503": {
            "description": "Not stored; retry later",
            "content": {"application/json": {"schema": _ERROR}},
        },
    }


def openapi_document(tenants: dict[str, TenantConfig]) -> dict[str, Any]:
    """The document for these tenants: the path parameters enumerate their ids and connector keys."""
    tenant_ids = sorted(tenants)
    connector_keys = sorted({key for t in tenants.values() for key in t.connectors})
    path_params = [
        {"name": "tenant", "in": "path", "required": True, "schema": {"type": "string", "enum": tenant_ids}},
        {
            "name": "connector",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": connector_keys},
        },
        {"name": "webhook", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    responses = _receive_responses()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ponte webhook gateway",
            "version": "1",
            "description": "Receives provider webhooks, authenticates them and stores them before answering.",
        },
        "paths": {
            "/health": {
                "get": {
                    "summary": "Liveness and store reachability",
                    "responses": {"200": {"description": "ok"}, "503": {"description": "store down"}},
                }
            },
            "/webhooks/{tenant}/{connector}/{webhook}": {
                "post": {
                    "summary": "Receive one webhook delivery",
                    "parameters": path_params,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {}},
                            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                        },
                    },
                    "responses": responses,
                },
                "get": {
                    "summary": "Subscription handshake (e.g. WhatsApp hub.challenge)",
                    "parameters": path_params,
                    "responses": {
                        "200": {"description": "challenge echoed"},
                        "403": {"description": "refused"},
                        "404": {"description": "Unknown route", "content": {"application/json": {"schema": _ERROR}}},
                    },
                },
            },
            "/webhooks/{tenant}/{connector}/{webhook}/{secret}": {
                "post": {
                    "summary": "Receive a delivery authenticated by a secret in the URL (CV CRM)",
                    "parameters": [
                        *path_params,
                        {"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
                    "responses": responses,
                }
            },
        },
    }
