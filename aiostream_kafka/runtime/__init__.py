"""Running the topology: the Supervisor, one Listener per subscription group, their consumers.

(Nothing is imported here, so that ``runtime.backoff`` can be used by modules the
listener itself depends on.)
"""
