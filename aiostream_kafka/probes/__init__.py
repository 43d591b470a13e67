"""Health probes and Prometheus metrics: what an orchestrator and a scraper ask a process.

``health`` turns Monitor events into liveness and readiness verdicts, ``metrics`` turns them
into Prometheus series, ``server`` answers ``/livez``, ``/readyz`` and ``/metrics`` over
HTTP from a thread of its own, ``asgi`` answers the same inside an ASGI app, and ``pool``
answers for the workers of ``run --processes N``.
"""
