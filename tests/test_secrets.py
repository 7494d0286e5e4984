"""Secrets never leak: canary secrets are masked in every form, text and data."""

from __future__ import annotations

import base64
import html
import json
import shlex
import string
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from webmg_ops.secrets import (
    MASK,
    MIN_SECRET_LENGTH,
    SecretSet,
    collect_secrets,
    is_secret_name,
    secrets_from_environment,
)

# The mask is made of '*': a canary made of it would be "masked" into itself.
CANARY_ALPHABET = (
    string.ascii_letters + string.digits + "!\"#$%&'()+,-./:;<=>?@[\\]^_`{|}~ \n\té日ü"
)
canaries = st.text(alphabet=CANARY_ALPHABET, min_size=24, max_size=40)
#: A secret each printer gives another form: quotes, a backslash, non-ASCII letters, spaces.
RICH_SECRET = "pä\"ss\\wörd & <tag> +/=x'y"


def forms_of(secret: str) -> dict[str, str]:
    """Given a secret, return the forms in which a tool may print it, by name."""
    raw = secret.encode()
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    return {
        "plain": secret,
        "json": json.dumps(secret)[1:-1],
        "json-unicode": json.dumps(secret, ensure_ascii=False)[1:-1],
        "ascii": ascii(secret)[1:-1],
        "bytes-repr": repr(raw)[2:-1],
        "html": html.escape(secret),
        "shell-quoted": shlex.quote(secret),
        "base64": standard,
        "base64-unpadded": standard.rstrip("="),
        "base64-urlsafe": urlsafe,
        "base64-urlsafe-unpadded": urlsafe.rstrip("="),
        "url-quoted": quote(secret, safe=""),
        "url-quoted-keeping-slashes": quote(secret),
        "url-quoted-plus": quote_plus(secret),
        "url-quoted-lowercase": quote(secret, safe="").lower(),
        "repr": repr(secret)[1:-1],
        "hex": raw.hex(),
        "hex-uppercase": raw.hex().upper(),
        "uppercase": secret.upper(),
        "lowercase": secret.lower(),
        "swapped-case": secret.swapcase(),
    }


def leaked_forms(text: str, secret: str) -> list[str]:
    """Given output text and a secret, return the names of the secret's forms found in it."""
    return [name for name, form in forms_of(secret).items() if form in text]


@settings(max_examples=200)
@given(canary=canaries, before=st.text(max_size=20), after=st.text(max_size=20))
@example(canary=RICH_SECRET, before="", after="")
def test_every_form_of_a_canary_is_masked_in_text(canary: str, before: str, after: str) -> None:
    secrets = SecretSet.of([canary])
    for name, form in forms_of(canary).items():
        masked = secrets.mask_text(f"{before} {form} {after}")
        assert MASK in masked, name
        assert leaked_forms(masked, canary) == [], name


@pytest.mark.parametrize("name", sorted(forms_of(RICH_SECRET)))
def test_each_form_of_a_secret_is_masked_whole(name: str) -> None:
    form = forms_of(RICH_SECRET)[name]
    assert SecretSet.of([RICH_SECRET]).mask_text(f"<{form}>") == f"<{MASK}>"


@given(canary=canaries)
def test_canary_is_masked_in_nested_data(canary: str) -> None:
    secrets = SecretSet.of([canary])
    data: dict[str, Any] = {
        "hosts": [
            {"name": "web-1", "stdout": f"login with {canary} ok"},
            ("tuple", json.dumps({"token": canary})),
        ],
        canary: "a key can hold it too",
        "encoded": base64.b64encode(canary.encode()).decode(),
    }
    masked = secrets.mask_data(data)
    assert leaked_forms(json.dumps(masked), canary) == []
    assert leaked_forms(repr(masked), canary) == []
    assert masked["hosts"][0] == {"name": "web-1", "stdout": f"login with {MASK} ok"}
    assert isinstance(masked["hosts"][1], tuple)
    assert data["hosts"][0]["stdout"] == f"login with {canary} ok", "the input is not changed"


@pytest.mark.parametrize("style", [None, "'"])
def test_a_secret_folded_by_yaml_is_masked(style: str | None) -> None:
    # Ansible's YAML result format folds a long line at its spaces (plain and
    # single-quoted styles), splitting a secret that holds spaces.
    canary = "canary " + " ".join(f"word{index:02d}" for index in range(20)) + " end"
    dumped = yaml.dump({"msg": f"value {canary}"}, width=40, default_style=style)
    assert canary not in dumped, "the secret is folded onto several lines"
    masked = SecretSet.of([canary]).mask_text(dumped)
    assert yaml.safe_load(masked) == {"msg": f"value {MASK}"}


@given(canary=canaries)
def test_a_secret_split_across_argv_items_is_masked(canary: str) -> None:
    # ``cmd`` in a command's result is its argv: a secret with spaces is split into words.
    argv = ["echo", "before", *canary.split(" "), "after"]
    masked = SecretSet.of([canary]).mask_data({"cmd": argv, "stdout_lines": canary.splitlines()})
    assert " ".join(masked["cmd"]).find(canary) == -1
    assert leaked_forms(json.dumps(masked), canary) == []
    assert masked["cmd"][0] == "echo"


def test_secret_named_keys_are_masked_whatever_their_value() -> None:
    masked = SecretSet().mask_data(
        {
            "db_password": "not-declared-anywhere",
            "vault_restic": {"repository": "sftp:x", "password": "p"},
            "api_token": 123456789,
            "ansible_ssh_private_key_file": "/home/ops/.ssh/id_ed25519",
            "count": 3,
            "enabled": True,
            "missing": None,
        }
    )
    assert masked == {
        "db_password": MASK,
        "vault_restic": MASK,
        "api_token": MASK,
        "ansible_ssh_private_key_file": "/home/ops/.ssh/id_ed25519",
        "count": 3,
        "enabled": True,
        "missing": None,
    }


def test_numbers_equal_to_a_secret_are_masked() -> None:
    secrets = SecretSet.of([31415926535, "other-secret"])
    assert secrets.mask_data({"pin": 31415926535, "port": 8080}) == {"pin": MASK, "port": 8080}
    assert secrets.mask_text("pin=31415926535") == f"pin={MASK}"


def test_only_text_and_numbers_are_candidate_secrets() -> None:
    # A list, a mapping or None is not a secret value: masking its printed form would
    # mask brackets and quotes, and a structure holding a secret gives its items itself.
    structures = [["long-enough-item"], {"key": "long-enough-value"}, None, ("tuple-item!",)]
    assert len(SecretSet.of(structures)) == 0
    assert len(SecretSet.of([*structures, True, 1234567, 12.5])) == 1


@given(canary=canaries)
def test_base64_blob_of_only_the_secret_inside_larger_text(canary: str) -> None:
    blob = base64.b64encode(canary.encode()).decode()
    text = f'{{"content": "{blob}", "encoding": "base64"}}'
    masked = SecretSet.of([canary]).mask_text(text)
    assert masked == f'{{"content": "{MASK}", "encoding": "base64"}}'


def _decodes_to_secret(text: str, secret: bytes) -> bool:
    for fragment in text.split(MASK):
        for skip in range(4):
            piece = fragment[skip:]
            piece = piece[: len(piece) - len(piece) % 4]
            try:
                if secret in base64.b64decode(piece):
                    return True
            except ValueError:
                continue
    return False


@given(
    canary=canaries,
    prefix=st.text(alphabet=string.ascii_letters, max_size=7),
    suffix=st.text(alphabet=string.ascii_letters, max_size=7),
)
def test_secret_inside_a_larger_base64_blob_cannot_be_decoded(
    canary: str, prefix: str, suffix: str
) -> None:
    # As in an HTTP basic authorization header: base64("user:password").
    blob = base64.b64encode(f"{prefix}:{canary}:{suffix}".encode()).decode()
    masked = SecretSet.of([canary]).mask_text(f"Authorization: Basic {blob}")
    assert MASK in masked
    assert not _decodes_to_secret(masked.removeprefix("Authorization: Basic "), canary.encode())


def _secret_only_span(prefix: bytes, secret: bytes, suffix: bytes) -> tuple[int, int]:
    """Return the [first, last) base64 characters of PREFIX + SECRET + SUFFIX that the
    bytes around the secret cannot change: those the same when the bytes around it are
    all zero bits and all one bits (padding aside)."""
    around = [
        (bytes(len(prefix)), bytes(len(suffix))),
        (b"\xff" * len(prefix), b"\xff" * len(suffix)),
    ]
    encodings = [base64.b64encode(before + secret + after).decode() for before, after in around]
    fixed = [
        index
        for index, char in enumerate(encodings[0])
        if char != "=" and all(encoded[index] == char for encoded in encodings)
    ]
    assert fixed == list(range(fixed[0], fixed[-1] + 1))
    return fixed[0], fixed[-1] + 1


@pytest.mark.parametrize("secret", ["correct horse 15", "s3cret-value!", "päss-wörd-99"])
@pytest.mark.parametrize("offset", [0, 1, 2])
@pytest.mark.parametrize("after", [1, 2, 3])
def test_every_base64_character_that_only_the_secret_decides_is_masked(
    secret: str, offset: int, after: int
) -> None:
    # Bytes of one bits around the secret: no character they share with it can match
    # a form of the secret alone by chance.
    prefix, suffix = b"\xff" * offset, b"\xff" * after
    blob = base64.b64encode(prefix + secret.encode() + suffix).decode()
    first, last = _secret_only_span(prefix, secret.encode(), suffix)
    assert SecretSet.of([secret]).mask_text(blob) == blob[:first] + MASK + blob[last:]


def test_a_secret_of_the_shortest_length_kept_is_masked() -> None:
    secret = "k" * (MIN_SECRET_LENGTH - 1) + "9"
    assert SecretSet.of([secret]).mask_text(f"key {secret} end") == f"key {MASK} end"


def test_text_whose_lowercase_is_longer_is_masked_at_the_right_place() -> None:
    # "İ" lowercases to two characters: offsets found in the lowercased text would
    # fall one character late.
    assert len("İ".lower()) == 2
    masked = SecretSet.of(["hunter2abc"]).mask_text("İstanbul token=HUNTER2abc end")
    assert masked == f"İstanbul token={MASK} end"


def test_a_secret_containing_another_is_masked_whole() -> None:
    secrets = SecretSet.of(["horse-batt", "correct-horse-battery-staple"])
    assert secrets.mask_text("pw=correct-horse-battery-staple;") == f"pw={MASK};"
    assert secrets.mask_text("pw=horse-batt;") == f"pw={MASK};"


def test_overlapping_secrets_are_masked_as_one_span() -> None:
    secrets = SecretSet.of(["abcdefghij", "ghijklmnop"])
    assert secrets.mask_text("x abcdefghijklmnop y") == f"x {MASK} y"
    assert SecretSet.of(["ghijklmnop", "abcdefghij"]).mask_text("abcdefghijklmnop") == MASK


def test_a_secret_beginning_one_character_into_another_is_masked_with_it() -> None:
    # The search starts again one character after each match: a secret starting at
    # the very next character and ending after the first must be found.
    secrets = SecretSet.of(["abcdefgh", "bcdefghij"])
    assert secrets.mask_text("x=abcdefghij;") == f"x={MASK};"


def test_two_secrets_side_by_side_are_masked_as_one_span() -> None:
    secrets = SecretSet.of(["abcdefgh", "ijklmnop"])
    assert secrets.mask_text("x=abcdefghijklmnop;") == f"x={MASK};"


def test_short_values_are_not_masked() -> None:
    # Masking a 5-character value would blank every "admin" or "12345" in unrelated
    # log text while protecting nothing: a value that short is guessed, not leaked.
    short = "a" * (MIN_SECRET_LENGTH - 1)
    secrets = SecretSet.of([short, "admin", 12345, True, None])
    assert len(secrets) == 0
    assert not secrets
    assert secrets.mask_text(f"user admin, code 12345, {short}") == (
        f"user admin, code 12345, {short}"
    )
    assert len(SecretSet.of(["a" * MIN_SECRET_LENGTH])) == 1


@given(canaries=st.lists(canaries, max_size=4), text=st.text(alphabet=CANARY_ALPHABET))
def test_masking_is_idempotent(canaries: list[str], text: str) -> None:
    secrets = SecretSet.of(canaries)
    once = secrets.mask_text(text + "".join(canaries))
    assert secrets.mask_text(once) == once
    data = {"a": [text, *canaries], "password": "x"}
    assert secrets.mask_data(secrets.mask_data(data)) == secrets.mask_data(data)


def test_union_and_repr_do_not_leak() -> None:
    first = SecretSet.of(["first-canary-0123456789abcdef"])
    both = first.union(SecretSet.of(["second-canary-0123456789abcdef"]))
    assert len(both) == 2
    assert both.mask_text("first-canary-0123456789abcdef second-canary-0123456789abcdef") == (
        f"{MASK} {MASK}"
    )
    assert "canary" not in repr(both)
    assert SecretSet().mask_text("nothing to hide") == "nothing to hide"


def test_large_text_is_masked() -> None:
    canaries = [f"canary-{index:02d}-{'x' * 20}" for index in range(30)]
    line = "ok: [web-1] => {'changed': false, 'msg': 'All items completed'}\n"
    text = line * 20_000 + canaries[17] + line * 20_000
    masked = SecretSet.of(canaries).mask_text(text)
    assert masked == line * 20_000 + MASK + line * 20_000


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("PASSWORD", True),
        ("passwd", True),
        ("db_password", True),
        ("ansible_become_pass", True),
        ("ansible_ssh_pass", True),
        ("secret", True),
        ("client_secret", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("token", True),
        ("WEBMG_API_TOKEN", True),
        ("api_key", True),
        ("api-key", True),
        ("private_key", True),
        ("ssh_private_key", True),
        ("access_key", True),
        ("s3_access_key", True),
        ("secret_key", True),
        ("vault_db_password", True),
        ("vault_anything", True),
        ("aws_credentials", True),
        ("Credential", True),
        ("RESTIC_PASSWORD", True),
        ("AWS_ACCESS_KEY_ID", True),
        ("webmg_s3_access_key_id", True),
        ("s3_access_key_id", True),
        ("storage_key_id", True),
        ("github_token", True),
        ("refresh_token_value", True),
        ("ssh_passphrase", True),
        ("db_password_hash", True),
        ("apikey", True),
        ("service_apikey", True),
        ("Authorization", True),
        ("session_cookie", True),
        ("jwt_signing_key", True),
        ("secret_id", True),
        ("key_passphrase_file", False),
        ("access_key_path", False),
        ("ansible_ssh_private_key_file", False),
        ("restic_password_file", False),
        ("RESTIC_PASSWORD_FILE", False),
        ("private_key_path", False),
        ("host_key", False),
        ("ssh_public_key", False),
        ("keyboard", False),
        ("passenger", False),
        ("tokenizer", False),
        ("user", False),
        ("hostname", False),
    ],
)
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_collect_secrets_walks_nested_variables() -> None:
    variables: dict[str, Any] = {
        "vault_db_password": "vault-value-0123456789",
        "apps": [
            {"name": "booking", "db": {"password": "nested-value-0123456789"}},
            {"name": "shop", "credentials": {"user": "shop-service", "key": "cred-0123456789"}},
        ],
        "restic": {"repository": "sftp:restic@198.18.0.5:/srv/restic", "password": 987654321},
        "ansible_ssh_private_key_file": "/home/ops/.ssh/id_ed25519",
        "greeting": "hello world, not a secret",
        "token": "short",
    }
    secrets = collect_secrets(variables)
    assert secrets.values == {
        "vault-value-0123456789",
        "nested-value-0123456789",
        "shop-service",
        "cred-0123456789",
        "987654321",
    }


def test_secrets_from_environment() -> None:
    environ = {
        "RESTIC_PASSWORD": "restic-canary-0123456789",
        "RESTIC_PASSWORD_FILE": "/etc/restic/password",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-canary-0123456789",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE0123456789",
        "WEBMG_API_TOKEN": "token-canary-0123456789",
        "WEBMG_LEDGER_URL": "postgresql://webmg:url%2Fcanary-0123@db.example/ledger",
        "HOME": "/home/operator",
        "PATH": "/usr/local/bin:/usr/bin",
    }
    secrets = secrets_from_environment(environ)
    assert secrets.values == {
        "restic-canary-0123456789",
        "aws-secret-canary-0123456789",
        "AKIAEXAMPLE0123456789",
        "token-canary-0123456789",
        "url%2Fcanary-0123",
        "url/canary-0123",
    }


def test_a_secret_set_is_true_when_it_holds_a_secret() -> None:
    assert SecretSet.of(["hunter22-secret"])
    assert not SecretSet.of(["short", 12, True])


@pytest.mark.parametrize(
    ("secret", "words", "expected"),
    [
        # Spaces at a secret's edges are part of it: the word beside it is not.
        (" hunter22", ["say", "hunter22", "now"], ["say", MASK, "now"]),
        ("hunter22 ", ["hunter22", "now", "then"], [MASK, "now", "then"]),
        # Far into a command line, a secret split across items is found item by item.
        (
            "correct horse battery",
            [
                "w1",
                "w2",
                "w3",
                "w4",
                "w5",
                "w6",
                "w7",
                "w8",
                "w9",
                "correct",
                "horse",
                "battery",
                "staple",
            ],
            ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9", MASK, MASK, MASK, "staple"],
        ),
        ("correct horse battery", ["correct", "horse battery"], [MASK, MASK]),
        # One string alone is text: only the secret in it is masked.
        ("hunter22", ["my password is hunter22 ok"], [f"my password is {MASK} ok"]),
    ],
)
def test_a_list_of_strings_masks_the_items_a_secret_spans(
    secret: str, words: list[str], expected: list[str]
) -> None:
    assert SecretSet.of([secret]).mask_data(words) == expected
    assert SecretSet.of([secret]).mask_data(tuple(words)) == tuple(expected)


def test_keys_that_are_not_text_are_kept() -> None:
    """Mappings with numeric keys (exit codes, ports) keep them; their values are masked."""
    masked = SecretSet.of(["hunter22"]).mask_data({5: "pw hunter22", 2.5: None, None: 123456})
    assert masked == {5: f"pw {MASK}", 2.5: None, None: 123456}


def test_every_value_under_a_secret_name_is_a_secret_at_any_depth() -> None:
    found = collect_secrets(
        {"db": {"api_tokens": ["tok-aaaaaaa", {"spare": "tok-bbbbbbb"}, ("tok-ccccccc",)]}}
    )
    assert found.values == frozenset({"tok-aaaaaaa", "tok-bbbbbbb", "tok-ccccccc"})


def test_a_malformed_url_in_the_environment_does_not_hide_the_secrets_after_it() -> None:
    environ = {"WEBMG_LEDGER_URL": "postgresql://[broken", "RESTIC_PASSWORD": "restic-pw-123"}
    assert secrets_from_environment(environ).values == frozenset({"restic-pw-123"})


#: A secret with a space, quotes, markup, URL and base64 specials, and non-ASCII letters.
TRICKY = "Pa$s wörd'<&>/+é€-x"


@pytest.mark.parametrize(
    "form",
    [
        TRICKY,
        TRICKY.upper(),
        json.dumps(TRICKY)[1:-1],
        json.dumps(TRICKY, ensure_ascii=False)[1:-1],
        repr(TRICKY)[1:-1],
        ascii(TRICKY)[1:-1],
        repr(TRICKY.encode())[2:-1],
        TRICKY.encode().hex(),
        quote(TRICKY),
        quote(TRICKY, safe=""),
        quote_plus(TRICKY),
        html.escape(TRICKY),
        shlex.quote(TRICKY),
        base64.b64encode(TRICKY.encode()).decode(),
        base64.urlsafe_b64encode(TRICKY.encode()).decode().rstrip("="),
    ],
)
def test_each_printed_form_of_a_secret_is_masked_whole(form: str) -> None:
    """Every form a tool prints is masked from its first character to its last."""
    assert SecretSet.of([TRICKY]).mask_text(f"[{form}]") == f"[{MASK}]"


def test_a_secret_is_masked_in_capitals_that_spell_it_longer() -> None:
    """``ß`` in capitals is ``SS``: the secret printed in capitals is still masked."""
    assert SecretSet.of(["straße-geheim"]).mask_text("STRASSE-GEHEIM!") == f"{MASK}!"
