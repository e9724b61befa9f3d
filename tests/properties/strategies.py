"""Hypothesis strategies over the order shapes the whole project shares.

The shapes themselves live in `stokline.sandbox.shopline.shapes` (the storefront simulator, the
chaos campaign and the benchmarks draw from them too); here Hypothesis drives them through
``st.randoms(use_true_random=False)``, so a failing example shrinks and replays like any other.
Only what the shapes cannot know is drawn here: spellings of a buyer's email and phone.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from stokline.sandbox.shopline.shapes import draw_follow_ups, draw_order


def examples(share: int) -> int:
    """The profile's example count divided by ``share`` (at least 10): ``ci`` runs 200 of the
    pure properties and fewer of those that drive both sandboxes; ``thorough`` ten times more."""
    return max(10, settings.default.max_examples // share)


def randoms() -> st.SearchStrategy[random.Random]:
    return st.randoms(use_true_random=False)


def order_bodies(
    skus: Sequence[str],
    tax_titles: Mapping[str, str] | None = None,
    mix: Mapping[str, float] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies for ``POST /_sandbox/orders``: every shape of `shapes.ORDER_MIX`, or ``mix``."""
    return randoms().map(lambda rng: draw_order(rng, skus, tax_titles=tax_titles, mix=mix))


def follow_ups(
    rng: random.Random,
    order: Mapping[str, Any],
    skus: Sequence[str] = (),
    mix: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """What happens to ``order`` afterwards, drawn from the same shared place."""
    return draw_follow_ups(rng, order, skus=skus, mix=mix)


@st.composite
def email_spellings(draw: st.DrawFn, email: str) -> str:
    """``email`` as a person or another channel may have typed it: any letters in capitals,
    blanks around it."""
    # A fixed number of draws whatever the address, so that examples replay exactly.
    caps = draw(st.lists(st.booleans(), min_size=64, max_size=64))
    typed = "".join(c.upper() if up else c for c, up in zip(email, caps, strict=False))
    return draw(st.sampled_from(("", " ", "  "))) + typed + draw(st.sampled_from(("", " ")))


def uk_mobile_spellings(national: str) -> st.SearchStrategy[str]:
    """A UK mobile ``national`` ("7700900123") as people write it in Stokly."""
    a, b = national[:4], national[4:]
    return st.sampled_from(
        (
            f"+44{national}",
            f"+44 {a} {b}",
            f"0{national}",
            f"0{a} {b}",
            f"(0{a}) {b}",
            f"0044 {a} {b}",
        )
    )


def shopline_phone_spellings(national: str) -> st.SearchStrategy[dict[str, Any]]:
    """A UK mobile as a SHOPLINE buyer may carry it: national number with its area code, a
    full E.164 number, or a local number with no area code."""
    return st.sampled_from(
        (
            {"phone": national, "area_code": "+44"},
            {"phone": national, "area_code": "44"},
            {"phone": f"+44{national}"},
            {"phone": f"0{national}"},
        )
    )
