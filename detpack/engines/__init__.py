"""Query engines: each answers "does query Q match event E" for one query language."""
