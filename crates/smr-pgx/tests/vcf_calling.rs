//! VCF → diplotype calling against PharmCAT's own test VCFs (when the reference
//! data is present) and SMR's hand-made fixtures (always).

use std::collections::BTreeMap;
use std::path::Path;

use smr_pgx::Gene;
use smr_pgx::vcf::{
    CallOptions, DefinitionSet, GeneCall, call_vcf, call_vcf_with, parse_definitions,
};

fn defs() -> &'static DefinitionSet {
    match DefinitionSet::builtin() {
        Ok(d) => d,
        Err(e) => panic!("built-in definitions do not parse: {e}"),
    }
}

fn call_one(vcf: &str, gene: Gene) -> GeneCall {
    call_one_with(vcf, gene, false)
}

fn call_one_with(vcf: &str, gene: Gene, combinations: bool) -> GeneCall {
    let calls = match call_vcf_with(vcf, defs(), &CallOptions { combinations }) {
        Ok(c) => c,
        Err(e) => panic!("VCF rejected: {e}"),
    };
    assert_eq!(calls.len(), 1, "one sample expected");
    match calls[0].gene(gene) {
        Some(c) => c.clone(),
        None => panic!("{gene} not called"),
    }
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vcf")
        .join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

// ---------- always-present fixtures ----------

#[test]
fn fixture_cyp2c19_s2_s17_unphased() {
    let c = call_one(&fixture("cyp2c19_s2_s17.vcf"), Gene::Cyp2c19);
    assert_eq!(c.diplotypes, ["*2/*17"]);
    assert!(!c.phased && !c.partial && !c.ambiguous);
    assert_eq!((c.matched_positions, c.total_positions), (35, 35));
    let interp = c.interpret_top().map(|i| i.phenotype.as_str().to_string());
    assert_eq!(interp.as_deref(), Some("Intermediate Metabolizer"));
}

#[test]
fn fixture_cyp2c19_phased_without_chr_prefix() {
    let c = call_one(&fixture("cyp2c19_phased_s2_s17.vcf"), Gene::Cyp2c19);
    assert_eq!(c.diplotypes, ["*2/*17"]);
    assert!(c.phased);
}

#[test]
fn phase_matters_when_phased() {
    // *2's variants split across the two haplotypes fit no pair of named alleles,
    // whereas the same genotypes unphased are *2/*17.
    let text = fixture("cyp2c19_phased_s2_s17.vcf").replace(
        "94775367\trs12769205\tA\tG\t.\tPASS\t.\tGT\t1|0",
        "94775367\trs12769205\tA\tG\t.\tPASS\t.\tGT\t0|1",
    );
    let c = call_one(&text, Gene::Cyp2c19);
    assert!(c.is_no_call(), "{c:?}");
    assert!(c.notes.iter().any(|n| n.starts_with("no call")));
}

#[test]
fn fixture_missing_positions_are_reported_not_hidden() {
    let c = call_one(&fixture("cyp2c19_missing.vcf"), Gene::Cyp2c19);
    // The available positions say *1/*1, but *2's and *17's key positions are absent.
    assert_eq!(c.diplotypes, ["*1/*1"]);
    assert!(c.partial);
    let missing: Vec<u64> = c.missing_positions.iter().map(|m| m.position).collect();
    assert_eq!(missing, [94761900, 94781859]);
    assert_eq!(c.matched_positions, 33);
    assert!(c.unassessed_alleles.iter().any(|a| a == "*17"), "{c:?}");
    assert!(c.notes.iter().any(|n| n.contains("partial call")));
}

#[test]
fn absent_gene_is_no_call_with_reason() {
    let c = call_one(&fixture("cyp2c19_s2_s17.vcf"), Gene::Tpmt);
    assert!(c.is_no_call());
    assert_eq!(c.matched_positions, 0);
    assert_eq!(c.missing_positions.len(), c.total_positions);
    assert!(c.interpret_top().is_none());
}

#[test]
fn multi_sample_haploid_and_no_calls() {
    let vcf = "##fileformat=VCFv4.2\n\
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\tC\tD\n\
chr16\t31096368\trs9923231\tC\tT,G\t.\tLowQual\t.\tGT:DP\t0/1:12\t./.:0\t1|1:9\t1\n";
    let calls = match call_vcf(vcf, defs()) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let get = |s: usize| match calls[s].gene(Gene::Vkorc1) {
        Some(c) => c.clone(),
        None => panic!("no VKORC1"),
    };
    let a = get(0);
    assert_eq!(
        a.diplotypes,
        ["rs9923231 reference (C)/rs9923231 variant (T)"]
    );
    assert!(a.notes.iter().any(|n| n.contains("FILTER is 'LowQual'")));
    let b = get(1);
    assert!(b.is_no_call() && b.missing_positions.len() == 1);
    assert_eq!(
        get(2).diplotypes,
        ["rs9923231 variant (T)/rs9923231 variant (T)"]
    );
    let d = get(3);
    assert!(d.haploid);
    assert_eq!(d.diplotypes, ["rs9923231 variant (T)"]);
}

#[test]
fn malformed_vcf_is_an_error() {
    let no_header = "chr16\t31096368\t.\tC\tT\t.\t.\t.\tGT\t0/1\n";
    assert!(call_vcf(no_header, defs()).is_err());
    let bad_gt = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\n\
chr16\t31096368\t.\tC\tT\t.\t.\t.\tGT\t0/2\n";
    assert!(call_vcf(bad_gt, defs()).is_err());
    let no_samples = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
    assert!(call_vcf(no_samples, defs()).is_err());
}

// ---------- PharmCAT's test VCFs ----------

/// Expected diplotype for a PharmCAT test VCF: `Some(d)` = `d` must be among the top
/// calls, `None` = PharmCAT's named-allele matcher makes no call either.
enum Expect {
    Call(&'static str),
    NoCall,
    /// Name does not encode a diplotype (sample IDs, rsID-only); printed, not checked.
    NotEncoded(&'static str),
    /// Known not to be reproduced; the reason is printed.
    Unsupported(&'static str, &'static str),
    /// No call by default (as PharmCAT); with `CallOptions::combinations` exactly
    /// these combination diplotypes, and the default no-call note names them.
    Combination(&'static [&'static str]),
}

/// Files whose name cannot be decoded mechanically (`s2s3` → `*2/*3`), with the
/// expectation and why.
fn special(gene_dir: &str, stem: &str) -> Option<Expect> {
    use Expect::*;
    Some(match (gene_dir, stem) {
        ("IFNL3", "rs12979860CC") => Call("rs12979860 reference (C)/rs12979860 reference (C)"),
        ("IFNL3", "rs12979860CT") => Call("rs12979860 reference (C)/rs12979860 variant (T)"),
        ("IFNL3", "rs12979860TT") => Call("rs12979860 variant (T)/rs12979860 variant (T)"),
        ("VKORC1", "-1639G-1639G") => Call("rs9923231 reference (C)/rs9923231 reference (C)"),
        ("VKORC1", "-1639G-1639A") => Call("rs9923231 reference (C)/rs9923231 variant (T)"),
        ("VKORC1", "-1639A-1639A") => Call("rs9923231 variant (T)/rs9923231 variant (T)"),
        ("NUDT15", "refref") => Call("*1/*1"),
        ("NUDT15", "s2ref") => Call("*1/*2"),
        ("NUDT15", "s3ref") => Call("*1/*3"),
        ("cyp2c19", "noCall") => NoCall,
        // An undocumented allele (C at rs28399504) fits no definition.
        ("cyp2c19", "sUnks17") => NoCall,
        // PharmCAT's own test expects *1/*4 (the *17 base is on the *4 haplotype).
        ("cyp2c19", "s1s4s17") => Call("*1/*4"),
        ("cyp2c19", "s4s17missingS1") => {
            NotEncoded("name lists *4, *17 and a missing *1-defining position")
        }
        ("cyp2c19", n) if n.starts_with("rs12769205") => NotEncoded("rsID scenario"),
        // *2+*24 on one haplotype is a combination; the base matcher (like PharmCAT's
        // without combination mode) makes no call.
        ("cyp2c9", "s24s2pluss24" | "s2s24only") => Combination(&["*24/[*2 + *24]"]),
        ("cyp2c9", "s3s18m94981296") => Unsupported(
            "*3/*18",
            "94981296 (rs1057910, *3's position) is missing, so *3 cannot be told from *1; *1/*18 fits the remaining data",
        ),
        // Both *3 and *9 positions heterozygous: *3/*9 (PharmCAT) — not *1/*3.
        ("cyp3a5", "s1s3rs776746rs28383479het" | "s1s3rs776746rs55965422rs28383479het") => {
            Call("*3/*9")
        }
        ("cyp3a5", "s1s3rs776746rs55965422het") => Call("*1/*3"),
        ("cyp3a5", "s3s3rs55965422het") => Call("*3/*3"),
        // *7's only position is missing: reference call, flagged partial.
        ("cyp3a5", "s1s7missing") => Call("*1/*1"),
        ("cyp3a5", "s1s1rs776746missing") => Call("*1/*1"),
        ("cyp3a5", "s3s5-homozygous") => Unsupported(
            "*3/*5",
            "*5 is no longer in the CYP3A5 definitions (PharmCAT 2025-11-05); *1/*3 is called",
        ),
        ("cyp3a5", "s3s9-homozygous") => Call("*3/*9"),
        ("TPMT", "het3a" | "hom1s_het3a" | "s1ss1ss3") => Call("*1/*3A"),
        ("TPMT", "s1s1s") => Call("*1/*1"),
        // *3B + *3C heterozygous unphased: *1/*3A explains the same genotypes with a
        // higher specificity score, as in PharmCAT.
        ("TPMT", "s3bs3c") => Call("*1/*3A"),
        ("TPMT", "s15offdata" | "unexpected.allele" | "unexpected.allele.with.s9") => NoCall,
        // Phased haplotypes carrying combinations (*6+*80, *27+*28+*80) that no
        // named allele defines; PharmCAT's matcher only calls them in combination mode.
        ("UGT1A1", "HG00436") => Combination(&["*1/[*27 + *80+*28]"]),
        ("UGT1A1", "s1s60s80s6phased") => Combination(&["*1/[*6 + *80]"]),
        ("UGT1A1", "s1s60s80s28s6phased") => Combination(&["*1/[*6 + *80+*28]"]),
        // *28's position is missing: *80, *80+*28 and *80+*37 cannot be told apart.
        ("UGT1A1", "s1s80s27s60s28missingphased") => {
            Combination(&["*1/[*27 + *80+*28]", "*1/[*27 + *80+*37]", "*1/[*27 + *80]"])
        }
        ("UGT1A1", n) if n.starts_with("NA") => NotEncoded("sample ID"),
        ("UGT1A1", "s1s28s60s80unphased" | "s28s80phased" | "s28s80unphased") => Call("*1/*80+*28"),
        ("UGT1A1", "s1s37s80s60phased") => Call("*1/*80+*37"),
        ("UGT1A1", "s1s60s80phased" | "s1s60s80unphased" | "s80s28missing") => Call("*1/*80"),
        ("UGT1A1", "s28s60hom" | "s28het" | "s28hets60homounphaseds80missing") => Call("*1/*28"),
        ("UGT1A1", "s28s80s6s60phased" | "s28s80s6s60unphased") => Call("*6/*80+*28"),
        ("UGT1A1", "s6s60s80s28missingphased" | "s6s60s80s28missingunphased") => Call("*6/*80"),
        ("UGT1A1", "s27s28unphaseds80s60missing") => Call("*27/*28"),
        ("UGT1A1", "s28s28unphaseds60s80miss") => Call("*28/*28"),
        ("UGT1A1", "s28s37unphaseds80s60missing") => Call("*28/*37"),
        ("SLCO1B1", "multi") => NotEncoded("several haplotypes in one file"),
        ("SLCO1B1", "s1as15s1bs5missing" | "s1as15s1bs5twomissing") => Call("*1/*15"),
        ("SLCO1B1", "SLCO1B1_s15_s45_t1" | "SLCO1B1_s19_s37_t1") => Unsupported(
            "see name",
            "unphased genotypes also fit *1/<one allele>, which the specificity score ranks far higher (*1 names all 28 positions); PharmCAT renders these files without asserting a call",
        ),
        _ => return None,
    })
}

/// `s2s3` → `*2/*3`, `SLCO1B1_s1_s14_t1` → `*1/*14`, `s4as4b` → `*4A/*4B`,
/// `s1s2rs3758581missing` → `*1/*2` (trailing scenario text ignored).
fn decode(stem: &str) -> Option<String> {
    let mut rest = stem
        .split_once('_')
        .map_or(stem, |(_, r)| r)
        .replace('_', "");
    let mut names = Vec::new();
    while names.len() < 2 {
        let r = rest.strip_prefix('s')?;
        let digits = r.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut end = digits;
        // A lower-case letter suffix (*3A) unless it starts the next token or a word.
        if let Some(c) = r[digits..].chars().next()
            && c.is_ascii_lowercase()
            && c != 's'
            && !r[digits..].starts_with("rs")
            && (r.len() == digits + 1 || r[digits + 1..].starts_with('s'))
        {
            end += 1;
        }
        names.push(format!("*{}", r[..end].to_ascii_uppercase()));
        rest = r[end..].to_string();
    }
    Some(names.join("/"))
}

/// Does a called diplotype satisfy an expected one? Order-insensitive; an expected
/// `*45` accepts the sub-allele `*45.001`; CYP2C19's old `*1` (the reference before
/// PharmVar renamed it `*38`) accepts `*38`; CYP2C19 letter suffixes (`*4B`) were
/// retired and are dropped.
fn satisfies(gene_dir: &str, expected: &str, called: &str) -> bool {
    let norm = |a: &str| -> String {
        let a = a.trim();
        if gene_dir == "cyp2c19" {
            a.trim_end_matches(|c: char| c.is_ascii_uppercase())
                .to_string()
        } else {
            a.to_string()
        }
    };
    let allele_ok = |e: &str, c: &str| {
        let (e, c) = (norm(e), norm(c));
        e == c
            || c.strip_prefix(e.as_str())
                .is_some_and(|s| s.starts_with('.'))
            || (gene_dir == "cyp2c19" && e == "*1" && c == "*38")
    };
    let (Some((e1, e2)), Some((c1, c2))) = (expected.split_once('/'), called.split_once('/'))
    else {
        return false;
    };
    (allele_ok(e1, c1) && allele_ok(e2, c2)) || (allele_ok(e1, c2) && allele_ok(e2, c1))
}

#[test]
fn pharmcat_test_vcfs() {
    let Some(root) = smr_testdata::shared("reference/pgx/pharmcat/test-vcfs") else {
        return;
    };
    let mut per_gene: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let gene_dir = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Ok(gene) = gene_dir.parse::<Gene>() else {
            continue;
        };
        if defs().get(gene).is_none() {
            println!(
                "{gene_dir}: no built-in allele definitions (PharmCAT has no translation file); skipped"
            );
            continue;
        }
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "vcf"))
        {
            let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let text = match std::fs::read_to_string(f) {
                Ok(t) => t,
                Err(e) => panic!("{}: {e}", f.display()),
            };
            let call = call_one(&text, gene);
            let expect = special(&gene_dir, stem).unwrap_or_else(|| match decode(stem) {
                Some(d) => Expect::Call(Box::leak(d.into_boxed_str())),
                None => Expect::NotEncoded("name not decodable"),
            });
            let ok = match &expect {
                Expect::Call(d) => call.diplotypes.iter().any(|c| satisfies(&gene_dir, d, c)),
                Expect::NoCall => call.is_no_call(),
                Expect::Combination(want) => {
                    let combo = call_one_with(&text, gene, true);
                    let named = call
                        .notes
                        .iter()
                        .any(|n| n.starts_with("no call") && n.contains(want[0]));
                    call.is_no_call() && named && combo.combination && combo.diplotypes == *want
                }
                Expect::NotEncoded(why) => {
                    println!(
                        "  {gene_dir}/{stem}: not checked ({why}); called {:?}",
                        call.diplotypes
                    );
                    continue;
                }
                Expect::Unsupported(d, why) => {
                    println!(
                        "  {gene_dir}/{stem}: UNSUPPORTED (expected {d}): {why}; called {:?}",
                        call.diplotypes
                    );
                    continue;
                }
            };
            let e = per_gene.entry(gene_dir.clone()).or_default();
            e.1 += 1;
            if ok {
                e.0 += 1;
            } else {
                let want = match expect {
                    Expect::Call(d) => d.to_string(),
                    Expect::Combination(d) => format!("no call, combination mode {d:?}"),
                    _ => "no call".to_string(),
                };
                failures.push(format!(
                    "{gene_dir}/{stem}: expected {want}, called {:?} {:?}",
                    call.diplotypes, call.notes
                ));
            }
        }
    }
    let (mut pass, mut total) = (0, 0);
    for (g, (p, t)) in &per_gene {
        println!("{g}: {p}/{t}");
        pass += p;
        total += t;
    }
    println!("PharmCAT test VCFs: {pass}/{total} passed");
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert!(total >= 90, "only {total} files checked");
}

#[test]
fn decode_names() {
    assert_eq!(decode("s2s3").as_deref(), Some("*2/*3"));
    assert_eq!(decode("s4as4b").as_deref(), Some("*4A/*4B"));
    assert_eq!(
        decode("s4bs17rs28399504missing").as_deref(),
        Some("*4B/*17")
    );
    assert_eq!(decode("SLCO1B1_s1_s14_t1").as_deref(), Some("*1/*14"));
    assert_eq!(decode("s1s2rs3758581missing").as_deref(), Some("*1/*2"));
    assert_eq!(
        decode("s28s37unphaseds80s60missing").as_deref(),
        Some("*28/*37")
    );
    assert_eq!(decode("s4s17het").as_deref(), Some("*4/*17"));
    assert_eq!(decode("noCall"), None);
}

#[test]
fn pharmcat_example_vcf_reproduces_report() {
    let Some(dir) = smr_testdata::shared("reference/pgx/pharmcat/example") else {
        return;
    };
    let vcf = std::fs::read_to_string(dir.join("pharmcat.example.vcf")).expect("example VCF");
    let report =
        std::fs::read_to_string(dir.join("pharmcat.example.report.tsv")).expect("example report");
    let calls = match call_vcf(&vcf, defs()) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let sample = &calls[0];
    let mut checked = 0;
    for line in report.lines().skip(2) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(gene), Some(dip), Some(outside)) = (cols.first(), cols.get(1), cols.get(10))
        else {
            continue;
        };
        let Ok(gene) = gene.parse::<Gene>() else {
            continue;
        };
        let Some(call) = sample.gene(gene) else {
            continue;
        };
        assert_eq!(*outside, "no", "{gene} is an outside call in the report");
        assert_eq!(
            call.diplotypes,
            [dip.to_string()],
            "{gene}: {:?}",
            call.notes
        );
        let interp = call
            .interpret_top()
            .map(|i| i.phenotype.as_str().to_string());
        let want = cols.get(2).copied().unwrap_or_default().trim();
        if !want.is_empty() {
            assert_eq!(interp.as_deref(), Some(want), "{gene} phenotype");
        }
        println!("{gene}: {} ({})", dip, interp.unwrap_or_default());
        checked += 1;
    }
    assert_eq!(
        checked,
        defs().genes().len(),
        "every built-in gene appears in the report"
    );
}

// ---------- combination mode and DPYD ----------

/// PharmCAT's JSON allele definition (test definitions of NamedAlleleMatcherTest)
/// rewritten in SMR's text format, so its combination VCFs can be replayed.
fn definition_from_pharmcat_json(path: &Path) -> Option<DefinitionSet> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = match serde_json::from_str(&text) {
        Ok(j) => j,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let s = |v: &serde_json::Value| v.as_str().unwrap_or(".").to_string();
    let variants = json["variants"].as_array()?;
    let col = |f: &dyn Fn(&serde_json::Value) -> String| {
        variants.iter().map(f).collect::<Vec<_>>().join("\t")
    };
    let mut out = format!(
        "gene\t{}\nchromosome\t{}\nbuild\tGRCh38\nversion\ttest\n",
        s(&json["gene"]),
        s(&json["chromosome"])
    );
    out += &format!("position\t{}\n", col(&|v| v["position"].to_string()));
    out += &format!("rsid\t{}\n", col(&|v| s(&v["rsid"])));
    out += &format!("ref\t{}\n", col(&|v| s(&v["ref"])));
    out += &format!(
        "alts\t{}\n",
        col(&|v| {
            let alts: Vec<String> = v["alts"].as_array().into_iter().flatten().map(s).collect();
            alts.join(",")
        })
    );
    for a in json["namedAlleles"].as_array()? {
        let key = if a["reference"].as_bool() == Some(true) {
            "reference"
        } else {
            "allele"
        };
        let cells: Vec<String> = a["alleles"].as_array()?.iter().map(s).collect();
        out += &format!("{key}\t{}\t{}\n", s(&a["name"]), cells.join("\t"));
    }
    let gene = match parse_definitions(&out) {
        Ok(g) => g,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    match DefinitionSet::new(vec![gene]) {
        Ok(d) => Some(d),
        Err(e) => panic!("{e}"),
    }
}

/// PharmCAT's NamedAlleleMatcherTest expectations in combination mode.
#[test]
fn pharmcat_combination_vcfs() {
    let Some(dir) = smr_testdata::shared("reference/pgx/pharmcat/test-vcfs") else {
        return;
    };
    let cases: [(&str, &str, Gene, &str); 9] = [
        ("combination", "combinationBaseline", Gene::Ugt1a1, "*1/*1"),
        (
            "combination",
            "combinationPhased",
            Gene::Ugt1a1,
            "*1/[*6 + *27 + *28 + *80]",
        ),
        (
            "combination",
            "combinationUnphased",
            Gene::Ugt1a1,
            "*1/[*6 + *27 + *28 + *80]",
        ),
        (
            "combination",
            "partialWithCombination",
            Gene::Ugt1a1,
            "*1/[*6 + *28 + g.233760973C>T]",
        ),
        (
            "combination",
            "partial",
            Gene::Ugt1a1,
            "*6/[*6 + g.233760973C>T]",
        ),
        (
            "cyp2b6",
            "combinationLongestScore",
            Gene::Cyp2b6,
            "*13/[*6 + *14]",
        ),
        (
            "cyp2b6",
            "partialReferenceUnphased",
            Gene::Cyp2b6,
            "*1/[*9 + g.41012316T>G]",
        ),
        (
            "cyp2b6",
            "partialReferencePhased",
            Gene::Cyp2b6,
            "*9/[g.41006968T>A + g.41012316T>G]",
        ),
        (
            "cyp2b6",
            "partialReferenceDouble",
            Gene::Cyp2b6,
            "g.41006968T>A/g.41006968T>A",
        ),
    ];
    let mut checked = 0;
    for (definition, vcf, gene, want) in cases {
        let defs = definition_from_pharmcat_json(
            &dir.join(format!("NamedAlleleMatcher-{definition}.json")),
        );
        let defs = defs.unwrap_or_else(|| panic!("{definition}: definition file unreadable"));
        let text = std::fs::read_to_string(dir.join(format!("NamedAlleleMatcher-{vcf}.vcf")))
            .unwrap_or_else(|e| panic!("{vcf}: {e}"));
        let combinations = CallOptions { combinations: true };
        let calls = match call_vcf_with(&text, &defs, &combinations) {
            Ok(c) => c,
            Err(e) => panic!("{vcf}: {e}"),
        };
        let Some(call) = calls[0].gene(gene) else {
            panic!("{vcf}: {gene} not called")
        };
        assert_eq!(call.diplotypes, [want], "{vcf}: {:?}", call.notes);
        assert_eq!(
            call.combination,
            want.contains("g.") || want.contains('['),
            "{vcf}"
        );
        if call.combination {
            let interp = call
                .interpret_top()
                .map(|i| i.phenotype.as_str().to_string());
            assert_eq!(interp.as_deref(), Some("Indeterminate"), "{vcf}");
            // Default mode: the same sample is an explicit no-call naming the combination.
            let default = match call_vcf(&text, &defs) {
                Ok(c) => c,
                Err(e) => panic!("{vcf}: {e}"),
            };
            let Some(plain) = default[0].gene(gene) else {
                panic!("{vcf}: {gene} not called")
            };
            assert!(plain.is_no_call(), "{vcf}: {:?}", plain.diplotypes);
            assert!(
                plain
                    .notes
                    .iter()
                    .any(|n| n.starts_with("no call") && n.contains(want)),
                "{vcf}: {:?}",
                plain.notes
            );
        }
        checked += 1;
    }
    println!("PharmCAT combination VCFs: {checked}/9 reproduced");
}

fn dpyd_vcf(rows: &[(&str, &str, &str, &str)]) -> String {
    let mut v = String::from(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n",
    );
    for (pos, reference, alt, gt) in rows {
        v += &format!("chr1\t{pos}\t.\t{reference}\t{alt}\t.\tPASS\t.\tGT\t{gt}\n");
    }
    v
}

// DPYD variants (GRCh38): c.1905+1G>A (*2A) 97450058 C>T; c.1627A>G (*5) 97515839 T>C;
// c.85T>C (*9A) 97883329 A>G; c.2846A>T 97082391 T>A.

#[test]
fn dpyd_unphased_variants_are_listed_and_scored_by_the_two_lowest() {
    let vcf = dpyd_vcf(&[
        ("97450058", "C", "T", "0/1"),
        ("97515839", "T", "C", "0/1"),
        ("97082391", "T", "A", "0/1"),
    ]);
    let c = call_one(&vcf, Gene::Dpyd);
    assert_eq!(
        c.diplotypes,
        ["c.1627A>G (*5);c.1905+1G>A (*2A);c.2846A>T"],
        "{:?}",
        c.notes
    );
    assert!(!c.combination);
    let i = c
        .interpret_top()
        .map(|i| (i.phenotype.as_str().to_string(), i.activity_score));
    // *2A (0) + c.2846A>T (0.5), the two lowest-function variants: 0.5 is Poor. CPIC puts 0.5 in Poor.
    assert_eq!(
        i,
        Some(("Poor Metabolizer".to_string(), Some("0.5".to_string())))
    );
}

#[test]
fn dpyd_homozygous_and_single_variants() {
    let hom = call_one(&dpyd_vcf(&[("97082391", "T", "A", "1/1")]), Gene::Dpyd);
    assert_eq!(hom.diplotypes, ["c.2846A>T/c.2846A>T"]);
    let one = call_one(&dpyd_vcf(&[("97883329", "A", "G", "0/1")]), Gene::Dpyd);
    assert_eq!(one.diplotypes, ["Reference/c.85T>C (*9A)"]);
    // Two unphased heterozygous variants, one of them homozygous elsewhere.
    let two = call_one(
        &dpyd_vcf(&[("97450058", "C", "T", "0/1"), ("97883329", "A", "G", "0/1")]),
        Gene::Dpyd,
    );
    assert_eq!(two.diplotypes, ["c.85T>C (*9A);c.1905+1G>A (*2A)"]);
    assert!(two.notes.iter().any(|n| n.contains("without phase")));
}

#[test]
fn dpyd_phased_variants_in_cis_are_one_haplotype() {
    let c = call_one(
        &dpyd_vcf(&[("97450058", "C", "T", "0|1"), ("97082391", "T", "A", "0|1")]),
        Gene::Dpyd,
    );
    assert_eq!(
        c.diplotypes,
        ["Reference/c.1905+1G>A (*2A)+c.2846A>T"],
        "{:?}",
        c.notes
    );
    assert!(!c.combination);
    let p = c.interpret_top().map(|i| i.phenotype.as_str().to_string());
    // In cis the haplotype is as good as its worst variant (0): score 1.
    assert_eq!(p.as_deref(), Some("Intermediate Metabolizer"));
}
