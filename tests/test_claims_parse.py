"""``claims/model.parse_claim`` on hand-made mappings: each field read as written, and each bad
field refused with a message naming the claim, the field and what is accepted (issue 22's
mutation run found these unchecked)."""

from __future__ import annotations

import re

import pytest
import yaml

from pgbench.claims.model import default_claims_path, parse_claim
from pgbench.core.errors import UserError


def _raw(**changes) -> dict:
    """The first claim of the shipped claims.yaml as its YAML mapping, with ``changes``."""
    raw = dict(yaml.safe_load(default_claims_path().read_text())["claims"][0])
    raw.update(changes)
    return raw


def test_optional_text_fields_are_read_as_written():
    claim = parse_claim(_raw(statement="Runs  faster\nthan b.", tolerance="within 5%"), 0)
    assert claim.statement == "Runs faster than b."  # whitespace collapsed
    assert claim.tolerance == "within 5%"
    bare = {k: v for k, v in _raw().items() if k not in ("statement", "tolerance")}
    claim = parse_claim(bare, 0)
    assert (claim.statement, claim.tolerance) == ("", "")


@pytest.mark.parametrize("raw, message", [
    (["not", "a", "mapping"], "claim #3 is a list, not a mapping of fields; accepted fields: id, "),
    ({"source": "x"}, ("claim '#3': field 'id' is None; accepted: lower-case words and digits "
                      "joined by '-', e.g. slides-speedup")),
    ("source=bad.txt", ("field 'source' is 'bad.txt'; accepted: a file name in shared/sources, "
                       "e.g. 001_784bf18d2f77e7fb.txt")),
    ("env=dict", "field 'env' is {'CartPole-v1': 1}; accepted: an env id, a list of env ids"),
    ("env=empty-in-list", "field 'env' is ['CartPole-v1', '']; accepted: an env id"),
    ("env=number-in-list", "field 'env' is ['CartPole-v1', 3]; accepted: an env id"),
])
def test_bad_claims_are_refused_by_name(raw, message):
    """The third claim of a file (index 2), bad in one way each."""
    if isinstance(raw, str):
        field, value = raw.split("=")
        value = {"bad.txt": "bad.txt", "dict": {"CartPole-v1": 1}, "empty-in-list": ["CartPole-v1", ""],
                 "number-in-list": ["CartPole-v1", 3]}[value]
        raw = _raw(**{field: value})
    with pytest.raises(UserError, match=re.escape(message)):
        parse_claim(raw, 2)
