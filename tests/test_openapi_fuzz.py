"""Schemathesis against the OpenAPI document the server serves at /api/schema/, in process
(Django's WSGI handler: the URLs, middleware and views daphne serves), with all its checks:
no 500, no status, content type, header or body outside the document, every request the
document allows accepted and every request it forbids refused.

As a staff caller (so `POST /api/notifications/` is reachable) and without credentials;
one case per operation from the document's examples, its coverage cases and fuzzed ones,
then stateful runs that follow the document's links (a group created, renamed, joined,
left; a device registered, deleted). Derandomized, with bounded examples: the same cases
on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase
from rest_framework.authtoken.models import Token
from schemathesis.config import HealthCheck as SchemathesisHealthCheck
from schemathesis.specs.openapi.checks import positive_data_acceptance

from messaging.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

FUZZ_TOKEN = "f0" * 20
AUTHENTICATED = {"Authorization": f"Token {FUZZ_TOKEN}"}
# Rules JSON Schema (OpenAPI 3.0) cannot state, each in its operation's description: a
# request the document allows may break one and get a 400 whose body names the field.
RULES_BEYOND_THE_SCHEMA: dict[tuple[str, str], set[str]] = {
    # `to` is another user; mentions are members of the conversation.
    ("POST", "/api/messages/"): {"to", "mentions"},
    # `extra`: size, depth, numbers and keys.
    ("POST", "/api/notifications/"): {"extra"},
    # Quiet hours that start and end at once.
    ("PATCH", "/api/me/preferences/"): {"quiet_hours"},
    # A push service's URL (notifications.providers.endpoints: https, an allowed push
    # service, public addresses); a phone, token or endpoint another user registered, and
    # more devices than IMS_MAX_DEVICES_PER_USER.
    ("POST", "/api/devices/"): {"subscription", "phone", "token"},
    # A username and password that do not sign in.
    ("POST", "/api/auth/token/"): {"non_field_errors"},
    # `file` is a file part, with a filename (else Django reads it as a text field).
    ("POST", "/api/conversations/{conversation_id}/uploads/"): {"file"},
    # A direct conversation's members and title never change.
    ("PATCH", "/api/conversations/{conversation_id}/"): {"conversation_id"},
    ("POST", "/api/conversations/{conversation_id}/members/"): {"conversation_id"},
    ("DELETE", "/api/conversations/{conversation_id}/members/{user_id}/"): {"conversation_id"},
}

schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
schema.config.generation.update(max_examples=8, deterministic=True, database="none")
schema.config.update(headers=AUTHENTICATED)
schema.config.update(
    suppress_health_check=[SchemathesisHealthCheck.too_slow, SchemathesisHealthCheck.filter_too_much]
)


def positive_data_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's positive_data_acceptance, less the 400s of RULES_BEYOND_THE_SCHEMA."""
    fields = RULES_BEYOND_THE_SCHEMA.get((case.method.upper(), case.path), set())
    if response.status_code == 400 and fields & set(response.json()):
        return None
    return positive_data_acceptance(ctx, response, case)


CHECKS: dict[str, Any] = {
    "excluded_checks": [positive_data_acceptance],
    "additional_checks": [positive_data_accepted],
}


@pytest.fixture(autouse=True)
def connection_kept_open_between_requests() -> Iterator[None]:
    """What Django's test client does too: the end of a request closes the database
    connection, which here holds the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def staff_caller(db) -> User:
    """A staff user with a known token, and two colleagues to message and notify."""
    staff = UserFactory(username="fuzz-staff", is_staff=True)
    Token.objects.create(user=staff, key=FUZZ_TOKEN)
    UserFactory.create_batch(2)
    return staff


# One staff caller and its data for all the cases of an operation, on purpose: they add up.
SHARED_FIXTURES = hypothesis.settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@schema.parametrize()
@SHARED_FIXTURES
def test_every_operation_answers_as_the_schema_says_to_a_staff_caller(case, staff_caller):
    case.call_and_validate(**CHECKS)


# Nothing reaches a view without credentials: a few fuzzed cases an operation say so.
unauthenticated = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
unauthenticated.config.phases.update(phases=["fuzzing"])
unauthenticated.config.generation.update(max_examples=3)


@unauthenticated.parametrize()
@SHARED_FIXTURES
def test_every_operation_refuses_a_caller_without_credentials_as_the_schema_says(case):
    response = case.call_and_validate(**CHECKS)
    if not case.operation.definition.raw.get("security"):
        return  # an operation for anyone (signing in): the checks above are all it owes
    # A path no route takes (an id that is no integer) is a 404 before any view.
    assert response.status_code == 401 or "no such path" in response.text, response.text


# (method, path, status) of every linked request: the chains must reach the deletes.
ANSWERED: set[tuple[str, str, int]] = set()


# The document's own links only (none that schemathesis would infer): what clients see.
linked = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
linked.config.update(headers=AUTHENTICATED)
linked.config.phases.stateful.inference.algorithms = []


class LinkedRequests(linked.as_state_machine()):  # type: ignore[misc]
    """Chains of requests along the document's links, as the staff caller. Each chain
    starts from the same data (Hypothesis replays a chain and expects the same answers)."""

    def setup(self) -> None:
        super().setup()
        self.savepoint = transaction.savepoint()
        cache.clear()  # the send throttle's counts

    def teardown(self) -> None:
        transaction.savepoint_rollback(self.savepoint)
        super().teardown()

    def after_call(self, response: Any, case: Any) -> None:
        super().after_call(response, case)
        ANSWERED.add((case.method.upper(), case.path, response.status_code))

    def validate_response(
        self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        case.validate_response(
            response,
            **CHECKS,
            transport_kwargs=kwargs or None,
            recorder=self.recorder,
        )


def test_linked_requests_from_create_to_delete_answer_as_the_schema_says(staff_caller):
    LinkedRequests.run(
        settings=hypothesis.settings(
            max_examples=30,
            stateful_step_count=8,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    assert {
        ("DELETE", "/api/devices/{device_id}/", 204),
        ("PATCH", "/api/conversations/{conversation_id}/", 200),
        ("POST", "/api/conversations/{conversation_id}/members/", 200),
        ("DELETE", "/api/conversations/{conversation_id}/members/{user_id}/", 204),
    } <= ANSWERED, "\n".join(map(str, sorted(ANSWERED)))
