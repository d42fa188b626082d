"""Documents: contract PDFs rendered from templates, signature placement, and QR-stamping of signed PDFs."""
