"""The catalogue sync: Stokly items onto SHOPLINE products and variants; nothing goes back.

- `translate`: a Stokly item as SHOPLINE product and variant fields, content hashes (pure);
- `read`: what a pass reads, and how variants are matched to items;
- `sync`: `sync_catalogue`, one pass;
- `writes`: the SHOPLINE writes of a pass (updates, creates), flushed concurrently;
- `run`: the state one run keeps and the exceptions it raises and resolves;
- `report`: `CatalogueReport`.
"""
