"""Scenario kinds run by tools other than h2load, one module each.

Each module offers ``run(runner, cell, result) -> matrix.Verdict``: it runs its tool
against ``cell.route``, fills ``result`` (tool, command, raw_output, req_per_s, succeeded,
failed, negotiated_protocol, runs, ...) and returns the verdict. A figure counts only
when every response was a verified 2xx over the protocol the route claims. A module that
keeps something running between cells (a browser) offers ``close()``; the matrix calls it
when the run ends, Ctrl-C included.
"""
