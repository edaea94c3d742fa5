#!/usr/bin/env python3
"""Generate crates/smr-fhir/data/r4-elements.json from the official FHIR R4 JSON Schema.

Source: HL7 FHIR R4 (4.0.1) JSON Schema, http://hl7.org/fhir/R4/fhir.schema.json.zip
(draft-06). The schema is not part of this repository; pass its path as the first argument:

    python3 tools/gen-r4-elements.py /path/to/fhir.schema.json

Only the definitions reachable from the resource types SMR serves (read from
crates/smr-fhir/src/resource_types.rs so the two cannot drift) are written. Per definition the
output lists every element as `[name, type, flags, choice_base]`:

- `type` is a definition name (`CodeableConcept`, `MedicationRequest_DispenseRequest`), a FHIR
  primitive type name (`code`, `dateTime`, ...), `xhtml`, or `Resource` for `contained`.
- `flags` contains `a` when the element is a JSON array and `r` when the schema lists it under
  `required`.
- `choice_base` (only for choice elements, e.g. `medication` for `medicationReference`) groups
  the variants of one `value[x]`, of which at most one may be present.

`_element` primitive-extension siblings are left out: the validator allows `_x` wherever the
primitive `x` exists. `enums` holds the code lists the schema inlines for required bindings,
keyed `Definition.element`.
"""

import json
import os
import re
import sys

SOURCE = "HL7 FHIR R4 4.0.1 JSON Schema, http://hl7.org/fhir/R4/fhir.schema.json.zip"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SCHEMA = os.path.join(
    os.path.dirname(ROOT), "shared", "reference", "fhir", "r4-spec", "fhir.schema.json"
)
OUT = os.path.join(ROOT, "crates", "smr-fhir", "data", "r4-elements.json")
RESOURCE_TYPES_RS = os.path.join(ROOT, "crates", "smr-fhir", "src", "resource_types.rs")

PRIMITIVES = [
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
    "instant", "integer", "markdown", "oid", "positiveInt", "string", "time", "unsignedInt",
    "uri", "url", "uuid",
]


def served_types():
    with open(RESOURCE_TYPES_RS, encoding="utf-8") as f:
        text = f.read()
    # Only the SERVED_TYPES table, and tolerant of rustfmt's layout (one field per line).
    start = text.index("pub const SERVED_TYPES")
    end = text.index("];", start)
    names = re.findall(r'name:\s*"([A-Za-z]+)"', text[start:end])
    if not names:
        sys.exit("no served types found in resource_types.rs")
    return names


# Types validated only as entries of a stored Bundle, never served on their own: a document's
# first resource is its Composition (R4 bdl-11).
VALIDATED_ONLY_TYPES = ["Composition"]


def ref_name(prop):
    ref = prop.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def cap(t):
    return t[0].upper() + t[1:]


def element_type(defname, name, prop):
    """The FHIR type of one schema property (never an array wrapper)."""
    if "$ref" in prop:
        t = ref_name(prop)
        return "Resource" if t == "ResourceList" else t
    if "enum" in prop:
        return "code"
    if "pattern" in prop:
        # Inline primitives occur on choice variants (`valueBoolean`); the suffix names the
        # type exactly, where the pattern alone cannot tell string from markdown or uri from url.
        for t in sorted(PRIMITIVES, key=len, reverse=True):
            if name.endswith(cap(t)) and len(name) > len(t):
                return t
        sys.exit(f"cannot type inline primitive {defname}.{name}")
    sys.exit(f"unknown property shape {defname}.{name}: {prop}")


def main():
    schema_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SCHEMA
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    defs = schema["definitions"]

    roots = served_types() + VALIDATED_ONLY_TYPES
    out_defs = {}
    enums = {}
    # `Element` (id, extension) types the `_x` primitive-extension objects, which are left out.
    todo = list(roots) + ["Element"]
    while todo:
        dname = todo.pop()
        if dname in out_defs or dname in PRIMITIVES or dname in ("xhtml", "Resource"):
            continue
        d = defs[dname]
        required = set(d.get("required", [])) - {"resourceType"}
        elements = []
        for name, prop in d.get("properties", {}).items():
            if name.startswith("_") or name == "resourceType":
                continue
            is_array = prop.get("type") == "array"
            item = prop["items"] if is_array else prop
            t = element_type(dname, name, item)
            if "enum" in item:
                enums[f"{dname}.{name}"] = item["enum"]
            flags = ("a" if is_array else "") + ("r" if name in required else "")
            elements.append([name, t, flags])
            if t not in PRIMITIVES and t not in ("xhtml", "Resource"):
                todo.append(t)
        # Choice groups: variants are `base` + capitalised type, a real `[x]` always has at
        # least two variants (this keeps `birthDate`, a plain date, out of any group) and is
        # never repeating (this keeps MedicationRequest.instantiatesCanonical/-Uri, two
        # separate 0..* elements, apart).
        by_base = {}
        for el in elements:
            name, t, flags = el
            if "a" in flags:
                continue
            suffix = cap(t)
            if name.endswith(suffix) and len(name) > len(suffix):
                by_base.setdefault(name[: -len(suffix)], []).append(el)
        for base, members in by_base.items():
            if len(members) >= 2:
                for el in members:
                    el.append(base)
        out_defs[dname] = elements

    # One definition per line: small diffs when the generator changes.
    lines = ["{"]
    lines.append(f'"source": {json.dumps(SOURCE)},')
    lines.append('"generator": "tools/gen-r4-elements.py",')
    lines.append(f'"roots": {json.dumps(roots)},')
    lines.append('"definitions": {')
    names = sorted(out_defs)
    for i, n in enumerate(names):
        sep = "," if i + 1 < len(names) else ""
        lines.append(f"{json.dumps(n)}: {json.dumps(out_defs[n], separators=(',', ':'))}{sep}")
    lines.append("},")
    lines.append('"enums": {')
    keys = sorted(enums)
    for i, k in enumerate(keys):
        sep = "," if i + 1 < len(keys) else ""
        lines.append(f"{json.dumps(k)}: {json.dumps(enums[k], separators=(',', ':'))}{sep}")
    lines.append("}")
    lines.append("}")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {OUT}: {len(out_defs)} definitions, {len(enums)} enums")


if __name__ == "__main__":
    main()
