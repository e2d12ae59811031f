"""A premises is an address normalised (ledger/supervision/register.py premises_of): the same
shop front however it is written, and normalising twice changes nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.supervision.register import premises_of

addresses = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
# What people put between the parts of an address, which says nothing of where it is.
spacing = st.sampled_from([" ", "\u3000", "\t", "  ", "\n", "\u00a0"])


def full_width(text: str) -> str:
    """ASCII letters and digits as their full-width forms (Ａ, １), as IMEs type them."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@given(addresses)
def test_normalising_twice_changes_nothing(address: str) -> None:
    assert premises_of(premises_of(address)) == premises_of(address)


@given(st.lists(st.text(st.sampled_from("北京市朝阳区望京街道路号楼层室ABCdef0123456789"),
                        min_size=1, max_size=8), min_size=1, max_size=6), st.data())
def test_spacing_and_full_width_forms_do_not_change_the_premises(parts: list[str],
                                                                 data: st.DataObject) -> None:
    plain = "".join(parts)
    spaced = "".join(part + data.draw(spacing) for part in parts)
    assert premises_of(spaced) == premises_of(plain)
    assert premises_of(full_width(spaced)) == premises_of(plain)
    assert premises_of(plain.upper()) == premises_of(plain.lower())
