"""The results table: its schema, files on disk, the store of a sweep's runs, outcomes and statistics."""
