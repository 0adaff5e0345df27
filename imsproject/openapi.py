"""Postprocessing hooks of the OpenAPI document at /api/schema/ (drf-spectacular): what the
views' own annotations cannot say.

- Links: which answer gives the id that a later request takes, so client generators and
  stateful testing follow create → use → delete across both apps' operations.
- Every request body is required: no view here takes a missing body (drf-spectacular calls
  one optional when none of its fields is required on its own, as for "give `time_zone`
  and/or `quiet_hours`").
"""

from __future__ import annotations

from typing import Any

# (operation, status) → {link name: (target operation, {parameter: runtime expression},
# request body or None)}. Operations are (method, path) as in the document.
GROUP = ("post", "/api/conversations/")
CONVERSATION_ID = {"conversation_id": "$response.body#/id"}
FIRST_MEMBER = "$response.body#/members/0/id"
Link = tuple[tuple[str, str], dict[str, str], Any]
LINKS: dict[tuple[tuple[str, str], str], dict[str, Link]] = {
    (("get", "/api/users/"), "200"): {
        "GroupWithThem": (
            GROUP,
            {},
            {"title": "Team", "member_ids": ["$response.body#/0/id", "$response.body#/1/id"]},
        ),
    },
    (GROUP, "201"): {
        "RenameGroup": (("patch", "/api/conversations/{conversation_id}/"), CONVERSATION_ID, None),
        "AddMembers": (
            ("post", "/api/conversations/{conversation_id}/members/"),
            CONVERSATION_ID,
            {"user_ids": [FIRST_MEMBER]},
        ),
        "RemoveMember": (
            ("delete", "/api/conversations/{conversation_id}/members/{user_id}/"),
            {**CONVERSATION_ID, "user_id": FIRST_MEMBER},
            None,
        ),
        "History": (("get", "/api/conversations/{conversation_id}/messages/"), CONVERSATION_ID, None),
        "Upload": (("post", "/api/conversations/{conversation_id}/uploads/"), CONVERSATION_ID, None),
        "Mute": (("post", "/api/conversations/{conversation_id}/mute/"), CONVERSATION_ID, None),
        "Unmute": (("delete", "/api/conversations/{conversation_id}/mute/"), CONVERSATION_ID, None),
    },
    (("post", "/api/conversations/{conversation_id}/members/"), "200"): {
        "RemoveMember": (
            ("delete", "/api/conversations/{conversation_id}/members/{user_id}/"),
            {**CONVERSATION_ID, "user_id": FIRST_MEMBER},
            None,
        ),
    },
    (("post", "/api/messages/"), "201"): {
        "History": (
            ("get", "/api/conversations/{conversation_id}/messages/"),
            {"conversation_id": "$response.body#/conversation_id"},
            None,
        ),
    },
    (("post", "/api/devices/"), "201"): {
        "DeleteDevice": (("delete", "/api/devices/{device_id}/"), {"device_id": "$response.body#/id"}, None),
    },
}


def add_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Adds LINKS to the responses they start from, naming targets by operationId."""
    paths = result.get("paths", {})
    operation_ids = {
        (method, path): operation["operationId"]
        for path, item in paths.items()
        for method, operation in item.items()
    }
    for ((method, path), status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        for name, (target, parameters, body) in links.items():
            if target in operation_ids:
                link: dict[str, Any] = {"operationId": operation_ids[target]}
                if parameters:
                    link["parameters"] = parameters
                if body is not None:
                    link["requestBody"] = body
                response.setdefault("links", {})[name] = link
    return result


def require_request_bodies(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return result


def document_body_limits(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Every operation that takes a body may answer 413: imsproject.request_limits refuses a
    body over its route's limit (IMS_MAX_REQUEST_BYTES; uploads IMS_MAX_UPLOAD_BYTES)
    before any view sees it."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if "requestBody" in operation:
                operation["responses"].setdefault(
                    "413",
                    {
                        "description": "The body is larger than this route takes "
                        "(IMS_MAX_REQUEST_BYTES, 1 MiB by default; code too_large).",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result
