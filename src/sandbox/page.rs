//! Paging for the list endpoints: the `page_size` rule, the cursors the sandbox hands
//! out, and cutting one page from a sequence. Pure: the sandbox's state keeps the
//! cursors it issued (see `AppState::issue_cursor`).

/// Items per page when the request names no `page_size`, as on the real service.
pub(super) const DEFAULT_PAGE_SIZE: usize = 20;
/// The most a page holds; a larger `page_size` is served as this many.
pub(super) const MAX_PAGE_SIZE: usize = 100;

/// Which list a cursor walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Listing {
    TestRuns,
    TestCases,
}

/// Where a walk through one project's list continues: the position, in that list's
/// underlying sequence, of the first item the next page may hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Cursor {
    pub(super) listing: Listing,
    pub(super) project_id: String,
    pub(super) next: usize,
}

impl Cursor {
    /// The opaque text a client sends back: the same position always gives the same
    /// text, so walking a list twice issues no new cursors.
    pub(super) fn text(&self) -> String {
        let listing = match self.listing {
            Listing::TestRuns => "test_runs",
            Listing::TestCases => "test_cases",
        };
        hex::encode(format!("{listing}:{}:{}", self.project_id, self.next))
    }
}

/// The `page_size` parameter: absent is [`DEFAULT_PAGE_SIZE`], over [`MAX_PAGE_SIZE`] is
/// clamped to it; zero or anything but a whole number is refused with the reason.
pub(super) fn page_size(raw: Option<&str>) -> Result<usize, String> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    match raw.parse::<u64>() {
        Ok(0) => Err(format!("page_size: \"{raw}\" must be from 1 to {MAX_PAGE_SIZE}")),
        Ok(n) => Ok(usize::try_from(n).map_or(MAX_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE))),
        // A number too large for u64 is still a number: clamp it like any other.
        Err(_) if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(MAX_PAGE_SIZE),
        Err(_) => Err(format!(
            "page_size: \"{raw}\" is not a whole number (send 1 to {MAX_PAGE_SIZE})"
        )),
    }
}

/// Up to `size` of `items` (each with its position), and the position of the first item
/// left over, if any is.
pub(super) fn page_of<T>(items: impl IntoIterator<Item = (usize, T)>, size: usize) -> (Vec<T>, Option<usize>) {
    let mut page = Vec::with_capacity(size.min(MAX_PAGE_SIZE));
    for (position, item) in items {
        if page.len() == size {
            return (page, Some(position));
        }
        page.push(item);
    }
    (page, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_clamps_and_refuses() {
        let cases: [(Option<&str>, Result<usize, &str>); 9] = [
            (None, Ok(20)),
            (Some("1"), Ok(1)),
            (Some("100"), Ok(100)),
            (Some("101"), Ok(100)),
            (Some("99999999999999999999999"), Ok(100)),
            (Some("0"), Err("must be from 1 to 100")),
            (Some("-5"), Err("is not a whole number")),
            (Some("ten"), Err("is not a whole number")),
            (Some(""), Err("is not a whole number")),
        ];
        for (raw, want) in cases {
            match (page_size(raw), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{raw:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{raw:?}: {got}"),
                (got, want) => panic!("{raw:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn page_of_says_where_the_rest_starts() {
        let items = || [(3, 'a'), (5, 'b'), (9, 'c')];
        let cases = [
            (1, vec!['a'], Some(5)),
            (2, vec!['a', 'b'], Some(9)),
            (3, vec!['a', 'b', 'c'], None),
            (4, vec!['a', 'b', 'c'], None),
        ];
        for (size, want, next) in cases {
            assert_eq!(page_of(items(), size), (want, next), "size {size}");
        }
        assert_eq!(page_of(Vec::<(usize, char)>::new(), 20), (vec![], None));
    }

    #[test]
    fn cursors_are_opaque_and_tell_lists_and_projects_apart() {
        let cursor = |listing, project: &str, next| Cursor {
            listing,
            project_id: project.to_owned(),
            next,
        };
        let runs = cursor(Listing::TestRuns, "p", 20).text();
        assert_eq!(runs, cursor(Listing::TestRuns, "p", 20).text());
        assert!(runs.bytes().all(|b| b.is_ascii_hexdigit()), "{runs}");
        for other in [
            cursor(Listing::TestCases, "p", 20),
            cursor(Listing::TestRuns, "q", 20),
            cursor(Listing::TestRuns, "p", 40),
        ] {
            assert_ne!(other.text(), runs, "{other:?}");
        }
    }
}
