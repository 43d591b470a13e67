"""Checks of what users declare, in one place (Karafka's contracts).

``checks`` holds the primitive checks, each written once (a whole number that is not a
bool, a finite number of seconds, an ``async def``, "did you mean", a handler's name);
every other module is the contract of one kind of declaration, called by the code that
declares it: ``app`` (``App(...)``), ``cluster`` and ``security`` (Kafka settings),
``route`` (route options), ``topics`` (``TopicConfig``, ``app.topics.declare``),
``failures`` (``Retry``, ``DeadLetterQueue``, ``Backoff``), ``codecs``, ``jobs``, ``web``,
``events`` (monitor subscriptions) and ``testing`` (``app.testing(...)``).

A contract refuses with a ``ConfigError`` that names the declaration and what to fix,
when the declaration is made. What only the whole app can tell (a topic routed twice,
two names for one cluster, an inline cluster's name) is refused where the topology is
built.

This package imports nothing: ``errors`` uses ``checks``, and everything uses ``errors``.
"""
