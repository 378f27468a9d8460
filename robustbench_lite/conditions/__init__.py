"""Conditions: what is done to a photo. Takes transform names, families, plug-ins and adapter specs;
gives registered, severity-graded, seeded transforms, condition keys (`fog@3`) and their application
to a batch. Everything above builds on this vocabulary; built-in `transforms/` and plug-ins see only it."""
