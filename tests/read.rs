//! End-to-end reading tests (placeholder while building).
#[test]
fn placeholder() {}
