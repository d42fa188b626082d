"""Documents: contract PDFs rendered from HTML templates (Jinja2 sandboxed + WeasyPrint), signature
placement, and QR-stamping of signed PDFs."""
