"""The XMP edit history: which programs did what to the file, and what went into it.

Adobe's XMP media-management schema (``xmpMM``) records a file's life as it passes
through Photoshop, Lightroom, Bridge, Illustrator and the many tools built on the XMP
toolkit:

* ``xmpMM:History``: a sequence of ``stEvt`` events, each with an ``action``
  (created, saved, converted, derived, edited, produced, ...), the ``softwareAgent``,
  ``when``, and ``changed`` (which parts changed: ``/`` everything, ``/metadata`` only
  the metadata, ``/content``, ...).
* ``xmpMM:DerivedFrom``: the document this one was saved-as or converted from.
* ``xmpMM:Ingredients``: files placed or linked into this one (``stRef`` references).
* ``photoshop:DocumentAncestors``: the documents whose layers were pasted or placed
  into this one (Photoshop keeps their IDs, up to thousands).

This module turns them into a plain chain for reviewers and into findings: content
changes by an image editor, and content from other documents. A generator named
anywhere in the chain is caught by the detector's generator check (it reads every
history agent), which is decisive.

Limits, honestly: the history is written by the editors themselves and only by tools
that use the XMP toolkit; most other software drops or ignores it, and anyone can edit
it. An empty history says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deeptrawl.detectors.base import Finding
from deeptrawl.detectors.metadata import scores, signatures
from deeptrawl.detectors.metadata import xmp as xmp_reader
from deeptrawl.detectors.metadata.exif import clip

#: Actions that write new content (as opposed to created/opened/copied/published).
CONTENT_ACTIONS = frozenset({"saved", "converted", "derived", "edited", "produced", "filtered", "cropped"})
#: ``stEvt:changed`` parts that leave the pixels alone.
_METADATA_PARTS = frozenset({"/metadata", "metadata"})
MAX_EVENTS = 50
MAX_REFS = 20


@dataclass
class EditChain:
    events: list[dict[str, str]] = field(default_factory=list)
    derived_from: dict[str, str] | None = None
    ingredients: list[dict[str, str]] = field(default_factory=list)
    ancestors: int = 0
    #: Events that changed content, by an image editor: (editor, event).
    content_edits: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    generators: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.events or self.derived_from or self.ingredients or self.ancestors)

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"steps": [_describe(e) for e in self.events[:MAX_EVENTS]]}
        if self.derived_from:
            out["derived_from"] = self.derived_from
        if self.ingredients:
            out["ingredients"] = self.ingredients[:MAX_REFS]
        if self.ancestors:
            out["document_ancestors"] = self.ancestors
        editors = sorted({editor for editor, _ in self.content_edits})
        if editors:
            out["content_edited_by"] = editors
        if self.generators:
            out["generators"] = sorted(set(self.generators))
        return out


def read_chain(props: dict[str, Any]) -> EditChain:
    chain = EditChain(events=xmp_reader.history_events(props)[:MAX_EVENTS])
    derived = props.get("xmpMM:DerivedFrom")
    if isinstance(derived, dict):
        chain.derived_from = _ref(derived)
    elif isinstance(derived, str) and derived:
        chain.derived_from = {"ref": clip(derived, 200)}
    ingredients = props.get("xmpMM:Ingredients")
    if isinstance(ingredients, list):
        chain.ingredients = [r for item in ingredients[:MAX_REFS] if (r := _ref(item))]
    chain.ancestors = len(xmp_reader.as_strings(props.get("photoshop:DocumentAncestors")))
    current = ""
    for event in chain.events:
        # Photoshop writes "converted"/"derived" events without an agent: they are done
        # by the program that wrote the event before them.
        agent = event.get("softwareAgent") or current
        current = agent
        if gen := signatures.find_generator(agent):
            chain.generators.append(gen)
        editor = signatures.find_editor(agent)
        if editor and _changes_content(event):
            chain.content_edits.append((editor, event))
    return chain


def _ref(value: Any) -> dict[str, str]:
    """An ``stRef`` structure (or a bare URI) as short strings."""
    if isinstance(value, str):
        return {"ref": clip(value, 200)} if value else {}
    if not isinstance(value, dict):
        return {}
    return {k.split(":", 1)[-1]: clip(v, 200) for k, v in value.items() if isinstance(v, str) and v}


def _changes_content(event: dict[str, str]) -> bool:
    action = (event.get("action") or "").strip().lower()
    if action not in CONTENT_ACTIONS:
        return False
    changed = event.get("changed")
    if changed is None:
        return True  # Photoshop omits it for whole-document saves
    parts = {p.strip() for p in changed.split(";") if p.strip()}
    return not parts or not parts <= _METADATA_PARTS


def _describe(event: dict[str, str]) -> str:
    """One plain line per event: 'saved by Adobe Photoshop 25.0 at 2024-... (changed /)'."""
    text = event.get("action") or "event"
    if event.get("softwareAgent"):
        text += f" by {event['softwareAgent']}"
    if event.get("when"):
        text += f" at {event['when']}"
    if event.get("parameters"):
        text += f" ({event['parameters']})"
    if event.get("changed"):
        text += f" [changed {event['changed']}]"
    return clip(text, 200)


def chain_findings(chain: EditChain) -> list[Finding]:
    out: list[Finding] = []
    if chain.content_edits:
        by_editor: dict[str, list[str]] = {}
        for editor, event in chain.content_edits:
            by_editor.setdefault(editor, []).append(event.get("action", "saved"))
        summary = "; ".join(
            f"{editor}: {', '.join(dict.fromkeys(actions))} ({len(actions)} event{'s' if len(actions) > 1 else ''})"
            for editor, actions in sorted(by_editor.items())
        )
        out.append(Finding(
            "xmp_history_edited",
            f"The XMP edit history records image editing software re-writing the picture ({summary}).",
            scores.SCORE_XMP_HISTORY_EDITED,
        ))
    if chain.ingredients or chain.ancestors:
        parts = []
        if chain.ingredients:
            names = [r.get("filePath") or r.get("documentID") or r.get("ref") or "?" for r in chain.ingredients[:3]]
            parts.append(f"{len(chain.ingredients)} placed file(s) ({', '.join(clip(n, 60) for n in names)})")
        if chain.ancestors:
            parts.append(f"{chain.ancestors} ancestor document(s) whose content was pasted or placed in")
        out.append(Finding(
            "xmp_composite",
            "The XMP records content from other documents: " + " and ".join(parts)
            + ". The picture is (or was built from) a composite.",
            scores.SCORE_XMP_COMPOSITE,
        ))
    return out
