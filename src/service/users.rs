//! Assignees given as e-mail addresses, matched against the service's users.

use super::User;

/// An e-mail → the user's id; unknown addresses name the closest known ones.
pub fn resolve_email(users: &[User], email: &str) -> Result<String, String> {
    if let Some(user) = users.iter().find(|u| u.email.eq_ignore_ascii_case(email.trim())) {
        return Ok(user.id.clone());
    }
    let wanted = email.trim().to_lowercase();
    let mut close: Vec<(usize, &str)> = users
        .iter()
        .map(|u| (edit_distance(&wanted, &u.email.to_lowercase()), u.email.as_str()))
        .collect();
    close.sort();
    // Only the nearest addresses, and only when they are near at all.
    let nearest = close.first().map_or(usize::MAX, |(d, _)| *d);
    let suggestions: Vec<&str> = close
        .iter()
        .filter(|(d, _)| *d == nearest && *d <= wanted.len() / 3 + 1)
        .take(3)
        .map(|(_, e)| *e)
        .collect();
    if suggestions.is_empty() {
        Err(
            "no user has this e-mail address; give the user's UUID or an address from the Testsigma account"
                .to_string(),
        )
    } else {
        Err(format!(
            "no user has this e-mail address; did you mean {}?",
            suggestions.join(" or ")
        ))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_resolve_case_insensitively_and_suggest_close_ones() {
        let users = vec![
            User {
                id: "u1".into(),
                email: "ada@example.com".into(),
                first_name: None,
                last_name: None,
            },
            User {
                id: "u2".into(),
                email: "grace@example.com".into(),
                first_name: None,
                last_name: None,
            },
        ];
        assert_eq!(resolve_email(&users, "ADA@example.com").unwrap(), "u1");
        let err = resolve_email(&users, "grace@exmple.com").unwrap_err();
        assert!(err.contains("did you mean grace@example.com"), "{err}");
        let err = resolve_email(&users, "zzzzzzzzzzzzzzzzzzzzzz@q.q").unwrap_err();
        assert!(!err.contains("did you mean"), "{err}");
    }
    #[test]
    fn edit_distances() {
        for (a, b, d) in [("", "", 0), ("a", "", 1), ("kitten", "sitting", 3), ("same", "same", 0)] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }
}
