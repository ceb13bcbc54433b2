"""What generators and provenance standards write into files: the detector's tables.

Kept as data, apart from the readers, so a new generator is one line here and the
tables can be reviewed on their own. Three kinds of signature:

* ``DIGITAL_SOURCE_TYPES``: the IPTC "digital source type" vocabulary (also used by
  C2PA actions), each term with what it says about the picture and the score it earns.
* ``GENERATORS``: names of image generators as they appear in software fields (EXIF
  Software, XMP CreatorTool, XMP history agents, C2PA claim generators).
* ``match_text_chunk`` / ``match_generation_parameters``: the structured blocks that
  generator front-ends embed (AUTOMATIC1111 "parameters", ComfyUI graphs, InvokeAI,
  NovelAI), recognised by their shape rather than their key alone, because a key called
  ``prompt`` or ``Comment`` on its own proves nothing.

Limits, honestly: every signature here is metadata, which is stripped by most
re-encodes and uploads and can be forged. A hit is strong evidence (nobody writes
"Steps: 20, Sampler: Euler a" into a camera photo); a miss says almost nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

IPTC_DST_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
C2PA_DST_PREFIX = "http://c2pa.org/digitalsourcetype/"


@dataclass(frozen=True)
class SourceType:
    """One digital-source-type term and what a declaration of it is worth."""

    term: str
    code: str  # the Finding code used when an (unsigned) declaration of this term is found
    score: float
    meaning: str
    decisive: bool = False
    #: The term declares generative AI (a model trained on sampled content) was used.
    ai: bool = False
    #: The term declares a capture of real life (camera, scanner): evidence of authenticity.
    capture: bool = False
    prefix: str = IPTC_DST_PREFIX

    @property
    def uri(self) -> str:
        return self.prefix + self.term


def _st(term: str, code: str, score: float, meaning: str, **kw: Any) -> tuple[str, SourceType]:
    return term.lower(), SourceType(term, code, score, meaning, **kw)


#: IPTC NewsCodes "digitalsourcetype" (https://cv.iptc.org/newscodes/digitalsourcetype/),
#: plus C2PA's own additions. Keyed by the lower-cased term.
#: Scores rank how far each declared origin is from "a faithful capture of a real scene".
DIGITAL_SOURCE_TYPES: Mapping[str, SourceType] = MappingProxyType(dict([
    _st("trainedAlgorithmicMedia", "source_type_ai_generated", 0.97,
        "created by generative AI (a model trained on sampled content)", decisive=True, ai=True),
    _st("compositeWithTrainedAlgorithmicMedia", "source_type_ai_composite", 0.90,
        "combines other content with generative-AI elements (e.g. inpainting, generative fill)", ai=True),
    _st("compositeSynthetic", "source_type_composite_synthetic", 0.90,
        "a composite that includes synthetic elements"),
    _st("algorithmicMedia", "source_type_algorithmic", 0.85,
        "created purely by an algorithm, without a trained model (e.g. procedural generation)"),
    _st("trainedAlgorithmicData", "source_type_ai_data", 0.90,
        "data produced by a trained (AI) model", ai=True, prefix=C2PA_DST_PREFIX),
    _st("dataDrivenMedia", "source_type_data_driven", 0.60,
        "rendered from data (e.g. a visualisation or sensor reconstruction), not a photograph"),
    _st("composite", "source_type_composite", 0.60, "a composite of several elements"),
    _st("compositeCapture", "source_type_composite_capture", 0.50,
        "a composite of several captures of real life (e.g. a photomontage)"),
    _st("digitalArt", "source_type_digital_art", 0.50, "made by a person with software (digital art), not captured"),
    _st("digitalCreation", "source_type_digital_art", 0.50, "made by a person with software (digital art), not captured"),
    _st("softwareImage", "source_type_software", 0.50, "created by software (deprecated term)"),
    _st("virtualRecording", "source_type_virtual_recording", 0.50, "a recording of a virtual scene (e.g. a game)"),
    _st("algorithmicallyEnhanced", "source_type_enhanced", 0.35,
        "a capture enhanced by algorithms (e.g. denoising, super-resolution)"),
    _st("humanEdits", "source_type_human_edits", 0.30, "a capture edited by a person"),
    _st("minorHumanEdits", "source_type_human_edits", 0.20, "a capture with minor edits by a person (deprecated term)"),
    _st("screenCapture", "source_type_screen_capture", 0.30, "a screenshot"),
    _st("digitalCapture", "source_type_capture", 0.15, "an original digital capture of real life", capture=True),
    _st("computationalCapture", "source_type_capture", 0.15,
        "a capture of real life with computational processing (e.g. a smartphone photo)", capture=True),
    _st("negativeFilm", "source_type_capture", 0.15, "digitised from a film negative", capture=True),
    _st("positiveFilm", "source_type_capture", 0.15, "digitised from a film positive or slide", capture=True),
    _st("print", "source_type_capture", 0.15, "digitised from a print", capture=True),
]))

_DST_URI = re.compile(r"^https?://(?:cv\.iptc\.org/newscodes|c2pa\.org)/digitalsourcetype/", re.I)


def source_type(value: object) -> SourceType | None:
    """The vocabulary entry for a declared digital source type (full URI or bare term)."""
    if not isinstance(value, str):
        return None
    term = _DST_URI.sub("", value.strip()).rstrip("/")
    return DIGITAL_SOURCE_TYPES.get(term.lower())


@dataclass(frozen=True)
class Generator:
    name: str
    pattern: re.Pattern[str]


def _g(name: str, pattern: str) -> Generator:
    return Generator(name, re.compile(pattern, re.I))


#: Image generators by name. Checked in order, so specific front-ends come before the
#: model family they run (AUTOMATIC1111 before Stable Diffusion). Word boundaries keep
#: "Imagen" from matching "Imagenomic" and "Flux" from matching "Influx".
GENERATORS: tuple[Generator, ...] = (
    _g("AUTOMATIC1111", r"automatic\s?1111|stable-diffusion-webui|\bsd[\s.-]?next\b"),
    _g("ComfyUI", r"comfy\s?ui"),
    _g("InvokeAI", r"invoke\s?ai"),
    _g("Fooocus", r"\bfooocus\b"),
    _g("NovelAI", r"novel\s?ai"),
    _g("Easy Diffusion", r"easy\s?diffusion"),
    _g("DiffusionBee", r"diffusion\s?bee"),
    _g("Draw Things", r"\bdraw\s?things\b"),
    _g("SwarmUI", r"\bswarm\s?ui\b"),
    _g("DreamStudio", r"dream\s?studio"),
    _g("Stable Diffusion", r"stable[\s_-]?diffusion|\bSDXL\b|stability\s?ai"),
    _g("Midjourney", r"mid\s?journey"),
    _g("DALL-E", r"\bdall[^a-z0-9]?e\b"),  # also "DALL?E" when "·" met an ASCII-only EXIF writer
    _g("ChatGPT", r"\bchat\s?gpt\b|\bgpt-?4o\b|\bgpt-image"),
    _g("OpenAI", r"\bopen\s?ai\b"),
    _g("Adobe Firefly", r"\bfirefly\b"),
    _g("Google Imagen", r"\bimagen\b"),
    _g("Google Gemini", r"\bgemini\b"),
    _g("Ideogram", r"\bideogram\b"),
    _g("Leonardo.Ai", r"\bleonardo(?:\.ai|\s?ai)\b"),
    _g("FLUX", r"\bflux[\s.-]?(?:1|dev|schnell|pro|kontext)\b|black\s?forest\s?labs"),
    _g("Runway", r"\brunway(?:\s?ml)?\b"),
    _g("Bing Image Creator", r"bing\s+image\s+creator|image\s+creator\s+from\s+(?:microsoft\s+)?designer|microsoft\s+designer"),
    _g("Craiyon", r"\bcraiyon\b"),
    _g("Playground AI", r"playground\s?ai"),
    _g("Kandinsky", r"\bkandinsky\b"),
    _g("NightCafe", r"night\s?cafe"),
    _g("Artbreeder", r"\bartbreeder\b"),
    _g("Krea", r"\bkrea(?:\.ai|\s?ai)\b"),
    _g("Recraft", r"\brecraft\b"),
    _g("Dream by WOMBO", r"\bwombo\b"),
    _g("Seedream", r"\bseedream\b"),
    _g("Hunyuan", r"\bhunyuan(?:\s?image|\s?dit)?\b"),
)

#: Image editors. Since detector version 1.1 a named editor is a modest consistency
#: signal (``edited_with_software``), never more: most archive photographs pass through
#: one of these for innocent reasons (exposure, crop, export), so their presence says the
#: file was processed, not that it was manipulated.
EDITORS: tuple[Generator, ...] = (
    _g("Adobe Lightroom", r"lightroom"),  # before Photoshop: "Adobe Photoshop Lightroom Classic"
    _g("Adobe Photoshop Express", r"photoshop\s+express"),
    _g("Adobe Photoshop", r"photoshop"),
    _g("GIMP", r"\bgimp\b"),
    _g("Affinity Photo", r"affinity\s+photo"),
    _g("Capture One", r"capture\s?one"),
    _g("Snapseed", r"snapseed"),
    _g("darktable", r"darktable"),
    _g("RawTherapee", r"rawtherapee"),
    _g("Pixelmator", r"pixelmator"),
    _g("Photopea", r"photopea"),
    _g("Paint.NET", r"paint\.net"),
    _g("Krita", r"\bkrita\b"),
    _g("Luminar", r"\bluminar\b"),
    _g("Corel PaintShop Pro", r"paint\s?shop\s?pro|corel\s+photo-paint"),
    _g("ACDSee", r"\bacdsee\b"),
    _g("Pixlr", r"\bpixlr\b"),
    _g("Fotor", r"\bfotor\b"),
    _g("PicsArt", r"\bpicsart\b"),
    _g("Facetune", r"\bfacetune\d*\b"),
    _g("Canva", r"\bcanva\b"),
    _g("Skylum Aurora HDR", r"aurora\s+hdr"),
)


def find_generator(text: object) -> str | None:
    """The canonical name of the first generator named in ``text``, if any."""
    if not isinstance(text, str) or not text:
        return None
    for gen in GENERATORS:
        if gen.pattern.search(text[:4096]):
            return gen.name
    return None


def find_editor(text: object) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    for gen in EDITORS:
        if gen.pattern.search(text[:4096]):
            return gen.name
    return None


# --- generation-parameter blocks ---------------------------------------------------

#: PNG text keys that generators write. Informational: recognition is by content.
GENERATOR_TEXT_KEYS: Mapping[str, str] = MappingProxyType({
    "parameters": "AUTOMATIC1111 / Forge / SD.Next (and Fooocus, SwarmUI as JSON)",
    "prompt": "ComfyUI API graph (JSON)",
    "workflow": "ComfyUI editor workflow (JSON)",
    "dream": "InvokeAI 1.x/2.x command line",
    "sd-metadata": "InvokeAI 2.x (JSON)",
    "invokeai_metadata": "InvokeAI 3+ (JSON)",
    "invokeai_graph": "InvokeAI 3+ (JSON)",
    "comment": "NovelAI generation settings (JSON)",
    "software": "generator name (NovelAI writes 'NovelAI')",
    "source": "model name (NovelAI writes e.g. 'Stable Diffusion XL ...')",
    "fooocus_scheme": "Fooocus metadata scheme marker",
})

_A1111_STEPS = re.compile(r"\bSteps:\s*\d+")
_A1111_MORE = re.compile(r"\b(?:Sampler:\s*\S|Seed:\s*-?\d+|CFG scale:\s*[\d.]+)")
_DREAM = re.compile(r"(?:^|\s)-S\s*-?\d+|(?:^|\s)-s\s*\d+\b.*-C\s*[\d.]+", re.S)
_MAX_TEXT = 1 << 20  # 1 MiB: larger text chunks are only prefix-checked


@dataclass(frozen=True)
class TextHit:
    """A generator recognised from an embedded text block."""

    generator: str
    reason: str  # plain words: what about the text gave it away


def _json(text: str) -> Any:
    text = text.strip()
    if not text or text[0] not in "{[" or len(text) > _MAX_TEXT:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def match_generation_parameters(text: object) -> TextHit | None:
    """Recognise a generation-settings block in free text (any container).

    AUTOMATIC1111-style text (``Steps: 20, Sampler: ..., Seed: ...``) or a JSON object
    that carries a seed together with steps/sampler/cfg, as NovelAI, Fooocus, SwarmUI
    and others write.
    """
    if not isinstance(text, str) or not text:
        return None
    head = text[:_MAX_TEXT]
    if _A1111_STEPS.search(head) and _A1111_MORE.search(head):
        return TextHit("AUTOMATIC1111", "Stable Diffusion web UI generation parameters (Steps/Sampler/Seed)")
    obj = _json(head)
    if isinstance(obj, dict):
        if "sui_image_params" in obj:
            return TextHit("SwarmUI", "SwarmUI generation parameters (JSON)")
        keys = {str(k).lower() for k in obj}
        if "seed" in keys and keys & {"steps", "sampler", "cfg_scale", "scale", "guidance_scale", "num_inference_steps"}:
            gen = find_generator(str(obj.get("software", "")) + " " + str(obj.get("metadata_scheme", "")))
            if gen is None and {"uc", "n_samples"} & keys:
                gen = "NovelAI"
            if gen is None and ("fooocus_v2" in head.lower() or "performance" in keys):
                gen = "Fooocus"
            return TextHit(gen or "Stable Diffusion", "image-generation settings (JSON with seed and steps/sampler)")
    return None


def _comfy_graph(obj: Any) -> bool:
    """A ComfyUI API prompt: {"<node id>": {"class_type": ..., "inputs": {...}}, ...}."""
    if not isinstance(obj, dict) or not obj:
        return False
    nodes = [v for v in obj.values() if isinstance(v, dict)]
    return bool(nodes) and sum("class_type" in n and "inputs" in n for n in nodes) >= max(1, len(nodes) // 2)


def _comfy_workflow(obj: Any) -> bool:
    """A ComfyUI editor workflow: {"nodes": [{"type": ...}, ...], "links": [...]}."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("nodes"), list)
        and "links" in obj
        and any(isinstance(n, dict) and "type" in n for n in obj["nodes"])
    )


def match_text_chunk(key: str, value: object) -> TextHit | None:
    """Recognise a generator from one PNG text chunk (or similar key/value text field)."""
    if not isinstance(value, str) or not value:
        return None
    k = key.strip().lower()
    if k == "prompt" and _comfy_graph(_json(value)):
        return TextHit("ComfyUI", "ComfyUI node graph in the 'prompt' text chunk")
    if k == "workflow" and _comfy_workflow(_json(value)):
        return TextHit("ComfyUI", "ComfyUI workflow in the 'workflow' text chunk")
    if k == "dream" and _DREAM.search(value[:_MAX_TEXT]):
        return TextHit("InvokeAI", "InvokeAI 'Dream' command line (seed/steps flags)")
    if k in ("sd-metadata", "invokeai_metadata", "invokeai_graph"):
        obj = _json(value)
        if isinstance(obj, dict):
            return TextHit("InvokeAI", f"InvokeAI generation metadata in the '{key}' text chunk")
    if k == "fooocus_scheme":
        return TextHit("Fooocus", "Fooocus metadata-scheme marker")
    if k in ("software", "source", "generator", "creator tool", "creatortool"):
        gen = find_generator(value)
        if gen:
            return TextHit(gen, f"the '{key}' text chunk names {gen}")
    hit = match_generation_parameters(value)
    if hit is not None:
        return TextHit(hit.generator, f"{hit.reason} in the '{key}' text chunk")
    return None
