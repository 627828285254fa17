"""Mangum, the talk's fourth "server", as what it is: an in-process AWS Lambda adapter.

``events`` builds Lambda events and reads their answers (pure); ``run`` invokes the lab app
through Mangum and straight through ASGI; ``probes`` turns that into feature-matrix records;
``bench`` measures the adapter's cost; ``view`` shapes reports/mangum.json for the report.
"""
