//! Layout tools the server readers share: cutting a report's body to the section between its
//! opening and closing lines, and measuring indentation. All scans are single passes.

/// The byte offset in `text` of the first of `cues` (lower-case), matched ASCII case-insensitively.
pub(super) fn find_any(text: &str, cues: &[&str]) -> Option<usize> {
    find_cue(text, cues).map(|(at, _)| at)
}

/// Where the first of `cues` (lower-case) starts and ends in `text`, ASCII case-insensitively.
fn find_cue(text: &str, cues: &[&str]) -> Option<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    cues.iter()
        .filter_map(|c| lower.find(c).map(|at| (at, at + c.len())))
        .min()
}

/// Whether `text` holds any of `cues` (lower-case), ASCII case-insensitively.
pub(super) fn contains_any(text: &str, cues: &[&str]) -> bool {
    find_any(text, cues).is_some()
}

/// The text after the line where the first of `cues` ends (a cue may span lines); `None` when
/// no cue is there.
pub(super) fn after_line<'t>(text: &'t str, cues: &[&str]) -> Option<&'t str> {
    let (_, end) = find_cue(text, cues)?;
    let rest = text.get(end..)?;
    Some(rest.split_once('\n').map_or("", |(_, after)| after))
}

/// The text from the start of the line that holds the first of `cues`; `None` when no cue is there.
pub(super) fn from_line<'t>(text: &'t str, cues: &[&str]) -> Option<&'t str> {
    let at = find_any(text, cues)?;
    let start = text.get(..at)?.rfind('\n').map_or(0, |n| n + 1);
    text.get(start..)
}

/// The text before the line that holds the first of `cues` (the copy of the returned message
/// that closes most reports), or all of it.
pub(super) fn before_line<'t>(text: &'t str, cues: &[&str]) -> &'t str {
    let Some(at) = find_any(text, cues) else { return text };
    let start = text.get(..at).and_then(|t| t.rfind('\n')).map_or(0, |n| n + 1);
    text.get(..start).unwrap_or(text)
}

/// How many columns of white space open `line` (a tab counts as eight).
pub(super) fn indent(line: &str) -> usize {
    let mut n = 0;
    for c in line.chars() {
        match c {
            ' ' => n += 1,
            '\t' => n += 8,
            _ => break,
        }
    }
    n
}

/// Whether `line` is empty or white space only.
pub(super) fn blank(line: &str) -> bool {
    line.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_cut_at_the_lines_holding_their_cues() {
        let text = "Intro\nThe following FAILED:\n  a@b.example\n--- Below this line is a copy\nrest";
        let section = after_line(text, &["failed:"]).unwrap_or_default();
        assert_eq!(before_line(section, &["--- below this line"]), "  a@b.example\n");
        assert_eq!(
            from_line(text, &["below this"]),
            Some("--- Below this line is a copy\nrest")
        );
        assert_eq!(after_line(text, &["absent"]), None);
        assert_eq!(before_line("é\nx", &["absent"]), "é\nx");
        assert_eq!((indent("\t  x"), indent("x"), blank("  ")), (10, 0, true));
    }
}
