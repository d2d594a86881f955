"""Principals: the producers and consumers a router knows, as unforgeable objects."""

from __future__ import annotations

from typing import Final

from sealbus.errors import InvalidArgumentType


class Principal:
    """A producer or consumer identity, created by :meth:`sealbus.Router.principal`.

    It carries a secret token issued by the router, so code that only knows the name
    ``"checkout"`` cannot publish as checkout: it needs this object. The token never
    appears in a repr.
    """

    __slots__ = ("_router_id", "_token", "name")

    def __init__(self, name: str, token: bytes, router_id: int) -> None:
        self.name: Final = name
        self._token: Final = token
        self._router_id: Final = router_id

    def __repr__(self) -> str:
        return f"Principal({self.name!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise InvalidArgumentType(
            "invalid argument: a Principal holds a credential and cannot be pickled",
            name="self",
            reason="not picklable",
        )


def principal_name(who: Principal | str) -> str:
    """The name of a principal given as an object or a name (policy rules take either)."""
    return who.name if isinstance(who, Principal) else who
