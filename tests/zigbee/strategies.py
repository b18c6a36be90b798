"""Hypothesis strategies for zigbee2mqtt exposes and devices (any valid shape, odd names)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Anything a JSON string can hold: quotes, backslashes, newlines, non-ASCII, keywords.
odd_text = st.one_of(
    st.sampled_from(["class", "def", "None", "name", "state", "Lamp 1", "lamp-1", 'a/b"c',
                     "5+2", "120 minutes", "recall_*", "", "_", "__init__", "mro", "value",
                     "get", "set", "Kühlschrank", "\\", "line\nbreak", "tab\tbed", "x" * 40]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
)
prop_text = st.one_of(odd_text.filter(bool), st.from_regex(r"[a-z][a-z_0-9]{0,10}",
                                                           fullmatch=True))
number = st.one_of(st.integers(-10**6, 10**6),
                   st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
access = st.integers(0, 7)


def _generic(prop: st.SearchStrategy[str], nested: int) -> st.SearchStrategy[dict[str, Any]]:
    common = {"name": odd_text, "property": prop, "access": access}
    binary = st.fixed_dictionaries(common | {
        "type": st.just("binary"),
        "value_on": st.one_of(st.just(True), st.text(max_size=6), st.integers(0, 9)),
        "value_off": st.one_of(st.just(False), st.text(max_size=6), st.integers(10, 19)),
    }, optional={"value_toggle": st.text(max_size=6)})
    numeric = st.fixed_dictionaries(common | {"type": st.just("numeric")}, optional={
        "value_min": st.integers(-100, 0), "value_max": st.integers(1, 1000),
        "value_step": st.sampled_from([1, 0.5, 0.01, 2]),
        "unit": odd_text,
        "presets": st.lists(st.fixed_dictionaries({
            "name": odd_text, "value": st.one_of(number, odd_text)}), max_size=3),
    })
    enum = st.fixed_dictionaries(common | {
        "type": st.just("enum"),
        "values": st.lists(st.one_of(odd_text, st.integers(-5, 500)), min_size=1,
                           max_size=6, unique_by=lambda v: (type(v), v)),
    })
    text = st.fixed_dictionaries(common | {"type": st.just("text")})
    lst = st.fixed_dictionaries(common | {"type": st.just("list"), "item_type": st.one_of(
        st.fixed_dictionaries({"type": st.just("numeric"), "name": odd_text.filter(bool),
                               "access": access}),
        st.fixed_dictionaries({"type": st.just("text"), "name": odd_text.filter(bool),
                               "access": access}),
        st.fixed_dictionaries({"type": st.just("binary"), "name": odd_text, "access": access,
                               "value_on": st.just("ON"), "value_off": st.just("OFF")}),
        st.fixed_dictionaries({"type": st.just("enum"), "name": odd_text, "access": access,
                               "values": st.lists(st.one_of(odd_text, st.integers(0, 9)),
                                                  min_size=1, max_size=3,
                                                  unique_by=lambda v: (type(v), v))}))},
        optional={"length_min": st.integers(0, 2), "length_max": st.integers(3, 9)})
    kinds = [binary, numeric, enum, text, lst]
    if nested > 0:
        kinds.append(st.fixed_dictionaries(common | {
            "type": st.just("composite"),
            "features": st.lists(_generic(prop_text, nested - 1), min_size=1, max_size=4),
        }))
    return st.one_of(*kinds)


def _specific() -> st.SearchStrategy[dict[str, Any]]:
    endpoint = st.sampled_from(["l1", "l2", "left", "1"])

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        kind = draw(st.sampled_from(["light", "switch", "lock", "cover", "fan", "climate"]))
        ep = draw(st.one_of(st.none(), endpoint))
        features = draw(st.lists(_generic(prop_text, 1), min_size=1, max_size=3))
        out: dict[str, Any] = {"type": kind, "features": []}
        for raw in features:
            feature = dict(raw)
            if ep is not None:
                feature["endpoint"] = ep
                feature["property"] = f"{feature['property']}_{ep}"
            out["features"].append(feature)
        if ep is not None:
            out["endpoint"] = ep
        return out

    return build()


expose = st.one_of(_generic(prop_text, 2), _specific())


@st.composite
def device(draw: Any, index: int = 0) -> dict[str, Any]:
    return {
        "ieee_address": f"0x{index:016x}",
        "friendly_name": draw(odd_text.filter(bool)),
        "type": draw(st.sampled_from(["Router", "EndDevice"])),
        "power_source": draw(st.sampled_from(["Battery", "Mains (single phase)"])),
        "supported": True,
        "definition": {
            "model": draw(odd_text), "vendor": draw(odd_text), "description": draw(odd_text),
            "exposes": draw(st.lists(expose, max_size=6)),
        },
    }


@st.composite
def network(draw: Any, min_size: int = 1, max_size: int = 4) -> list[dict[str, Any]]:
    count = draw(st.integers(min_size, max_size))
    devices = [draw(device(index=i + 1)) for i in range(count)]
    names: set[str] = set()
    out = []
    for d in devices:  # zigbee2mqtt's own rule: friendly names are unique
        if d["friendly_name"] not in names:
            names.add(d["friendly_name"])
            out.append(d)
    return out
