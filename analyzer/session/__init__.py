"""(package docstring filled in by its module)."""
