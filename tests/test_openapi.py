"""/openapi.json: valid OpenAPI 3.1, every route and documented status in it, answers that
match its schemas."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import png_image, serving_client, test_config
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from starlette.routing import Route

from serving.app import create_app

CONTRACTS = Path(__file__).resolve().parents[1] / "docs" / "CONTRACTS.md"

pytestmark = pytest.mark.asyncio


def documented_statuses() -> set[int]:
    """Every status code in CONTRACTS.md's "Status codes:" paragraph."""
    text = CONTRACTS.read_text()
    paragraph = text[text.index("Status codes:") :].split("\n\n")[0]
    return {int(code) for code in re.findall(r"\b([45]\d\d)\b", paragraph)}


def documented_routes() -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every row of CONTRACTS.md's HTTP table."""
    text = CONTRACTS.read_text()
    table = text[text.index("## HTTP API") :].split("\n\n")[1]
    found = set()
    for method, path in re.findall(r"`(GET|POST) (/[^` ]*)`", table):
        found.add((method, path.replace("/*", "")))
    return found


def statuses_in(document: dict) -> set[int]:
    """Every status an operation answers with, and 405 (any route, the wrong method)."""
    found = {int(status) for op in operations(document) for status in op["responses"]}
    return found | ({405} if "MethodNotAllowed" in document["components"]["responses"] else set())


def operations(document: dict) -> list[dict]:
    return [op for item in document["paths"].values() for op in item.values()]


def check(document: dict, schema: str, instance: object) -> None:
    """``instance`` against ``#/components/schemas/<schema>`` of ``document``."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    OAS31Validator(root).validate(instance)


async def test_the_description_is_valid_and_covers_every_route_and_status(tiny_repo):
    async with serving_client(test_config(tiny_repo)) as (client, _):
        answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    validate(document)  # OpenAPI 3.1 (openapi-spec-validator)
    assert document["openapi"] == "3.1.0"
    app = create_app(test_config(tiny_repo))
    for route in app.routes:
        if not isinstance(route, Route):
            continue  # /static: a mount of files, not an operation
        assert route.path in document["paths"], route.path
        methods = {m.lower() for m in route.methods or ()} - {"head"}
        assert methods <= set(document["paths"][route.path]), route.path
    for method, path in documented_routes():
        paths = [p for p in document["paths"] if p.startswith(path.split(" (")[0])]
        assert any(method.lower() in document["paths"][p] for p in paths), (method, path)
    missing = documented_statuses() - statuses_in(document)
    assert not missing, f"statuses in CONTRACTS.md but not in /openapi.json: {missing}"


async def test_real_answers_match_the_schemas(tiny_repo):
    async with serving_client(test_config(tiny_repo)) as (client, _):
        document = (await client.get("/openapi.json")).json()
        image, png = png_image(3, mean=170.0), {"content-type": "image/png"}
        predicted = await client.post("/v1/predict", content=image, headers=png)
        check(document, "Prediction", predicted.json())
        batch = await client.post(
            "/v1/predict/batch", files=[("files", ("a.png", image)), ("files", ("b.txt", b"no"))]
        )
        check(document, "BatchResult", batch.json())
        check(document, "Models", (await client.get("/v1/models")).json())
        explained = await client.post("/v1/explain", content=image, headers=png)
        check(document, "Explanation", explained.json())
        refused = await client.post(
            "/v1/predict", content=b"text", headers={"content-type": "image/png"}
        )
        assert refused.status_code == 400
        check(document, "Error", refused.json())
        with pytest.raises(Exception, match="required"):
            check(document, "Prediction", {"label": "FAKE"})  # the schemas can fail
