"""zhidu service: the application (CLI, API, storage, schedules). The only package that imports the others."""
