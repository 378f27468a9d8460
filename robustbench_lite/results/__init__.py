"""Results: what a run leaves on disk. Takes a batch's outputs; gives one record per (model,
condition, photo) in atomic, resumable chunks merged into records.parquet, and manifest.json."""
