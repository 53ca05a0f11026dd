"""/api/docs/: the API reference, rendered on the server from the live schema.

Swagger UI and Redoc load their JavaScript from a CDN unless drf-spectacular-sidecar is
installed, and neither is available offline here; this page needs no script at all. It lists
every operation with its summary, parameters, request fields and examples, and links the
machine-readable schema (/api/schema/ as YAML, ?format=json as JSON) for any OpenAPI tool.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


def _resolve(schema: dict[str, Any], node: dict[str, Any] | None) -> dict[str, Any]:
    if node and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return schema["components"]["schemas"].get(name, {})
    return node or {}


def _examples(content: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for media in content.values():
        for name, example in (media.get("examples") or {}).items():
            found.append((example.get("summary", name), json.dumps(example.get("value"), indent=2, ensure_ascii=False)))
        break
    return found


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            body = _resolve(
                schema, ((op.get("requestBody") or {}).get("content", {}).get("application/json") or {}).get("schema")
            )
            responses = []
            for code, response in op.get("responses", {}).items():
                responses.append(
                    {
                        "code": code,
                        "description": response.get("description", ""),
                        "examples": _examples(response.get("content", {})),
                    }
                )
            rows.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "tag": (op.get("tags") or ["API"])[0],
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": op.get("parameters", []),
                    "fields": [
                        {
                            "name": name,
                            "type": spec.get("type", spec.get("$ref", "").rsplit("/", 1)[-1] or "object"),
                            "required": name in body.get("required", []),
                            "help": spec.get("description", ""),
                        }
                        for name, spec in body.get("properties", {}).items()
                    ],
                    "request_examples": _examples((op.get("requestBody") or {}).get("content", {})),
                    "responses": responses,
                }
            )
    return sorted(rows, key=lambda r: (r["tag"], r["path"], r["method"]))


@require_GET
def api_docs(request: HttpRequest) -> HttpResponse:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    context = {"info": schema.get("info", {}), "operations": operations(schema)}
    return render(request, "api/docs.html", context)


def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Anything under /api/ that no route serves: JSON like every other refusal, never an HTML page."""
    detail = "No API endpoint at this address; see /api/docs/."
    return JsonResponse({"detail": detail, "code": "not_found", "reasons": [detail]}, status=404)
