"""The patch that makes daphne refuse bodies at the headers (imsproject.daphne_bodies) checks at
start-up that the parts of daphne and Twisted it replaces are still there, and says which
versions it met when one is not. What the patch does is in tests/e2e/test_request_bodies.py."""

from __future__ import annotations

import daphne
import pytest
import twisted
from daphne.http_protocol import WebRequest
from twisted.web import http

from imsproject.daphne_bodies import check_hooks, refuse_bodies_early
from imsproject.daphne_hardening import harden_daphne


def test_the_patch_fits_the_installed_daphne_and_twisted():
    check_hooks()
    refuse_bodies_early()  # a second time changes nothing

    check_hooks()


def test_the_patch_still_fits_once_daphne_s_other_patches_are_in_place():
    # harden_daphne wraps WebRequest.__init__ (Twisted's form parsing off); the check reads
    # the attributes daphne's own __init__ sets, through the wrapper.
    harden_daphne()

    check_hooks()


def test_a_method_gone_from_twisted_stops_the_start_naming_both_versions(monkeypatch):
    monkeypatch.delattr(http.Request, "handleContentChunk")

    with pytest.raises(RuntimeError, match=r"twisted\.web\.http\.Request\.handleContentChunk") as refused:
        check_hooks()

    assert f"daphne {daphne.__version__}" in str(refused.value)
    assert f"Twisted {twisted.__version__}" in str(refused.value)


def test_a_method_daphne_now_defines_itself_is_not_overwritten(monkeypatch):
    monkeypatch.setattr(WebRequest, "gotLength", lambda self, length: None)

    with pytest.raises(RuntimeError, match=r"WebRequest\.gotLength \(daphne defines its own now\)"):
        check_hooks()


def test_an_attribute_twisted_no_longer_sets_stops_the_start(monkeypatch):
    def line_received_without_command(self, line):
        self._verb = line  # what a later Twisted might call it

    monkeypatch.setattr(http.HTTPChannel, "lineReceived", line_received_without_command)

    with pytest.raises(RuntimeError, match=r"HTTPChannel\._command \(set in lineReceived\)"):
        check_hooks()
