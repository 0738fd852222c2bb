//! Paths into a value (`.a.b[3]`), built lazily so the happy path allocates nothing.

use std::fmt::Write;

/// One step from a container to a child.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Segment<'a> {
    Field(&'a str),
    Index(usize),
}

/// Renders `.a.b[3]`; empty for the top level.
pub(crate) fn render(path: &[Segment<'_>]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Segment::Index(i) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_and_indexes() {
        assert_eq!(render(&[]), "");
        let path = [Segment::Field("a"), Segment::Field("b"), Segment::Index(3)];
        assert_eq!(render(&path), ".a.b[3]");
    }
}
