//! Merged cells spread over rows as they stream by: a region's value is taken from its
//! top-left cell when that row goes by, and given to every cell the region spans below the
//! header row. calamine reads merges only for .xlsx, before the cells.

use calamine::{Data, Dimensions};

use super::value::{fill_cell, is_blank};
use crate::read::row::SourceRow;

pub(super) struct Spread {
    /// The regions that start below the header row, by top row.
    regions: Vec<Dimensions>,
    /// The first of `regions` whose top row has not gone by yet.
    next: usize,
    /// Regions whose top row went by with a value, and that value.
    active: Vec<(Dimensions, Data)>,
    /// Cells given a merged value on this reading.
    filled: usize,
}

impl Spread {
    /// `header`: the 0-based header row; a merged title above it, or a merged header, is
    /// no value. `width`: the columns read; a region right of them is none of ours.
    pub(super) fn new(mut regions: Vec<Dimensions>, header: usize, width: usize) -> Spread {
        regions.retain(|region| {
            region.start.0 as usize > header && (region.start.1 as usize) < width && region.start <= region.end
        });
        regions.sort_by_key(|region| region.start);
        Spread {
            regions,
            next: 0,
            active: Vec::new(),
            filled: 0,
        }
    }

    /// From the top again, for another reading.
    pub(super) fn restart(&mut self) {
        (self.next, self.filled) = (0, 0);
        self.active.clear();
    }

    pub(super) fn filled(&self) -> usize {
        self.filled
    }

    /// Sheet row `index` goes by with `cells` (by column): the regions that start on it
    /// take their value from it, and those that ended above it are dropped.
    pub(super) fn enter(&mut self, index: usize, cells: &[(u32, Data)]) {
        self.active.retain(|(region, _)| region.end.0 as usize >= index);
        while let Some(region) = self.regions.get(self.next)
            && region.start.0 as usize <= index
        {
            self.next += 1;
            // A region whose top row held nothing has no value.
            if region.start.0 as usize != index {
                continue;
            }
            let value = cells.iter().find(|(column, _)| *column == region.start.1);
            if let Some((_, value)) = value.filter(|(_, value)| !is_blank(value)) {
                self.active.push((*region, value.clone()));
            }
        }
    }

    /// The first row from `from` on that a region spreads its value to.
    pub(super) fn next_row(&self, from: usize) -> Option<usize> {
        self.active
            .iter()
            .filter_map(|(region, _)| {
                let first = (region.start.0 as usize + 1).max(from);
                (first <= region.end.0 as usize).then_some(first)
            })
            .min()
    }

    /// Gives row `index` the values of the regions that span it, in its first `width`
    /// columns (those in `only`, when given); true if it spans any.
    pub(super) fn fill(
        &mut self,
        row: &mut SourceRow,
        index: usize,
        width: usize,
        only: Option<&[usize]>,
        error_text: bool,
    ) -> bool {
        let mut any = false;
        for (region, value) in &self.active {
            let (top, left) = (region.start.0 as usize, region.start.1 as usize);
            if index < top || index > region.end.0 as usize {
                continue;
            }
            let right = (region.end.1 as usize).min(width.saturating_sub(1));
            for column in (left..=right).filter(|&column| column < width && (index, column) != (top, left)) {
                if only.is_none_or(|wanted| wanted.contains(&column)) {
                    fill_cell(row, column, Some(value), error_text);
                }
                self.filled += 1;
                any = true;
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::row::Cell;

    fn region(start: (u32, u32), end: (u32, u32)) -> Dimensions {
        Dimensions { start, end }
    }

    #[test]
    fn merged_values_below_the_header_fill_their_regions_once() {
        let title = vec![(0, Data::String("Title over all".into()))];
        let smoke = vec![(1, Data::String("smoke".into()))];
        let mut spread = Spread::new(vec![region((0, 0), (0, 2)), region((3, 1), (5, 1))], 2, 3);
        let mut row = SourceRow::default();
        spread.enter(0, &title);
        assert_eq!(spread.next_row(1), None, "a title above the headers is not spread");
        spread.enter(3, &smoke);
        row.clear_cells(3);
        assert!(
            !spread.fill(&mut row, 3, 3, None, false),
            "the top-left cell is its own"
        );
        assert_eq!(spread.next_row(4), Some(4));
        for index in 4..=5 {
            row.clear_cells(3);
            assert!(spread.fill(&mut row, index, 3, None, false));
            assert_eq!(
                row.cells().collect::<Vec<_>>(),
                [Cell::Empty, Cell::Text("smoke"), Cell::Empty]
            );
        }
        assert_eq!((spread.next_row(6), spread.filled()), (None, 2));
        spread.restart();
        assert_eq!((spread.next_row(4), spread.filled()), (None, 0));
    }

    #[test]
    fn a_region_whose_top_row_went_by_empty_or_past_the_width_gives_nothing() {
        let regions = vec![region((2, 0), (4, 0)), region((3, 5), (6, 6)), region((3, 1), (3, 9))];
        let mut spread = Spread::new(regions, 0, 3);
        spread.enter(3, &[(1, Data::Int(7)), (5, Data::Int(7))]);
        assert_eq!(spread.next_row(4), None, "A3 held nothing; F4 is past the width");
        let mut row = SourceRow::default();
        row.clear_cells(3);
        assert!(spread.fill(&mut row, 3, 3, None, false), "B4:J4 reaches C4 only");
        assert_eq!(
            row.cells().collect::<Vec<_>>(),
            [Cell::Empty, Cell::Empty, Cell::Number(7.0)]
        );
    }
}
