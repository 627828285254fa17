"""The robustness matrix: attacks on live servers and proxy paths, and the HTTP/2
conformance subset (README, "Under attack")."""
