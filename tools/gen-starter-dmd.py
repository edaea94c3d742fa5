#!/usr/bin/env python3
"""Generate SMR's built-in starter dm+d dictionary (issue 8).

Output: crates/smr-dmd/data/starter-dictionary.json (format 1, described in
docs/starter-dictionary.md). Standard library only; re-runnable; the output is sorted
so a rerun on the same inputs gives a byte-identical file.

Inputs are read-only reference copies in ../shared relative to the repository (override
with SMR_SHARED_DIR). Every code written comes from one of those sources: a wrong code
is worse than a missing one, so nothing is inferred except links between codes that the
sources already hold, and each product says how its links were made.

    python3 tools/gen-starter-dmd.py            # writes the JSON, prints a summary
    python3 tools/gen-starter-dmd.py --check    # exits 1 if the committed JSON is stale
"""

import collections
import csv
import glob
import itertools
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SMR_SHARED_DIR", os.path.join(os.path.dirname(REPO), "shared"))
REF = os.path.join(SHARED, "reference")
OUT = os.path.join(REPO, "crates", "smr-dmd", "data", "starter-dictionary.json")

RELEASE_DIR = os.path.join(REF, "dmd-xml", "release-2")
VTM_XML = os.path.join(RELEASE_DIR, "f_vtm2_3010419.xml")
LOOKUP_XML = os.path.join(RELEASE_DIR, "f_lookup2_3010419.xml")
EPD_CSV = os.path.join(REF, "analytics", "epd_201709.csv")
PINCER_DIR = os.path.join(REF, "safety", "pincer-codelists")
OP_DIR = os.path.join(REF, "safety", "openprescribing")
EPS_DIR = os.path.join(REF, "fhir", "nhs-eps-examples")
PGX_SUBSET = os.path.join(REPO, "crates", "smr-dmd", "data", "dmd-pgx-subset.json")
GUIDELINES = os.path.join(REPO, "crates", "smr-pgx-guidelines", "data", "guidelines.json")

TOP_N = 300

# PINCER codelists that list medicines (the others list diagnoses and lab tests).
PINCER_DRUG_LISTS = [
    "acei", "amio", "anticoag", "antiplat", "aspirin", "diur", "lith", "met",
    "non_asp_antiplate", "nsaid", "nsbb", "ppi",
]


# --- SNOMED CT identifier check (same rule as smr_fhir::sctid) -----------------------

_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2], [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def verhoeff_valid(code):
    c = 0
    for i, ch in enumerate(reversed(code)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


def is_concept_id(code):
    """6-18 digits, no leading zero, Verhoeff-valid, concept partition (00 or 10)."""
    return (
        isinstance(code, str)
        and code.isdigit()
        and 6 <= len(code) <= 18
        and code[0] != "0"
        and code[-3:-1] in ("00", "10")
        and verhoeff_valid(code)
    )


# --- dm+d release: VTMs, ingredient substances, forms and routes -----------------------

def load_vtms():
    vtms = {}
    for v in ET.parse(VTM_XML).getroot().iter("VTM"):
        code = v.findtext("VTMID")
        vtms[code] = {
            "code": code,
            "name": v.findtext("NM"),
            "previous": [p for p in [v.findtext("VTMIDPREV")] if p],
            "invalid": v.findtext("INVALID") == "1",
        }
    return vtms


def load_lookup(section):
    root = ET.parse(LOOKUP_XML).getroot()
    return {i.findtext("DESC") for i in root.find(section).iter("INFO")}


# --- name matching -------------------------------------------------------------------

# Salt and qualifier words: matching ignores them on both sides, because dm+d VTMs are
# mostly named without the salt (BNF "Amlodipine besilate" -> VTM "Amlodipine") while a
# few keep it (VTM "Ferrous sulfate"); they still count against an exact match.
SALTS = {
    "sodium", "potassium", "calcium", "magnesium", "hydrochloride", "hydrobromide",
    "fumarate", "mesilate", "phosphate", "sulfate", "sulphate", "maleate", "tartrate",
    "nitrate", "propionate", "dipropionate", "valerate", "butyrate", "furoate", "acetate",
    "bromide", "citrate", "carbonate", "bisulfate", "gluconate", "erbumine", "cilexetil",
    "hyclate", "malate", "besilate", "succinate", "hydrate", "dihydrate", "monohydrate",
    "hemihydrate", "trihydrate", "dried", "disodium", "butylbromide", "hexanoate",
    "dihydrochloride",
}

# EPD (BNF) descriptions abbreviate salts; expand them so they are recognised as salts.
BNF_ABBREV = {
    "sod": "sodium", "pot": "potassium", "hcl": "hydrochloride", "hydrob": "hydrobromide",
    "fumar": "fumarate", "mesil": "mesilate", "phos": "phosphate", "sulf": "sulfate",
    "mal": "maleate", "tart": "tartrate", "nit": "nitrate", "prop": "propionate",
    "diprop": "dipropionate", "val": "valerate", "but": "butyrate", "fur": "furoate",
    "acet": "acetate", "brom": "bromide", "cit": "citrate", "carb": "carbonate",
    "bisulf": "bisulfate", "glucon": "gluconate", "calc": "calcium", "butylbrom":
    "butylbromide", "hex": "hexanoate", "mononit": "mononitrate", "trinit": "trinitrate",
    # Ingredient abbreviations seen in the EPD sample that are not word prefixes.
    "hydchloroth": "hydrochlorothiazide", "zn": "zinc",
}

# Hand-checked expansions of EPD names the rules below cannot resolve; each maps an EPD
# abbreviated name to the VTM name as dm+d writes it (checked against the VTM file).
EPD_ALIASES = {
    "influenza": "Influenza vaccine",
    "prochlpzine mal": "Prochlorperazine",
    "oestro conj": "Conjugated oestrogens",
    "pneumococcal": "Pneumococcal vaccine",
    "sod valpr": "Sodium valproate",
    "co-codamol eff": "Co-codamol",
    "macrogol": "Macrogol 3350",
    "clobet but": "Clobetasone",
    "peppermint oil": "Peppermint",
    # BNF 0906040G0 is colecalciferol with calcium carbonate; 'Calc' alone would also
    # fit Calcium phosphate.
    "colecal & calc": "Colecalciferol + Calcium carbonate",
    # VTM 'Carbomer 980' is INVALID in this release; the valid VTM is 'Carbomer'.
    "carbomer 980": "Carbomer",
}


def words(s):
    return [w for w in re.split(r"[\s]+", s.lower().strip()) if w]


def strip_salts(ws):
    kept = [w for w in ws if w not in SALTS]
    return kept if kept else ws


def part_score(bnf_words, vtm_words):
    """Cost of matching one ingredient part, or None. BNF words must each be a prefix of
    the VTM word in the same position (salts aside); a salt named on both sides must be
    the same, a salt named on one side only or an abbreviated word costs one, so the
    closest VTM wins ('Quinine Sulf' -> 'Quinine sulfate', not 'Quinine')."""
    b = strip_salts(bnf_words)
    v = strip_salts(vtm_words)
    if len(b) != len(v):
        return None
    cost = 0
    for bw, vw in zip(b, v):
        if bw == vw:
            continue
        if len(bw) >= 3 and vw.startswith(bw):
            cost += 1
        else:
            return None
    bs = [w for w in bnf_words if w not in b]
    vs = [w for w in vtm_words if w not in v]
    if bs and vs and bs != vs:
        return None
    if bs != vs:
        cost += len(bs) + len(vs)
    return cost


def match_parts(bnf_parts, vtm_parts):
    """Order-insensitive match of ingredient parts; returns total cost or None."""
    if len(bnf_parts) != len(vtm_parts):
        return None
    best = None
    # Combinations have at most a handful of parts, so trying every order is cheap.
    for perm in itertools.permutations(range(len(vtm_parts))):
        total = 0
        for i, j in enumerate(perm):
            s = part_score(bnf_parts[i], vtm_parts[j])
            if s is None:
                total = None
                break
            total += s
        if total is not None and (best is None or total < best):
            best = total
    return best


class VtmIndex:
    def __init__(self, vtms):
        self.valid = [v for v in vtms.values() if not v["invalid"]]
        self.by_lower = collections.defaultdict(list)
        for v in vtms.values():
            self.by_lower[v["name"].lower()].append(v)
        self.parts = {v["code"]: [words(p) for p in v["name"].split(" + ")] for v in self.valid}

    def exact(self, name):
        """Valid VTM whose name equals `name` (case-insensitive). VTMs the release marks
        INVALID are never chosen: they are withdrawn concepts."""
        cands = [v for v in self.by_lower.get(name.lower().strip(), []) if not v["invalid"]]
        return min(cands, key=lambda v: v["code"]) if cands else None

    def salt_forms(self, name):
        """Valid VTMs named `name` plus salt words ('Chloroquine' -> 'Chloroquine
        phosphate', 'Chloroquine sulfate'), for names whose plain VTM is INVALID."""
        want = words(name)
        return sorted(
            (v for v in self.valid
             if words(v["name"])[: len(want)] == want
             and len(words(v["name"])) > len(want)
             and all(w in SALTS for w in words(v["name"])[len(want):])
             and " + " not in v["name"]),
            key=lambda v: v["code"],
        )

    def match_bnf(self, bnf_name):
        """VTM for an EPD (BNF) abbreviated chemical/product name, or None if no unique
        closest match."""
        key = bnf_name.lower().strip()
        if key in EPD_ALIASES:
            return self.exact(EPD_ALIASES[key]), "alias"
        v = self.exact(key)
        if v:
            return v, "exact"
        parts = [
            [BNF_ABBREV.get(w, w) for w in words(p)]
            for p in re.split(r"\s*(?:/|&|\+)\s*", key)
            if p.strip()
        ]
        if any(re.search(r"\d|\(", " ".join(p)) for p in parts):
            return None, None
        scored = []
        for v in self.valid:
            s = match_parts(parts, self.parts[v["code"]])
            if s is not None:
                scored.append((s, v["code"], v))
        if not scored:
            return None, None
        scored.sort(key=lambda t: (t[0], t[1]))
        if len(scored) > 1 and scored[0][0] == scored[1][0]:
            return None, "ambiguous: " + ", ".join(t[2]["name"] for t in scored[:4])
        return scored[0][2], "prefix"


# --- English Prescribing Dataset ranking ---------------------------------------------

def epd_ranking():
    """BNF chemical substances (chapters 1-15) ranked by total items; each with the
    generic (product 'AA') description stems, most prescribed first."""
    items = collections.Counter()
    stems = collections.defaultdict(collections.Counter)
    all_stems = collections.defaultdict(collections.Counter)
    with open(EPD_CSV, newline="") as f:
        for row in csv.DictReader(f):
            code = row["BNF_CODE"].strip()
            if len(code) < 9 or not code[:2].isdigit() or not 1 <= int(code[:2]) <= 15:
                continue
            chem = code[:9]
            n = int(float(row["ITEMS"]))
            items[chem] += n
            stem = row["BNF_DESCRIPTION"].split("_")[0].strip()
            all_stems[chem][stem] += n
            if code[9:11] == "AA":  # generic presentation: named by its ingredients
                stems[chem][stem] += n
    ranked = sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))
    out = []
    for rank, (chem, n) in enumerate(ranked, 1):
        out.append({
            "rank": rank, "bnf": chem, "items": n,
            "stems": [s for s, _ in stems[chem].most_common()],
            "brand_stems": [s for s, _ in all_stems[chem].most_common(3)],
        })
    return out


# --- product names -------------------------------------------------------------------

def split_supplier(term):
    """('Name', 'Supplier') when the term ends in a balanced parenthetical (an AMP
    description), else (term, None)."""
    t = term.strip()
    if not t.endswith(")"):
        return t, None
    depth = 0
    for i in range(len(t) - 1, -1, -1):
        if t[i] == ")":
            depth += 1
        elif t[i] == "(":
            depth -= 1
            if depth == 0:
                return t[:i].strip(), t[i + 1:-1].strip()
    return t, None


UNIT = r"(?:mg|g|ml|microgram|micrograms|nanograms|units|unit|mmol|%|million units|kBq|MBq)"
STRENGTH_TOKEN = re.compile(r"^\d[\d.,]*" + UNIT + r"(?:/(?:\d[\d.,]*)?[a-z]+)?$")
INTERNATIONAL = re.compile(
    r"(\d (mg|g|mL|microgram|micrograms|unit|units|mmol)\b|\bmL\b|/1 each|"
    r"\boral (tablet|capsule)$|dosage form|\bproduct\b|conventional release|"
    r"prolonged-release oral|\(clinical drug\)|\(medicinal product\)|"
    r"\b(tablet|capsule)$|\w\+\w)"
)


def looks_like_vmp_name(name):
    """True for dm+d-style VMP names ('Atorvastatin 20mg tablets'); false for SNOMED CT
    international drug names ('Aspirin 75 mg oral tablet') and grouping concepts that
    the PINCER codelists also hold."""
    if INTERNATIONAL.search(name):
        return False
    return bool(re.search(r"\d" + UNIT + r"(\b|/|$)", name))


# Whole trailing phrase after the strength -> (dm+d form, dm+d route). Only phrases
# whose route is certain are listed; anything else leaves form and route null.
FORM_ROUTE = {
    "tablets": ("Tablet", "Oral"),
    "capsules": ("Capsule", "Oral"),
    "gastro-resistant tablets": ("Gastro-resistant tablet", "Oral"),
    "gastro-resistant capsules": ("Gastro-resistant capsule", "Oral"),
    "modified-release tablets": ("Modified-release tablet", "Oral"),
    "modified-release capsules": ("Modified-release capsule", "Oral"),
    "dispersible tablets": ("Dispersible tablet", "Oral"),
    "soluble tablets": ("Soluble tablet", "Oral"),
    "effervescent tablets": ("Effervescent tablet", "Oral"),
    "chewable tablets": ("Chewable tablet", "Oral"),
    "orodispersible tablets": ("Orodispersible tablet", "Oral"),
    "sublingual tablets": ("Sublingual tablet", "Sublingual"),
    "buccal tablets": ("Buccal tablet", "Buccal"),
    "oral solution": ("Oral solution", "Oral"),
    "oral suspension": ("Oral suspension", "Oral"),
    "oral drops": ("Oral drops", "Oral"),
    "oral gel": ("Oral gel", "Oromucosal"),
    "eye drops": ("Eye drops", "Ocular"),
    "eye gel": ("Eye gel", "Ocular"),
    "ear drops": ("Ear drops", "Auricular"),
    "nasal drops": ("Nasal drops", "Nasal"),
    "transdermal patches": ("Transdermal patch", "Transdermal"),
    "cream": ("Cream", "Cutaneous"),
    "vaginal gel": ("Vaginal gel", "Vaginal"),
}
QUALIFIERS = re.compile(r"\s+(sugar[ -]free\.?|preservative free|CFC free|unit dose)$")


def fmt_strength(tok):
    m = re.match(r"^(\d[\d.,]*)(" + UNIT + r")(?:/(\d[\d.,]*)?([a-z]+))?$", tok)
    if not m:
        return None
    num, unit, dnum, dunit = m.groups()
    s = num + ("%" if unit == "%" else " " + unit)
    if dunit:
        s += "/" + (dnum + " " if dnum else "") + dunit
    return s


def parse_vmp_name(name, forms, routes, combos):
    """Ingredients (with strength), form and route from a VMP name, each only where the
    name is unambiguous; see docs/starter-dictionary.md."""
    parts = name.split(" / ")
    ingredients = []
    tail = None
    for i, part in enumerate(parts):
        ws = part.split()
        idx = [k for k, w in enumerate(ws) if re.match(r"^\d", w)]
        if not idx:
            return [], None, None
        lead = " ".join(ws[: idx[0]]).lower()
        strength = fmt_strength(ws[idx[0]]) if STRENGTH_TOKEN.match(ws[idx[0]]) else None
        if len(idx) > 1 and i < len(parts) - 1:
            strength = None
        if lead in combos:
            # 'Co-codamol 30mg/500mg tablets': the name does not say which strength is
            # whose, so list the ingredients without strengths.
            ingredients.extend({"name": n, "strength": None} for n in combos[lead])
        elif lead.startswith("co-"):
            # Other 'Co-' names: the name alone does not say the ingredients.
            pass
        elif lead:
            ingredients.append({"name": lead, "strength": strength})
        if i == len(parts) - 1:
            if len(idx) != 1:
                tail = None
            else:
                tail = " ".join(ws[idx[0] + 1:])
    form = route = None
    if tail:
        t = QUALIFIERS.sub("", tail)
        t = QUALIFIERS.sub("", t)
        fr = FORM_ROUTE.get(t)
        if fr and fr[0] in forms and fr[1] in routes:
            form, route = fr
    return ingredients, form, route


def vtm_for_vmp_name(name, vindex):
    """VTM whose name is the leading ingredient words of the VMP name (each ' / ' part
    for combinations); the longest such VTM wins. Returns the VTM or None."""
    parts = name.split(" / ")
    leads = []
    for part in parts:
        ws = part.split()
        idx = [k for k, w in enumerate(ws) if re.match(r"^\d", w)]
        leads.append([w.lower() for w in (ws[: idx[0]] if idx else ws)])
    best = None
    for v in vindex.valid:
        vparts = vindex.parts[v["code"]]
        if len(vparts) != len(leads):
            continue
        ok = True
        used = set()
        for vp in vparts:
            hit = None
            for j, lead in enumerate(leads):
                if j not in used and lead[: len(vp)] == vp:
                    hit = j
                    break
            if hit is None:
                ok = False
                break
            used.add(hit)
        if ok:
            size = sum(len(p) for p in vparts)
            if best is None or size > best[0] or (size == best[0] and v["code"] < best[1]["code"]):
                best = (size, v)
    return best[1] if best else None


# --- product sources -----------------------------------------------------------------

def pincer_terms():
    meta = json.load(open(os.path.join(PINCER_DIR, "codelists.json")))["files"]
    for lst in PINCER_DRUG_LISTS:
        fname = "pincer-%s.csv" % lst
        cid = meta[fname]["id"]
        with open(os.path.join(PINCER_DIR, fname), newline="") as f:
            for row in csv.DictReader(f):
                yield row["id"].strip(), row["term"].strip(), "OpenCodelists " + cid


def eps_terms():
    """(code, display) for dm+d medication codes in the NHS EPS FHIR examples. The
    'spurious-code' examples deliberately carry a wrong code, so they are skipped."""
    out = []

    def walk(o):
        if isinstance(o, dict):
            for key in ("medicationCodeableConcept",):
                cc = o.get(key)
                if isinstance(cc, dict):
                    for c in cc.get("coding", []):
                        if c.get("code") and c.get("display"):
                            out.append((c["code"], c["display"]))
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    for path in sorted(glob.glob(os.path.join(EPS_DIR, "*.json"))):
        if "spurious" in os.path.basename(path):
            continue
        walk(json.load(open(path)))
        for code, disp in out:
            yield code, disp, "NHS EPS FHIR example " + os.path.basename(path)
        out.clear()


def openprescribing_objs():
    for fname in ("dmd-objs.json", "dmd-subset.json"):
        for o in json.load(open(os.path.join(OP_DIR, fname))):
            yield o, "OpenPrescribing dm+d fixture " + fname


# --- build ---------------------------------------------------------------------------

def main():
    check_only = "--check" in sys.argv[1:]
    if not os.path.isdir(REF):
        print("reference data not found at %s (set SMR_SHARED_DIR)" % REF, file=sys.stderr)
        return 2
    vtms = load_vtms()
    vindex = VtmIndex(vtms)
    forms = load_lookup("FORM")
    routes = load_lookup("ROUTE")
    pgx = json.load(open(PGX_SUBSET))
    combos = {c["name"].lower(): sorted(c["ingredients"]) for c in pgx["combination_names"]}
    notes = []
    rejected = collections.Counter()

    chosen = {}  # VTM code -> entry

    def add_vtm(v, why, rank=None, bnf=None):
        e = chosen.setdefault(v["code"], {
            "code": v["code"], "name": v["name"], "previous": list(v["previous"]),
            "bnf": None, "rank": None, "why": set(),
        })
        e["why"].add(why)
        if rank is not None and (e["rank"] is None or rank < e["rank"]):
            e["rank"] = rank
            e["bnf"] = bnf

    # 1. Top EPD chemical substances.
    ranking = epd_ranking()
    unmatched_top = []
    matched_top = 0
    matched_chems = 0
    for chem in ranking:
        if chem["rank"] > TOP_N and matched_chems >= TOP_N:
            break
        hits = []
        why_not = None
        for stem in chem["stems"] or chem["brand_stems"]:
            v, how = vindex.match_bnf(stem)
            if v is not None:
                hits.append(v)
            elif how and why_not is None:
                why_not = "%s (%s)" % (stem, how)
        if hits:
            matched_chems += 1
            if chem["rank"] <= TOP_N:
                matched_top += 1
            for v in hits:
                add_vtm(v, "epd-top", chem["rank"], chem["bnf"])
        elif chem["rank"] <= TOP_N:
            label = (chem["stems"] or chem["brand_stems"] or ["?"])[0]
            unmatched_top.append("%d %s %s%s" % (
                chem["rank"], chem["bnf"], label,
                "" if chem["stems"] else " (no generic presentation in sample)"))
    last_rank = chem["rank"]

    # 2. Every medicine SMR's rules name.
    rule_names = set(i["name"] for i in pgx["ingredients"])
    for g in json.load(open(GUIDELINES))["guidelines"]:
        rule_names.update(g.get("drugs") or [])
        for t in g.get("tables", []):
            rule_names.update(t.get("drugs") or [])
    unmatched_rules = []
    salt_matched = []
    for name in sorted(rule_names):
        v = vindex.exact(name)
        if v is not None:
            add_vtm(v, "rules")
            continue
        forms_ = vindex.salt_forms(name)
        if forms_:
            salt_matched.append("%s -> %s" % (name, ", ".join(f["name"] for f in forms_)))
            for f in forms_:
                add_vtm(f, "rules")
        else:
            unmatched_rules.append(name)
    # Combination names the PGx subset resolves to rules-named ingredients (e.g.
    # Co-trimoxazole for sulfamethoxazole) are rules-named too when dm+d has the VTM.
    for c in pgx["combination_names"]:
        v = vindex.exact(c["name"])
        if v is not None:
            add_vtm(v, "rules")

    # 3. Products.
    vmps = {}  # code -> entry
    amps = {}
    amp_candidates = []  # (code, name, supplier, source, vmp_code_or_None)
    vmp_name_codes = collections.defaultdict(set)

    def add_vmp(code, name, source, vtm_code=None, link=None, bnf=None):
        if not is_concept_id(code):
            rejected["non-SCTID code"] += 1
            return
        if code in vtms:
            return
        if code in vmps:
            if vmps[code]["name"] != name:
                rejected["VMP code with two names (first kept)"] += 1
                return
            if source not in vmps[code]["sources"]:
                vmps[code]["sources"].append(source)
            if vtm_code and vmps[code]["link"] != "structure":
                vmps[code]["vtm"], vmps[code]["link"] = vtm_code, link
            if bnf and not vmps[code]["bnf"]:
                vmps[code]["bnf"] = bnf
            return
        vmps[code] = {"code": code, "name": name, "sources": [source], "vtm": vtm_code,
                      "link": link, "bnf": bnf}
        vmp_name_codes[name.lower()].add(code)

    # 3a. OpenPrescribing fixtures carry real dm+d structure (VMP->VTM, AMP->VMP).
    for o, src in openprescribing_objs():
        f = o["fields"]
        if o["model"] == "dmd.vmp":
            vtm = str(f["vtm"]) if f.get("vtm") else None
            add_vmp(str(o["pk"]), f["nm"], src, vtm, "structure" if vtm else None,
                    f.get("bnf_code"))
        elif o["model"] == "dmd.amp":
            amp_candidates.append((str(o["pk"]), f["descr"] or f["nm"], src,
                                   str(f["vmp"]), "structure"))

    # 3b. PINCER codelists, SMR's PGx subset, EPS examples: VMP names and AMP terms.
    pgx_products = [(p["code"], p["term"], "SMR dmd-pgx-subset.json (" + p["source"] + ")")
                    for p in pgx["products"]]
    for code, term, src in list(pincer_terms()) + pgx_products + list(eps_terms()):
        if code in vtms:
            continue
        name, supplier = split_supplier(term)
        if supplier is not None:
            if "Manufacturer" in supplier:  # EPS placeholder supplier, not a real AMP
                continue
            amp_candidates.append((code, term, src, None, None))
            continue
        if looks_like_vmp_name(name):
            add_vmp(code, name, src)
        else:
            rejected["not a dm+d VMP-style name"] += 1

    # 3c. VMP -> VTM by name where no structure says.
    for e in vmps.values():
        if e["vtm"] is None:
            v = vtm_for_vmp_name(e["name"], vindex)
            if v is not None:
                e["vtm"], e["link"] = v["code"], "name"

    # PINCER ingredients are rules-named too: the VTMs their products belong to, and the
    # VTM codes the codelists hold directly.
    for code, term, src in pincer_terms():
        if code in vtms and not vtms[code]["invalid"]:
            add_vtm(vtms[code], "rules")
    for e in vmps.values():
        if e["vtm"] and any(s.startswith("OpenCodelists pincer/") or s.startswith("SMR dmd-pgx")
                            for s in e["sources"]):
            if e["vtm"] in vtms:
                add_vtm(vtms[e["vtm"]], "rules")

    # Keep only VMPs whose VTM is in the dictionary (the loader resolves vmp.vtm).
    dropped_vmps = []
    for code in sorted(vmps):
        e = vmps[code]
        if e["vtm"] is None or e["vtm"] not in chosen:
            dropped_vmps.append("%s %s" % (code, e["name"]))
            del vmps[code]

    # 3d. AMPs: linked to a kept VMP by structure, or by the AMP name without its
    # supplier being exactly one kept VMP's name (a generic AMP).
    unlinked_amps = 0
    for code, term, src, vmp_code, link in amp_candidates:
        if not is_concept_id(code):
            rejected["non-SCTID code"] += 1
            continue
        if vmp_code is None:
            name, _ = split_supplier(term)
            codes = [c for c in vmp_name_codes.get(name.lower(), ()) if c in vmps]
            if len(codes) != 1:
                unlinked_amps += 1
                continue
            vmp_code, link = codes[0], "name"
        if vmp_code not in vmps:
            unlinked_amps += 1
            continue
        if code in amps or code in vmps:
            if code in amps and src not in amps[code]["sources"]:
                amps[code]["sources"].append(src)
            continue
        amps[code] = {"code": code, "name": term, "vmp": vmp_code, "sources": [src],
                      "link": link}

    # --- assemble --------------------------------------------------------------------
    out_vtms = []
    for code in sorted(chosen):
        e = chosen[code]
        why = e["why"]
        out_vtms.append({
            "code": code, "name": e["name"], "previous": sorted(e["previous"]),
            "bnf": e["bnf"], "rank": e["rank"],
            "why": "epd-top+rules" if len(why) == 2 else next(iter(why)),
        })
    out_vmps = []
    for code in sorted(vmps):
        e = vmps[code]
        ingredients, form, route = parse_vmp_name(e["name"], forms, routes, combos)
        link = {"structure": "VTM from source structure", "name": "VTM by name"}[e["link"]]
        out_vmps.append({
            "code": code, "name": e["name"], "vtm": e["vtm"],
            "ingredients": ingredients, "form": form, "route": route, "bnf": e["bnf"],
            "controlled_drug": None,
            "source": "; ".join(sorted(e["sources"])) + "; " + link,
        })
    out_amps = []
    for code in sorted(amps):
        e = amps[code]
        link = {"structure": "VMP from source structure", "name": "VMP by name"}[e["link"]]
        out_amps.append({"code": code, "name": e["name"], "vmp": e["vmp"],
                         "source": "; ".join(sorted(e["sources"])) + "; " + link})

    with open(EPD_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    epd_rows, epd_practices = len(rows), len({r["PRACTICE_CODE"] for r in rows})
    n_epd = sum(1 for v in out_vtms if v["why"] != "rules")
    names = collections.Counter(v["name"].lower() for v in out_vmps)
    dup_names = sum(1 for n in names.values() if n > 1)
    notes += [
        "VTM codes and names are copied from the complete VTM file of NHSBSA dm+d release "
        "3010419 (f_vtm2_3010419.xml); 'previous' is that file's VTMIDPREV.",
        "rank = the rank of the VTM's BNF chemical substance (bnf) in the EPD sample by total "
        "items; a VTM several chemicals map to keeps the best rank. "
        "EPD ranking: the English Prescribing Dataset sample for 2017-09 (%d rows, %d "
        "practices) ranked by total ITEMS per BNF chemical substance (first 9 characters of "
        "BNF_CODE), chapters 1-15 only; %d distinct drug substances. The sample's "
        "CHEMICAL_SUBSTANCE_BNF_DESCR column is empty, so names come from the generic "
        "(product 'AA') BNF_DESCRIPTION stems, which are abbreviated ('Levothyrox Sod')."
        % (epd_rows, epd_practices, len(ranking)),
        "EPD->VTM: exact name, else each BNF word a prefix of the VTM word in order with "
        "salts ignored on both sides and combinations ('/', '&') matched part by part "
        "against VTM ' + ' parts, closest unique match only; %d hand-checked aliases "
        "(listed in the generator). Every generic stem of a chemical that matches is "
        "mapped, so one chemical can give both 'Fluticasone' and 'Fluticasone + "
        "Salmeterol'." % len(EPD_ALIASES),
        "Coverage: %d of the top %d EPD chemical substances matched a VTM; ranks beyond %d "
        "were added until %d chemical substances matched (last rank taken: %d). %d VTMs "
        "come from the EPD ranking." % (matched_top, TOP_N, TOP_N, TOP_N, last_rank, n_epd),
        "Top-%d EPD chemical substances without a VTM (mostly appliances, foods, "
        "emollient groups or brand-only presentations): %s."
        % (TOP_N, "; ".join(unmatched_top) or "none"),
        "Rules-named medicines: ingredients of crates/smr-dmd/data/dmd-pgx-subset.json, the "
        "drugs of crates/smr-pgx-guidelines/data/guidelines.json, and the VTMs of the "
        "PINCER drug codelists (%s), matched to valid VTMs by exact name, else (where the plain VTM is INVALID in this "
        "release) to its valid salt-named VTMs: %s. No valid VTM in this release: %s."
        % (", ".join(PINCER_DRUG_LISTS), "; ".join(salt_matched) or "none",
           ", ".join(unmatched_rules) or "none"),
        "Each product's source lists where its code was read, then how it was linked: 'VTM "
        "by name' = the VTM name is the leading ingredient words of the VMP name (each ' / ' "
        "part for combinations; the longest such VTM), 'VMP by name' = the AMP name without "
        "its supplier is exactly one VMP's name, '... from source structure' = the source "
        "records the link.",
        "VMPs: only codes written in a source with a dm+d-style name (strength joined to "
        "its unit, e.g. '20mg'); SNOMED CT international drug names and grouping concepts "
        "in the codelists are left out. The release's product XML files are not used: they "
        "are edited test data (a made-up VPID).",
        "Strength, form and route are parsed from the VMP name only where unambiguous (one "
        "strength per ingredient part; a listed whole form phrase); otherwise null. "
        "Ingredients of 'Co-' names come from the PGx subset's combination names, without "
        "strengths; other 'Co-' names get an empty ingredient list. Ingredient names are the "
        "words the VMP name uses ('propranolol'), which can be the base where the dm+d "
        "ingredient substance is a salt. controlled_drug is null throughout: no source here "
        "gives VMP control information (the EPS examples' 'CD2' does not say which Schedule 2 "
        "category).",
        "%d VMP names carry two codes (an old and a new dm+d code, both seen in sources); "
        "both are kept because records carry either." % dup_names,
        "Products whose VTM is not in this dictionary are left out (%d): %s."
        % (len(dropped_vmps), "; ".join(dropped_vmps[:40]) + (" ..." if len(dropped_vmps) > 40 else "")),
        "AMPs: kept only when linked to a kept VMP by a source's structure or by the AMP "
        "name without supplier being exactly one VMP's name; %d branded or unlinked AMP "
        "terms were left out." % unlinked_amps,
        "Rejected source rows: %s." % (", ".join("%s %d" % kv for kv in sorted(rejected.items())) or "none"),
        "The imported dm+d release takes precedence over this file when present.",
    ]

    doc = {
        "format": 1,
        "title": "SMR starter dm+d dictionary",
        "release": "NHSBSA dm+d release 3010419 (f_vtm2_3010419.xml)",
        "generated_by": "tools/gen-starter-dmd.py",
        "sources": [
            "NHSBSA dm+d release 3010419: f_vtm2_3010419.xml (VTMs) and "
            "f_lookup2_3010419.xml (form and route names), as copied into the "
            "OpenPrescribing repository (ebmdatalab/openprescribing, MIT, Copyright (c) Ben "
            "Goldacre). The data are NHSBSA's dm+d, published under NHSBSA's dm+d licence terms "
            "(NHS TRUD); SNOMED CT identifiers are used under the SNOMED CT licence.",
            "English Prescribing Dataset sample, September 2017 (epd_201709.csv), NHSBSA data, "
            "as copied into the OpenPrescribing repository (MIT, Copyright (c) Ben Goldacre).",
            "OpenCodelists PINCER codelists (pincer/acei/3a4a83ad, pincer/amio/560cb6d8, "
            "pincer/anticoag/58bf76ce, pincer/antiplat/26a09064, pincer/aspirin/71ceea03, "
            "pincer/diur/213b1078, pincer/lith/6f1c2a0d, pincer/met/082b9d43, "
            "pincer/non_asp_antiplate/0ade5d39, pincer/nsaid/23edd06e, pincer/nsbb/3fb00399, "
            "pincer/ppi/3cfd43a3; https://codelists.opensafely.org/, downloaded 2021-08-09), MIT, "
            "Copyright (c) Bennett Institute for Applied Data Science; codes from NHSBSA dm+d.",
            "OpenPrescribing dm+d test fixtures dmd-objs.json and dmd-subset.json "
            "(ebmdatalab/openprescribing), MIT, Copyright (c) Ben Goldacre.",
            "NHS EPS FHIR API examples (NHSDigital/electronic-prescription-service-api), MIT, "
            "Crown Copyright NHS England; the 'spurious-code' examples are not used.",
            "SMR crates/smr-dmd/data/dmd-pgx-subset.json (its products cite their own sources) "
            "and crates/smr-pgx-guidelines/data/guidelines.json (drug names).",
        ],
        "notes": notes,
        "vtms": out_vtms,
        "vmps": out_vmps,
        "amps": out_amps,
    }

    problems = self_check(doc)
    text = render(doc)
    print("VTMs %d (EPD %d, rules-only %d), VMPs %d, AMPs %d; top %d matched %d; %d bytes"
          % (len(out_vtms), n_epd, len(out_vtms) - n_epd, len(out_vmps), len(out_amps),
             TOP_N, matched_top, len(text.encode())))
    for p in problems:
        print("SELF-CHECK FAILED:", p, file=sys.stderr)
    if problems:
        return 1
    if check_only:
        same = os.path.exists(OUT) and open(OUT).read() == text
        print("up to date" if same else "STALE: rerun tools/gen-starter-dmd.py")
        return 0 if same else 1
    with open(OUT, "w") as f:
        f.write(text)
    print("wrote", os.path.relpath(OUT, REPO))
    return 0


def render(doc):
    """Pretty top level, one entry per line: readable diffs at half the size of a fully
    indented file."""
    lines = ["{"]
    keys = list(doc)
    for k, key in enumerate(keys):
        comma = "," if k < len(keys) - 1 else ""
        val = doc[key]
        if isinstance(val, list):
            lines.append(" %s: [" % json.dumps(key))
            for i, item in enumerate(val):
                sep = "," if i < len(val) - 1 else ""
                lines.append("  " + json.dumps(item, ensure_ascii=False) + sep)
            lines.append(" ]" + comma)
        else:
            lines.append(" %s: %s%s" % (json.dumps(key), json.dumps(val, ensure_ascii=False), comma))
    lines.append("}")
    return "\n".join(lines) + "\n"


def self_check(doc):
    problems = []
    vtm_codes = {v["code"] for v in doc["vtms"]}
    vmp_codes = {v["code"] for v in doc["vmps"]}
    for kind in ("vtms", "vmps", "amps"):
        codes = [e["code"] for e in doc[kind]]
        if codes != sorted(codes) or len(set(codes)) != len(codes):
            problems.append("%s not sorted/unique" % kind)
        for e in doc[kind]:
            if not is_concept_id(e["code"]):
                problems.append("%s %s fails the SCTID/Verhoeff check" % (kind, e["code"]))
    for v in doc["vtms"]:
        for p in v["previous"]:
            if not verhoeff_valid(p):
                problems.append("previous code %s fails Verhoeff" % p)
        if v["why"] not in ("epd-top", "rules", "epd-top+rules"):
            problems.append("bad why %r" % v["why"])
    for v in doc["vmps"]:
        if v["vtm"] is not None and v["vtm"] not in vtm_codes:
            problems.append("vmp %s names missing vtm %s" % (v["code"], v["vtm"]))
        for i in v["ingredients"]:
            if i["name"] != i["name"].lower():
                problems.append("vmp %s ingredient not lower-case" % v["code"])
    for a in doc["amps"]:
        if a["vmp"] not in vmp_codes:
            problems.append("amp %s names missing vmp %s" % (a["code"], a["vmp"]))
    amp_codes = {a["code"] for a in doc["amps"]}
    prev_codes = {p for v in doc["vtms"] for p in v["previous"]}
    if vtm_codes & vmp_codes or vmp_codes & amp_codes or vtm_codes & amp_codes:
        problems.append("a code is used by two kinds of concept")
    if prev_codes & (vtm_codes | vmp_codes | amp_codes):
        problems.append("a previous VTM code is also a current code")
    return problems


if __name__ == "__main__":
    sys.exit(main())
