"""The tables of the integration state (SQLAlchemy Core, portable between SQLite and PostgreSQL).

Every row carries the client's name, so one database serves many clients. Times are UTC.
Nothing here stores a secret or card data: webhook bodies are orders as SHOPLINE sends them,
audit rows hold business keys and the shape of a change, never credentials.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Ids of the same thing in both systems: an order, a customer, a variant, a shipment...
links = Table(
    "links",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("client", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("shopline_id", String(64), nullable=False),
    Column("stokly_id", String(64), nullable=False),
    Column("data", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("client", "kind", "shopline_id", name="uq_links_shopline"),
    Index("ix_links_stokly", "client", "kind", "stokly_id"),
)

# Webhook deliveries, persisted before they are acknowledged; unique per SHOPLINE webhook id.
inbox = Table(
    "inbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("client", String(64), nullable=False),
    Column("webhook_id", String(128), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("shop_domain", String(255), nullable=True),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),  # pending | processing | done | poison
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    Column("processed_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    UniqueConstraint("client", "webhook_id", name="uq_inbox_webhook"),
    Index("ix_inbox_status", "client", "status", "id"),
)

# The exceptions queue: one row per (client, code, entity), reopened when the cause comes back.
exceptions = Table(
    "exceptions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("client", String(64), nullable=False),
    Column("code", String(48), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("team", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # open | retrying | resolved | ignored
    Column("entity_kind", String(32), nullable=False),
    Column("entity_id", String(128), nullable=False),
    Column("message", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("payload", JSON, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("resolution", Text, nullable=True),
    UniqueConstraint("client", "code", "entity_kind", "entity_id", name="uq_exceptions_entity"),
    Index("ix_exceptions_status", "client", "status", "code"),
)

# Where each sync got to (e.g. the orders sweep's updated_at high-water mark).
cursors = Table(
    "cursors",
    metadata,
    Column("client", String(64), primary_key=True),
    Column("sync", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The last stock level pushed per SHOPLINE inventory item and location: pushes are deltas.
pushed_levels = Table(
    "pushed_levels",
    metadata,
    Column("client", String(64), primary_key=True),
    Column("inventory_item_id", String(64), primary_key=True),
    Column("location_id", String(64), primary_key=True),
    Column("available", Integer, nullable=False),
    Column("pushed_at", DateTime(timezone=True), nullable=False),
)

# Ledger batches, one per batch key (client, period, gateway, currency...), posted once.
ledger_batches = Table(
    "ledger_batches",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("client", String(64), nullable=False),
    Column("batch_key", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # posting | posted
    Column("journal_id", String(64), nullable=True),
    Column("totals", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("posted_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("client", "batch_key", name="uq_ledger_batch"),
)

# Every write made to either system: who, what, when, the business key. Never a secret.
audit = Table(
    "audit",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("client", String(64), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("system", String(16), nullable=False),  # stokly | shopline
    Column("action", String(64), nullable=False),
    Column("business_key", String(255), nullable=False),
    Column("entity_id", String(128), nullable=True),
    Column("details", JSON, nullable=True),
    Index("ix_audit_key", "client", "business_key"),
)

# Leases on business keys (e.g. one SHOPLINE order) held by one run at a time, so concurrent runs
# of a sync never work on the same thing; a lease a crashed run left behind expires.
leases = Table(
    "leases",
    metadata,
    Column("client", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("holder", String(96), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_leases_holder", "holder"),
)
