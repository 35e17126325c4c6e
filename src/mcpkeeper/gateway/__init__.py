"""Gateway mode: one authenticated listener in front of every workload of a replica.

``mcpkeeper serve --store redis://… --listen HOST:PORT`` runs a replica of a team
gateway: workloads live in the shared store, each replica serves all of them through
this listener (``/<workload>/…``), and refreshes are coordinated across replicas
(``mcpkeeper.auth.cluster_refresher``). See :mod:`.listener` for the rules of opening it.
"""
