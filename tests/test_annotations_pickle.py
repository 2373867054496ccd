"""Hostile pickles: the CLIP4Clip reader must refuse them without running anything.

Each payload would create a sentinel file (or run code) if it were ever executed; the tests check the
reader raises InputError naming the file and that the sentinel does not exist afterwards.
"""

from __future__ import annotations

import collections
import os
import pickle
import pickletools
from pathlib import Path

import pytest

from dvtr_bench.annotations import read_annotations
from dvtr_bench.annotations.safe_pickle import load_plain, loads_plain
from dvtr_bench.errors import InputError


class _Touch:
    """Unpickling this calls os.system to create the sentinel."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


class _Opener:
    """Unpickling this calls builtins.open in append mode: creates the sentinel without a shell."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (str(self.sentinel), "a"))


class _Evil:
    """Unpickling this calls builtins.eval on code that writes the sentinel."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (eval, (f"open({str(self.sentinel)!r}, 'w').write('pwned')",))


class Plain:
    """A harmless class instance: still refused (classes must never be imported from a pickle)."""

    def __init__(self) -> None:
        self.x = 1


def _payloads(sentinel: Path) -> dict[str, bytes]:
    # A hand-written protocol-0 GLOBAL + REDUCE: the classic exploit, no pickle.dumps involved.
    global_opcode = (b"cos\nsystem\n(S'touch " + str(sentinel).encode() + b"'\ntR.")
    # STACK_GLOBAL (protocol 4) reaching builtins.exec.
    stack_global = pickle.dumps(_Evil(sentinel), protocol=4)
    # INST opcode (protocol 0): instantiate os.system-like callable through the INST path.
    inst_opcode = b"(S'touch " + str(sentinel).encode() + b"'\nios\nsystem\n."
    return {
        "reduce_os_system": pickle.dumps({"vid": _Touch(sentinel)}, protocol=2),
        "builtins_open": pickle.dumps(_Opener(sentinel), protocol=3),
        "builtins_eval": stack_global,
        "global_opcode": global_opcode,
        "inst_opcode": inst_opcode,
        "nested_malicious": pickle.dumps({"vid": [["a", "b"], ("ok", [{"deep": [_Touch(sentinel)]}])]}, protocol=4),
        "class_instance": pickle.dumps({"vid": [Plain()]}, protocol=4),
        "ordered_dict": pickle.dumps(collections.OrderedDict(vid=[["a"]]), protocol=4),
    }


@pytest.mark.parametrize("name", ["reduce_os_system", "builtins_open", "builtins_eval", "global_opcode",
                                  "inst_opcode", "nested_malicious", "class_instance", "ordered_dict"])
def test_hostile_pickle_is_refused_and_never_run(tmp_path: Path, name: str) -> None:
    sentinel = tmp_path / "PWNED"
    data = _payloads(sentinel)[name]
    # The payload is real: the standard unpickler would run it (checked on a throwaway copy for two cases).
    if name in ("global_opcode", "builtins_open"):
        probe = tmp_path / "probe"
        pickle.loads(data.replace(str(sentinel).encode(), str(probe).encode()))
        assert probe.exists()
    folder = tmp_path / "c4c"
    folder.mkdir()
    pkl = folder / "raw-captions.pkl"
    pkl.write_bytes(data)
    with pytest.raises(InputError) as exc:
        read_annotations(folder)
    assert exc.value.file == str(pkl)
    assert "refused" in exc.value.reason
    assert not sentinel.exists()


def test_refusal_names_the_global(tmp_path: Path) -> None:
    sentinel = tmp_path / "PWNED"
    with pytest.raises(InputError, match=r"posix\.system|os\.system"):
        loads_plain(pickle.dumps(_Touch(sentinel)), "x.pkl")
    assert not sentinel.exists()


def test_sets_and_persistent_ids_are_refused() -> None:
    with pytest.raises(InputError, match="set"):
        loads_plain(pickle.dumps({"vid": {"a", "b"}}, protocol=4))
    # PERSID opcode: a persistent id would hand control to persistent_load.
    with pytest.raises(InputError, match="persistent id"):
        loads_plain(b"(Pabc\n.")


def test_damaged_pickle_is_an_input_error(tmp_path: Path) -> None:
    good = pickle.dumps({"vid": [["a", "b"]]}, protocol=4)
    p = tmp_path / "raw-captions.pkl"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match="not a readable pickle") as exc:
        load_plain(p)
    assert exc.value.file == str(p)
    p.write_bytes(b"")
    with pytest.raises(InputError):
        load_plain(p)


def test_plain_data_still_loads_in_every_protocol() -> None:
    value = {"vid": [["a", "b"], ("c",)], "n": [1, 2.5, True, None, b"raw"]}
    for proto in range(3, pickle.HIGHEST_PROTOCOL + 1):
        assert loads_plain(pickle.dumps(value, protocol=proto)) == value
    # Protocols 0-2 need no global for str/int/float/containers either (bytes would need _codecs.encode).
    text_only = {"vid": [["a", "b"]], "n": [1, 2.5, True, None]}
    for proto in range(0, 3):
        assert loads_plain(pickle.dumps(text_only, protocol=proto)) == text_only


def test_payloads_really_use_globals(tmp_path: Path) -> None:
    # Guard against a payload silently becoming harmless (e.g. pickle.dumps changing how it encodes).
    for name, data in _payloads(tmp_path / "s").items():
        ops = {op.name for op, _, _ in pickletools.genops(data)}
        assert ops & {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE"}, name


def test_shared_reference_bomb_is_checked_in_linear_time() -> None:
    # 40 levels of a list holding the previous level twice: 2**40 paths, a few hundred bytes of pickle.
    layer: list = ["leaf"]
    for _ in range(40):
        layer = [layer, layer]
    data = pickle.dumps({"vid": layer}, protocol=4)
    assert len(data) < 2000
    assert loads_plain(data)["vid"][0] is not None
