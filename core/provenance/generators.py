"""Names of image generators, as they appear in EXIF ``Software``, XMP ``CreatorTool`` or a
PNG ``Software`` text chunk. Only names on this list are echoed back: any other software
(a camera's firmware, an editor) is metadata this service does not report."""

from __future__ import annotations

import re

GENERATORS = (  # (name reported, pattern matched case-insensitively as whole words)
    ("Stable Diffusion", r"stable[ _-]?diffusion|\bSDXL\b"),
    ("Midjourney", r"midjourney"),
    ("DALL-E", r"dall[·\-\s]?e"),
    ("Adobe Firefly", r"firefly"),
    ("Google Imagen", r"imagen"),
    ("NovelAI", r"novel ?ai"),
    ("ComfyUI", r"comfy ?ui"),
    ("AUTOMATIC1111 web UI", r"automatic1111"),
    ("InvokeAI", r"invoke ?ai"),
    ("Fooocus", r"fooocus"),
    ("Leonardo.Ai", r"leonardo\.?ai"),
    ("Ideogram", r"ideogram"),
    ("FLUX", r"flux\.?1|black forest labs"),
    ("Microsoft Designer / Bing Image Creator", r"bing image creator|microsoft designer"),
    ("DreamStudio", r"dreamstudio"),
    ("Craiyon", r"craiyon"),
    ("Kandinsky", r"kandinsky"),
    ("Playground AI", r"playground ?ai"),
    ("Runway", r"runway ?ml|runway gen"),
    ("OpenAI", r"openai|gpt-?4o|chatgpt"),
)
_PATTERNS = tuple(
    (name, re.compile(rf"(?<![a-z0-9])(?:{pattern})", re.I)) for name, pattern in GENERATORS
)


def generator_named(value: str) -> str | None:
    """The generator a software field names, or None."""
    for name, pattern in _PATTERNS:
        if pattern.search(value[:400]):
            return name
    return None
