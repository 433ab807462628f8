"""Kubernetes resource quantities, as OpenFaaS clients send them, turned into Docker numbers.

faas-cli and the UI send limits such as ``128Mi`` or ``100m``; Docker wants bytes and
nano-CPUs. The strings themselves are stored and echoed verbatim; only the engine sees the
numbers. Pure: the API uses these to validate, the renderer to build container configs.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Binary and decimal suffixes of the Kubernetes quantity grammar.
_MEMORY_SUFFIX = {
    "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?([a-zA-Z]*)\s*$")

# The engine refuses a memory limit under 6 MB; we raise to it and still echo what was asked.
ENGINE_MIN_MEMORY = 6 * 2**20


class QuantityError(ValueError):
    """A quantity string that cannot be read; the message says what is wrong."""


def _number(text: str) -> tuple[Decimal, str]:
    match = _QUANTITY.match(text)
    if not match:
        raise QuantityError(f"{text!r} is not a quantity (examples: 128Mi, 1G, 500m, 0.5)")
    mantissa, exponent, suffix = match.groups()
    try:
        value = Decimal(mantissa)
        if exponent:
            value = value.scaleb(int(exponent))
    except InvalidOperation as err:  # pragma: no cover - the regex already guards this
        raise QuantityError(f"{text!r} is not a number") from err
    return value, suffix


def memory_bytes(text: str) -> int:
    """``128Mi`` → 134217728. Raises QuantityError for anything else."""
    value, suffix = _number(text)
    if suffix not in _MEMORY_SUFFIX:
        raise QuantityError(f"{text!r} has an unknown unit {suffix!r} (use Ki, Mi, Gi, k, M, G)")
    result = int(value * _MEMORY_SUFFIX[suffix])
    if result <= 0:
        raise QuantityError(f"{text!r} must be more than zero")
    return result


def engine_memory_bytes(text: str) -> int:
    """What we hand Docker: the asked size, raised to the engine's minimum."""
    return max(memory_bytes(text), ENGINE_MIN_MEMORY)


def nano_cpus(text: str) -> int:
    """``100m`` → 100_000_000, ``1.5`` → 1_500_000_000."""
    value, suffix = _number(text)
    if suffix == "m":
        value = value / 1000
    elif suffix != "":
        raise QuantityError(f"{text!r} has an unknown unit {suffix!r} (use 500m or 0.5)")
    result = int(value * 10**9)
    if result <= 0:
        raise QuantityError(f"{text!r} must be more than zero")
    return result
