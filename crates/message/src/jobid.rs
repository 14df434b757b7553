//! The X-Job character rule.

/// Makes a campaign name usable as a PowerMTA job id (`X-Job` header value).
///
/// This is the article's `pmtaSafeJobID`: the space, the double quote `"`, the backquote
/// `` ` `` and every character after `~` become `_`, as do the control characters below the
/// space (PowerMTA refuses job ids with whitespace or non-printables, and the quotes would
/// break the quoted fields of the accounting CSV and of scripts that paste job ids into
/// commands). Each input character becomes exactly one output character, so lengths are
/// preserved and two names that differ only in unsafe characters map to the same id (as
/// they would in PowerMTA's reports). Reception applies the same rule to `X-Job` values.
pub fn job_id_safe(input: &str) -> String {
    input
        .chars()
        .map(|c| if is_job_id_char(c) { c } else { '_' })
        .collect()
}

/// Whether `c` may stand in a job id as it is: `!` through `~` except `"` and `` ` ``.
fn is_job_id_char(c: char) -> bool {
    ('!'..='~').contains(&c) && c != '"' && c != '`'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The article's test: every character from 32 to 255 in one string, printed safe.
    #[test]
    fn the_articles_line_for_characters_32_to_255() {
        let input: String = (32u32..=255).filter_map(char::from_u32).collect();
        let expected = format!(
            "{}{}",
            r##"_!_#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^__abcdefghijklmnopqrstuvwxyz{|}~"##,
            "_".repeat(129)
        );
        assert_eq!(job_id_safe(&input), expected);
    }

    #[test]
    fn every_character_from_32_to_255() {
        for code in 32u32..=255 {
            let c = char::from_u32(code).unwrap();
            let kept = (33..=126).contains(&code) && code != 34 && code != 96;
            let expected = if kept { c.to_string() } else { "_".to_string() };
            assert_eq!(job_id_safe(&c.to_string()), expected, "character {code}");
        }
    }

    #[test]
    fn campaign_names() {
        assert_eq!(job_id_safe("Spring Sale 2026"), "Spring_Sale_2026");
        assert_eq!(job_id_safe("café-news"), "caf_-news");
        assert_eq!(job_id_safe("tab\there"), "tab_here");
        assert_eq!(job_id_safe(r#"the "best" `deal`"#), "the__best___deal_");
        assert_eq!(job_id_safe(""), "");
    }
}
