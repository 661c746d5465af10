"""The two engines: `batch` (vectorised pandas) and `stream` (durable-rules), one verdict."""
