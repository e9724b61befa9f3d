"""Batched ledger posting: a period's SHOPLINE money into balanced Stokly journals, each once.

- `translate`: money movements → balanced journals, one per group (pure; rounding from
  `stokline.mapping.money`);
- `sync`: `post_ledger`, one pass over a period, with its period rules;
- `report`: `LedgerReport`.
"""
