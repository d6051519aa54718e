"""Bulk scoring: folders, globs and path lists -> one CSV / JSON Lines / Parquet row per file."""
