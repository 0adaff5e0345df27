"""`manage.py check --deploy` says when a setting meant for development is on."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command


def deploy_check_output() -> str:
    out, err = StringIO(), StringIO()
    call_command("check", "--deploy", stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_check_deploy_warns_while_private_push_endpoints_are_allowed(settings):
    settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = True
    output = deploy_check_output()
    assert "notifications.W001" in output
    assert "IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS is on" in output


def test_check_deploy_says_nothing_of_push_endpoints_with_the_setting_off(settings):
    settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = False
    assert "notifications.W001" not in deploy_check_output()


def test_a_plain_check_leaves_deployment_warnings_to_check_deploy(settings):
    settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = True
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)
    assert "notifications.W001" not in out.getvalue() + err.getvalue()
