"""Data: which photos, with which labels. Takes a folder, a named dataset or a shift; gives ordered
`Sample(id, path, label)` with canonical ImageNet-1k labels, decoded uint8 tensors at a model's
geometry, downloads, the 16-class map and model-vs-human's stimuli and trials."""
