"""The JSON API under /api/v1 (DESIGN.md section 5), one module per resource."""
