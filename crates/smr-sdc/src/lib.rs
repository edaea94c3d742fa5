//! Statistical disclosure control for everything SMR's analytics publish.
//!
//! The rule is OpenSAFELY's current one ("Updated disclosure control guidance",
//! <https://www.opensafely.org/updated-output-checking-processes/>, and
//! <https://docs.opensafely.org/outputs/sdc/>): any statistic describing 7 or fewer patients is
//! redacted, every other count is rounded to the nearest 5, and totals are computed from the
//! rounded values. What this crate adds is the *secondary* suppression OpenSAFELY's output
//! checkers do by hand: whenever a redacted cell could be recomputed from a published total
//! minus the other published cells of its row or column, more cells (or the total) are
//! suppressed until it cannot.
//!
//! # Definitions
//!
//! - **Primary redaction.** A cell whose raw count is 1–7 is `Redacted(Primary)`. A raw count
//!   of 0 is published as 0: it describes no patient, and OpenSAFELY's guidance redacts
//!   "counts between 1 and 7" (its measures framework, ehrQL, likewise leaves 0 alone).
//!   Zeros are never chosen for secondary suppression while another cell will do, because a
//!   secondary-suppressed 0 next to a primary cell would tell the primary cell's rounded value
//!   to anyone who knows the redaction reasons.
//! - **Rounding.** Every other count `n` is published as `n` rounded to the nearest multiple of
//!   5, halves up (8 → 10, 12 → 10, 13 → 15). So every published non-zero value comes from a raw
//!   count of at least 8, and a published 0 from a raw 0.
//! - **Totals.** A row, column or grand total is the sum of the rounded values of *all* its
//!   cells (including the rounded values of cells then redacted), so a published total is a
//!   multiple of 5 and equals the sum of its cells whenever they are all published. A total
//!   whose raw count is 1–7, or whose rounded sum is below 8 while its raw count is not 0, is
//!   itself `Redacted(Primary)`.
//! - **Secondary suppression.** A table's margins are linear constraints (each row, column or
//!   the grand total is the sum of its entries). A redacted entry is *recoverable* when those
//!   constraints and the published entries determine its (rounded) value. For a table with
//!   both margins this is exactly when the entry is a bridge of the bipartite graph whose
//!   vertices are the rows and columns (margins included) and whose edges are the redacted
//!   entries (the constraints' null space is spanned by that graph's cycles); for a table with
//!   one margin it is when its line holds exactly one redacted entry. While some redacted entry
//!   is recoverable, [`publish`] suppresses the next-smallest non-zero cell that puts it on a
//!   cycle (failing that, the smallest total, then a zero) and looks again.
//! - **Rates** ([`rate`]) are computed only from published values; a rate with a redacted
//!   numerator or denominator is redacted.
//!
//! Across separately published tables (the same measure by practice in one request and by
//! sub-ICB in another) differencing is only mitigated by the rounding, as in OpenSAFELY: see
//! `docs/disclosure-control.md`.

use std::collections::VecDeque;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Counts of this size or smaller (and above 0) are redacted.
pub const THRESHOLD: u64 = 7;
/// Published counts are rounded to a multiple of this.
pub const BASE: u64 = 5;

/// Why a value was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// It describes 1–7 patients.
    Primary,
    /// It would let a primary-redacted value be recomputed from the margins.
    Secondary,
}

/// One published statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// A count rounded to a multiple of [`BASE`] (0 only when nobody was counted).
    Published(u64),
    Redacted(Reason),
}

impl Cell {
    pub fn value(self) -> Option<u64> {
        match self {
            Cell::Published(v) => Some(v),
            Cell::Redacted(_) => None,
        }
    }

    pub fn is_redacted(self) -> bool {
        matches!(self, Cell::Redacted(_))
    }
}

impl Serialize for Cell {
    /// A published cell is its number; a redacted one `{"redacted": "primary"|"secondary"}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Published(v) => s.serialize_u64(*v),
            Cell::Redacted(reason) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("redacted", reason)?;
                map.end()
            }
        }
    }
}

/// A rate or proportion computed from published cells.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "value")]
pub enum Rate {
    Published(f64),
    /// The numerator or the denominator is redacted.
    Redacted,
    /// The published denominator is 0.
    NoDenominator,
}

impl Rate {
    pub fn value(self) -> Option<f64> {
        match self {
            Rate::Published(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SdcError {
    #[error("table has {labels} row labels but {rows} rows of cells")]
    RowLabels { labels: usize, rows: usize },
    #[error("row {row} has {cells} cells but the table has {labels} column labels")]
    Ragged {
        row: usize,
        cells: usize,
        labels: usize,
    },
    #[error("a table needs at least one row and one column")]
    Empty,
}

/// Which margins a table publishes with its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Margins {
    /// Cells only: nothing sums to anything published.
    None,
    /// A total per row (the sum across the columns).
    RowTotals,
    /// A total per column (the sum down the rows).
    ColumnTotals,
    /// Row totals, column totals and the grand total.
    Both,
}

impl Margins {
    fn rows(self) -> bool {
        matches!(self, Margins::RowTotals | Margins::Both)
    }
    fn columns(self) -> bool {
        matches!(self, Margins::ColumnTotals | Margins::Both)
    }
}

/// Raw counts with named rows and columns: what an aggregation produced, before anything is
/// published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    row_labels: Vec<String>,
    column_labels: Vec<String>,
    cells: Vec<Vec<u64>>,
    margins: Margins,
}

impl Table {
    pub fn new(
        row_labels: Vec<String>,
        column_labels: Vec<String>,
        cells: Vec<Vec<u64>>,
        margins: Margins,
    ) -> Result<Self, SdcError> {
        if row_labels.is_empty() || column_labels.is_empty() {
            return Err(SdcError::Empty);
        }
        if row_labels.len() != cells.len() {
            return Err(SdcError::RowLabels {
                labels: row_labels.len(),
                rows: cells.len(),
            });
        }
        for (row, r) in cells.iter().enumerate() {
            if r.len() != column_labels.len() {
                return Err(SdcError::Ragged {
                    row,
                    cells: r.len(),
                    labels: column_labels.len(),
                });
            }
        }
        Ok(Table {
            row_labels,
            column_labels,
            cells,
            margins,
        })
    }

    /// A one-way breakdown: one row per group, one column, and its total.
    pub fn one_way(
        column_label: impl Into<String>,
        groups: Vec<(String, u64)>,
    ) -> Result<Self, SdcError> {
        let (labels, counts): (Vec<String>, Vec<u64>) = groups.into_iter().unzip();
        Table::new(
            labels,
            vec![column_label.into()],
            counts.into_iter().map(|c| vec![c]).collect(),
            Margins::ColumnTotals,
        )
    }

    pub fn rows(&self) -> usize {
        self.row_labels.len()
    }
    pub fn columns(&self) -> usize {
        self.column_labels.len()
    }
    pub fn margins(&self) -> Margins {
        self.margins
    }
    pub fn raw(&self, row: usize, column: usize) -> u64 {
        self.cells[row][column]
    }
}

/// A table after disclosure control: the only form in which analytics leave SMR.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedTable {
    pub row_labels: Vec<String>,
    pub column_labels: Vec<String>,
    pub margins: Margins,
    pub cells: Vec<Vec<Cell>>,
    /// One per row when the table has row totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_totals: Option<Vec<Cell>>,
    /// One per column when the table has column totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column_totals: Option<Vec<Cell>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grand_total: Option<Cell>,
}

impl PublishedTable {
    pub fn cell(&self, row: usize, column: usize) -> Cell {
        self.cells[row][column]
    }

    /// The rate `cells[row][numerator] / cells[row][denominator]` from published values.
    pub fn row_rate(&self, row: usize, numerator: usize, denominator: usize) -> Rate {
        rate(self.cells[row][numerator], self.cells[row][denominator])
    }

    /// `cells[row][column] / row_totals[row]` (a share of the row), when there are row totals.
    pub fn share_of_row(&self, row: usize, column: usize) -> Rate {
        match &self.row_totals {
            Some(totals) => rate(self.cells[row][column], totals[row]),
            None => Rate::Redacted,
        }
    }

    /// Every entry of the augmented grid (cells, then margins) as `(row, column, cell)`, the
    /// margins at index `rows()` / `columns()`.
    pub fn entries(&self) -> Vec<(usize, usize, Cell)> {
        let (r, c) = (self.row_labels.len(), self.column_labels.len());
        let mut out = Vec::with_capacity((r + 1) * (c + 1));
        for (i, row) in self.cells.iter().enumerate() {
            for (j, cell) in row.iter().enumerate() {
                out.push((i, j, *cell));
            }
            if let Some(t) = &self.row_totals {
                out.push((i, c, t[i]));
            }
        }
        if let Some(t) = &self.column_totals {
            for (j, cell) in t.iter().enumerate() {
                out.push((r, j, *cell));
            }
        }
        if let Some(g) = self.grand_total {
            out.push((r, c, g));
        }
        out
    }
}

/// A count rounded to the nearest multiple of [`BASE`], halves up.
pub fn round(n: u64) -> u64 {
    n.saturating_add(BASE / 2) / BASE * BASE
}

/// One count standing on its own (no margin relates it to anything else published).
pub fn publish_count(n: u64) -> Cell {
    if (1..=THRESHOLD).contains(&n) {
        Cell::Redacted(Reason::Primary)
    } else {
        Cell::Published(round(n))
    }
}

/// A rate from two published cells: redacted if either is.
pub fn rate(numerator: Cell, denominator: Cell) -> Rate {
    match (numerator, denominator) {
        (Cell::Published(_), Cell::Published(0)) => Rate::NoDenominator,
        (Cell::Published(n), Cell::Published(d)) => Rate::Published(n as f64 / d as f64),
        _ => Rate::Redacted,
    }
}

/// One entry of the augmented grid while it is being published.
#[derive(Debug, Clone, Copy)]
struct Entry {
    raw: u64,
    value: u64,
    margin: bool,
    state: Option<Reason>,
}

/// Apply disclosure control to a table: primary redaction, rounding, totals from the rounded
/// values, and secondary suppression until no redacted entry can be recomputed.
pub fn publish(table: &Table) -> PublishedTable {
    let (r, c) = (table.rows(), table.columns());
    let m = table.margins;
    // The augmented (r+1)×(c+1) grid; margins that the table does not have stay None.
    let mut grid: Vec<Vec<Option<Entry>>> = vec![vec![None; c + 1]; r + 1];
    for (row, raws) in grid.iter_mut().zip(&table.cells) {
        for (entry, &raw) in row.iter_mut().zip(raws) {
            *entry = Some(Entry {
                raw,
                value: round(raw),
                margin: false,
                state: (1..=THRESHOLD).contains(&raw).then_some(Reason::Primary),
            });
        }
    }
    let total = |raws: &mut dyn Iterator<Item = u64>| {
        let (raw, value) = raws.fold((0u64, 0u64), |(a, b), n| {
            (a.saturating_add(n), b.saturating_add(round(n)))
        });
        let small = (1..=THRESHOLD).contains(&raw) || (raw > 0 && value <= THRESHOLD);
        Entry {
            raw,
            value,
            margin: true,
            state: small.then_some(Reason::Primary),
        }
    };
    if m.rows() {
        for (row, raws) in grid.iter_mut().zip(&table.cells) {
            row[c] = Some(total(&mut raws.iter().copied()));
        }
    }
    if m.columns() {
        let column_totals: Vec<Entry> = (0..c)
            .map(|j| total(&mut table.cells.iter().map(|row| row[j])))
            .collect();
        for (entry, t) in grid[r].iter_mut().zip(column_totals) {
            *entry = Some(t);
        }
    }
    if m == Margins::Both {
        grid[r][c] = Some(total(&mut table.cells.iter().flatten().copied()));
    }

    if m != Margins::None {
        secondary(&mut grid, r, c, m);
    }

    let cell_of = |e: Entry| match e.state {
        Some(reason) => Cell::Redacted(reason),
        None => Cell::Published(e.value),
    };
    let at = |i: usize, j: usize| cell_of(grid[i][j].expect("entry exists"));
    PublishedTable {
        row_labels: table.row_labels.clone(),
        column_labels: table.column_labels.clone(),
        margins: m,
        cells: (0..r).map(|i| (0..c).map(|j| at(i, j)).collect()).collect(),
        row_totals: m.rows().then(|| (0..r).map(|i| at(i, c)).collect()),
        column_totals: m.columns().then(|| (0..c).map(|j| at(r, j)).collect()),
        grand_total: (m == Margins::Both).then(|| at(r, c)),
    }
}

/// The constraint graph: one vertex per constrained line, every unconstrained line merged into
/// one free vertex (an entry with a free end is held by one constraint only).
struct Lines {
    rows: usize,
    columns: usize,
    margins: Margins,
}

impl Lines {
    fn free(&self) -> usize {
        self.rows + 1 + self.columns + 1
    }
    fn vertices(&self) -> usize {
        self.free() + 1
    }
    /// Row line `i` (0..=rows) as a vertex.
    fn row(&self, i: usize) -> usize {
        let constrained = match self.margins {
            Margins::Both => true,
            Margins::RowTotals => i < self.rows,
            _ => false,
        };
        if constrained { i } else { self.free() }
    }
    fn column(&self, j: usize) -> usize {
        let constrained = match self.margins {
            Margins::Both => true,
            Margins::ColumnTotals => j < self.columns,
            _ => false,
        };
        if constrained {
            self.rows + 1 + j
        } else {
            self.free()
        }
    }
}

/// Suppress entries until no redacted entry is a bridge of the redacted-entry graph.
fn secondary(grid: &mut [Vec<Option<Entry>>], r: usize, c: usize, m: Margins) {
    let lines = Lines {
        rows: r,
        columns: c,
        margins: m,
    };
    loop {
        let edges = redacted_edges(grid, &lines);
        let Some(bridge) = first_bridge(&edges, lines.vertices()) else {
            return;
        };
        let (bi, bj, u, v) = edges[bridge];
        // The two sides of the bridge: an entry joining them closes a cycle through it.
        let side_u = component(&edges, bridge, u, lines.vertices());
        let side_v = component(&edges, bridge, v, lines.vertices());
        let mut candidates: Vec<(usize, usize)> = Vec::new();
        for (i, row) in grid.iter().enumerate() {
            for (j, e) in row.iter().enumerate() {
                let Some(e) = e else { continue };
                if e.state.is_some() {
                    continue;
                }
                let (a, b) = (lines.row(i), lines.column(j));
                if (side_u[a] && side_v[b]) || (side_v[a] && side_u[b]) {
                    candidates.push((i, j));
                }
            }
        }
        if candidates.is_empty() {
            // Nothing closes a cycle yet (a path of single redactions): grow it from the
            // bridge's own lines and look again.
            for (i, row) in grid.iter().enumerate() {
                for (j, e) in row.iter().enumerate() {
                    let Some(e) = e else { continue };
                    if e.state.is_none() && (i == bi || j == bj) {
                        candidates.push((i, j));
                    }
                }
            }
        }
        // Next-smallest non-zero cell first, then the smallest total, then a zero; ties by
        // position so the result is a function of the table.
        let pick = candidates
            .into_iter()
            .min_by_key(|&(i, j)| {
                let e = grid[i][j].expect("candidate exists");
                let tier = if e.margin {
                    1
                } else if e.raw == 0 {
                    2
                } else {
                    0
                };
                (tier, e.raw, i, j)
            })
            .expect("a line with a redacted entry has another entry: margins exist");
        if let Some(e) = grid[pick.0][pick.1].as_mut() {
            e.state = Some(Reason::Secondary);
        }
    }
}

/// `(row, column, vertex, vertex)` per redacted entry; self-loops (both ends free) left out:
/// no constraint holds them.
fn redacted_edges(grid: &[Vec<Option<Entry>>], lines: &Lines) -> Vec<(usize, usize, usize, usize)> {
    let mut edges = Vec::new();
    for (i, row) in grid.iter().enumerate() {
        for (j, e) in row.iter().enumerate() {
            if let Some(e) = e
                && e.state.is_some()
            {
                let (a, b) = (lines.row(i), lines.column(j));
                if a != b {
                    edges.push((i, j, a, b));
                }
            }
        }
    }
    edges
}

/// The first (in row-major order) edge that is a bridge, by Tarjan's low-link (iterative, so
/// a table with thousands of rows cannot overflow the stack). Parallel edges are cycles.
fn first_bridge(edges: &[(usize, usize, usize, usize)], n: usize) -> Option<usize> {
    let mut adj: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (k, &(_, _, a, b)) in edges.iter().enumerate() {
        adj[a].push((b, k));
        adj[b].push((a, k));
    }
    let mut disc = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut is_bridge = vec![false; edges.len()];
    let mut time = 0;
    for start in 0..n {
        if disc[start] != usize::MAX {
            continue;
        }
        // (vertex, edge it was entered by, next adjacency index)
        let mut stack: Vec<(usize, usize, usize)> = vec![(start, usize::MAX, 0)];
        disc[start] = time;
        low[start] = time;
        time += 1;
        while let Some(top) = stack.len().checked_sub(1) {
            let (v, via, next) = stack[top];
            if next < adj[v].len() {
                stack[top].2 += 1;
                let (w, k) = adj[v][next];
                if k == via {
                    continue;
                }
                if disc[w] == usize::MAX {
                    disc[w] = time;
                    low[w] = time;
                    time += 1;
                    stack.push((w, k, 0));
                } else {
                    low[v] = low[v].min(disc[w]);
                }
            } else {
                stack.pop();
                if let Some(&(p, _, _)) = stack.last() {
                    low[p] = low[p].min(low[v]);
                    if low[v] > disc[p] {
                        is_bridge[via] = true;
                    }
                }
            }
        }
    }
    (0..edges.len()).find(|&k| is_bridge[k])
}

/// The vertices reachable from `u` once the bridge is removed.
fn component(
    edges: &[(usize, usize, usize, usize)],
    bridge: usize,
    u: usize,
    n: usize,
) -> Vec<bool> {
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, &(_, _, a, b)) in edges.iter().enumerate() {
        if k != bridge {
            adj[a].push(b);
            adj[b].push(a);
        }
    }
    let mut seen = vec![false; n];
    seen[u] = true;
    let mut queue = VecDeque::from([u]);
    while let Some(v) = queue.pop_front() {
        for &w in &adj[v] {
            if !seen[w] {
                seen[w] = true;
                queue.push_back(w);
            }
        }
    }
    seen
}

/// Whether some redacted entry of a published table can be recomputed from its published
/// entries and margins (the check [`publish`] establishes; exposed for callers' tests).
pub fn recoverable(table: &PublishedTable) -> bool {
    let lines = Lines {
        rows: table.row_labels.len(),
        columns: table.column_labels.len(),
        margins: table.margins,
    };
    let mut edges = Vec::new();
    for (i, j, cell) in table.entries() {
        if cell.is_redacted() {
            let (a, b) = (lines.row(i), lines.column(j));
            if a != b {
                edges.push((i, j, a, b));
            }
        }
    }
    table.margins != Margins::None && first_bridge(&edges, lines.vertices()).is_some()
}

#[cfg(test)]
mod tests;
