"""The Prefect glue the flow files in `flows/` share; the flows themselves stay thin.

- `common`: names (artifact keys, run names), the retry rule, the mapping and location look-ups,
  the state store, the exceptions artifact;
- `passes`: the shape of one coarse sync pass (its task, artifacts and event), written once;
- `watchers`: the poll loop of the two watcher flows, handing over to the next run;
- `orders`, `stock`, `finance`: what the flows of one sync share (for finance: the run's stage,
  its name, the run form's parameters, the approval text and the artifacts' rows).

Above `stokline.sync`: these modules run the syncs under Prefect; nothing below imports them.
"""
