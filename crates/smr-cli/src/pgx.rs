//! `smr pgx …`: pharmacogenomics from the command line. OWNER: pgx helper.
//!
//! - `smr pgx kb`: what the knowledge base holds (genes, guidelines, dm+d subset).
//! - `smr pgx interpret --outside-calls FILE [--drug NAME]… [--format json|text]`:
//!   phenotypes for each gene of a PharmCAT outside-call file and the guideline
//!   recommendations for each drug.
//! - `smr pgx call --vcf FILE [--definitions DIR] [--combinations] [--format json|text]`:
//!   named-allele calling from a GRCh38 VCF, with each call's phenotype and what the data
//!   could not show.
//! - `smr pgx compare --pharmcat DIR|FILE [--format json|text]`: every difference between
//!   SMR's allele tables and a PharmCAT data release's `phenotypes/GENE.json` files (exit
//!   status 1 when there is any), run before a table is brought to a new release.

use std::borrow::Cow;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};
use smr_dmd::Identified;
use smr_pgx::{Gene, Interpretation, OutsideCall, Phenotype};
use smr_pgx_guidelines::Action;

/// Pharmacogenomics: knowledge base, interpretation, VCF calling.
#[derive(Debug, clap::Args)]
pub struct PgxArgs {
    #[command(subcommand)]
    pub command: PgxCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PgxCommand {
    /// Print what the knowledge base holds and the versions of its sources.
    Kb,
    /// Interpret an outside-call file and give guideline recommendations.
    Interpret(InterpretArgs),
    /// Call diplotypes from a GRCh38 VCF (SNV/indel-defined genes).
    Call(CallArgs),
    /// List every difference between SMR's tables and a PharmCAT data release.
    Compare(CompareArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// A PharmCAT data directory (its `phenotypes/` is read), a `phenotypes/` directory,
    /// or one `GENE.json` phenotype file.
    #[arg(long)]
    pub pharmcat: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// Single- or multi-sample VCF 4.x on GRCh38.
    #[arg(long)]
    pub vcf: PathBuf,
    /// Directory of allele definition files in SMR's format (`GENE.tsv`) to use instead of
    /// the built-in ones.
    #[arg(long)]
    pub definitions: Option<PathBuf>,
    /// Where no pair of named alleles fits, report PharmCAT-style combination and partial
    /// haplotypes (e.g. `*1/[*6 + *80]`) instead of a no-call. Such calls have no CPIC
    /// phenotype (it is reported as indeterminate); off by default, as in PharmCAT.
    #[arg(long)]
    pub combinations: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct InterpretArgs {
    /// PharmCAT outside-call TSV: gene, diplotype, phenotype, activity score.
    #[arg(long)]
    pub outside_calls: PathBuf,
    /// Drug to assess (name, brand or product text); repeatable. Without it, every
    /// drug with guidance for a tested gene is assessed.
    #[arg(long = "drug")]
    pub drugs: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Text,
}

pub fn run(args: PgxArgs) -> anyhow::Result<()> {
    match args.command {
        PgxCommand::Kb => {
            print!("{}", kb_text());
            Ok(())
        }
        PgxCommand::Call(a) => {
            let out = call(&a)?;
            match a.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&out)?),
                Format::Text => print!("{}", call_text(&out)),
            }
            Ok(())
        }
        PgxCommand::Compare(a) => {
            let results = compare(&a.pharmcat)?;
            match a.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
                Format::Text => print!("{}", compare_text(&results)),
            }
            // A difference is what the maintainer must act on; scripts and CI see it
            // in the exit status.
            if results.iter().any(|c| !c.differences.is_empty()) {
                std::process::exit(1);
            }
            Ok(())
        }
        PgxCommand::Interpret(a) => {
            let out = interpret(&a)?;
            match a.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&out)?),
                Format::Text => print!("{}", report_text(&out)),
            }
            Ok(())
        }
    }
}

fn kb_text() -> String {
    let mut s = String::new();
    s.push_str("Genes (genotype → phenotype, smr-pgx)\n");
    for e in smr_pgx::kb_versions() {
        s.push_str(&format!(
            "  {:<8} model {:<15} alleles {:>4}  {} — release {}\n           read from: {}\n",
            e.gene.symbol(),
            e.model,
            e.alleles,
            e.source,
            e.release,
            e.source_file
        ));
    }
    let (title, guidelines) = smr_pgx_guidelines::kb_versions();
    match title {
        Some((t, v)) => {
            let count = |label: &str| {
                guidelines
                    .iter()
                    .filter(|g| g.verification.label() == label)
                    .count()
            };
            s.push_str(&format!(
                "\nGuidelines: {t}, data version {v}\n  transcription checked against the published source: \
                 {} verified, {} partly verified, {} unverified\n",
                count("verified"),
                count("partly verified"),
                count("unverified")
            ));
        }
        None => s.push_str("\nGuidelines: data file could not be loaded\n"),
    }
    for g in &guidelines {
        let genes: Vec<&str> = g.genes.iter().map(|g| g.symbol()).collect();
        s.push_str(&format!(
            "  [{:?}] {:<15} {} ({})\n      genes: {}; drugs: {}\n      {}\n      verification: {}\n",
            g.source_body,
            g.verification.label().to_uppercase(),
            g.name,
            g.version,
            genes.join(", "),
            g.drugs.join(", "),
            g.url,
            g.verification.detail()
        ));
    }
    for n in smr_pgx_guidelines::data_notes() {
        s.push_str(&format!("  note: {n}\n"));
    }
    match (
        smr_cds::uk_guidance::release(),
        smr_cds::uk_guidance::guidance(),
    ) {
        (Ok((release, notes)), Ok(all)) => {
            s.push_str(&format!("\nUK testing guidance ({release})\n"));
            for g in all {
                s.push_str(&format!(
                    "  {:<8} before {}: {}\n      applies to {}\n      {}\n",
                    g.gene.symbol(),
                    g.drugs.join(", "),
                    g.reference,
                    g.applies_to.description,
                    g.url
                ));
            }
            for n in notes {
                s.push_str(&format!("  note: {n}\n"));
            }
        }
        (Err(e), _) | (_, Err(e)) => s.push_str(&format!("\nUK testing guidance: {e}\n")),
    }
    s.push_str("\nCPIC level A pairs not covered\n");
    for e in smr_pgx_guidelines::excluded() {
        s.push_str(&format!(
            "  {} / {}: {}\n",
            e.genes.join(", "),
            e.drugs.join(", "),
            e.reason
        ));
    }
    match smr_dmd::info() {
        Some(d) => {
            s.push_str(&format!(
                "\nDrug dictionary: {}\n  {} ingredients ({} with VTM code), {} VMPs, {} AMPs\n  release: {}\n",
                d.title, d.ingredients, d.ingredients_with_vtm, d.vmps, d.amps, d.release
            ));
            for n in d.notes {
                s.push_str(&format!("  note: {n}\n"));
            }
        }
        None => s.push_str("\nDrug dictionary: data file could not be loaded\n"),
    }
    s
}

/// Reads the release's phenotype files and compares each with SMR's table. Files for
/// genes SMR does not carry (CFTR, F5, ...) are skipped with a note on stderr.
fn compare(path: &std::path::Path) -> anyhow::Result<Vec<smr_pgx::Comparison>> {
    let files: Vec<PathBuf> = if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        let dir = if path.join("phenotypes").is_dir() {
            path.join("phenotypes")
        } else {
            path.to_path_buf()
        };
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        v.sort();
        v
    };
    let mut out = Vec::new();
    for file in files {
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let Some(gene) = smr_pgx::compare::gene_of_release_file(stem) else {
            eprintln!("skipping {}: not a gene SMR carries", file.display());
            continue;
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        out.push(
            smr_pgx::compare_with_pharmcat(gene, &text)
                .with_context(|| format!("comparing {}", file.display()))?,
        );
    }
    anyhow::ensure!(
        !out.is_empty(),
        "no phenotype files for SMR's genes in {}",
        path.display()
    );
    Ok(out)
}

fn compare_text(results: &[smr_pgx::Comparison]) -> String {
    let mut s = String::new();
    for c in results {
        let smr = smr_pgx::kb_versions()
            .into_iter()
            .find(|e| e.gene == c.gene)
            .map(|e| e.release)
            .unwrap_or("(not loaded)");
        s.push_str(&format!(
            "{}: release {} ({} alleles, {} diplotypes) vs SMR {}: {}\n",
            c.gene,
            c.release.as_deref().unwrap_or("(no version field)"),
            c.alleles,
            c.diplotypes,
            smr,
            if c.differences.is_empty() {
                "no differences".to_string()
            } else {
                format!("{} differences", c.differences.len())
            }
        ));
        for d in &c.differences {
            s.push_str(&format!("  {d}\n"));
        }
    }
    s
}

/// An outside call as an interpretation: the diplotype is interpreted when given;
/// otherwise the lab's phenotype and activity score are taken as reported.
fn to_interpretation(call: &OutsideCall) -> Interpretation {
    if let Some(d) = &call.diplotype {
        return smr_pgx::interpret(call.gene, d);
    }
    let phenotype = match &call.phenotype {
        Some(p) => Phenotype::Called(Cow::Owned(p.clone())),
        None => Phenotype::Indeterminate {
            reason: format!(
                "only an activity score was given for {}; rules keyed by phenotype cannot be applied",
                call.gene
            ),
        },
    };
    let lookup_key = call
        .activity_score
        .clone()
        .unwrap_or_else(|| phenotype.as_str().to_string());
    Interpretation {
        gene: call.gene,
        diplotype: String::new(),
        phenotype,
        activity_score: call.activity_score.clone(),
        lookup_key,
    }
}

fn interpret(a: &InterpretArgs) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(&a.outside_calls)
        .with_context(|| format!("reading {}", a.outside_calls.display()))?;
    let calls = smr_pgx::parse_outside_calls(&text).map_err(|e| {
        let lines: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{} is not a valid outside-call file:\n{}",
            a.outside_calls.display(),
            lines.join("\n")
        )
    })?;
    let interps: Vec<Interpretation> = calls.iter().map(to_interpretation).collect();
    let genes: Vec<Value> = interps
        .iter()
        .map(|i| {
            let mut g = json!({
                "gene": i.gene.symbol(),
                "diplotype": (!i.diplotype.is_empty()).then_some(i.diplotype.as_str()),
                "phenotype": i.phenotype.as_str(),
                "activity_score": i.activity_score,
            });
            if let Phenotype::Indeterminate { reason } = &i.phenotype {
                g["reason"] = json!(reason);
            }
            g
        })
        .collect();

    let mut drugs = Vec::new();
    if a.drugs.is_empty() {
        let tested: Vec<Gene> = interps.iter().map(|i| i.gene).collect();
        let mut names: Vec<&str> = tested
            .iter()
            .flat_map(|g| smr_pgx_guidelines::drugs_for_gene(*g))
            .collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            drugs.push(drug_entry(n, None, &interps));
        }
    } else {
        for input in &a.drugs {
            match smr_dmd::identify(&[], Some(input)) {
                Identified::Unknown { reason } => drugs.push(json!({
                    "drug": input,
                    "identified": false,
                    "reason": reason,
                    "recommendations": [],
                })),
                found => {
                    for n in found.ingredient_names() {
                        drugs.push(drug_entry(n, Some(input), &interps));
                    }
                }
            }
        }
    }
    Ok(json!({ "genes": genes, "drugs": drugs }))
}

fn drug_entry(name: &str, input: Option<&str>, interps: &[Interpretation]) -> Value {
    // Each assessment citing a guideline also carries that guideline's verification at the
    // top level, where a reader of the recommendation cannot miss it.
    let assessments: Vec<Value> = smr_pgx_guidelines::recommend(name, interps)
        .iter()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
            if let Some(verification) = v.pointer("/guideline/verification").cloned() {
                v["verification"] = verification;
            }
            v
        })
        .collect();
    let mut v = json!({
        "drug": name,
        "identified": true,
        "recommendations": assessments,
    });
    if let Some(i) = input
        && !i.eq_ignore_ascii_case(name)
    {
        v["input"] = json!(i);
    }
    v
}

fn report_text(out: &Value) -> String {
    let mut s = String::from("Genotypes\n");
    for g in out["genes"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  {:<8} {:<24} {}{}\n",
            g["gene"].as_str().unwrap_or(""),
            g["diplotype"].as_str().unwrap_or("-"),
            g["phenotype"].as_str().unwrap_or(""),
            g["activity_score"]
                .as_str()
                .map(|a| format!(" (activity score {a})"))
                .unwrap_or_default()
        ));
        if let Some(r) = g["reason"].as_str() {
            s.push_str(&format!("           {r}\n"));
        }
    }
    s.push_str("\nDrugs\n");
    for d in out["drugs"].as_array().into_iter().flatten() {
        let name = d["drug"].as_str().unwrap_or("");
        if d["identified"] == Value::Bool(false) {
            s.push_str(&format!(
                "  {name}: not identified — {}\n",
                d["reason"].as_str().unwrap_or("")
            ));
            continue;
        }
        s.push_str(&format!("  {name}\n"));
        // Rendered from the JSON so text and JSON output cannot disagree.
        for a in d["recommendations"].as_array().into_iter().flatten() {
            s.push_str(&assessment_text(a));
        }
    }
    s
}

/// The caveat line for an assessment whose guideline transcription is not verified (empty
/// when it is verified or cites no guideline).
fn verification_text(a: &Value) -> String {
    let v = &a["verification"];
    match v["status"].as_str() {
        None | Some("verified") => String::new(),
        Some(status) => format!(
            "      CAUTION: guideline transcription {}: SMR's transcription of this guideline table has not yet \
             been checked against the published source; confirm with the guideline before acting. ({})\n",
            if status == "partly" {
                "partly verified"
            } else {
                status
            },
            v["note"].as_str().unwrap_or("")
        ),
    }
}

fn assessment_text(a: &Value) -> String {
    let cite = |a: &Value| {
        format!(
            "{}, {}",
            a["guideline"]["name"].as_str().unwrap_or(""),
            a["guideline"]["table"].as_str().unwrap_or("")
        )
    };
    let caveat = verification_text(a);
    match a["status"].as_str() {
        Some("recommendation") => {
            let action = serde_json::from_value::<Action>(a["action"].clone())
                .map(|x| action_text(&x))
                .unwrap_or_default();
            let alts: Vec<&str> = a["alternatives"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            // The caveat comes straight after the recommendation it qualifies.
            let mut s = format!(
                "    {} [{}]: {}\n{caveat}      {}\n",
                action,
                a["classification"].as_str().unwrap_or(""),
                a["recommendation"].as_str().unwrap_or(""),
                a["implication"].as_str().unwrap_or("")
            );
            if !alts.is_empty() {
                s.push_str(&format!("      alternatives: {}\n", alts.join(", ")));
            }
            s.push_str(&format!("      source: {}\n", cite(a)));
            s
        }
        Some("indeterminate") => format!(
            "    cannot assess ({}): {}\n      source: {}\n{caveat}",
            a["gene"].as_str().unwrap_or(""),
            a["reason"].as_str().unwrap_or(""),
            cite(a)
        ),
        Some("no_genotype") => {
            let genes: Vec<&str> = a["genes_needed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "    not tested: {} (needed by {})\n",
                genes.join(", "),
                cite(a)
            )
        }
        _ => "    no pharmacogenomic guidance for this drug\n".to_string(),
    }
}

fn action_text(a: &Action) -> String {
    match a {
        Action::Avoid => "AVOID".into(),
        Action::Alternative => "USE ALTERNATIVE".into(),
        Action::DoseChange { text, .. } => format!("DOSE CHANGE ({text})"),
        Action::Standard => "STANDARD DOSING".into(),
        Action::Monitor { text } => format!("MONITOR ({text})"),
    }
}

/// Calls every sample of the VCF and adds each call's phenotype.
fn call(args: &CallArgs) -> anyhow::Result<Value> {
    let vcf = std::fs::read_to_string(&args.vcf)
        .with_context(|| format!("reading {}", args.vcf.display()))?;
    let owned;
    let definitions = match &args.definitions {
        Some(dir) => {
            let mut texts = Vec::new();
            let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "tsv"))
                .collect();
            paths.sort();
            for path in &paths {
                texts.push(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?,
                );
            }
            anyhow::ensure!(
                !texts.is_empty(),
                "no GENE.tsv definition files in {}",
                dir.display()
            );
            owned = smr_pgx::vcf::DefinitionSet::parse(texts.iter().map(String::as_str))
                .context("reading allele definitions")?;
            &owned
        }
        None => smr_pgx::vcf::DefinitionSet::builtin().context("built-in allele definitions")?,
    };
    let options = smr_pgx::vcf::CallOptions {
        combinations: args.combinations,
    };
    let samples = smr_pgx::vcf::call_vcf_with(&vcf, definitions, &options)
        .with_context(|| format!("calling {}", args.vcf.display()))?;
    let samples: Vec<Value> = samples
        .iter()
        .map(|sample| {
            let genes: Vec<Value> = sample
                .genes
                .iter()
                .map(|call| {
                    let mut v = serde_json::to_value(call).unwrap_or(Value::Null);
                    let (phenotype, score, reason) = match call.interpret_top() {
                        Some(i) => match &i.phenotype {
                            Phenotype::Indeterminate { reason } => {
                                (Value::Null, i.activity_score.clone(), Some(reason.clone()))
                            }
                            p => (json!(p.as_str()), i.activity_score.clone(), None),
                        },
                        None => (Value::Null, None, Some("no call: see notes".to_owned())),
                    };
                    v["phenotype"] = phenotype;
                    v["activity_score"] = json!(score);
                    if let Some(reason) = reason {
                        v["indeterminate_reason"] = json!(reason);
                    }
                    v
                })
                .collect();
            json!({"sample": sample.sample, "genes": genes})
        })
        .collect();
    Ok(json!({"samples": samples}))
}

fn call_text(out: &Value) -> String {
    let mut s = String::new();
    for sample in out["samples"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "Sample {}\n",
            sample["sample"].as_str().unwrap_or("?")
        ));
        for g in sample["genes"].as_array().into_iter().flatten() {
            let diplotypes: Vec<&str> = g["diplotypes"]
                .as_array()
                .map(|d| d.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let call = if diplotypes.is_empty() {
                "no call".to_owned()
            } else {
                diplotypes.join(" or ")
            };
            let phenotype = g["phenotype"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    g["indeterminate_reason"]
                        .as_str()
                        .map(|r| format!("indeterminate ({r})"))
                })
                .unwrap_or_default();
            s.push_str(&format!(
                "  {:<8} {:<28} {}  [{}/{} positions{}]\n",
                g["gene"].as_str().unwrap_or("?"),
                call,
                phenotype,
                g["matched_positions"],
                g["total_positions"],
                if g["partial"] == true {
                    ", partial"
                } else {
                    ""
                },
            ));
        }
    }
    s
}
