use proptest::prelude::*;

use super::*;

fn labels(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn table(cells: Vec<Vec<u64>>, margins: Margins) -> Table {
    let (r, c) = (cells.len(), cells[0].len());
    Table::new(labels("r", r), labels("c", c), cells, margins).expect("well-formed table")
}

const P: Cell = Cell::Redacted(Reason::Primary);
const S: Cell = Cell::Redacted(Reason::Secondary);

#[test]
fn rounding_is_to_the_nearest_five_halves_up() {
    let cases = [
        (0, 0),
        (8, 10),
        (12, 10),
        (13, 15),
        (22, 20),
        (23, 25),
        (100, 100),
    ];
    for (n, want) in cases {
        assert_eq!(round(n), want, "round({n})");
    }
}

#[test]
fn a_lone_count_of_one_to_seven_is_redacted_and_zero_is_published() {
    assert_eq!(publish_count(0), Cell::Published(0));
    assert_eq!(publish_count(1), P);
    assert_eq!(publish_count(7), P);
    assert_eq!(publish_count(8), Cell::Published(10));
    assert_eq!(publish_count(1234), Cell::Published(1235));
}

#[test]
fn one_way_breakdown_suppresses_the_next_smallest_cell() {
    // Patients by IMD quintile: Q2 has 5, so Q3 (42, the next smallest) goes too; the total is
    // the sum of the rounded values 120 + 5 + 40 + 95 + 60.
    let t = Table::one_way(
        "patients",
        vec![
            ("Q1".into(), 120),
            ("Q2".into(), 5),
            ("Q3".into(), 42),
            ("Q4".into(), 97),
            ("Q5".into(), 60),
        ],
    )
    .unwrap();
    let p = publish(&t);
    let column: Vec<Cell> = p.cells.iter().map(|r| r[0]).collect();
    assert_eq!(
        column,
        vec![
            Cell::Published(120),
            P,
            S,
            Cell::Published(95),
            Cell::Published(60)
        ]
    );
    assert_eq!(p.column_totals, Some(vec![Cell::Published(320)]));
    assert!(!recoverable(&p));
}

#[test]
fn zeros_are_not_chosen_for_secondary_suppression() {
    // The zero is smaller than 30, but a suppressed zero beside a primary cell would tell the
    // primary cell's rounded value to anyone who knows the reasons: the 30 goes instead.
    let t = Table::one_way(
        "patients",
        vec![("a".into(), 3), ("b".into(), 0), ("c".into(), 30)],
    )
    .unwrap();
    let p = publish(&t);
    assert_eq!(p.cells, vec![vec![P], vec![Cell::Published(0)], vec![S]]);
    assert_eq!(p.column_totals, Some(vec![Cell::Published(35)]));
}

#[test]
fn the_next_smallest_non_zero_cell_goes_before_the_total() {
    // Column 0's 3 could be recovered from its total; row 1's 20 goes, the total stays.
    let p = publish(&table(vec![vec![3, 0], vec![20, 0]], Margins::ColumnTotals));
    assert_eq!(
        p.cells,
        vec![vec![P, Cell::Published(0)], vec![S, Cell::Published(0)]]
    );
    assert_eq!(
        p.column_totals,
        Some(vec![Cell::Published(25), Cell::Published(0)])
    );
}

#[test]
fn a_small_total_is_redacted_and_so_are_its_cells() {
    let t = Table::one_way("patients", vec![("a".into(), 2), ("b".into(), 3)]).unwrap();
    let p = publish(&t);
    assert_eq!(p.cells, vec![vec![P], vec![P]]);
    assert_eq!(p.column_totals, Some(vec![P]));
}

#[test]
fn a_rounded_sum_below_eight_is_not_published_as_a_total() {
    // Eight patients in cells of 1: the rounded sum is 0, which would claim nobody.
    let t = Table::one_way("patients", (0..8).map(|i| (format!("g{i}"), 1)).collect()).unwrap();
    let p = publish(&t);
    assert_eq!(p.column_totals, Some(vec![P]));
}

#[test]
fn two_way_table_suppresses_a_rectangle() {
    // Quintile × {genotyped, not genotyped}, both margins. Q1's 5 un-genotyped patients could be
    // recovered from Q1's total and from the column total, so a rectangle goes: the smallest
    // non-zero cell in its column (Q2's 30), then the smallest in its row (Q1's 40), then the
    // corner that closes the cycle (Q2's 60).
    let t = table(
        vec![vec![40, 5], vec![60, 30], vec![100, 50]],
        Margins::Both,
    );
    let p = publish(&t);
    assert_eq!(
        p.cells,
        vec![
            vec![S, P],
            vec![S, S],
            vec![Cell::Published(100), Cell::Published(50)]
        ]
    );
    assert_eq!(
        p.row_totals,
        Some(vec![
            Cell::Published(45),
            Cell::Published(90),
            Cell::Published(150)
        ])
    );
    assert_eq!(
        p.column_totals,
        Some(vec![Cell::Published(200), Cell::Published(85)])
    );
    assert_eq!(p.grand_total, Some(Cell::Published(285)));
    assert!(!recoverable(&p));
    // Rates from published cells only.
    assert_eq!(p.share_of_row(0, 1), Rate::Redacted);
    assert_eq!(p.share_of_row(2, 0), Rate::Published(100.0 / 150.0));
}

#[test]
fn every_line_having_two_redactions_is_not_enough() {
    // Two redacted rectangles joined by one redacted cell (0,2): every row and column has two
    // or more redacted entries, yet (0,2) is recoverable: row 0's total minus its published
    // cells gives (0,0)+(0,1)+(0,2), and column 0 and 1 give (0,0) and (0,1) via rows 1...
    // The graph view: (0,2) is a bridge. `publish` must go further.
    let s = 3; // small
    let b = 100; // big
    let cells = vec![
        vec![s, s, s, b],
        vec![s, s, b, b],
        vec![b, b, s, s],
        vec![b, b, s, s],
    ];
    let mut p = publish(&table(cells.clone(), Margins::Both));
    assert!(!recoverable(&p));
    assert!(!linear_recoverable(&p), "the exact check agrees");
    // The hand-made pattern with only those nine redactions is recoverable.
    for (i, row) in cells.iter().enumerate() {
        for (j, raw) in row.iter().enumerate() {
            p.cells[i][j] = if *raw == s { P } else { Cell::Published(100) };
        }
    }
    for t in p.row_totals.iter_mut().flatten() {
        *t = Cell::Published(1);
    }
    for t in p.column_totals.iter_mut().flatten() {
        *t = Cell::Published(1);
    }
    assert!(recoverable(&p));
    assert!(linear_recoverable(&p));
}

#[test]
fn tables_without_margins_only_redact_small_cells() {
    let p = publish(&table(vec![vec![3, 40], vec![0, 9]], Margins::None));
    assert_eq!(
        p.cells,
        vec![
            vec![P, Cell::Published(40)],
            vec![Cell::Published(0), Cell::Published(10)]
        ]
    );
    assert!(p.row_totals.is_none() && p.column_totals.is_none() && p.grand_total.is_none());
}

#[test]
fn malformed_tables_are_errors() {
    assert_eq!(
        Table::new(labels("r", 2), labels("c", 1), vec![vec![1]], Margins::None),
        Err(SdcError::RowLabels { labels: 2, rows: 1 })
    );
    assert_eq!(
        Table::new(labels("r", 1), labels("c", 2), vec![vec![1]], Margins::None),
        Err(SdcError::Ragged {
            row: 0,
            cells: 1,
            labels: 2
        })
    );
    assert_eq!(
        Table::new(vec![], labels("c", 2), vec![], Margins::None),
        Err(SdcError::Empty)
    );
}

#[test]
fn cells_serialise_as_numbers_or_a_reason() {
    let p = publish(&Table::one_way("n", vec![("a".into(), 3), ("b".into(), 40)]).unwrap());
    let json = serde_json::to_string(&p).unwrap();
    assert!(
        json.contains("\"cells\":[[{\"redacted\":\"primary\"}],[{\"redacted\":\"secondary\"}]]"),
        "{json}"
    );
    assert!(json.contains("\"column_totals\":[45]"), "{json}");
    assert_eq!(
        serde_json::to_string(&rate(Cell::Published(10), Cell::Published(40))).unwrap(),
        "{\"status\":\"published\",\"value\":0.25}"
    );
}

/// An independent check of recoverability by linear algebra: the margin constraints restricted
/// to the redacted entries; an entry is determined exactly when dropping its column lowers the
/// rank (its unit vector is in the row space).
fn linear_recoverable(p: &PublishedTable) -> bool {
    let (r, c) = (p.row_labels.len(), p.column_labels.len());
    let redacted: Vec<(usize, usize)> = p
        .entries()
        .into_iter()
        .filter(|(_, _, cell)| cell.is_redacted())
        .map(|(i, j, _)| (i, j))
        .collect();
    if redacted.is_empty() {
        return false;
    }
    let mut constraints: Vec<Vec<i128>> = Vec::new();
    let coef = |members: &dyn Fn(usize, usize) -> i128| -> Vec<i128> {
        redacted.iter().map(|&(i, j)| members(i, j)).collect()
    };
    let rows_constrained: Vec<usize> = match p.margins {
        Margins::Both => (0..=r).collect(),
        Margins::RowTotals => (0..r).collect(),
        _ => vec![],
    };
    let cols_constrained: Vec<usize> = match p.margins {
        Margins::Both => (0..=c).collect(),
        Margins::ColumnTotals => (0..c).collect(),
        _ => vec![],
    };
    for &line in &rows_constrained {
        constraints.push(coef(&|i: usize, j: usize| -> i128 {
            if i != line {
                0
            } else if j == c {
                -1
            } else {
                1
            }
        }));
    }
    for &line in &cols_constrained {
        constraints.push(coef(&|i: usize, j: usize| -> i128 {
            if j != line {
                0
            } else if i == r {
                -1
            } else {
                1
            }
        }));
    }
    let full = rank(&constraints, None);
    (0..redacted.len()).any(|k| rank(&constraints, Some(k)) < full)
}

fn rank(m: &[Vec<i128>], skip: Option<usize>) -> usize {
    let mut rows: Vec<Vec<i128>> = m
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .filter(|(k, _)| Some(*k) != skip)
                .map(|(_, v)| *v)
                .collect()
        })
        .collect();
    let cols = rows.first().map_or(0, Vec::len);
    let mut rank = 0;
    for col in 0..cols {
        let Some(pivot) = (rank..rows.len()).find(|&i| rows[i][col] != 0) else {
            continue;
        };
        rows.swap(rank, pivot);
        for i in 0..rows.len() {
            if i != rank && rows[i][col] != 0 {
                let (a, b) = (rows[rank][col], rows[i][col]);
                let pr = rows[rank].clone();
                for (x, y) in rows[i].iter_mut().zip(pr) {
                    *x = *x * a - y * b;
                }
                let g = rows[i].iter().fold(0i128, |g, v| gcd(g, v.abs()));
                if g > 1 {
                    rows[i].iter_mut().for_each(|v| *v /= g);
                }
            }
        }
        rank += 1;
    }
    rank
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1u64..=7, 8u64..=60, 60u64..=5000]
}

fn any_table() -> impl Strategy<Value = Table> {
    (1usize..=5, 1usize..=4)
        .prop_flat_map(|(r, c)| {
            (
                proptest::collection::vec(proptest::collection::vec(count(), c), r),
                prop_oneof![
                    Just(Margins::None),
                    Just(Margins::RowTotals),
                    Just(Margins::ColumnTotals),
                    Just(Margins::Both)
                ],
            )
        })
        .prop_map(|(cells, m)| table(cells, m))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No published cell describes 1–7 patients: a published value is a multiple of 5, 0 only
    /// for a raw 0, and otherwise from a raw count of at least 8 (totals likewise).
    #[test]
    fn no_published_cell_describes_one_to_seven(t in any_table()) {
        let p = publish(&t);
        let (r, c) = (t.rows(), t.columns());
        let raw = |i: usize, j: usize| -> u64 {
            let rows: Vec<usize> = if i == r { (0..r).collect() } else { vec![i] };
            let cols: Vec<usize> = if j == c { (0..c).collect() } else { vec![j] };
            rows.iter().flat_map(|&a| cols.iter().map(move |&b| (a, b))).map(|(a, b)| t.raw(a, b)).sum()
        };
        for (i, j, cell) in p.entries() {
            let n = raw(i, j);
            match cell {
                Cell::Published(v) => {
                    prop_assert_eq!(v % BASE, 0);
                    prop_assert_eq!(v == 0, n == 0, "({}, {}) raw {} published {}", i, j, n, v);
                    prop_assert!(n == 0 || n > THRESHOLD);
                }
                Cell::Redacted(Reason::Primary) => prop_assert!(n > 0),
                Cell::Redacted(Reason::Secondary) => {}
            }
            if i < r && j < c {
                prop_assert_eq!(cell == P, (1..=THRESHOLD).contains(&n));
            }
        }
    }

    /// Totals are computed from the rounded values: a published total equals the sum of its
    /// cells whenever they are all published.
    #[test]
    fn totals_are_sums_of_the_published_cells(t in any_table()) {
        let p = publish(&t);
        let (r, c) = (t.rows(), t.columns());
        if let Some(totals) = &p.row_totals {
            for (i, total) in totals.iter().enumerate() {
                let cells: Option<Vec<u64>> = (0..c).map(|j| p.cell(i, j).value()).collect();
                if let (Some(cells), Cell::Published(total)) = (cells, *total) {
                    prop_assert_eq!(cells.iter().sum::<u64>(), total);
                }
            }
        }
        if let Some(totals) = &p.column_totals {
            for (j, total) in totals.iter().enumerate() {
                let cells: Option<Vec<u64>> = (0..r).map(|i| p.cell(i, j).value()).collect();
                if let (Some(cells), Cell::Published(total)) = (cells, *total) {
                    prop_assert_eq!(cells.iter().sum::<u64>(), total);
                }
            }
        }
        if let (Some(rows), Some(Cell::Published(g))) = (&p.row_totals, p.grand_total) {
            let all: Option<Vec<u64>> = rows.iter().map(|c| c.value()).collect();
            if let Some(all) = all {
                prop_assert_eq!(all.iter().sum::<u64>(), g);
            }
        }
    }

    /// No redacted value can be recomputed: every constrained line holds zero or at least two
    /// redacted entries, and (the exact condition) no redacted entry is determined by the
    /// margin equations.
    #[test]
    fn no_redacted_value_can_be_recomputed(t in any_table()) {
        let p = publish(&t);
        let (r, c) = (t.rows(), t.columns());
        let entries = p.entries();
        let redacted_in = |f: &dyn Fn(usize, usize) -> bool| {
            entries.iter().filter(|(i, j, cell)| f(*i, *j) && cell.is_redacted()).count()
        };
        let rows: Vec<usize> = match t.margins() {
            Margins::Both => (0..=r).collect(),
            Margins::RowTotals => (0..r).collect(),
            _ => vec![],
        };
        for line in rows {
            prop_assert_ne!(redacted_in(&|i: usize, _: usize| i == line), 1, "row {}", line);
        }
        let cols: Vec<usize> = match t.margins() {
            Margins::Both => (0..=c).collect(),
            Margins::ColumnTotals => (0..c).collect(),
            _ => vec![],
        };
        for line in cols {
            prop_assert_ne!(redacted_in(&|_: usize, j: usize| j == line), 1, "column {}", line);
        }
        prop_assert!(!linear_recoverable(&p));
        prop_assert!(!recoverable(&p));
    }

    /// Rates exist only where both counts are published.
    #[test]
    fn rates_from_redacted_counts_are_redacted(n in count(), d in count()) {
        let (pn, pd) = (publish_count(n), publish_count(d));
        let r = rate(pn, pd);
        match (pn, pd) {
            (Cell::Published(a), Cell::Published(b)) if b > 0 => prop_assert_eq!(r, Rate::Published(a as f64 / b as f64)),
            (Cell::Published(_), Cell::Published(_)) => prop_assert_eq!(r, Rate::NoDenominator),
            _ => prop_assert_eq!(r, Rate::Redacted),
        }
    }
}
