"""What a change deploys, as typed: ``PACKAGE=VERSION`` items read by Debian's rules
(policy 5.6.1 for names, 5.6.12 for versions), every refusal with its whole message.

The expected verdicts are read off the policy: ``[epoch:]upstream[-revision]``, the epoch
digits only, the upstream part starting with a digit and made of letters, digits and
``. + ~`` (a hyphen only when a revision follows, a colon only after an epoch), the
revision made of letters, digits and ``+ . ~``.
"""

from __future__ import annotations

import pytest

from webmg_ops.errors import BadInput
from webmg_ops.service import changes


@pytest.mark.parametrize(
    "version",
    [
        "7",
        "1.0a",  # lower-case letters in the upstream part
        "1.0RC1",  # upper-case letters too
        "2.0~beta+dfsg.1",
        "1:2.3",
        "12:0.9",
        "1:2:3",  # with an epoch, the upstream part may hold a colon
        "1.0-1",
        "1.0-1-2",  # with a revision, the upstream part may hold a hyphen
        "1.0-1~bpo12+1",
        "0-Ubuntu.1",  # the revision may hold upper-case letters
        "3:1.0-1-2",
        "1:2:3-4",
    ],
)
def test_a_debian_version_is_accepted(version: str) -> None:
    assert changes.valid_version(version) is True


@pytest.mark.parametrize(
    "version",
    [
        "",
        "a1.0",  # the upstream part starts with a digit
        ".1",
        "1.0_1",
        "1.0 1",
        "1:",  # an epoch needs an upstream part after it
        ":1.0",  # and digits before its colon
        "a:1.0",
        "1a:1.0",
        "1.0-",  # a hyphen needs a revision after it
        "-1",  # and an upstream part before it
        "1.0-1_2",
        "1.0-1:2",  # no colon in a revision
        "1.0:2",  # a colon in the upstream part needs an epoch: "1.0" is none
        "1.0-2:3",
        "1:1.0-2:3",
        "1:a.0",
        "1:1.0-",
    ],
)
def test_anything_else_is_not_a_debian_version(version: str) -> None:
    assert changes.valid_version(version) is False


def test_items_are_read_into_package_and_version_around_their_blanks() -> None:
    assert changes.parse_deploys([" webmg-demo-app=1.1 ", "libfoo2.0+x=1:2.0-3"]) == {
        "webmg-demo-app": "1.1",
        "libfoo2.0+x": "1:2.0-3",
    }
    assert changes.parse_deploys([]) == {}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            ["webmg-demo-app"],
            "--deploys 'webmg-demo-app': expected PACKAGE=VERSION (e.g. webmg-app=1.1)",
        ),
        (
            ["Webmg=1.1"],
            "--deploys 'Webmg=1.1': 'Webmg' is not a Debian package name (lower-case letters, "
            "digits, '+', '-' and '.', two characters at least)",
        ),
        (
            ["a=1.1"],
            "--deploys 'a=1.1': 'a' is not a Debian package name (lower-case letters, "
            "digits, '+', '-' and '.', two characters at least)",
        ),
        (
            ["webmg-demo-app=latest"],
            "--deploys 'webmg-demo-app=latest': 'latest' is not a Debian version "
            "([epoch:]upstream[-revision], the upstream part starting with a digit)",
        ),
        (
            # The package is named before the first "=": what follows is the version.
            ["webmg-demo-app=1.1=2"],
            "--deploys 'webmg-demo-app=1.1=2': '1.1=2' is not a Debian version "
            "([epoch:]upstream[-revision], the upstream part starting with a digit)",
        ),
        (
            [" webmg-demo-app=1_1"],
            "--deploys ' webmg-demo-app=1_1': '1_1' is not a Debian version "
            "([epoch:]upstream[-revision], the upstream part starting with a digit)",
        ),
        (
            ["webmg-demo-app=1.1", "webmg-demo-tools=2.0", "webmg-demo-app=1.2"],
            "--deploys names webmg-demo-app twice",
        ),
    ],
)
def test_a_bad_item_is_bad_input_saying_why(items: list[str], message: str) -> None:
    with pytest.raises(BadInput) as raised:
        changes.parse_deploys(items)
    assert str(raised.value) == message


def test_the_request_keeps_what_it_deploys_only_when_it_names_something() -> None:
    named = changes.draft_request(
        "terre-solidaire",
        title="Donation form 1.1",
        description="d",
        requested_by="Lea",
        deploys=["webmg-demo-app=1.1", "webmg-demo-tools=1:0.5"],
    )
    assert named.payload["deploys"] == {"webmg-demo-app": "1.1", "webmg-demo-tools": "1:0.5"}
    with pytest.raises(BadInput) as raised:
        changes.draft_request(
            "terre-solidaire", title="t", description="d", requested_by="L", deploys=["x=1"]
        )
    assert str(raised.value).startswith("--deploys 'x=1': 'x' is not a Debian package name")
