//! Assignees given as e-mail addresses or full names, matched against the service's users.

use super::User;

/// An assignee as the sheet gives it → the user's id: an e-mail address when it holds an
/// `@`, else a full name (`Jane Doe`).
pub fn resolve_assignee(users: &[User], text: &str) -> Result<String, String> {
    if text.contains('@') {
        resolve_email(users, text)
    } else {
        resolve_name(users, text)
    }
}

/// A full name → the one user with it (first and last name, case and spacing aside).
/// No user, or several: the message names the candidates.
pub fn resolve_name(users: &[User], name: &str) -> Result<String, String> {
    let wanted = normal_name(name);
    let named: Vec<&User> = users.iter().filter(|u| normal_name(&full_name(u)) == wanted).collect();
    match named.as_slice() {
        [user] => Ok(user.id.clone()),
        [] => {
            let mut close: Vec<(usize, String)> = users
                .iter()
                .map(full_name)
                .filter(|n| !n.trim().is_empty())
                .map(|n| (strsim::levenshtein(&wanted, &normal_name(&n)), n))
                .filter(|(d, _)| *d <= wanted.chars().count() / 3 + 1)
                .collect();
            close.sort();
            close.dedup();
            let shown: Vec<String> = close.into_iter().take(3).map(|(_, n)| format!("`{n}`")).collect();
            if shown.is_empty() {
                Err(
                    "no user has this name; give the user's UUID, e-mail address or full name as the web app shows it"
                        .to_owned(),
                )
            } else {
                Err(format!("no user has this name; did you mean {}?", shown.join(" or ")))
            }
        }
        several => {
            let emails: Vec<&str> = several.iter().map(|u| u.email.as_str()).collect();
            Err(format!(
                "{} users have this name ({}); give the e-mail address of the one you mean",
                several.len(),
                emails.join(", ")
            ))
        }
    }
}

fn full_name(user: &User) -> String {
    format!(
        "{} {}",
        user.first_name.as_deref().unwrap_or_default(),
        user.last_name.as_deref().unwrap_or_default()
    )
}

fn normal_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

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
    fn names_resolve_to_one_user_or_name_the_candidates() {
        let user = |id: &str, email: &str, first: &str, last: &str| User {
            id: id.into(),
            email: email.into(),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
        };
        let users = vec![
            user("u1", "jane@example.com", "Jane", "Doe"),
            user("u2", "jd@example.com", "John", "Doe"),
            user("u3", "jd2@example.com", "John", "Doe"),
        ];
        assert_eq!(resolve_assignee(&users, "jane  DOE").unwrap(), "u1");
        let err = resolve_assignee(&users, "John Doe").unwrap_err();
        assert!(
            err.contains("2 users have this name (jd@example.com, jd2@example.com)"),
            "{err}"
        );
        let err = resolve_assignee(&users, "Jane Do").unwrap_err();
        assert!(err.contains("did you mean `Jane Doe`"), "{err}");
        let err = resolve_assignee(&users, "Nobody Atall").unwrap_err();
        assert!(err.starts_with("no user has this name"), "{err}");
    }

    #[test]
    fn edit_distances() {
        for (a, b, d) in [("", "", 0), ("a", "", 1), ("kitten", "sitting", 3), ("same", "same", 0)] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }
}
