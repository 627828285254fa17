"""One module per probe family. A probe is ``probe(target: Target) -> Outcome``; the
features data file (loadgen/features.toml) names which probe answers which row."""
