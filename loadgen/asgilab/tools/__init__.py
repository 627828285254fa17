"""Load tools and probes the lab drives."""
