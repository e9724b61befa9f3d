"""The reliability campaign: faults, kills and restarts, then invariants that must hold.

Two campaigns share everything but the stage:

- ``full`` (``make chaos``, ``python -m benchmarks.chaos``): the whole stack of ``stokline up``
  under the hostile fault profile, its worker and receiver killed with SIGKILL mid-batch;
- ``reduced`` (``make test``, tests/chaos/): the sandboxes, the receiver and the syncs in one
  process, time compressed, passes killed in the middle of a write.

Both drive the same business (`traffic`), take the same `observe.Snapshot` of what the systems
hold at the end, and judge it with the same checks (`invariants`), printed by `report`.
"""
