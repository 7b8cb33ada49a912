"""The JSON files opkit writes (--json, report.json) are strict JSON: NaN / Infinity (which Python's json
writes by default and JSON parsers reject) become strings."""

from __future__ import annotations

import json

from opkit import jsonio


def test_non_finite_floats_become_strings_and_the_text_is_strict_json():
    text = jsonio.dumps({"worst_abs_err": float("nan"), "rates": [float("inf"), -float("inf"), 2.5],
                         "shape": (2, 3), "nested": {"x": [float("nan")]}})

    def strict(const: str) -> None:
        raise AssertionError(f"non-standard JSON constant {const}")

    data = json.loads(text, parse_constant=strict)
    assert data == {"worst_abs_err": "nan", "rates": ["inf", "-inf", 2.5], "shape": [2, 3], "nested": {"x": ["nan"]}}
