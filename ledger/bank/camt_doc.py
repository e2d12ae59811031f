"""A camt document's elements, found by path in its one namespace, each text read with a
bound: the reading camt.py does on every element, kept apart from what it reads."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from ledger.bank.camt_values import bounded, path_join
from ledger.bank.model import StatementRejected

# An element's children by qualified tag, each list in document order: an element is read
# through one pass over its children rather than a search of them per path asked.
Kids = dict[str, list[Element]]


class Doc:
    """Finds elements in the document's one namespace, and reads their text with a bound.

    Every look-up starts from an element's `kids`: its first step is a dict look-up, the
    others the C ElementTree's plain-tag `find`. (A path with a slash goes through
    ElementPath, in Python: two dozen of those an entry were most of a big file's parse.)
    The results are ElementPath's: the first match in document order (`find`), every match
    in document order (`findall`).
    """

    __slots__ = ("_steps", "ns")

    def __init__(self, ns: str) -> None:
        self.ns = ns
        # path -> the qualified tag of its first step and of the others
        self._steps: dict[str, tuple[str, tuple[str, ...]]] = {}

    def tag(self, name: str) -> str:
        """An element name as the parser spells its tag, `{namespace}name`."""
        return (self._steps.get(name) or self._compile(name))[0]

    def has(self, kids: Kids, name: str) -> bool:
        """Whether there is a child `name`: without one, no path through it finds anything."""
        return self.tag(name) in kids

    def kids(self, el: Element) -> Kids:
        found: Kids = {}
        for child in el:
            tag = child.tag
            if tag in found:
                found[tag].append(child)
            else:
                found[tag] = [child]
        return found

    def find(self, kids: Kids, path: str) -> Element | None:
        first, rest = self._steps.get(path) or self._compile(path)
        nodes = kids.get(first)
        if nodes is None:
            return None
        node = nodes[0]
        for tag in rest:
            child = node.find(tag)
            if child is None:  # not under the first of its parents: ElementPath tries the rest
                found = findall(nodes, rest)
                return found[0] if found else None
            node = child
        return node

    def findall(self, kids: Kids, path: str) -> list[Element]:
        first, rest = self._steps.get(path) or self._compile(path)
        return findall(kids.get(first, []), rest)

    def text(self, kids: Kids, path: str, where: str) -> str | None:
        first, rest = self._steps.get(path) or self._compile(path)
        nodes = kids.get(first)
        if nodes is None:  # the usual way for an optional element to be absent: said fast
            return None
        node = self.find(kids, path) if rest else nodes[0]
        return None if node is None else bounded(node.text, where, path)

    def required(self, kids: Kids, path: str, where: str) -> str:
        value = self.text(kids, path, where)
        if value is None:
            raise StatementRejected(f"missing {path}", field=path_join(where, path))
        return value

    def _compile(self, path: str) -> tuple[str, tuple[str, ...]]:
        first, *rest = (f"{{{self.ns}}}{part}" for part in path.split("/"))
        # The paths are this module's constants: a few dozen at most.
        steps = self._steps[path] = (first, tuple(rest))
        return steps


def findall(nodes: list[Element], tags: tuple[str, ...]) -> list[Element]:
    """Every element at the end of `tags` under these nodes, in document order."""
    for tag in tags:
        if not nodes:
            break
        nodes = [child for node in nodes for child in node.findall(tag)]
    return nodes
