"""Customer/sale import: Sienge enterprises, units, customers and sales into CV CRM.

Entry point: :func:`pipelines.imports.flow.run_import`.
"""
