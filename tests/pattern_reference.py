"""A small, deliberately plain reference matcher for EventBridge event patterns.

It is the test oracle for the Rust matcher: no index, no cleverness. A pattern is
expanded into its ``$or`` alternatives; each alternative is checked field by field
against every leaf value of the event; arrays are tried element by element, and two
fields may not be taken from different elements of one array (EventBridge's
array-consistent matching). It assumes the pattern is valid.

Fields are taken in the order of their dotted names, as EventBridge's engine steps
through them (event-ruler's ``ACFinder``): ``{"exists": false}`` holds when no value
at its path sits in the array elements that the fields before it were taken from.

A key is a path of steps separated by dots, in patterns and events alike
(``{"a.b": [1]}`` is ``{"a": {"b": [1]}}`` and matches ``{"a.b": 1}``), and a path
given again in one alternative replaces the earlier one, in document order (dicts keep
it), as EventBridge's compiler does.

Numbers in events may be ``int``, ``float`` or ``Decimal``; they are compared by
decimal value (``float`` by its ``repr``, which is what ``json.dumps`` writes).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from decimal import Decimal
from typing import Any

LIMIT = Decimal("5e9")
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\Z")
_IPV6 = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*\Z")


def is_num(v: Any) -> bool:
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def to_dec(v: Any) -> Decimal:
    if isinstance(v, Decimal):
        return v
    if isinstance(v, float):
        return Decimal(repr(v))
    return Decimal(v)


def ignore_case(operand: str, v: str, how: str = "equals") -> bool:
    """EventBridge's equals-ignore-case: each character of the operand stands for its
    whole lowercase or uppercase form (``"ß"`` for ``"ß"`` or ``"SS"``); the event's
    characters are not folded. ``how`` is ``equals``, ``prefix`` or ``suffix``."""
    forms = [(c.lower(), c.upper()) for c in operand]
    if how == "suffix":
        v = v[::-1]
        forms = [(lo[::-1], up[::-1]) for lo, up in reversed(forms)]
    at = {0}
    for lo, up in forms:
        at = {o + len(f) for o in at for f in (lo, up) if v.startswith(f, o)}
        if not at:
            return False
    return len(v) in at if how == "equals" else True


def parse_ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not (_IPV4.match(s) or _IPV6.match(s)):
        return None
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        return None


def glob_match(glob: str, s: str) -> bool:
    parts: list[str] = []
    i = 0
    lit = ""
    while i < len(glob):
        c = glob[i]
        if c == "\\":
            lit += glob[i + 1]
            i += 2
            continue
        if c == "*":
            parts.append(re.escape(lit))
            parts.append(".*")
            lit = ""
        else:
            lit += c
        i += 1
    parts.append(re.escape(lit))
    return re.fullmatch("".join(parts), s, re.DOTALL) is not None


def leaves(event: dict[str, Any]) -> list[tuple[tuple[str, ...], Any, tuple[tuple[int, int], ...]]]:
    """Every scalar in the event with its key path and the array elements it sits in."""
    out: list[tuple[tuple[str, ...], Any, tuple[tuple[int, int], ...]]] = []
    next_array = itertools.count()

    def walk(v: Any, path: tuple[str, ...], mem: tuple[tuple[int, int], ...]) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, (*path, *k.split(".")), mem)
        elif isinstance(v, list):
            aid = next(next_array)
            for i, x in enumerate(v):
                walk(x, path, (*mem, (aid, i)))
        else:
            out.append((path, v, mem))

    walk(event, (), ())
    return out


def branches(pattern: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[dict[tuple[str, ...], list[Any]]]:
    """The pattern's alternatives: each maps a path to its list of match values."""
    result: list[dict[tuple[str, ...], list[Any]]] = [{}]
    for key, value in pattern.items():
        if key == "$or":
            alts = [b for alt in value for b in branches(alt, prefix)]
        elif isinstance(value, list):
            alts = [{(*prefix, *key.split(".")): value}]
        else:
            alts = branches(value, (*prefix, *key.split(".")))
        result = [{**r, **a} for r in result for a in alts]
    return result


def value_matches(cond: Any, v: Any) -> bool:
    """Does one pattern value (or match expression) accept the event value ``v``?"""
    if isinstance(cond, str):
        ip = parse_ip(cond)
        if ip is not None:
            return isinstance(v, str) and parse_ip(v) == ip
        return isinstance(v, str) and v == cond
    if cond is None or isinstance(cond, bool):
        return v is cond
    if is_num(cond):
        return is_num(v) and to_dec(v) == to_dec(cond)
    ((op, arg),) = cond.items()
    if op == "exists":
        return bool(arg)
    if op == "anything-but":
        return not excluded(arg, v)
    if op == "numeric":
        if not is_num(v) or not -LIMIT <= to_dec(v) <= LIMIT:
            return False
        d = to_dec(v)
        ops = {
            "=": d.__eq__,
            "<": d.__lt__,
            "<=": d.__le__,
            ">": d.__gt__,
            ">=": d.__ge__,
        }
        return all(ops[arg[i]](to_dec(arg[i + 1])) for i in range(0, len(arg), 2))
    if not isinstance(v, str):
        return False
    if op == "prefix":
        if isinstance(arg, dict):
            return ignore_case(arg["equals-ignore-case"], v, "prefix")
        return v.startswith(arg)
    if op == "suffix":
        if isinstance(arg, dict):
            return ignore_case(arg["equals-ignore-case"], v, "suffix")
        return v.endswith(arg)
    if op == "equals-ignore-case":
        return ignore_case(arg, v)
    if op == "wildcard":
        return glob_match(arg, v)
    if op == "cidr":
        ip = parse_ip(v)
        net = ipaddress.ip_network(arg, strict=False)
        return ip is not None and ip.version == net.version and ip in net
    raise AssertionError(f"unknown operator {op}")


def excluded(arg: Any, v: Any) -> bool:
    """Is ``v`` one of the values an anything-but leaves out?"""
    if isinstance(arg, dict):
        ((op, operand),) = arg.items()
        values = operand if isinstance(operand, list) else [operand]
        if not isinstance(v, str):
            return False
        if op == "prefix":
            return any(v.startswith(x) for x in values)
        if op == "suffix":
            return any(v.endswith(x) for x in values)
        if op == "equals-ignore-case":
            return any(ignore_case(x, v) for x in values)
        if op == "wildcard":
            return any(glob_match(x, v) for x in values)
        raise AssertionError(op)
    values = arg if isinstance(arg, list) else [arg]
    if all(isinstance(x, str) for x in values):
        return isinstance(v, str) and v in values
    return is_num(v) and to_dec(v) in {to_dec(x) for x in values}


def compatible(a: dict[int, int], b: tuple[tuple[int, int], ...]) -> bool:
    return all(a.get(x, i) == i for (x, i) in b)


def utf16_order(path: tuple[str, ...]) -> bytes:
    """Java orders names by UTF-16 code units; so do we."""
    return ".".join(path).encode("utf-16-be")


def take(
    fields: list[tuple[tuple[str, ...], list[Any]]],
    flat: list[tuple[tuple[str, ...], Any, tuple[tuple[int, int], ...]]],
    chosen: dict[int, int],
) -> bool:
    """Take ``fields`` in order, each from a value in array elements agreeing with
    ``chosen`` (the elements picked so far), or absent from them."""
    if not fields:
        return True
    (path, conds), rest = fields[0], fields[1:]
    here = [(v, mem) for (p, v, mem) in flat if p == path]
    for v, mem in here:
        if (
            any(value_matches(c, v) for c in conds)
            and compatible(chosen, mem)
            and take(rest, flat, {**chosen, **dict(mem)})
        ):
            return True
    absent_ok = any(isinstance(c, dict) and c.get("exists") is False for c in conds)
    return absent_ok and not any(compatible(chosen, mem) for _, mem in here) and take(rest, flat, chosen)


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Does the EventBridge pattern match the event?"""
    flat = leaves(event)
    return any(
        take(sorted(branch.items(), key=lambda kv: utf16_order(kv[0])), flat, {}) for branch in branches(pattern)
    )
