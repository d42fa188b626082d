"""Schemas: the canonical records, Brazilian document types, tenant configuration, and the JSON Schemas
exported from them (``schemas/json``). The bottom layer: it imports nothing from the layers above.
"""
