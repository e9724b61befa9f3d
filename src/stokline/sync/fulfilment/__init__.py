"""The fulfilment sync: Stokly shipments back to SHOPLINE as fulfillments with tracking, once each.

- `translate`: one Stokly shipment → the SHOPLINE fulfillment (pure);
- `sync`: `sync_fulfilment`, one pass over Stokly's shipment events;
- `writes`: creates and links, tracking updates, cancellations, each once;
- `report`: `FulfilmentReport`.
"""
