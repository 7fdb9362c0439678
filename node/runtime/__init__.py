"""The node's trio shell: the only code that runs ``NodeCore`` in the real world.

- ``node``: ``NodeRuntime``, the core task and the helper tasks that feed it;
- ``launch``: ``run_node`` — preflight checks, LevelDB, libp2p, the HTTP API and the runtime
  in one nursery, with a graceful stop on SIGTERM/SIGINT (imports libp2p: import it only
  to run a node);
- ``timers``, ``inbox``, ``sync_wire``, ``discipline``, ``metrics``, ``logs``, ``system``:
  its parts, each testable alone; ``network``: the ``RuntimeNetwork`` protocol.
"""
