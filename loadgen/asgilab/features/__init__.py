"""The feature matrix: which server, reached which way, really supports each protocol and
ASGI feature. Probes (probes/*.py) speak to live servers; the runner walks servers × paths;
the store keeps one JSON file per (runtime, server, path) under reports/features/."""
