"""Operations: what the people running a client watch, and what tells them something is wrong.

- `stokline.ops.alerts`: the alerts a mapping asks for, as Prefect automation definitions (pure).
- `stokline.ops.automations`: applying them to a Prefect server, idempotently, by name.
- `stokline.ops.sink`: a local HTTP endpoint that writes each notification it receives to a file
  (the demo's alert channel).
- `stokline.ops.status` / `stokline.ops.status_view`: health at a glance per client and sync,
  collected from Prefect and the state store, shown as a table, JSON or Markdown.
- `stokline.ops.prefect_api`: which Prefect API the commands use, and whether it answers.
- `stokline.ops.signals`: the ``stokline.exception.opened`` events the exception-spike alert counts.
- `stokline.ops.cadence`: how often a schedule fires, for lag and overdue checks.
- `stokline.ops.operating_model`: a client's operating model in plain words, read from its mapping.
- `stokline.ops.runbook`: that model rendered as the Markdown runbook of `stokline runbook`.

Nothing here runs a sync; it reads the mapping, the state store and the Prefect API.
"""
