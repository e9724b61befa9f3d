"""Pure translation between SHOPLINE and Stokly records, driven by a validated `Mapping`.

No I/O here: callers pass what they fetched (e.g. the Stokly SKUs they know) and get back plain
values, or an `Untranslatable` naming the exception code the sync records for the owning team.
"""

from stokline.mapping.translate import (
    ShippingChoice,
    SkuMatcher,
    Untranslatable,
    render_sale_order_fields,
    resolve_gateway,
    resolve_location,
    resolve_shipping,
    resolve_tax_class,
)

__all__ = [
    "ShippingChoice",
    "SkuMatcher",
    "Untranslatable",
    "render_sale_order_fields",
    "resolve_gateway",
    "resolve_location",
    "resolve_shipping",
    "resolve_tax_class",
]
