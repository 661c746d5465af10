"""Periodic inspections: data-quality checks and the batch engine over a period and departments,
findings upserted into violations, a summary and compliance score per department (issue 5)."""
