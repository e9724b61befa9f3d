"""Customer identity: normalised email and E.164 phone, and the link/create/conflict decision.

SHOPLINE buyers may have an email, a phone, or both; Stokly keys customers by email in practice.
Phones are parsed with ``phonenumbers`` (Google's libphonenumber): SHOPLINE sends the national
number and its ``area_code`` ("+44") separately, or a full number, or a local one that only the
client's default region makes sense of.

Matching is by the normalised value on both sides: an email compared lower-cased and trimmed, a
phone as E.164 (a Stokly phone without a country code read in the mapping's ``phone_region``),
so ``Sam.Keyed@Example.com`` / ``07700 900777`` in Stokly is the buyer ``sam.keyed@example.com`` /
``+447700900777``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

from stokline.config.models import Mapping
from stokline.mapping.translate import Untranslatable


def normalise_email(raw: str | None) -> str | None:
    """Lower-cased and trimmed; None when it is not an address at all."""
    if not raw or not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or " " in email:
        return None
    return email


def normalise_phone(
    raw: str | None, area_code: str | None = None, region: str | None = None
) -> str | None:
    """E.164 (+441134960000), or None when it cannot be a phone number."""
    if not raw or not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text.startswith("+") and area_code:
        code = area_code.strip()
        text = (code if code.startswith("+") else "+" + code) + text.lstrip("0")
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    # "Possible" (right length for the country) rather than "valid" (in an allocated range): a
    # range allocated after this metadata release must still match.
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_spellings(e164: str) -> list[str]:
    """The ways a person may have typed the E.164 number ``e164`` into Stokly: E.164, the
    international and national formats, and the national digits without spaces (for an exact
    search; what is found is compared normalised)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return [e164]
    formats = phonenumbers.PhoneNumberFormat
    national = phonenumbers.format_number(number, formats.NATIONAL)
    spellings = [
        e164,
        phonenumbers.format_number(number, formats.INTERNATIONAL),
        national,
        "".join(ch for ch in national if ch.isdigit() or ch == "+"),
        e164.lstrip("+"),
    ]
    return list(dict.fromkeys(s for s in spellings if s))


@dataclass(frozen=True)
class Identity:
    email: str | None
    phone: str | None

    def keys(self, order: Sequence[str]) -> list[tuple[str, str]]:
        """The identity keys present, in the mapping's order of precedence."""
        return [(k, v) for k in order if (v := getattr(self, k))]


def identity_of(
    mapping: Mapping, email: str | None, phone: str | None, area_code: str | None = None
) -> Identity:
    return Identity(
        normalise_email(email), normalise_phone(phone, area_code, mapping.customers.phone_region)
    )


@dataclass(frozen=True)
class CustomerDecision:
    action: str  # link | create | none
    customer_id: str | None = None
    reason: str = ""


def decide_customer(
    mapping: Mapping, identity: Identity, matches: dict[str, Sequence[str]]
) -> CustomerDecision:
    """Link, create or refuse, given the Stokly customer ids found per identity key.

    ``matches`` maps "email"/"phone" to the ids of Stokly customers with that (normalised) value.
    Keys are tried in the mapping's order; when two keys point at different customers (or one
    key at several), the mapping's ``on_conflict`` decides.
    """
    rules = mapping.customers
    found = [
        (key, list(dict.fromkeys(matches.get(key, ())))) for key, _ in identity.keys(rules.identity)
    ]
    found = [(key, ids) for key, ids in found if ids]
    distinct = list(dict.fromkeys(i for _, ids in found for i in ids))
    if len(distinct) == 1:
        return CustomerDecision("link", distinct[0], f"matched by {found[0][0]}")
    if not distinct:
        if not identity.email and not identity.phone:
            return CustomerDecision("none", reason="the order has no usable email or phone")
        if rules.create_missing:
            return CustomerDecision("create", reason="no Stokly customer matches")
        return CustomerDecision(
            "none", reason="no Stokly customer matches and create_missing is false"
        )
    detail = "; ".join(f"{key} → {', '.join(ids)}" for key, ids in found)
    if rules.on_conflict == "link":
        return CustomerDecision(
            "link", found[0][1][0], f"conflict ({detail}); linked by {found[0][0]}"
        )
    if rules.on_conflict == "create":
        return CustomerDecision("create", reason=f"conflict ({detail}); a new customer is created")
    raise Untranslatable(
        "customer_conflict", f"the buyer matches several Stokly customers: {detail}"
    )
