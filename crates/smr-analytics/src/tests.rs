use proptest::prelude::*;
use smr_pgx::Gene;
use smr_sdc::{Cell, Rate};
use time::macros::date;

use super::*;
use crate::render::{ValueFormat, bar_chart, line_chart, table_csv};

const NOV: Month = Month {
    year: 2026,
    month: 11,
};

fn patient(practice: &str) -> PatientFacts {
    PatientFacts {
        practice: practice.into(),
        sub_icb: "99X0".into(),
        icb: "Q9X".into(),
        age_band: AgeBand::From40To64,
        sex: Sex::Female,
        ethnicity: EthnicGroup::White,
        imd_quintile: ImdQuintile::new(3),
        opted_out: false,
        prescriptions: vec![],
        genotypes: vec![],
        alerts: vec![],
        changes: vec![],
        admissions: vec![],
    }
}

fn on_clopidogrel(mut p: PatientFacts) -> PatientFacts {
    p.prescriptions.push(Prescription {
        date: date!(2026 - 11 - 10),
        drug: "clopidogrel".into(),
    });
    p
}

fn genotyped(mut p: PatientFacts, actionable: bool) -> PatientFacts {
    p.genotypes.push(GenotypeResult {
        date: date!(2026 - 10 - 02),
        gene: Gene::Cyp2c19,
        actionable_for: if actionable {
            vec!["clopidogrel".into()]
        } else {
            vec![]
        },
    });
    p
}

#[test]
fn months_parse_and_step_back() {
    let m: Month = "2026-01".parse().unwrap();
    assert_eq!(m.previous().to_string(), "2025-12");
    assert_eq!(
        m.end_exclusive(),
        Some(date!(2026 - 02 - 01)),
        "the month ends before the 1st of the next"
    );
    for bad in ["2026-13", "2026-1", "26-01", "2026/01", "x"] {
        assert!(bad.parse::<Month>().is_err(), "{bad}");
    }
}

#[test]
fn cpic_level_a_drugs_come_from_the_guideline_knowledge() {
    let drugs = CpicDrugs::level_a();
    assert!(drugs.genes("clopidogrel").unwrap().contains(&Gene::Cyp2c19));
    assert!(drugs.genes("codeine").unwrap().contains(&Gene::Cyp2d6));
    // Named in smr-pgx-guidelines' excluded list (not CPIC level A in SMR's data).
    assert!(drugs.genes("esomeprazole").is_none());
    assert!(drugs.genes("paracetamol").is_none());
}

#[test]
fn adoption_is_counted_per_patient_and_published_rounded() {
    // 20 on clopidogrel in November, 12 of them with a CYP2C19 result (5 actionable), plus a
    // patient on paracetamol only and 30 opted-out patients who would change everything.
    let mut ps: Vec<PatientFacts> = Vec::new();
    for i in 0..20 {
        let p = on_clopidogrel(patient("Y90001"));
        ps.push(if i < 12 { genotyped(p, i < 5) } else { p });
    }
    let mut other = patient("Y90001");
    other.prescriptions.push(Prescription {
        date: date!(2026 - 11 - 01),
        drug: "paracetamol".into(),
    });
    ps.push(other);
    for _ in 0..30 {
        let mut p = genotyped(on_clopidogrel(patient("Y90001")), true);
        p.opted_out = true;
        ps.push(p);
    }
    let agg = aggregate(&ps, NOV, CpicDrugs::level_a());
    assert_eq!(agg.opted_out, 30);
    let raw = agg.unit(Level::Practice, "Y90001").unwrap()[0].measures;
    assert_eq!(
        (raw[0].numerator, raw[0].denominator),
        (12, 20),
        "adoption: genotyped / prescribed"
    );
    assert_eq!(
        (raw[1].numerator, raw[1].denominator),
        (5, 12),
        "actionable / genotyped"
    );

    let r = publish_measure(&agg, Measure::PgxAdoption, Level::Practice).unwrap();
    // 12 → 10, 8 → 10, the denominator from the rounded cells: 20.
    assert_eq!(
        r.table.cells,
        vec![vec![Cell::Published(10), Cell::Published(10)]]
    );
    assert_eq!(r.table.row_totals, Some(vec![Cell::Published(20)]));
    assert_eq!(r.rates[0].rate, Rate::Published(0.5));
    // No November prescriptions in October: nothing to compare with.
    assert_eq!(r.previous_overall, Rate::NoDenominator);

    // 5 actionable of 12: primary redaction, and the 7 not actionable too; the rate goes.
    let a = publish_measure(&agg, Measure::ActionableResults, Level::Practice).unwrap();
    assert!(a.table.cells[0].iter().all(|c| c.is_redacted()));
    assert_eq!(a.rates[0].rate, Rate::Redacted);
}

#[test]
fn a_unit_with_one_small_cell_among_others_gets_secondary_suppression() {
    let mut ps = Vec::new();
    for (practice, prescribed, genotyped_n) in
        [("Y90001", 40, 3), ("Y90002", 50, 30), ("Y90003", 60, 30)]
    {
        for i in 0..prescribed {
            let p = on_clopidogrel(patient(practice));
            ps.push(if i < genotyped_n {
                genotyped(p, false)
            } else {
                p
            });
        }
    }
    let agg = aggregate(&ps, NOV, CpicDrugs::level_a());
    let r = publish_measure(&agg, Measure::PgxAdoption, Level::Practice).unwrap();
    assert_eq!(
        r.table.cells[0][0],
        Cell::Redacted(smr_sdc::Reason::Primary)
    );
    assert!(!smr_sdc::recoverable(&r.table));
    let redacted = r
        .table
        .cells
        .iter()
        .flatten()
        .filter(|c| c.is_redacted())
        .count();
    assert!(redacted >= 4, "a rectangle at least: {:?}", r.table.cells);
}

#[test]
fn equity_gap_and_its_trend_come_from_published_rates() {
    // Q1: 40 prescribed, 10 genotyped; Q5: 40 prescribed, 30 genotyped, in November.
    // In October: Q1 40/0, Q5 40/40 (a wider gap), so the gap is narrowing.
    let mut ps = Vec::new();
    for (q, genotyped_now, genotyped_before) in [(1u8, 10, 0), (5u8, 30, 40)] {
        for i in 0..40 {
            let mut p = patient("Y90001");
            p.imd_quintile = ImdQuintile::new(q);
            p.prescriptions.push(Prescription {
                date: date!(2026 - 11 - 10),
                drug: "clopidogrel".into(),
            });
            p.prescriptions.push(Prescription {
                date: date!(2026 - 10 - 10),
                drug: "clopidogrel".into(),
            });
            if i < genotyped_before {
                p.genotypes.push(GenotypeResult {
                    date: date!(2026 - 09 - 01),
                    gene: Gene::Cyp2c19,
                    actionable_for: vec![],
                });
            } else if i < genotyped_now {
                p.genotypes.push(GenotypeResult {
                    date: date!(2026 - 11 - 01),
                    gene: Gene::Cyp2c19,
                    actionable_for: vec![],
                });
            }
            ps.push(p);
        }
    }
    let agg = aggregate(&ps, NOV, CpicDrugs::level_a());
    let e = publish_equity(
        &agg,
        Measure::PgxAdoption,
        Level::Icb,
        "Q9X",
        Dimension::Imd,
    )
    .unwrap();
    assert_eq!(e.rates[0].rate, Rate::Published(0.25));
    assert_eq!(e.rates[4].rate, Rate::Published(1.0), "Q5 40/40 now too");
    assert_eq!(e.gap.best.as_deref(), Some("IMD Q5 (least deprived)"));
    assert_eq!(e.gap.worst.as_deref(), Some("IMD Q1 (most deprived)"));
    assert_eq!(e.gap.gap, Some(0.75));
    assert_eq!(e.gap.previous_gap, Some(1.0));
    assert_eq!(e.gap.trend, Trend::Narrowing);
}

#[test]
fn median_days_result_to_change_needs_more_than_seven_patients() {
    let mut ps = Vec::new();
    for i in 0..9u8 {
        let mut p = genotyped(on_clopidogrel(patient("Y90001")), true);
        p.changes.push(PrescribingChange {
            date: date!(2026 - 11 - 01).replace_day(1 + i).unwrap(),
            drug: "clopidogrel".into(),
        });
        ps.push(p);
    }
    // A practice with 8 (whose count is suppressed so the next one cannot be recovered from
    // the total) and one with 3: both medians are withheld.
    for _ in 0..8 {
        let mut p = genotyped(on_clopidogrel(patient("Y90003")), true);
        p.changes.push(PrescribingChange {
            date: date!(2026 - 11 - 20),
            drug: "clopidogrel".into(),
        });
        ps.push(p);
    }
    for _ in 0..3 {
        let mut p = genotyped(on_clopidogrel(patient("Y90002")), true);
        p.changes.push(PrescribingChange {
            date: date!(2026 - 11 - 20),
            drug: "clopidogrel".into(),
        });
        ps.push(p);
    }
    let agg = aggregate(&ps, NOV, CpicDrugs::level_a());
    let d = publish_delays(&agg, Level::Practice).unwrap();
    // Result 2 October; changes 1–9 November: 30..=38 days, median 34.
    assert_eq!(d.medians[0].median_days, Some(34.0));
    assert_eq!(d.medians[1].median_days, None);
    assert_eq!(
        d.table.cells[1][0],
        Cell::Redacted(smr_sdc::Reason::Primary)
    );
    assert_eq!(d.medians[2].median_days, None);
    assert_eq!(
        d.table.cells[2][0],
        Cell::Redacted(smr_sdc::Reason::Secondary)
    );
}

#[test]
fn override_reasons_are_a_disclosure_controlled_one_way_table() {
    let mut ps = Vec::new();
    for i in 0..30 {
        let mut p = patient("Y90001");
        p.alerts.push(Alert {
            date: date!(2026 - 11 - 03),
            feedback: Some(Feedback::Overridden {
                reason: Some(if i < 25 { "sys|a" } else { "sys|b" }.into()),
            }),
        });
        ps.push(p);
    }
    let agg = aggregate(&ps, NOV, CpicDrugs::level_a());
    let r = publish_override_reasons(&agg, Level::Practice, "Y90001").unwrap();
    assert_eq!(r.table.row_labels, vec!["sys|a", "sys|b"]);
    // b has 5: redacted, and a must go too (the total would give it away), or the total.
    assert!(r.table.cells[1][0].is_redacted());
    assert!(!smr_sdc::recoverable(&r.table));
    let o = publish_measure(&agg, Measure::AlertOverride, Level::Practice).unwrap();
    assert_eq!(o.rates[0].rate, Rate::Published(1.0));
}

#[test]
fn value_estimate_uses_published_counts_and_cited_parameters() {
    let mut ps = Vec::new();
    for i in 0..20 {
        let mut p = genotyped(on_clopidogrel(patient("Y90001")), true);
        if i < 10 {
            p.admissions.push(date!(2026 - 11 - 15));
        }
        ps.push(p);
    }
    let agg = aggregate(&ps, NOV, CpicDrugs::level_a());
    let model = ValueModel::cited().unwrap();
    assert!(model.parameters.values().all(|p| !p.source.is_empty()));
    let params = model.parameters();
    let v = estimate_value(&agg, Level::Practice, "Y90001", &params).unwrap();
    assert_eq!(v.guided_patients, Cell::Published(20));
    assert_eq!(v.admissions_of_guided_patients, Cell::Published(10));
    let adrs = v.adrs_avoided.unwrap();
    assert!((adrs.central - 20.0 * 0.277 * 0.30).abs() < 1e-9);
    assert!(adrs.low <= adrs.central && adrs.central <= adrs.high);
    let cost = v.cost_avoided_gbp.unwrap();
    assert!((cost.central - 10.0 * 0.065 * 0.30 * 8.0 * 901.0).abs() < 1e-6);

    // Overridden parameters are used and named.
    let mut mine = model.parameters();
    mine.set(
        "cost_per_bed_day_gbp",
        Range {
            low: 100.0,
            central: 100.0,
            high: 100.0,
        },
    )
    .unwrap();
    let v2 = estimate_value(&agg, Level::Practice, "Y90001", &mine).unwrap();
    assert!(
        (v2.cost_avoided_gbp.unwrap().central - 10.0 * 0.065 * 0.30 * 8.0 * 100.0).abs() < 1e-6
    );
    assert_eq!(v2.parameters.overridden, vec!["cost_per_bed_day_gbp"]);
    assert!(
        mine.set(
            "made_up",
            Range {
                low: 0.0,
                central: 0.0,
                high: 0.0
            }
        )
        .is_err()
    );
    assert!(
        mine.set(
            "relative_adr_reduction",
            Range {
                low: 0.5,
                central: 0.3,
                high: 0.9
            }
        )
        .is_err(),
        "out of order"
    );

    // A small population: the inputs are redacted, so is the estimate.
    let few: Vec<PatientFacts> = ps.into_iter().take(5).collect();
    let agg = aggregate(&few, NOV, CpicDrugs::level_a());
    let v = estimate_value(&agg, Level::Practice, "Y90001", &params).unwrap();
    assert!(v.guided_patients.is_redacted());
    assert_eq!(v.adrs_avoided, None);
    assert_eq!(v.cost_avoided_gbp, None);
}

#[test]
fn unknown_units_and_empty_levels_are_errors() {
    let agg = aggregate(&[], NOV, CpicDrugs::level_a());
    assert!(matches!(
        publish_measure(&agg, Measure::PgxAdoption, Level::Icb),
        Err(AnalyticsError::NoData { .. })
    ));
    assert!(matches!(
        publish_equity(
            &agg,
            Measure::PgxAdoption,
            Level::Icb,
            "Q9Z",
            Dimension::Sex
        ),
        Err(AnalyticsError::UnknownUnit { .. })
    ));
}

#[test]
fn charts_are_accessible_svg_without_script_and_escape_labels() {
    let svg = bar_chart(
        "adoption",
        "PGx adoption by IMD quintile",
        "Share of patients on a CPIC level A drug with a relevant genotype",
        &[
            ("Q1 <script>".into(), Some(0.25)),
            ("Q2".into(), None),
            ("Q5".into(), Some(0.75)),
        ],
        ValueFormat::Percent,
    );
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains(r#"role="img""#));
    assert!(svg.contains(r#"<title id="adoption-title">PGx adoption by IMD quintile</title>"#));
    assert!(svg.contains("<desc id=\"adoption-desc\">"));
    assert!(svg.contains("25.0%") && svg.contains("75.0%"));
    assert!(svg.contains("redacted"));
    assert!(!svg.contains("<script"), "labels are escaped");
    let line = line_chart(
        "trend",
        "Adoption by month",
        "Monthly adoption",
        &["2026-10".into(), "2026-11".into(), "2026-12".into()],
        &[("Q9X".into(), vec![Some(0.2), None, Some(0.4)])],
        ValueFormat::Percent,
    );
    assert!(line.contains("<title id=\"trend-title\">"));
    assert!(line.contains("redacted"));
    assert!(
        !line.contains("<polyline"),
        "a redacted month breaks the line"
    );
    assert!(line.contains("40.0%"));
}

#[test]
fn csv_marks_redactions_and_defuses_formulas() {
    let t = smr_sdc::publish(
        &smr_sdc::Table::one_way(
            "patients",
            vec![("=cmd".into(), 40), ("b, c".into(), 3), ("d".into(), 50)],
        )
        .unwrap(),
    );
    let csv = table_csv("group", &t);
    assert_eq!(
        csv,
        "group,patients\r\n'=cmd,[REDACTED]\r\n\"b, c\",[REDACTED]\r\nd,50\r\nTotal,95\r\n"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the population, every published count is a multiple of 5 and never from 1–7
    /// patients, no redacted cell is recoverable, and rates exist only from published cells.
    #[test]
    fn published_measures_are_disclosure_safe(n in 0usize..4000, seed in any::<u64>()) {
        let ps = synthetic::population(n, seed, NOV);
        let agg = aggregate(&ps, NOV, CpicDrugs::level_a());
        for level in Level::ALL {
            for m in Measure::ALL {
                let Ok(r) = publish_measure(&agg, m, level) else { continue };
                prop_assert!(!smr_sdc::recoverable(&r.table));
                for (_, _, c) in r.table.entries() {
                    if let Cell::Published(v) = c { prop_assert_eq!(v % 5, 0); }
                }
                for (i, rate) in r.rates.iter().enumerate() {
                    if rate.rate.value().is_some() {
                        prop_assert!(!r.table.cells[i][0].is_redacted());
                        prop_assert!(!r.table.row_totals.as_ref().unwrap()[i].is_redacted());
                    }
                }
            }
        }
    }
}

#[test]
fn a_split_of_an_outside_measure_is_published_with_its_gap_and_trend() {
    // By sex (female, male, other, unknown): 20 of 40 women flagged, 10 of 40 men, nobody
    // else; the month before 10 of 40 and 10 of 40.
    let now = [(20, 40), (10, 40), (0, 0), (0, 0)];
    let before = [(10, 40), (10, 40), (0, 0), (0, 0)];
    let r = publish_split(
        "PINCER a",
        Dimension::Sex,
        ["flagged", "not flagged"],
        &now,
        &before,
        false,
    )
    .expect("published");
    assert_eq!(r.table.cell(0, 0), Cell::Published(20));
    assert_eq!(r.rates[0].rate, Rate::Published(0.5));
    assert_eq!(r.rates[2].rate, Rate::NoDenominator);
    // Lower is better: men best, women worst, 25 points apart; the month before none.
    assert_eq!(r.gap.best.as_deref(), Some("male"));
    assert_eq!(r.gap.worst.as_deref(), Some("female"));
    assert!((r.gap.gap.unwrap_or_default() - 0.25).abs() < 1e-9);
    assert_eq!(r.gap.previous_gap, Some(0.0));
    assert_eq!(r.gap.trend, Trend::Widening);
}

#[test]
fn a_small_group_in_a_split_is_withheld_and_cannot_be_recovered() {
    // 3 of 5 "other": withheld, and enough else with it that no total gives it back.
    let r = publish_split(
        "PINCER a",
        Dimension::Sex,
        ["flagged", "not flagged"],
        &[(20, 40), (10, 40), (3, 5), (0, 0)],
        &[],
        false,
    )
    .expect("published");
    assert!(r.table.cell(2, 0).is_redacted(), "{:?}", r.table);
    assert!(r.table.cell(2, 1).is_redacted(), "{:?}", r.table);
    assert_eq!(r.rates[2].rate, Rate::Redacted);
}
