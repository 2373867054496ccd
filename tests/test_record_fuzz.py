"""Property-based: whatever a file holds, the record reader raises only InputError, validation only returns
problems, the renderers render what validation accepts, and `dvtr leaderboard` never ends in a traceback."""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dvtr_bench.cli import cli
from dvtr_bench.errors import InputError
from dvtr_bench.leaderboard import collect
from dvtr_bench.leaderboard.example import make_example_records
from dvtr_bench.leaderboard.render import to_csv, to_html, to_latex, to_markdown
from dvtr_bench.protocol.record import read_record, validate_record

# No example database: the suite must not leave a .hypothesis folder behind in the checkout.
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10 ** 500), max_value=10 ** 500)
           | st.floats() | st.text(max_size=20))
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=25)
record_keys = ("schema_version", "protocol_version", "dataset", "method", "runs", "summary", "cost", "seeds")
record_like = st.dictionaries(st.sampled_from(record_keys), json_values, min_size=1)


def _dumps(value: Any) -> str:
    # NaN, Infinity and 400-digit integers are exactly what hand-edited files hold: write them as they are.
    return json.dumps(value, allow_nan=True)


def _honest() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        return json.loads(make_example_records(d, n_clips=12, captions_per_clip=2)[1].read_text())


HONEST = _honest()


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_input_error(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "record.json"
    p.write_bytes(data)
    try:
        rec = read_record(p)
    except InputError:
        return
    assert isinstance(rec, dict)
    assert isinstance(validate_record(rec), list)


@FUZZ
@given(json_values | record_like)
def test_arbitrary_json_raises_only_input_error_and_validates(tmp_path: Path, value: Any) -> None:
    p = tmp_path / "record.json"
    p.write_text(_dumps(value), encoding="utf-8")
    try:
        rec = read_record(p)
    except InputError:
        return
    problems = validate_record(rec)
    assert isinstance(problems, list) and all(isinstance(x, str) for x in problems)
    assert problems       # nothing random is a valid record


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _replace(rec: dict[str, Any], where: tuple[Any, ...], value: Any) -> dict[str, Any]:
    rec = copy.deepcopy(rec)
    node = rec
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    return rec


@FUZZ
@given(where=st.sampled_from(_paths(HONEST)),
       value=json_values | st.text() | st.floats(min_value=0, max_value=1e30))
@example(where=("cost", "parameters"), value=10 ** 400)
@example(where=("cost", "gflops_per_clip"), value=float("inf"))
@example(where=("extra",), value=json.loads("[" * 100 + "]" * 100))
@example(where=("method",), value="a\nb|c<d>$^_%&#{}~\\")
def test_a_mutated_record_is_rejected_or_rendered(tmp_path: Path, where: tuple[Any, ...], value: Any) -> None:
    rec = _replace(HONEST, where, value)
    p = tmp_path / "record.json"
    p.write_text(_dumps(rec), encoding="utf-8")
    col = collect([p])
    assert col.n_accepted + len(col.exclusions) == 1
    for g in col.groups:
        for text in (to_markdown(g), to_csv(g), to_latex(g), to_html(g)):
            assert isinstance(text, str) and text
        for e in g.entries:
            assert all(math.isfinite(v) for v in e.mean.values())


@settings(deadline=None, database=None, max_examples=25,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.binary(max_size=500) | json_values.map(lambda v: _dumps(v).encode()) | record_like.map(
    lambda v: _dumps(v).encode()))
def test_the_command_never_ends_in_a_traceback(tmp_path: Path, data: bytes) -> None:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    (folder / "record.json").write_bytes(data)
    r = CliRunner().invoke(cli, ["leaderboard", str(folder), "--out", str(tmp_path / "out"), "--verify",
                                 "--format", "md"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert r.exit_code == 2 and "Traceback" not in r.output       # a lone unusable file: nothing to rank
    assert "record.json" in r.output                               # ... and it is listed, never lost
