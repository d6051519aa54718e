"""PNG text chunks that generators write: Stable Diffusion web UIs' ``parameters``,
ComfyUI's ``prompt``/``workflow``, InvokeAI's and Fooocus's own, and a ``Software`` chunk
naming a generator. Unsigned. The prompt itself is never echoed back; only a few named
settings (steps, sampler, model...) are."""

from __future__ import annotations

import re

from core.provenance.findings import UNSIGNED, Finding, clean
from core.provenance.generators import generator_named

KEYWORDS = {  # text chunk keyword -> the tools known to write it
    "parameters": "a Stable Diffusion web UI (AUTOMATIC1111, Forge, SD.Next, Fooocus)",
    "prompt": "ComfyUI",
    "workflow": "ComfyUI",
    "invokeai_metadata": "InvokeAI",
    "invokeai_graph": "InvokeAI",
    "sd-metadata": "InvokeAI",
    "Dream": "InvokeAI",
    "fooocus_scheme": "Fooocus",
}
SETTINGS = ("Steps", "Sampler", "CFG scale", "Size", "Model", "Model hash")
_SETTING = re.compile(
    r"(?:^|,)\s*(" + "|".join(map(re.escape, SETTINGS)) + r"):\s*([^,\n]{1,80})", re.M
)


def read_png_text(chunks: list[tuple[str, str]]) -> list[Finding]:
    """One finding per generator whose chunks are present."""
    by_tool: dict[str, list[str]] = {}
    settings: dict[str, str] = {}
    for keyword, text in chunks:
        tool = KEYWORDS.get(keyword)
        if keyword == "Software":
            tool = generator_named(text)
        if tool is None:
            continue
        by_tool.setdefault(tool, []).append(keyword)
        if keyword == "parameters":
            settings |= {key: clean(value, 80) for key, value in _SETTING.findall(text[-2000:])}
    found = []
    for tool, keywords in by_tool.items():
        names = ", ".join(sorted(set(keywords)))
        details: dict = {"generator": tool}
        if "parameters" in keywords and settings:
            details["settings"] = settings
        found.append(Finding("png_text", UNSIGNED,
                             f"PNG text chunk(s) {names} hold generation data written by {tool}",
                             "ai_generated", names, details))  # fmt: skip
    return found
