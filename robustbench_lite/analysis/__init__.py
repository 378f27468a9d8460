"""Analysis: numbers from records. Takes run folders (records and manifests); gives every table:
metrics per (model, condition), McNemar pairs, the run's and the published lines, effective
robustness, humans beside the models, error consistency and the natural shifts."""
