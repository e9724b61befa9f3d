"""The frozen models of a mapping file: what the rest of stokline reads, never raw YAML.

Field names are the schema's keys (a test checks both ways that the two agree). Defaults here are
the defaults the schema's descriptions promise. Built only from a document that already passed
the schema and the semantic checks, so validation errors never surface from here.
"""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PrivateAttr,
    SecretStr,
    model_validator,
)

from stokline.config.schedules import Schedule, parse_duration
from stokline.config.templates import Template

Team = Literal["operations", "finance", "ecommerce"]
Duration = Annotated[
    timedelta, BeforeValidator(lambda v: parse_duration(v) if isinstance(v, str) else v)
]
# Rates and tolerances arrive as YAML floats; go through str so 0.2 stays 0.2, not 0.2000000000000000111.
Rate = Annotated[
    Decimal, BeforeValidator(lambda v: Decimal(str(v)) if isinstance(v, int | float) else v)
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SecretUnavailable(Exception):
    """A secret reference that cannot be resolved. Names the reference, never a value."""


class SecretRef(_Model):
    env: str | None = None
    prefect_secret: str | None = None

    def describe(self) -> str:
        return (
            f"environment variable {self.env}"
            if self.env
            else f"Prefect Secret block {self.prefect_secret}"
        )

    def is_available(self) -> bool | None:
        """True/False for environment variables; None where it cannot be known offline."""
        if self.env:
            return bool(os.environ.get(self.env))
        return None

    def resolve(self) -> SecretStr:
        """The secret's value, wrapped so that it never prints. Resolved only when a sync runs."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise SecretUnavailable(f"{self.describe()} is not set")
            return SecretStr(value)
        from prefect.blocks.system import Secret  # only production setups pay for this import

        try:
            # `_sync=True`: inside a running event loop (every sync resolves its credentials in
            # one) Prefect's `load` would otherwise hand back a coroutine, not the block.
            return SecretStr(str(Secret.load(self.prefect_secret, _sync=True).get()))
        except ValueError as exc:
            raise SecretUnavailable(f"{self.describe()} cannot be loaded: {exc}") from None


class Client(_Model):
    name: str
    display_name: str | None = None
    timezone: str
    currency: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def title(self) -> str:
        return self.display_name or self.name


class StoklyConnection(_Model):
    base_url: str
    account_key: str
    client_id: SecretRef
    client_secret: SecretRef
    channel_id: str


class ShoplineConnection(_Model):
    base_url: str | None = None
    store_handle: str | None = None
    api_version: str
    access_token: SecretRef
    webhook_secret: SecretRef

    @property
    def url(self) -> str:
        """The store's base URL, from base_url or the store handle."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://{self.store_handle}.myshopline.com"


class Connections(_Model):
    stokly: StoklyConnection
    shopline: ShoplineConnection


class LocationStock(_Model):
    sync: bool = True
    buffer: int = 0


class Location(_Model):
    shopline_location: str
    name: str | None = None
    stokly_locations: tuple[str, ...]
    fulfil_from: str | None = None
    stock: LocationStock = LocationStock()
    default: bool = False

    @property
    def fulfilment_location(self) -> str:
        return self.fulfil_from or self.stokly_locations[0]


class SkuOverride(_Model):
    shopline_sku: str
    stokly_sku: str


class StockShownOn(_Model):
    """The SHOPLINE variant that shows a shared Stokly item's stock: by SKU or by variant id
    (exactly one of the two; the semantic checks make sure)."""

    stokly_sku: str
    shopline_sku: str | None = None
    shopline_variant_id: str | None = None


class Skus(_Model):
    match: Literal["exact", "case_insensitive", "normalised"]
    overrides: tuple[SkuOverride, ...] = ()
    show_stock_on: tuple[StockShownOn, ...] = ()
    never_sync: tuple[str, ...] = ()


class ShippingMethod(_Model):
    shopline_title: str
    shopline_code: str | None = None
    stokly_option: str
    carrier: str
    tracking_company: str | None = None
    tracking_url: Template | None = None


class ShippingDefault(_Model):
    stokly_option: str
    carrier: str


class Shipping(_Model):
    methods: tuple[ShippingMethod, ...]
    on_unmapped: Literal["default", "exception"]
    default: ShippingDefault | None = None


class TaxRule(_Model):
    shopline_title: str | None = None
    rate: Rate | None = None
    stokly_tax_class: str


class Tax(_Model):
    rules: tuple[TaxRule, ...]
    tolerance: Rate = Decimal("0.005")
    on_unmapped: Literal["default", "exception"]
    default_tax_class: str | None = None


class Gateway(_Model):
    gateway: str
    stokly_method: int
    ledger_account: str
    fee_account: str | None = None


class Payments(_Model):
    gateways: tuple[Gateway, ...]
    on_unmapped: Literal["default", "exception"]
    default_gateway: str | None = None


class Customers(_Model):
    identity: tuple[Literal["email", "phone"], ...]
    phone_region: str | None = None
    on_conflict: Literal["link", "create", "exception"]
    create_missing: bool = True


class SaleOrderFields(_Model):
    customer_reference: Template | None = None
    tags: tuple[Template, ...] = ()
    notes: Template | None = None


class ShoplineProductFields(_Model):
    title: Template | None = None
    body_html: Template | None = None
    vendor: Template | None = None
    tags: tuple[Template, ...] = ()


class Fields(_Model):
    sale_order: SaleOrderFields = SaleOrderFields()
    shopline_product: ShoplineProductFields = ShoplineProductFields()


class _Sync(_Model):
    enabled: bool = True
    every: Duration | None = None
    cron: str | None = None
    at: str | None = None

    @property
    def schedule(self) -> Schedule:
        return Schedule(every=self.every, cron=self.cron, at=self.at)


class StockSync(_Sync):
    event_driven: bool = True
    batch_size: int = 250
    drift_every: Duration = timedelta(hours=1)


class CatalogueSync(_Sync):
    create_missing: bool = False
    on_removed: Literal["archive", "unpublish", "report"] = "report"
    batch_size: int = 250


class OrdersSync(_Sync):
    lookback: Duration = timedelta(hours=2)
    import_from: AwareDatetime | None = None  # go-live: orders placed before it are never imported
    import_when: tuple[Literal["paid", "partially_paid", "authorized", "pending"], ...] = ("paid",)
    batch_size: int = 100
    on_cancelled: Literal["apply", "exception"] = "exception"
    on_edited: Literal["apply", "exception"] = "exception"


class FulfilmentSync(_Sync):
    stale_after: Duration = timedelta(hours=4)
    notify_customer: bool = True
    on_shipment_cancelled: Literal["cancel", "exception"] = "exception"
    batch_size: int = 100


class FinanceAccounts(_Model):
    sales: str
    shipping: str
    discounts: str | None = None
    refunds: str
    fees: str | None = None
    suspense: str | None = None
    tax: dict[str, str]


class FinanceSync(_Sync):
    group_by: tuple[Literal["day", "gateway", "currency"], ...] = ("day", "gateway", "currency")
    approval: Literal["required", "none"] = "none"
    unimported: Literal["hold", "suspense"] = "hold"
    accounts: FinanceAccounts

    @model_validator(mode="after")
    def _suspense_needs_its_account(self) -> FinanceSync:
        if self.unimported == "suspense" and not self.accounts.suspense:
            raise ValueError("unimported: suspense needs accounts.suspense")
        return self

    @property
    def unimported_policy(self) -> str:
        """``hold``, or ``suspense:<account>``: what the ledger does with the money of orders
        not yet in Stokly."""
        if self.unimported == "suspense" and self.accounts.suspense:
            return f"suspense:{self.accounts.suspense}"
        return "hold"


class Syncs(_Model):
    stock: StockSync | None = None
    catalogue: CatalogueSync | None = None
    orders: OrdersSync
    fulfilment: FulfilmentSync | None = None
    finance: FinanceSync | None = None

    def enabled(self) -> dict[str, _Sync]:
        """The syncs that run, by name, in the order the file language lists them."""
        named = {
            "stock": self.stock,
            "catalogue": self.catalogue,
            "orders": self.orders,
            "fulfilment": self.fulfilment,
            "finance": self.finance,
        }
        return {name: s for name, s in named.items() if s is not None and s.enabled}


class Owners(_Model):
    unmapped_sku: Team | None = None
    unknown_shopline_sku: Team | None = None
    sku_collision: Team | None = None
    unknown_location: Team | None = None
    unmapped_shipping: Team | None = None
    tax_mismatch: Team | None = None
    unmapped_gateway: Team | None = None
    customer_conflict: Team | None = None
    order_changed: Team | None = None
    api_rejected: Team | None = None
    poison_message: Team | None = None
    stale_fulfilment: Team | None = None
    oversell_risk: Team | None = None
    template_failed: Team | None = None
    ledger_imbalance: Team | None = None
    payout_variance: Team | None = None


class Escalation(_Model):
    name: str | None = None
    email: str
    phone: str | None = None


class WebhookTarget(_Model):
    url: str


class AlertTargets(_Model):
    """Where alerts go: a webhook, a named Prefect block (``block-type/name``), or both."""

    webhook: WebhookTarget | None = None
    prefect_block: str | None = None


class ExceptionSpike(_Model):
    count: int = 5
    within: Duration = timedelta(minutes=15)


class Alerts(_Model):
    notify: AlertTargets
    cooldown: Duration = timedelta(minutes=30)
    missed_runs: int = 3
    exception_spike: ExceptionSpike = ExceptionSpike()


class OperatingModel(_Model):
    default_owner: Team
    owners: Owners = Owners()
    escalation: Escalation
    alerts: Alerts | None = None

    def owner_of(self, exception_code: str) -> Team:
        """The team that owns an exception code (the default owner for codes not listed)."""
        return getattr(self.owners, exception_code, None) or self.default_owner


class Mapping(_Model):
    """One client's mapping file, validated."""

    version: Literal[1]
    client: Client
    connections: Connections
    locations: tuple[Location, ...]
    skus: Skus
    shipping: Shipping
    tax: Tax
    payments: Payments
    customers: Customers
    fields: Fields = Fields()
    syncs: Syncs
    operating_model: OperatingModel

    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """The file this mapping was loaded from."""
        return self._source
