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


def test_setting_rows_keep_runs_silent_on_a_fixed_setting_and_give_no_reason_when_found():
    """``fixed: {dropout: '0.6'}`` keeps the runs with dropout=0.6 and the runs whose setting
    does not name dropout at all (they run at the claim's value by default), drops dropout=0;
    with rows found, the reason string is empty."""
    import pandas as pd

    from pgbench.claims.evaluate import setting_rows

    claim = parse_claim(_raw(fixed={"dropout": "0.6"}), 0)
    runs = pd.DataFrame({"variant": ["vanilla"] * 3,
                         "setting": ["dropout=0.6", "dropout=0", "lr=0.01"], "seed": [0, 1, 2]})
    rows, why = setting_rows(claim, runs)
    assert why == ""
    assert [label for label, _ in rows] == ["dropout=0.6", "lr=0.01"]
    assert [arms["a"]["seed"].tolist() for _, arms in rows] == [[0], [2]]


def test_format_table_headers():
    """The terminal table's columns, CI among them."""
    import pandas as pd

    from pgbench.claims.evaluate import format_table

    table = pd.DataFrame({"claim_id": ["c"], "test": ["main"], "setting": ["default"],
                          "estimate": [1.5], "ci_low": [1.0], "ci_high": [2.0], "direction": ["<="],
                          "threshold": [3.0], "n_seeds": [5], "verdict": ["supported"],
                          "seeds_needed": [float("nan")]})
    header = format_table(table).splitlines()[0].split()
    assert header == ["claim", "test", "setting", "estimate", "CI", "target", "seeds", "verdict"]


def test_run_statistics_helpers_keep_the_confidence_and_refuse_an_empty_arm():
    """``_median_of`` passes the claim's confidence on to the KM median; ``_two_arm_values``
    refuses (NotRun, so the claim reads 'not run') when either arm has no finite value, not
    only when both have none."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from pgbench.claims.registry import NotRun
    from pgbench.claims.run_statistics import _median_of, _two_arm_values

    runs = pd.DataFrame({"t": [1.0, 2.0, 3.0, np.inf], "c": [False, False, False, True]})
    m = _median_of(runs, "t", "c", 0.8)
    assert (m.confidence, m.median, m.n) == (0.8, 2.0, 3)  # the infinite time is left out
    ctx = SimpleNamespace(params={"column": "x"},
                          arms={"a": pd.DataFrame({"x": [1.0, 2.0]}),
                                "b": pd.DataFrame({"x": [np.nan, np.inf]})})
    with pytest.raises(NotRun, match="no finite x in one of the arms"):
        _two_arm_values(ctx)


_ALSO = "test, statistic, params, direction, threshold, tolerance, tolerance_name, compare, fixed, table"


@pytest.mark.parametrize("changes, message", [
    ({"table": "curves"}, ("claim 'slides-vanilla': field 'table' is 'curves'; accepted: runs, "
                          "gradstudy, gradstudy_pairs, gradstudy_layers")),
    ({"compare": {}}, ("claim 'slides-vanilla': field 'compare' needs role 'a' (the runs a claim on "
                      "the runs table is about); accepted: {a: VARIANT} or {a: VARIANT, b: VARIANT}")),
    ({"fixed": ["dropout"]}, ("claim 'slides-vanilla': field 'fixed' is ['dropout']; accepted: a "
                             "mapping of setting to value, e.g. {dropout: 0.6}")),
    ({"also": "single run"}, ("claim 'slides-vanilla': field 'also' is 'single run'; accepted: a "
                              "list of tests, each a mapping with " + _ALSO)),
    ({"also": [{"params": {}}]}, ("claim 'slides-vanilla': field 'also' has entry {'params': {}}; "
                                  "accepted: a mapping with a 'test' name and any of " + _ALSO)),
    ({"also": [{"test": "t2", "colour": 1}]}, ("claim 'slides-vanilla': field 'also.colour' is not a "
                                               "field of a test; accepted: " + _ALSO)),
    ({"also": [{"test": "typical", "params": {"quoted_steps": 1, "quoted_episodes": 1}}]},
     ("claim 'slides-vanilla': field 'also' repeats a test name (typical, typical); accepted: "
      "distinct test names")),
])
def test_bad_tables_roles_fixed_settings_and_tests_are_refused_by_name(changes, message):
    from pgbench.claims.model import parse_claim_tests

    with pytest.raises(UserError, match="^" + re.escape(message) + "$"):
        parse_claim_tests(_raw(**changes), 0)


def test_a_claim_id_used_twice_is_refused_by_name(tmp_path):
    from pgbench.claims.model import load_claims

    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": [_raw(), _raw()]}))
    with pytest.raises(UserError, match="^" + re.escape(
            "claim 'slides-vanilla': field 'id' is used by more than one claim; accepted: unique ids") + "$"):
        load_claims(path)
