//! Validation problems on the terminal, readable even when there are thousands: the first
//! screenful in full (in row order), then counts by column and kind. The report holds
//! every one.

use std::collections::BTreeMap;

use crate::validate::{Problem, ProblemKind};

/// Prints problems readably even when there are thousands: the first screenful in
/// full, then counts by column and kind. The report holds every one.
pub struct ProblemPrinter {
    shown: usize,
    limit: usize,
    hidden: BTreeMap<(String, ProblemKind), usize>,
    total: usize,
    /// Lines kept back until [`ProblemPrinter::release`], in row order.
    held: Option<Vec<HeldLine>>,
}

/// A problem's line kept back, with what places it among the others.
struct HeldLine {
    row: usize,
    group: (String, ProblemKind),
    line: String,
}

fn group_of(problem: &Problem) -> (String, ProblemKind) {
    (problem.column.clone().unwrap_or_default(), problem.kind)
}

impl ProblemPrinter {
    pub fn new(limit: usize) -> ProblemPrinter {
        ProblemPrinter {
            shown: 0,
            limit,
            hidden: BTreeMap::new(),
            total: 0,
            held: None,
        }
    }

    /// Keeps the lines back until [`ProblemPrinter::release`]: for a reading whose rows
    /// may be overturned ([`ReadStage::settle_orders_early`]), and for an import, whose
    /// e-mail assignees no user has are found after the reading. At most `limit` lines:
    /// the first rows' (not the first problems found), so that a problem added late for an
    /// earlier row takes its place in row order.
    pub fn holding(mut self, hold: bool) -> ProblemPrinter {
        self.held = hold.then(Vec::new);
        self
    }

    /// Says the lines kept back, and from now on says them as they come.
    pub fn release(&mut self, out: &dyn Fn(&str)) {
        for held in self.held.take().unwrap_or_default() {
            self.shown += 1;
            out(&held.line);
        }
    }

    pub fn add(&mut self, problem: &Problem, out: &dyn Fn(&str)) {
        self.total += 1;
        let Some(held) = self.held.as_mut() else {
            if self.shown < self.limit {
                self.shown += 1;
                out(&format!("invalid: {problem}"));
            } else {
                *self.hidden.entry(group_of(problem)).or_default() += 1;
            }
            return;
        };
        // After the rows of the same number, so a row's own problems keep their order.
        let at = held.partition_point(|h| h.row <= problem.row);
        if at >= self.limit {
            *self.hidden.entry(group_of(problem)).or_default() += 1;
            return;
        }
        held.insert(
            at,
            HeldLine {
                row: problem.row,
                group: group_of(problem),
                line: format!("invalid: {problem}"),
            },
        );
        if held.len() > self.limit
            && let Some(last) = held.pop()
        {
            *self.hidden.entry(last.group).or_default() += 1;
        }
    }

    /// Problems added so far, shown or not.
    #[cfg(test)]
    pub fn total(&self) -> usize {
        self.total
    }

    /// Says the lines kept back, then the count of those not shown. Says nothing the
    /// second time.
    pub fn finish(&mut self, out: &dyn Fn(&str)) {
        self.release(out);
        let hidden: usize = self.hidden.values().sum();
        if hidden == 0 {
            return;
        }
        out(&format!("… and {hidden} more problems (every one is in the report):"));
        let hidden = std::mem::take(&mut self.hidden);
        let mut groups: Vec<_> = hidden.iter().collect();
        groups.sort_by(|a, b| b.1.cmp(a.1));
        for ((column, kind), count) in groups.iter().take(12) {
            out(&format!("  {count:>7} × {} in column `{column}`", kind.describe()));
        }
        if groups.len() > 12 {
            out(&format!("  (and {} more kinds)", groups.len() - 12));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a printer holding its lines (limit 2) says for problems added in this order,
    /// each `(row, column)`: the first rows' lines in row order, a row's own in the order
    /// added, and the rest counted by column (`A` before `B` when the counts tie).
    #[test]
    fn a_holding_printer_says_the_first_rows_problems_in_row_order() {
        let line = |row: usize, column: &str| format!("invalid: row {row}, column `{column}`: a value is required");
        let more = |n: usize| format!("… and {n} more problems (every one is in the report):");
        let count = |n: usize, column: &str| format!("  {n:>7} × missing value in column `{column}`");
        // Problems added, each `(row, column)`, and the lines said.
        type Case<'a> = (Vec<(usize, &'a str)>, Vec<String>);
        let cases: Vec<Case> = vec![
            (vec![], vec![]),
            (
                vec![(3, "A"), (5, "A"), (2, "B")],
                vec![line(2, "B"), line(3, "A"), more(1), count(1, "A")],
            ),
            (
                vec![(3, "A"), (4, "B"), (3, "C")],
                vec![line(3, "A"), line(3, "C"), more(1), count(1, "B")],
            ),
            (
                vec![(3, "A"), (4, "A"), (5, "A"), (9, "B"), (2, "B")],
                vec![line(2, "B"), line(3, "A"), more(3), count(2, "A"), count(1, "B")],
            ),
            (
                vec![(7, "A"), (8, "A"), (9, "B")],
                vec![line(7, "A"), line(8, "A"), more(1), count(1, "B")],
            ),
        ];
        for (added, want) in cases {
            let said = std::cell::RefCell::new(Vec::new());
            let out = |line: &str| said.borrow_mut().push(line.to_string());
            let mut printer = ProblemPrinter::new(2).holding(true);
            for (row, column) in &added {
                let problem = Problem {
                    row: *row,
                    column: Some(column.to_string()),
                    cell: None,
                    value: None,
                    kind: ProblemKind::Missing,
                    message: "a value is required".into(),
                };
                printer.add(&problem, &out);
            }
            assert!(said.borrow().is_empty(), "{added:?}: held until the end");
            printer.finish(&out);
            printer.finish(&out);
            assert_eq!(*said.borrow(), want, "{added:?}");
            assert_eq!(printer.total(), added.len());
        }
    }
}
